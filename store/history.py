"""The table's history: the staged rows of approved requests, read by version and by key.

Version N of the table is version N-1 with the staged rows of the request approved as N applied,
so the rows of later approvals, read back to front, turn the table now into the table as of any
version. Every read here costs what changed since (or between) the versions asked about, never
the size of the table: approvals are found through `change_requests.applied_version`, their rows
through `pending_changes (change_id, action, id)`, a key's rows through `(key, change_id)`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from sqlalchemy import DateTime, text

from models import ChangeRequest, db
from records import RecordStream
from store.base import is_postgres, iter_cursor, key_prefix_clause, raw_cursor, snapshot
from store.table import read_version


class HistoryRow(NamedTuple):
    """One row change an approval applied: `before`/`after` are records packed with `fields`.

    A named tuple: 20,000 of them are made for one version's diff, three times faster than a
    frozen dataclass."""

    key: str
    action: str
    before: str | None
    after: str | None
    version: int
    change_id: int
    fields: str


_ROWS = (
    "SELECT p.key, p.action, p.before, p.after, c.applied_version, c.id, c.fields"
    " FROM change_requests c JOIN pending_changes p ON p.change_id = c.id"
    " WHERE c.status = 'approved' AND c.applied_version IS NOT NULL AND c.tbl = :tbl"
)


def rows_between(tbl: int, low: int, high: int) -> list[HistoryRow]:
    """Row changes of a table by the approvals that made versions low+1 … high, oldest first."""
    return _rows_after(_fetcher(raw_cursor()), tbl, low, high)


def _fetcher(cur) -> Callable[[str, tuple], list[tuple]]:
    """`query(sql, arguments)` → all rows, through a DB-API cursor (plain tuples, no result objects)."""

    def query(sql: str, args: tuple) -> list[tuple]:
        cur.execute(sql, args)
        return cur.fetchall()

    return query


def _rows_after(
    query: Callable[[str, tuple], Sequence[tuple]], tbl: int, low: int, high: int | None = None
) -> list[HistoryRow]:
    """Row changes of a table by the approvals after version `low` (up to `high`), oldest first, read through
    `query(sql with the driver's placeholders, arguments)`.

    One query per approval, so that PostgreSQL plans each with that request's own row count: joined
    to `change_requests` it read all of `pending_changes` (1,400,000 rows) to find 20,000 of them
    (0.9 s instead of 0.1 s).
    """
    mark = "%s" if is_postgres() else "?"
    bound = f" AND applied_version <= {mark}" if high is not None else ""
    approved = f"SELECT id, applied_version, fields FROM change_requests WHERE status = 'approved' AND tbl = {mark}"  # noqa: S608 - placeholders
    approvals = query(
        f"{approved} AND applied_version > {mark}{bound} ORDER BY applied_version",
        (tbl, low) if high is None else (tbl, low, high),
    )
    # In the order of the (change_id, action, id) index: no sort (a request stages a key once).
    staged = f"SELECT key, action, before, after FROM pending_changes WHERE change_id = {mark} ORDER BY action, id"  # noqa: S608 - constants
    return [
        HistoryRow(key, action, before, after, version, change_id, fields)
        for change_id, version, fields in approvals
        for key, action, before, after in query(staged, (change_id,))
    ]


def key_rows(tbl: int, key: str) -> list[HistoryRow]:
    """Every row change of one key of a table, oldest first."""
    rows = db.session.execute(text(_ROWS + " AND p.key = :key ORDER BY c.applied_version"), {"tbl": tbl, "key": key})
    return [HistoryRow(*r) for r in rows]


def of_staged(tbl: int, change_id: int) -> list[HistoryRow]:
    """The history of every key a (pending) request staged, oldest first."""
    rows = db.session.execute(
        text(
            _ROWS + " AND p.key IN (SELECT key FROM pending_changes WHERE change_id = :id)"  # noqa: S608 - constants
            " ORDER BY c.applied_version, p.id"
        ),
        {"tbl": tbl, "id": change_id},
    )
    return [HistoryRow(*r) for r in rows]


def _approved(tbl: int | Sequence[int] | None) -> list:
    """Approved requests of one table, of several (a list), or of every table (None)."""
    where = [ChangeRequest.status == "approved", ChangeRequest.applied_version.is_not(None)]
    if tbl is None:
        return where
    return [*where, ChangeRequest.tbl.in_(tbl) if isinstance(tbl, Sequence) else ChangeRequest.tbl == tbl]


def deleted_since(tbl: int, version: int) -> bool:
    """Did an approval after `version` delete rows of a table?"""
    found = db.session.execute(
        text(
            "SELECT 1 FROM change_requests WHERE tbl = :tbl AND status = 'approved' AND applied_version > :v"
            " AND deleted > 0 LIMIT 1"
        ),
        {"tbl": tbl, "v": version},
    ).first()
    return found is not None


def approvals(offset: int, limit: int, tbl: int | Sequence[int] | None = None) -> list[ChangeRequest]:
    """Approved requests (of one table; None: of every table), newest version first."""
    return list(
        db.session.scalars(
            db.select(ChangeRequest)
            .where(*_approved(tbl))
            .order_by(ChangeRequest.applied_version.desc())
            .offset(offset)
            .limit(limit)
        )
    )


def approval_count(tbl: int | Sequence[int] | None = None) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(ChangeRequest).where(*_approved(tbl))) or 0


def last_changes_of(tbl: int, keys: Sequence[str], after_version: int) -> dict[str, ChangeRequest]:
    """{key: the approved request (of table `tbl`) that last changed it after `after_version`},
    for the keys that have one: who made "theirs" in a merge conflict. One query, through
    `pending_changes (key, change_id)`; `keys` is a page of conflicts, not a table."""
    if not keys:
        return {}
    marks = ", ".join(f":k{i}" for i in range(len(keys)))
    found = db.session.execute(
        text(
            "SELECT p.key, c.id FROM pending_changes p JOIN change_requests c ON c.id = p.change_id"  # noqa: S608 - marks only
            f" WHERE p.key IN ({marks}) AND c.tbl = :tbl AND c.status = 'approved'"
            " AND c.applied_version > :after ORDER BY c.applied_version"
        ),
        {f"k{i}": key for i, key in enumerate(keys)} | {"tbl": tbl, "after": after_version},
    ).all()
    last = dict(found)  # ordered by version: the newest wins
    requests = {
        c.id: c for c in db.session.scalars(db.select(ChangeRequest).where(ChangeRequest.id.in_(set(last.values()))))
    }
    return {key: requests[change_id] for key, change_id in last.items()}


def resolutions_of(change_id: int) -> list:
    """The conflicts resolved in a request, oldest first: (key, note, approver (who chose), created_at)."""
    typed = text(
        "SELECT key, note, approver, created_at FROM audit_log WHERE change_id = :id AND action = 'resolve' ORDER BY id"
    ).columns(created_at=DateTime)
    return list(db.session.execute(typed, {"id": change_id}))


def approval_of(version: int) -> ChangeRequest | None:
    """The request whose approval made `version`."""
    return db.session.scalar(
        db.select(ChangeRequest).where(ChangeRequest.status == "approved", ChangeRequest.applied_version == version)
    )


def adders_sample(change_id: int, limit: int) -> list[str]:
    """Up to `limit` keys a request added (to tell whether a file has seen that request)."""
    rows = db.session.execute(
        text("SELECT key FROM pending_changes WHERE change_id = :id AND action = 'add' ORDER BY id LIMIT :limit"),
        {"id": change_id, "limit": limit},
    )
    return [r[0] for r in rows]


def prune(up_to: int) -> None:
    """Forget the row changes of the approvals that made versions up to `up_to` (HISTORY_KEEP_VERSIONS)."""
    db.session.execute(
        text(
            "DELETE FROM pending_changes WHERE change_id IN"
            " (SELECT id FROM change_requests WHERE status = 'approved' AND applied_version <= :v)"
        ),
        {"v": up_to},
    )
    db.session.execute(
        text("UPDATE database_state SET history_from = :v WHERE id = 1 AND history_from < :v"), {"v": up_to}
    )


# --- the table as of a version, in one snapshot ----------------------------------------------


def since_rows(raw, tbl: int, version: int) -> list[HistoryRow]:
    """A table's row changes after `version`, oldest first, through a raw snapshot connection (store.base.snapshot)."""

    cur = raw.cursor()
    try:
        return _rows_after(_fetcher(cur), tbl, version)
    finally:
        cur.close()


