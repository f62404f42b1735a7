"""Request parameters shared by the pages and the API: ids in URLs, whole numbers, paging,
versions, dates, audit cursors.

Every number a request sends is checked here before it reaches the database: out of range or not
a number is a 400 from the API and a 404 on the pages ("there is no such page"), never a 500 from
a database that cannot hold it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, request
from werkzeug.routing import IntegerConverter, ValidationError

import audit
from models import DB_INT_MAX

MAX_OFFSET = 10**15  # rows to skip: far beyond any table, far within the databases' 64-bit offsets
MAX_PAGE = 10**9
_MAX_DIGITS = 20


class IdConverter(IntegerConverter):
    """`<id:name>` in a route: 1 to DB_INT_MAX; anything else matches no route (404)."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        super().__init__(url_map, min=1, max=DB_INT_MAX)

    def to_python(self, value: str) -> int:
        if len(value) > len(str(DB_INT_MAX)):  # also before Python's limit on converting long digit strings
            raise ValidationError()
        return super().to_python(value)


def refuse_nul_characters() -> None:
    """before_request: a NUL character in the path, the query string or a form field is refused
    (400). No value may hold one, and PostgreSQL refuses them in text: a 500 otherwise."""
    values = itertools.chain(request.args.listvalues(), request.form.listvalues() if request.form else ())
    if "\x00" in request.path or any("\x00" in value for value in itertools.chain.from_iterable(values)):
        abort(400, "The request holds a NUL character (\\x00), which no value may hold.")


# Keyword arguments of url_for itself: a query parameter of that name must never reach it.
_URL_FOR_NAMES = frozenset({"endpoint", "_method", "_external", "_anchor", "_scheme", "_url_values"})


def query_args() -> dict[str, str]:
    """The query string as the pages hand it back to url_for in their links (pagers, filters,
    downloads): without the names url_for reads itself (`?endpoint=x`, `?_method=PUT` were a 500)
    and without the path's own values (`?change_id=x` must not replace the request's id)."""
    taken = _URL_FOR_NAMES | set(request.view_args or ())
    return {name: value for name, value in request.args.items() if name not in taken}


def json_body() -> Any:
    """The request's JSON body, or None when it is not JSON. Nesting too deep for the parser is a
    400, not a 500 (the body is at most web.auth.SMALL_BODY_BYTES, checked before this reads it)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        abort(400, "The JSON body is nested too deeply; send the object the documentation describes.")


def refuse(message: str):
    """A bad parameter: 400 with the message from the API, 404 on the pages."""
    abort(400 if request.path.startswith("/api/") else 404, message)


def int_arg(
    name: str, default: int | None = None, *, low: int = 0, high: int = DB_INT_MAX, source: Mapping | None = None
) -> int | None:
    """A whole-number parameter (query string, or `source`) between `low` and `high`; absent or
    empty gives `default`; anything else is refused (`refuse`)."""
    raw = (request.args if source is None else source).get(name)
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    digits = text[1:] if text[0] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_DIGITS:
        refuse(f"{name} must be a whole number, not {raw[:40]!r}.")
    value = int(text)
    if not low <= value <= high:
        refuse(f"{name} must be from {low:,} to {high:,}, not {value:,}.")
    return value


def limit_arg(default: int, cap: int) -> int:
    """?limit=: 1 or more (a negative or zero limit never means "all"), at most `cap`."""
    return min(int_arg("limit", default, low=1, high=MAX_OFFSET), cap)


def every_table() -> bool:
    """?all=1: the list of every table (the whole database's versions or audit log), not of one."""
    raw = request.args.get("all", "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        refuse(f"all must be 1 (every table) or 0, not {raw[:40]!r}.")
    return raw in ("1", "true")


def offset_arg() -> int:
    """?offset=: rows to skip, 0 or more."""
    return int_arg("offset", 0, high=MAX_OFFSET)


def required_int(name: str) -> int:
    """A whole-number query parameter (0 or more) that must be given."""
    value = int_arg(name)
    if value is None:
        refuse(f"Give {name} as a whole number, e.g. ?{name}=3.")
    return value  # type: ignore[return-value]


def audit_cursor() -> tuple[int, int] | None:
    """The audit log's `before` cursor: `E` or `E-R` (as the previous page's `next` gave it)."""
    raw = request.args.get("before", "").strip()
    if not raw:
        return None
    event, _, row = raw.partition("-")
    if (
        not (event.isascii() and event.isdigit())
        or (row and not (row.isascii() and row.isdigit()))
        or len(raw) > 40
        or max(int(event), int(row or 0)) > DB_INT_MAX
    ):
        refuse(f"before must be the `next` value of the previous page, not {raw[:40]!r}.")
    return int(event), int(row or 0)


def page_args() -> tuple[int, int, int]:
    """(page number, offset, page size) from ?page=."""
    size = current_app.config["PAGE_SIZE"]
    page = int_arg("page", 1, low=1, high=MAX_PAGE)
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
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        if end and len(value.strip()) == 10:
            when += dt.timedelta(days=1)
    except (ValueError, OverflowError):
        abort(400, f"{value[:40]!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM.")
    return when


def audit_filter(tbl: int | None, key_prefix: bool = False) -> audit.AuditFilter:
    """The audit filters of the query string: key, user, since, until, action, and the request
    (`change`; `change_id` too, as the API has always called it), within table `tbl`. `key_prefix`: the key is the
    beginning of the keys, in any case (the page's filter; the API's `key` is exact, its
    `key_prefix` is that)."""
    change = int_arg("change")
    prefix = request.args.get("key_prefix", "").strip()
    return audit.AuditFilter(
        key=prefix or request.args.get("key", "").strip() or None,
        key_prefix=key_prefix or bool(prefix),
        user=request.args.get("user", "").strip() or None,
        since=parse_when(request.args.get("since")),
        until=parse_when(request.args.get("until"), end=True),
        change_id=change if change is not None else int_arg("change_id"),
        action=request.args.get("action", "").strip() or None,
        tbl=tbl,
    )
