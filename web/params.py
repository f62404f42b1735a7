"""Query parameters shared by the pages and the API: paging and date filters."""

from __future__ import annotations

import datetime as dt

from flask import abort, current_app, request

import history


def page_args() -> tuple[int, int, int]:
    """(page number, offset, page size) from ?page=."""
    size = current_app.config["PAGE_SIZE"]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    return page, (page - 1) * size, size


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


def audit_filter(change_param: str) -> history.AuditFilter:
    """The audit filters of the query string (`change_param` names the request-id parameter)."""
    return history.AuditFilter(
        key=request.args.get("key", "").strip() or None,
        user=request.args.get("user", "").strip() or None,
        since=parse_when(request.args.get("since")),
        until=parse_when(request.args.get("until"), end=True),
        change_id=request.args.get(change_param, type=int),
    )
