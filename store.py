"""All SQL: bulk reads and writes of records, staged changes and audit entries, and paged queries.

Bulk paths use the DB-API driver directly (PostgreSQL COPY, SQLite executemany) and set-based
statements, never an ORM object per row. Callers own the transaction (`db.session`), except
the snapshot readers, which use a connection of their own so that a long download does not hold
the request's session.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import json
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter

from sqlalchemy import DateTime, text

from diff import Diff
from models import TableState, db

COPY_BATCH = 50_000
FETCH_BATCH = 20_000


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _raw_cursor():
    """A DB-API cursor inside the session's current transaction."""
    return db.session.connection().connection.cursor()


# --- table state -----------------------------------------------------------------------------


def table_state() -> TableState:
    state = db.session.get(TableState, 1)
    if state is None:  # created at start-up; recreate defensively rather than fail
        state = TableState(id=1, version=0, row_count=0, fields="[]")
        db.session.add(state)
        db.session.flush()
    return state


def bump_version() -> int:
    """Increment the table version under a row lock: concurrent approvals serialise here."""
    db.session.execute(text("UPDATE table_state SET version = version + 1 WHERE id = 1"))
    return db.session.execute(text("SELECT version FROM table_state WHERE id = 1")).scalar_one()


# --- snapshots (own connection) --------------------------------------------------------------


@contextlib.contextmanager
def _snapshot_connection():
    """A connection in a read transaction that sees one consistent version of the table."""
    conn = db.engine.connect()
    try:
        if is_postgres():
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
            raw = conn.connection.driver_connection
        else:
            raw = conn.connection.driver_connection
            raw.execute("BEGIN")
        yield raw
    finally:
        with contextlib.suppress(Exception):
            conn.connection.driver_connection.rollback()
        conn.close()


def _iter_cursor(raw, sql: str, name: str) -> Iterator[list[tuple]]:
    """Run a query now; return its rows in batches (a server-side cursor on PostgreSQL)."""
    if is_postgres():
        cur = raw.cursor(name=name)
        cur.itersize = FETCH_BATCH
        cur.execute(sql)
        return _prefetched(cur)
    cur = raw.cursor()
    cur.execute(sql)
    return _drain(cur)


def _prefetched(cur) -> Iterator[list[tuple]]:
    """The rows of a server-side cursor in batches, each fetched by a helper thread while the last is used.

    PostgreSQL then sends rows while Python builds the upload's dictionary or the download's CSV
    (the driver lets go of the GIL while it waits): a million rows arrive in about 1.5 s instead
    of 2.5 s. At most three batches are in memory.
    """
    batches: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def hand_over(item) -> None:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def fetch() -> None:
        try:
            while not stop.is_set():
                batch = cur.fetchmany(FETCH_BATCH)
                hand_over(batch)
                if not batch:
                    return
        except Exception as exc:  # noqa: BLE001 - raised again in the reading thread
            hand_over(exc)

    thread = threading.Thread(target=fetch, name="fetch-rows", daemon=True)
    thread.start()
    try:
        while True:
            batch = batches.get()
            if isinstance(batch, Exception):
                raise batch
            if not batch:
                return
            yield batch
    finally:
        stop.set()
        thread.join()
        cur.close()


def _drain(cur) -> Iterator[list[tuple]]:
    try:
        while batch := cur.fetchmany(FETCH_BATCH):
            yield batch
    finally:
        cur.close()


def _version(raw) -> tuple[int, int]:
    cur = raw.cursor()
    cur.execute("SELECT version, row_count FROM table_state WHERE id = 1")
    version, row_count = cur.fetchone()
    cur.close()
    return version, row_count


def read_current() -> tuple[int, dict[str, str]]:
    """(table version, {key: record}) for the whole table, read in one snapshot."""
    with _snapshot_connection() as raw:
        version, _ = _version(raw)
        records: dict[str, str] = {}
        with contextlib.closing(_iter_cursor(raw, "SELECT key, record FROM datasets", "current_records")) as batches:
            for batch in batches:
                records.update(batch)
    return version, records


@dataclass
class ExportSnapshot:
    """A table version and an iterator over its records in key order; close() ends the read."""

    version: int
    row_count: int
    records: Iterator[str]
    close: contextlib.ExitStack


