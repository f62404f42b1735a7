"""Error pages: one handler picks `errors/error.html` (or JSON under /api) for every status and every domain error."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, make_response, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, NotFound

from errors import DomainError
from models import db
from web import auth

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timed out",
    409: "Conflict",
    413: "File too large",
    422: "Cannot process this",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Database unavailable",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def json_error(status: int, message: str, **extra):
    """The API's error answer: `{"error": message, …extra}` with its status."""
    return jsonify({"error": message, **extra}), status


def respond(status: int, message: str, back: tuple[str, str] | None = None, **extra):
    """An error as JSON under /api, else as the friendly page (`back`: (address, text) of a link
    back to where the person came from, next to "Back to the table")."""
    if wants_json():
        return json_error(status, message, **extra)
    # 5xx pages do not touch the database (it may be the problem): no user menu there, and no
    # user lookup either (Flask-Login's template context would load the signed-in user).
    if status >= 500 and "_login_user" not in g:
        g._login_user = current_app.login_manager.anonymous_user()
    page = render_template(
        "errors/error.html",
        status=status,
        title=TITLES.get(status, "Error"),
        message=message,
        bare=status >= 500,
        back=back,
    )
    return page, status


def file_size(size: int) -> str:
    """A size in bytes as people read it.

    >>> file_size(600 * 1024 * 1024), file_size(2048), file_size(1536 * 1024)
    ('600 MB', '2 KB', '1.5 MB')
    """
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):,.1f}".removesuffix(".0") + " MB"
    return f"{max(size // 1024, 1):,} KB"


def too_large_message(sent: int | None, limit: int) -> str:
    """What a person whose upload was too large needs to hear: how big it was, the limit, what to do."""
    size = f"Your file is {file_size(sent)}, over" if sent else "Your file is over"
    return (
        f"{size} the upload limit of {file_size(limit)}. Upload a smaller file, for example only the"
        " rows you changed as a partial upload (“only some rows”), or save it as CSV, which is smaller than an"
        " Excel workbook. If you need to upload larger files, ask your administrator."
    )


def too_large(app: Flask) -> tuple[str, tuple[str, str] | None]:
    """The 413 message and link back, by its cause: a file over MAX_UPLOAD_MB, a body over the
    small limit of requests that take no file, or a form of too many parts (never the file's fault)."""
    limit = request.max_content_length
    over = limit is not None and (request.content_length is None or request.content_length > limit)
    if request.endpoint in auth.FILE_ENDPOINTS:
        back = (url_for("pages.upload"), "Back to the upload form")
        if over:
            return too_large_message(request.content_length, app.config["MAX_CONTENT_LENGTH"]), back
        return (
            f"The form has too many parts (at most {request.max_form_parts:,}) or a field other than the file is"
            " too long. Send the upload form as the page writes it: the file and its few fields.",
            back,
        )
    if over:
        return (
            f"The request is larger than the {file_size(limit)} this address accepts (only uploads may be larger)."
            " Send the form or JSON object the documentation describes.",
            None,
        )
    return (
        f"The request has too many form parts (at most {request.max_form_parts:,}) or a field too long."
        " Send the form or JSON object the documentation describes.",
        None,
    )


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        message, back = exc.description or "", None
        if exc.code == 413:
            message, back = too_large(app)
        elif message == NotFound.description:
            message = "There is nothing at this address."
        elif message == MethodNotAllowed.description:
            message = f"{request.method} is not allowed here."
        response = make_response(respond(exc.code or 500, message, back))
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return respond(
            400, "The form expired or was sent from elsewhere (CSRF check failed). Reload the page and try again."
        )

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return respond(exc.status, exc.message, **({"keys": exc.keys} if exc.keys else {}))

    @app.errorhandler(TimeoutError)
    def client_too_slow(exc: TimeoutError):
        # gunicorn's worker (gunicorn.conf.py) waits CLIENT_TIMEOUT_SECONDS for each read of the body
        return respond(
            408, "Your upload stopped arriving (nothing came for a while). Check the connection and try again."
        )

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError):
        db.session.rollback()
        log.error("database error: %s", exc)
        return respond(
            503, "The database is not answering. Try again in a minute; if it persists, tell the administrator."
        )

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError):
        db.session.rollback()
        original = getattr(exc, "original_exception", None)
        if original is not None:
            log.error("unhandled error on %s %s", request.method, request.path, exc_info=original)
        return respond(500, "Something went wrong on our side. Nothing was changed. The details are in the server log.")
