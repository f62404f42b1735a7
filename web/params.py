"""Query parameters shared by the pages and the API: paging, versions, date filters, audit cursors.

A malformed parameter is the client's mistake: 400 with a message under /api, 404 on a page
(the address does not name anything).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import abort, current_app, request

import history


def _bad(message: str):
    abort(400 if request.path.startswith("/api/") else 404, message)


def optional_int(name: str) -> int | None:
    """A whole-number query parameter, or None when it is absent or empty."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        _bad(f"{name} must be a whole number, not {raw[:40]!r}.")
    return int(raw)


def required_int(name: str) -> int:
    value = optional_int(name)
    if value is None:
        _bad(f"Give {name} as a whole number, e.g. ?{name}=3.")
    return value  # type: ignore[return-value]


def audit_cursor() -> tuple[int, int] | None:
    """The audit log's `before` cursor: `E` or `E-R` (as the previous page's `next` gave it)."""
    raw = request.args.get("before", "").strip()
    if not raw:
        return None
    event, _, row = raw.partition("-")
    if not event.isdigit() or (row and not row.isdigit()) or len(raw) > 40:
        _bad(f"before must be the `next` value of the previous page, not {raw[:40]!r}.")
    return int(event), int(row or 0)


def page_args() -> tuple[int, int, int]:
    """(page number, offset, page size) from ?page=."""
    size = current_app.config["PAGE_SIZE"]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    return page, (page - 1) * size, size


def check_page(page: int, pages: int) -> None:
    """404 for a page past the last one (page 1 always exists, if empty)."""
    if page > pages:
        abort(
            404,
            f"There is no page {page:,}: there {'is' if pages == 1 else 'are'} {pages:,} page{'' if pages == 1 else 's'}.",
        )


@dataclass
class ReviewArgs:
    """The review page's and the version diff's filters: ?show=&column=&q=&cells=all."""

    show: str
    column: str | None
    q: str | None
    all_cells: bool


def review_args(shows: tuple[str, ...], default: str) -> ReviewArgs:
    """The filters of a diff page; an unknown `show` is the default one."""
    show = request.args.get("show", "")
    return ReviewArgs(
        show=show if show in shows else default,
        column=request.args.get("column", "").strip() or None,
        q=request.args.get("q", "").strip()[:200] or None,
        all_cells=request.args.get("cells") == "all",
    )


def sort_args() -> tuple[str | None, bool]:
    """The table page's ?sort=COLUMN&dir=asc|desc."""
    return request.args.get("sort", "").strip() or None, request.args.get("dir") == "desc"


def parse_when(value: str | None, *, end: bool = False) -> dt.datetime | None:
    """An ISO date or date-time from a filter; a bare end date includes that whole day."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        abort(400, f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM.")
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    if end and len(value.strip()) == 10:
        when += dt.timedelta(days=1)
    return when


def audit_filter(key_prefix: bool = False) -> history.AuditFilter:
    """The audit filters of the query string: key, user, since, until, action, and the request
    (`change`; `change_id` too, as the API has always called it). `key_prefix`: the key is the
    beginning of the keys, in any case (the page's filter; the API's `key` is exact, its
    `key_prefix` is that)."""
    change = optional_int("change")
    prefix = request.args.get("key_prefix", "").strip()
    return history.AuditFilter(
        key=prefix or request.args.get("key", "").strip() or None,
        key_prefix=key_prefix or bool(prefix),
        user=request.args.get("user", "").strip() or None,
        since=parse_when(request.args.get("since")),
        until=parse_when(request.args.get("until"), end=True),
        change_id=change if change is not None else optional_int("change_id"),
        action=request.args.get("action", "").strip() or None,
    )