def open_export() -> ExportSnapshot:
    """Start streaming the table: the version is known before the first row is sent."""
    stack = contextlib.ExitStack()
    raw = stack.enter_context(_snapshot_connection())
    version, row_count = _version(raw)
    batches = _iter_cursor(raw, "SELECT record FROM datasets ORDER BY key", "export_records")
    stack.callback(batches.close)  # runs first: stops the fetching thread while the connection is still open
    records = map(itemgetter(0), itertools.chain.from_iterable(batches))
    return ExportSnapshot(version, row_count, records, stack)


# --- staging ---------------------------------------------------------------------------------


def _copy_text(value: str | int | None) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, int):
        return str(value)
    return _copy_escape(value)


def _copy_escape(text: str) -> str:
    """Backslash-escape text for COPY's text format."""
    if "\\" in text or "\n" in text or "\r" in text or "\t" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text


# Stand-ins while COPY data is built a batch at a time: control characters that no stored value
# can contain (schema._check_text refuses them), turned into tab, newline and \N at the end.
_FS, _RS, _NULL = "\x1e", "\x1d", "\x1c"


def _staged(change_id: int, action: str, rows: list, null: object, as_text: bool = False) -> Iterator[tuple]:
    """Staged rows of one action as (change_id, action, key, line, before, after), `null` for NULL
    (`as_text`: the numbers as text too).

    map/zip over the diff's own lists (Row, Modified, (key, record)): no Python code runs per row.
    """
    cid, act = repeat(str(change_id) if as_text else change_id), repeat(action)
    lines = map(itemgetter(0), rows)
    if as_text:
        lines = map(str, lines)
    if action == "add":  # Row(line, key, record)
        return zip(cid, act, map(itemgetter(1), rows), lines, repeat(null), map(itemgetter(2), rows))
    if action == "modify":  # Modified(line, key, before, after)
        before, after = map(itemgetter(2), rows), map(itemgetter(3), rows)
        return zip(cid, act, map(itemgetter(1), rows), lines, before, after, strict=False)  # repeat() is endless
    return zip(cid, act, map(itemgetter(0), rows), repeat(null), map(itemgetter(1), rows), repeat(null))


def _copy_data(change_id: int, action: str, rows: list) -> str:
    """COPY text-format data for staged rows of one action, joined and escaped a batch at a time."""
    data = _RS.join(map(_FS.join, _staged(change_id, action, rows, _NULL, as_text=True)))
    n, nulls = len(rows), {"add": 1, "modify": 0, "delete": 2}[action]
    if data.count(_FS) != 5 * n or data.count(_RS) != n - 1 or data.count(_NULL) != nulls * n:
        # a stand-in inside a value after all: escape value by value
        return "".join("\t".join(map(_copy_text, row)) + "\n" for row in _staged(change_id, action, rows, None))
    return _copy_escape(data).replace(_FS, "\t").replace(_RS, "\n").replace(_NULL, "\\N") + "\n"


