"""The domain's errors: each says what went wrong in words for the person who caused it, and
carries the HTTP status that fits, so the pages and the API answer it the same way (web/error_pages.py).
"""

from __future__ import annotations


class DomainError(Exception):
    """A step that cannot happen; `status` is the HTTP status that fits, `keys` the rows concerned."""

    status = 400

    def __init__(self, message: str, keys: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.keys = keys or []


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class Unprocessable(DomainError):
    status = 422
