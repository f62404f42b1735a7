"""The shared table as people read it now: its schema and state, a page of rows, one record.

(The table as of any version, and the downloads, are in history.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

import store.changes
import store.table
from errors import NotFound
from models import TableState
from records import as_dict, unpack
from schema import Schema


def schema() -> Schema:
    """The table's columns, read from schema.json at start-up."""
    return current_app.extensions["schema"]


def state() -> TableState:
    """The table's version and row count."""
    return store.table.state()


@dataclass
class Page:
    """One page of the table: (key, values in schema order, version) rows, and what is around them."""

    rows: list[tuple[str, list[str], int]]
    has_next: bool
    state: TableState
    pending: int
    version: int | None = None  # a past version shown (None: the table now)
    row_count: int | None = None  # its row count then
    total: int = 0  # rows matching the search (all rows without one)
    total_capped: bool = False  # more than SEARCH_COUNT_MOST matched: `total` is a lower bound


SORTABLE_NUMBERS = ("integer", "number")
SEARCH_COUNT_MOST = 10_000  # a search counts its matches up to here (docs/PERFORMANCE.md)


def sort_of(column: str | None, descending: bool = False) -> store.table.Sort:
    """The sort for a column name (None or the key: the key's own order); NotFound for an unknown column."""
    if column is None:
        return store.table.Sort(None, descending=descending)
    s = schema()
    if column not in s.names:
        raise NotFound(f"The table has no column {column!r} to sort by.")
    position = s.names.index(column)
    if position == s.key_index:
        return store.table.Sort(None, descending=descending)
    return store.table.Sort(position, s.fields[position].type in SORTABLE_NUMBERS, descending)


def page(q: str, offset: int, limit: int, sort: str | None = None, descending: bool = False) -> Page:
    """Rows in key order (or by column `sort`, on the server), `q` matching the key or any text (case-insensitive)."""
    rows = store.table.records_page(q, offset, limit + 1, sort_of(sort, descending))
    state = store.table.state()
    if not q:
        total = state.row_count
    elif len(rows) <= limit and (rows or offset == 0):  # the last page: no need to scan again to count
        total = offset + len(rows)
    else:
        total = store.table.count_matches(q, SEARCH_COUNT_MOST)
    return Page(
        rows=[(key, unpack(record), version) for key, record, version in rows[:limit]],
        has_next=len(rows) > limit,
        state=state,
        pending=store.changes.count_requests("pending"),
        total=max(min(total, SEARCH_COUNT_MOST), offset + len(rows[:limit])),
        total_capped=total > SEARCH_COUNT_MOST,
    )


def record(key: str) -> dict[str, str] | None:
    """The current values of one row by field name, or None when no row has this key."""
    found = store.table.record(key)
    return as_dict(found[0], schema().names) if found else None