def open_as_of(tbl: int, version: int) -> tuple[list[HistoryRow], RecordStream[tuple[str, str]]]:
    """Start reading a table in one snapshot: its row changes since `version` (oldest first), and
    the table now, (key, record) in key order, as a RecordStream of the version now."""
    stack = contextlib.ExitStack()
    raw = stack.enter_context(snapshot())
    try:
        current, row_count = read_version(raw, tbl)
        since = since_rows(raw, tbl, version)
        sql = f"SELECT key, record FROM datasets WHERE tbl = {int(tbl)} ORDER BY key"  # noqa: S608 - an int
        batches = iter_cursor(raw, sql, "as_of_records")
        stack.callback(batches.close)
        rows: Iterator[tuple[str, str]] = itertools.chain.from_iterable(batches)
    except BaseException:
        stack.close()
        raise
    return since, RecordStream(current, row_count, rows, stack.close)


# --- the audit log's row entries -------------------------------------------------------------

_ENTRY = (
    "SELECT p.id, p.change_id, p.action, p.key, p.before, p.after, a.submitter, a.approver,"
    " a.submitted_at, a.created_at, a.version, NULL AS note, c.fields, a.id AS event_id"
    " FROM pending_changes p JOIN audit_log a ON a.change_id = p.change_id AND a.action = 'approve'"
    " JOIN change_requests c ON c.id = p.change_id"
)


def approval_rows(event_id: int, change_id: int, actions: Sequence[str], before_row: int | None, limit: int) -> list:
    """Row entries of one approval, newest staged row first (one index range per action, merged)."""
    out = []
    for action in actions:
        sql = _ENTRY + " WHERE p.change_id = :cid AND p.action = :action AND a.id = :eid"
        if before_row is not None:
            sql += " AND p.id < :before_row"
        typed = text(sql + " ORDER BY p.id DESC LIMIT :limit").columns(submitted_at=DateTime, created_at=DateTime)
        params = {"cid": change_id, "action": action, "eid": event_id, "before_row": before_row, "limit": limit}
        out.extend(db.session.execute(typed, params))
    return sorted(out, key=lambda r: r.id, reverse=True)[:limit]


def key_entries(key: str, clauses: list[str], params: dict, limit: int, prefix: bool = False) -> list:
    """Row entries of one key, or (`prefix`) of the keys starting with it in any case (ranges on
    the (key, change_id) index: store.base.key_prefix_clause), newest approval first, with extra
    clauses on the approval `a` and row `p`."""
    if prefix:
        match, found = key_prefix_clause("p.key", key, "pk")
    else:
        match, found = "p.key = :key", {"key": key}
    where = " AND ".join([match, *clauses])
    typed = text(_ENTRY + f" WHERE {where} ORDER BY a.id DESC, p.id DESC LIMIT :limit").columns(
        submitted_at=DateTime, created_at=DateTime
    )
    return list(db.session.execute(typed, params | found | {"limit": limit}))