def _batches(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def stage_rows(change_id: int, result: Diff) -> None:
    """Write a diff's row changes as pending_changes of one change request, in bulk (COPY on PostgreSQL)."""
    columns = "change_id, action, key, line, before, after"
    cur = _raw_cursor()
    for action, rows in (("add", result.added), ("modify", result.modified), ("delete", result.deleted)):
        for start in range(0, len(rows), COPY_BATCH):
            batch = rows[start : start + COPY_BATCH]
            if is_postgres():
                data = io.BytesIO(_copy_data(change_id, action, batch).encode("utf-8"))  # StringIO: 4 bytes a character
                cur.copy_expert(f"COPY pending_changes ({columns}) FROM STDIN", data, size=1 << 20)
            else:
                cur.executemany(
                    f"INSERT INTO pending_changes ({columns}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
                    _staged(change_id, action, batch, None),
                )
    if is_postgres():
        # A big upload makes the table's statistics stale until autovacuum catches up (a minute or
        # so); meanwhile the planner sorts a million rows to show the review page's first 50
        # (0.3 s instead of 3 ms). Refresh them when this upload grew the table by over 10%.
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = 'pending_changes'::regclass")
        if result.changed > 0.1 * max(cur.fetchone()[0], 0) + 10_000:
            cur.execute("ANALYZE pending_changes")
    cur.close()


def repack_pending(rewrite, new_fields: Sequence[str]) -> None:
    """Rewrite before/after of every pending request's staged rows with `rewrite(text, old_fields)`.

    The request's field list becomes `new_fields`, so its rows are read back under the right names.
    """
    requests = db.session.execute(text("SELECT id, fields FROM change_requests WHERE status = 'pending'")).all()
    for change_id, fields in requests:
        old = json.loads(fields)
        db.session.execute(
            text("UPDATE change_requests SET fields = :fields WHERE id = :id"),
            {"fields": json.dumps(list(new_fields)), "id": change_id},
        )
        rows = db.session.execute(
            text("SELECT id, before, after FROM pending_changes WHERE change_id = :id"), {"id": change_id}
        ).all()
        updates = [
            {
                "id": i,
                "before": rewrite(b, old) if b is not None else None,
                "after": rewrite(a, old) if a is not None else None,
            }
            for i, b, a in rows
        ]
        if updates:
            db.session.execute(
                text("UPDATE pending_changes SET before = :before, after = :after WHERE id = :id"), updates
            )


def repack_records(rewrite, old_fields: Sequence[str]) -> int:
    """Rewrite every record with `rewrite(text, old_fields)` (after schema.json changed its columns)."""
    rows = db.session.execute(text("SELECT key, record FROM datasets")).all()
    updates = [{"key": k, "record": rewrite(r, old_fields)} for k, r in rows]
    for batch in _batches(updates, COPY_BATCH):
        db.session.execute(text("UPDATE datasets SET record = :record WHERE key = :key"), batch)
    return len(updates)


# --- approval --------------------------------------------------------------------------------


def claim_pending(change_id: int, status: str, user: str, reason: str | None = None) -> bool:
    """Move a pending request to `status`; False when it was no longer pending (someone was first)."""
    result = db.session.execute(
        text(
            "UPDATE change_requests SET status = :status, decided_by = :user, decided_at = :now, reason = :reason"
            " WHERE id = :id AND status = 'pending'"
        ),
        {"status": status, "user": user, "now": _now(), "reason": reason, "id": change_id},
    )
    return result.rowcount == 1


def conflicting_keys(change_id: int, limit: int = 1000) -> list[str]:
    """Keys whose current row is no longer the row this request was diffed against."""
    rows = db.session.execute(
        text(
            "SELECT p.key FROM pending_changes p LEFT JOIN datasets d ON d.key = p.key"
            " WHERE p.change_id = :id AND d.record IS DISTINCT FROM p.before ORDER BY p.key LIMIT :limit"
        ),
        {"id": change_id, "limit": limit},
    )
    return [r[0] for r in rows]


def apply_pending(change_id: int, version: int, submitter: str, approver: str, submitted_at: dt.datetime) -> None:
    """Apply every staged row change of a request and write one audit entry per row: set-based."""
    params = {"id": change_id, "v": version}
    db.session.execute(
        text(
            "DELETE FROM datasets WHERE key IN"
            " (SELECT key FROM pending_changes WHERE change_id = :id AND action = 'delete')"
        ),
        params,
    )
    db.session.execute(
        text(
            "INSERT INTO datasets (key, record, version)"
            " SELECT key, after, :v FROM pending_changes WHERE change_id = :id AND action = 'modify'"
            " ON CONFLICT (key) DO UPDATE SET record = excluded.record, version = excluded.version"
        ),
        params,
    )
    # Additions are new keys (conflicting_keys or the unchanged version guarantees it): a plain
    # INSERT, twice as fast as ON CONFLICT for a million rows, and an error if that were ever wrong.
    db.session.execute(
        text(
            "INSERT INTO datasets (key, record, version)"
            " SELECT key, after, :v FROM pending_changes WHERE change_id = :id AND action = 'add'"
        ),
        params,
    )
    audit = text(
        "INSERT INTO audit_log"
        " (change_id, action, key, before, after, submitter, approver, submitted_at, created_at, version)"
        " SELECT change_id, action, key, before, after, :submitter, :approver, :submitted_at, :now, :v"
        " FROM pending_changes WHERE change_id = :id AND action = :action ORDER BY id"
    )
    audit_params = params | {"submitter": submitter, "approver": approver, "submitted_at": submitted_at, "now": _now()}
    if is_postgres():
        # Read the staged rows in id order from the (change_id, action, id) index. With statistics
        # from before a big upload the planner expects a few rows and sorts instead, which for a
        # million rows spills to disk (2 s).
        db.session.execute(text("SET LOCAL enable_sort = off"))
    for action in ("add", "modify", "delete"):  # the order stage_rows wrote them in: audit ids follow
        db.session.execute(audit, audit_params | {"action": action})
    if is_postgres():
        db.session.execute(text("SET LOCAL enable_sort = on"))
    db.session.execute(
        text(
            "UPDATE table_state SET row_count = row_count"
            " + (SELECT count(*) FROM pending_changes WHERE change_id = :id AND action = 'add')"
            " - (SELECT count(*) FROM pending_changes WHERE change_id = :id AND action = 'delete')"
            " WHERE id = 1"
        ),
        params,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- paged reads -----------------------------------------------------------------------------


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def records_page(q: str, offset: int, limit: int) -> list[tuple[str, str, int]]:
    """(key, record, version) rows in key order; `q` matches the key or any text, case-insensitively.

    Search scans the records (the key is part of its record) in key order and stops at the page;
    a trigram index would make bulk writes 30× slower (docs/PERFORMANCE.md). On
    PostgreSQL an ASCII query compares under the C collation, whose ILIKE lowercases with a plain
    ASCII loop: half the time of the locale's (docs/PERFORMANCE.md); SQLite's LIKE folds ASCII only.
    """
    where, params = "", {"limit": limit, "offset": offset}
    if q:
        if not is_postgres():
            where = " WHERE record LIKE :q ESCAPE '\\'"
        elif q.isascii():
            where = " WHERE record COLLATE \"C\" ILIKE :q ESCAPE '\\'"
        else:
            where = " WHERE record ILIKE :q ESCAPE '\\'"
        params["q"] = _like(q)
    sql = f"SELECT key, record, version FROM datasets{where} ORDER BY key LIMIT :limit OFFSET :offset"  # noqa: S608 - `where` is built from constants
    return [tuple(r) for r in db.session.execute(text(sql), params)]


def record(key: str) -> tuple[str, int] | None:
    row = db.session.execute(text("SELECT record, version FROM datasets WHERE key = :k"), {"k": key}).first()
    return (row[0], row[1]) if row else None


def pending_page(change_id: int, action: str, offset: int, limit: int) -> list[tuple]:
    """(key, line, before, after) of one kind of staged change, in upload order."""
    rows = db.session.execute(
        text(
            "SELECT key, line, before, after FROM pending_changes WHERE change_id = :id AND action = :action"
            " ORDER BY id LIMIT :limit OFFSET :offset"
        ),
        {"id": change_id, "action": action, "limit": limit, "offset": offset},
    )
    return [tuple(r) for r in rows]


def pending_all(change_id: int, action: str) -> Iterator[tuple]:
    """Every staged change of one kind (for the API), streamed."""
    result = db.session.execute(
        text(
            "SELECT key, line, before, after FROM pending_changes WHERE change_id = :id AND action = :action ORDER BY id"
        ),
        {"id": change_id, "action": action},
    )
    for row in result:
        yield tuple(row)


@dataclass
class AuditFilter:
    key: str | None = None
    user: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    change_id: int | None = None


def audit_page(f: AuditFilter, before_id: int | None, limit: int) -> list:
    """Audit entries newest first, joined with their request's field list; keyset-paged by id."""
    clauses, params = [], {"limit": limit}
    if f.key:
        clauses.append("a.key = :key")
        params["key"] = f.key
    if f.user:
        clauses.append("(a.submitter = :user OR a.approver = :user)")
        params["user"] = f.user
    if f.since:
        clauses.append("a.created_at >= :since")
        params["since"] = f.since
    if f.until:
        clauses.append("a.created_at < :until")
        params["until"] = f.until
    if f.change_id:
        clauses.append("a.change_id = :change_id")
        params["change_id"] = f.change_id
    if before_id:
        clauses.append("a.id < :before_id")
        params["before_id"] = before_id
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    # `where` is built from constant clauses only; every value is a bound parameter.
    sql = (
        "SELECT a.id, a.change_id, a.action, a.key, a.before, a.after, a.submitter, a.approver,"  # noqa: S608
        " a.submitted_at, a.created_at, a.version, a.note, c.fields"
        " FROM audit_log a LEFT JOIN change_requests c ON c.id = a.change_id"
        + where
        + " ORDER BY a.id DESC LIMIT :limit"
    )
    typed = text(sql).columns(submitted_at=DateTime, created_at=DateTime)  # SQLite hands back text otherwise
    return list(db.session.execute(typed, params))
