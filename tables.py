"""The shared tables as people read them now: which tables there are, each one's schema and state,
a page of rows, one record.

Every table of schema.json (package.py) has a state row in the database (made at start-up,
bootstrap.py); a `TableRef` is the two together, and is what the domain passes to the store. The
first table is the default one: the URLs and API calls that name no table serve it.

(A table as of any version, and the downloads, are in history.py.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app

import store.changes
import store.table
from errors import NotFound
from models import ChangeRequest, DatabaseState, TableState
from package import Package, Table
from records import as_dict, unpack
from schema import Schema


@dataclass(frozen=True)
class TableRef:
    """A table of schema.json and the id of its state row (`tbl` in the database)."""

    id: int
    spec: Table

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def schema(self) -> Schema:
        return self.spec.schema


def package() -> Package:
    """The deployment's tables, read from schema.json at start-up."""
    return current_app.extensions["package"]


def _refs() -> dict[str, TableRef]:
    """{name: TableRef} in schema.json's order (the ids are read once per app, after start-up made the rows)."""
    found = current_app.extensions.get("table_refs")
    if found is None:
        ids = {s.name: s.id for s in store.table.all_states()}
        found = {t.name: TableRef(ids[t.name], t) for t in package().tables if t.name in ids}
        current_app.extensions["table_refs"] = found
    return found


def every() -> list[TableRef]:
    """Every table, in schema.json's order (the first is the default)."""
    return list(_refs().values())


def get(name: str | None = None) -> TableRef:
    """The table called `name` (None: the first table); NotFound when there is none."""
    refs = _refs()
    if name is None:
        return next(iter(refs.values()))
    if name not in refs:
        raise NotFound(f"There is no table {name!r}. Tables: {', '.join(refs)}.")
    return refs[name]


def of_request(change: ChangeRequest) -> TableRef:
    """The table a change request changes."""
    for ref in _refs().values():
        if ref.id == change.tbl:
            return ref
    raise NotFound(f"Change request #{change.id} belongs to a table schema.json no longer has.")


def of_requests(change_ids: Sequence[int]) -> dict[int, TableRef]:
    """{change id: the table it changes} for many requests at once (one query)."""
    by_id = {ref.id: ref for ref in _refs().values()}
    return {cid: by_id[tbl] for cid, tbl in store.changes.tables_of(change_ids).items() if tbl in by_id}


def approvers() -> set[str]:
    """Everyone schema.json names as an approver of some table (besides the admins)."""
    return {name for table in package().tables for name in table.approvers}


def state(table: TableRef) -> TableState:
    """A table's version (the database version that last changed it) and row count."""
    return store.table.state(table.id)


def database() -> DatabaseState:
    """The database's version: one counter for every table."""
    return store.table.database()


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


def sort_of(table: TableRef, column: str | None, descending: bool = False) -> store.table.Sort:
    """The sort for a column name (None or the key: the key's own order); NotFound for an unknown column."""
    if column is None:
        return store.table.Sort(None, descending=descending)
    s = table.schema
    if column not in s.names:
        raise NotFound(f"The table has no column {column!r} to sort by.")
    position = s.names.index(column)
    if position == s.key_index:
        return store.table.Sort(None, descending=descending)
    return store.table.Sort(position, s.fields[position].type in SORTABLE_NUMBERS, descending)


def page(table: TableRef, q: str, offset: int, limit: int, sort: str | None = None, descending: bool = False) -> Page:
    """Rows in key order (or by column `sort`, on the server), `q` matching the key or any text (case-insensitive)."""
    rows = store.table.records_page(table.id, q, offset, limit + 1, sort_of(table, sort, descending))
    state = store.table.state(table.id)
    if not q:
        total = state.row_count
    elif len(rows) <= limit and (rows or offset == 0):  # the last page: no need to scan again to count
        total = offset + len(rows)
    else:
        total = store.table.count_matches(table.id, q, SEARCH_COUNT_MOST)
    return Page(
        rows=[(key, unpack(record), version) for key, record, version in rows[:limit]],
        has_next=len(rows) > limit,
        state=state,
        pending=store.changes.count_requests("pending", table.id),
        # without a search the state row's count is exact: every page is numbered, the last one too
        total=total if not q else max(min(total, SEARCH_COUNT_MOST), offset + len(rows[:limit])),
        total_capped=bool(q) and total > SEARCH_COUNT_MOST,
    )


def record(table: TableRef, key: str) -> dict[str, str] | None:
    """The current values of one row by field name, or None when no row has this key."""
    found = store.table.record(table.id, key)
    return as_dict(found[0], table.schema.names) if found else None


@dataclass
class Overview:
    """A line of the tables overview (`/`, `GET /api/v1/tables`)."""

    name: str
    title: str
    description: str
    rows: int
    version: int
    pending: int


def load_order() -> list[tuple[str, str, list[str]]]:
    """(name, title, titles of the tables it refers to) of every table in the order a first load takes them."""
    pkg = package()
    return [(t.name, t.title, [pkg.table(n).title for n in refers]) for t, refers in pkg.load_order()]


def overview() -> list[Overview]:
    """Every table with its row count, the version that last changed it and its pending requests."""
    pending = store.changes.pending_per_table()
    states = {s.id: s for s in store.table.all_states()}
    out = []
    for ref in every():
        state = states[ref.id]
        out.append(
            Overview(ref.name, ref.title, ref.spec.description, state.row_count, state.version, pending.get(ref.id, 0))
        )
    return out
