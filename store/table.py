"""The shared tables' rows (`datasets`: tbl, key, record, version), a state row per table
(`table_state`) and the database's version (`database_state`).

`tbl` is the id of a table's state row; every read and write names it."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import select, text

from models import DatabaseState, TableState, db
from records import RecordStream
from store.base import COPY_BATCH, batches, is_postgres, iter_cursor, snapshot

T = TypeVar("T")

# --- the state rows ----------------------------------------------------------------------------


def database() -> DatabaseState:
    """The database's version and the oldest version its history keeps."""
    found = db.session.get(DatabaseState, 1)
    if found is None:  # created at start-up; recreate defensively rather than fail
        found = DatabaseState(id=1, version=0, history_from=0)
        db.session.add(found)
        db.session.flush()
    return found


def all_states() -> list[TableState]:
    """Every table's state row (named or not yet), in id order."""
    return list(db.session.scalars(select(TableState).order_by(TableState.id)))


def state(tbl: int) -> TableState:
    """One table's version (the database version that last changed it), row count and fields."""
    found = db.session.get(TableState, tbl)
    if found is None:
        raise LookupError(f"no table state row {tbl}")  # made at start-up for every table of schema.json
    return found


def add_state(name: str, fields: str) -> TableState:
    """The state row of a new, empty table (at start-up)."""
    found = TableState(name=name, version=0, row_count=0, fields=fields)
    db.session.add(found)
    db.session.flush()
    return found


def add_database_state() -> None:
    """The database's version row (at start-up, on a new database)."""
    if db.session.get(DatabaseState, 1) is None:
        db.session.add(DatabaseState(id=1, version=0, history_from=0))


def drop_table(tbl: int) -> int:
    """Delete a table's rows and state row (schema.json no longer has it); how many rows went."""
    gone = db.session.execute(text("DELETE FROM datasets WHERE tbl = :t"), {"t": tbl}).rowcount
    db.session.execute(text("DELETE FROM table_state WHERE id = :t"), {"t": tbl})
    return gone


def bump_version(tbls: Sequence[int]) -> int:
    """The next database version, taken under a row lock (concurrent approvals serialise here),
    and marked as the version that last changed each table in `tbls`."""
    db.session.execute(text("UPDATE database_state SET version = version + 1 WHERE id = 1"))
    version = db.session.execute(text("SELECT version FROM database_state WHERE id = 1")).scalar_one()
    for tbl in tbls:
        db.session.execute(text("UPDATE table_state SET version = :v WHERE id = :t"), {"v": version, "t": tbl})
    return version


def read_version(raw, tbl: int) -> tuple[int, int]:
    """(database version, the table's row count) through a raw snapshot connection."""
    cur = raw.cursor()
    cur.execute("SELECT version FROM database_state WHERE id = 1")
    (version,) = cur.fetchone()
    cur.execute(f"SELECT row_count FROM table_state WHERE id = {int(tbl)}")  # noqa: S608 - an int
    (row_count,) = cur.fetchone()
    cur.close()
    return version, row_count


# --- bulk reads (a snapshot connection of their own) ------------------------------------------


def read_current(tbl: int, also: Callable[[Any], T] | None = None) -> tuple[int, dict[str, str], T | None]:
    """(database version, {key: record} for the whole table, `also(raw connection)`), all read in one snapshot."""
    with snapshot() as raw:
        version, _ = read_version(raw, tbl)
        extra = also(raw) if also is not None else None
        records: dict[str, str] = {}
        sql = f"SELECT key, record FROM datasets WHERE tbl = {int(tbl)}"  # noqa: S608 - an int
        with contextlib.closing(iter_cursor(raw, sql, "current_records")) as rows:
            for batch in rows:
                records.update(batch)
    return version, records, extra


def open_export(tbl: int) -> RecordStream[str]:
    """Start streaming a table: the version is known before the first row is sent."""
    stack = contextlib.ExitStack()
    raw = stack.enter_context(snapshot())
    version, row_count = read_version(raw, tbl)
    sql = f"SELECT record FROM datasets WHERE tbl = {int(tbl)} ORDER BY key"  # noqa: S608 - an int
    rows = iter_cursor(raw, sql, "export_records")
    stack.callback(rows.close)  # runs first: stops the fetching thread while the connection is still open
    records = map(itemgetter(0), itertools.chain.from_iterable(rows))
    return RecordStream(version, row_count, records, stack.close)


# --- paged reads -----------------------------------------------------------------------------


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search(tbl: int, q: str) -> tuple[str, dict]:
    """The WHERE clause (with its leading space: the table, and the search) and parameters of a table search.

    A `q` that looks like a key (not only letters) and that some key starts with is the index
    range of that prefix (`_key_prefix`); a word is searched as text, which finds it in keys too.
    """
    params: dict[str, Any] = {"tbl": tbl}
    if not q:
        return " WHERE tbl = :tbl", params
    if not q.isalpha() and (prefix := _key_prefix(tbl, q)) is not None:
        return " WHERE tbl = :tbl AND key >= :low AND key < :high", params | {
            "low": prefix,
            "high": _successor(prefix),
        }
    if not is_postgres():
        where = " WHERE tbl = :tbl AND record LIKE :q ESCAPE '\\'"
    elif q.isascii():
        where = " WHERE tbl = :tbl AND record COLLATE \"C\" ILIKE :q ESCAPE '\\'"
    else:
        where = " WHERE tbl = :tbl AND record ILIKE :q ESCAPE '\\'"
    return where, params | {"q": _like(q)}


@dataclass(frozen=True)
class Sort:
    """Sort the table by the field at `position` in its records (numbers as numbers), or by key when None."""

    position: int | None = None
    numeric: bool = False
    descending: bool = False


def _order_by(sort: Sort) -> str:
    """ORDER BY for a sort: by key (the primary key's index), else by one field of the packed
    record, which reads and sorts every row that matches (docs/PERFORMANCE.md), empty cells last."""
    direction = " DESC" if sort.descending else ""
    if sort.position is None:
        return f"key{direction}"
    cell = "split_part(record, chr(31), :position)" if is_postgres() else "field_at(record, :position)"
    value = (
        f"CAST(NULLIF({cell}, '') AS {'double precision' if is_postgres() else 'REAL'})"
        if sort.numeric
        else f"lower(NULLIF({cell}, ''))"
    )
    return f"{value} IS NULL, {value}{direction}, key{direction}"


def records_page(tbl: int, q: str, offset: int, limit: int, sort: Sort = Sort()) -> list[tuple[str, str, int]]:
    """(key, record, version) rows in key order (or `sort`'s); `q` matches the key or any text, case-insensitively.

    A `q` that looks like a key (not only letters) and that some key starts with is answered from
    the primary-key index (`_search`); a word is searched as text, which finds it in keys too.
    Other searches scan the records (the key is part of its record): a trigram index would make
    bulk writes 30× slower (docs/PERFORMANCE.md). On PostgreSQL an ASCII query compares under
    the C collation, whose ILIKE lowercases with a plain ASCII loop: half the time of the
    locale's (docs/PERFORMANCE.md); SQLite's LIKE folds ASCII only.
    """
    where, params = _search(tbl, q)
    params |= {"limit": limit, "offset": offset}
    if sort.position is not None:
        params["position"] = sort.position + 1
    elif "q" in params and is_postgres():  # a text search in key order
        return _pg_text_page(where, params, " DESC" if sort.descending else "")
    sql = f"SELECT key, record, version FROM datasets{where} ORDER BY {_order_by(sort)} LIMIT :limit OFFSET :offset"  # noqa: S608 - built from constants
    return [tuple(r) for r in db.session.execute(text(sql), params)]


def count_matches(tbl: int, q: str, most: int) -> int:
    """How many rows a search matches, counting no further than `most` + 1 (a scan of the table
    that stops there: without a search, the state's row count is the answer)."""
    where, params = _search(tbl, q)
    sql = f"SELECT count(*) FROM (SELECT 1 FROM datasets{where} LIMIT :most) AS found"  # noqa: S608 - built from constants
    return db.session.execute(text(sql), params | {"most": most + 1}).scalar_one()


# A text search first looks at this many rows in key order (an index scan that stops early): a
# common word fills its page there. Otherwise every record is scanned in parallel and the
# matches sorted, instead of one process reading the whole table in key order through the
# index (3 s instead of 1 s for a word in no row of 1,000,000, measured on a busy machine).
TEXT_SEARCH_FIRST_ROWS = 20_000


def _pg_text_page(where: str, params: dict, direction: str = "") -> list[tuple[str, str, int]]:
    """A text search on PostgreSQL in key order: the first rows in that order, else a parallel scan of all."""
    head = f"SELECT key, record, version FROM (SELECT tbl, key, record, version FROM datasets WHERE tbl = :tbl ORDER BY key{direction} LIMIT :first) f"  # noqa: S608 - constants
    first = text(f"{head}{where} ORDER BY key{direction} LIMIT :limit OFFSET :offset")
    rows = [tuple(r) for r in db.session.execute(first, params | {"first": TEXT_SEARCH_FIRST_ROWS})]
    if len(rows) == params["limit"]:  # the page is full: the later rows cannot come before these
        return rows
    # OFFSET 0 keeps the planner from reading the matches in key order through the index.
    every = text(
        f"SELECT key, record, version FROM (SELECT tbl, key, record, version FROM datasets{where} OFFSET 0) m"  # noqa: S608 - `where` is built from constants
        f" ORDER BY key{direction} LIMIT :limit OFFSET :offset"
    )
    return [tuple(r) for r in db.session.execute(every, params)]


# --- key search: the primary-key index --------------------------------------------------------


def _key_prefix(tbl: int, q: str) -> str | None:
    """`q` as typed, upper- or lower-cased: the first form that some key starts with, or None.

    Keys are compared bytewise on both databases (models.KeyText), so a prefix is the index range
    [q, q with its last character incremented): a few index pages at any table size.
    """
    for prefix in dict.fromkeys((q, q.upper(), q.lower())):
        if prefix.endswith("\U0010ffff"):  # the last character there is: no range to give
            continue
        found = db.session.execute(
            text("SELECT 1 FROM datasets WHERE tbl = :tbl AND key >= :low AND key < :high LIMIT 1"),
            {"tbl": tbl, "low": prefix, "high": _successor(prefix)},
        ).first()
        if found is not None:
            return prefix
    return None


def _successor(prefix: str) -> str:
    """The smallest string after every string that starts with `prefix` (code point order, which
    is UTF-8 byte order).

    >>> _successor("DS-05"), _successor("a\ud7ff")
    ('DS-06', 'a\ue000')
    """
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are no characters: skip them
        following = 0xE000
    return prefix[:-1] + chr(following)


def keys(tbl: int) -> set[str]:
    """Every key of a table (a referenced table's keys, for the foreign-key check of an upload)."""
    return set(db.session.execute(text("SELECT key FROM datasets WHERE tbl = :tbl"), {"tbl": tbl}).scalars())


def rows(tbl: int) -> Iterator[tuple[str, str]]:
    """Every (key, record) of a table, streamed in batches (the rows that may refer to deleted keys)."""
    result = db.session.execute(
        text("SELECT key, record FROM datasets WHERE tbl = :tbl").execution_options(yield_per=COPY_BATCH),
        {"tbl": tbl},
    )
    yield from result


def record(tbl: int, key: str) -> tuple[str, int] | None:
    """(record, version that last wrote it) of one row, or None."""
    row = db.session.execute(
        text("SELECT record, version FROM datasets WHERE tbl = :tbl AND key = :k"), {"tbl": tbl, "k": key}
    ).first()
    return (row[0], row[1]) if row else None


# --- schema.json changed ---------------------------------------------------------------------


def repack_records(tbl: int, rewrite: Callable[[str, Sequence[str]], str], old_fields: Sequence[str]) -> int:
    """Rewrite every record of a table with `rewrite(text, old_fields)` (after schema.json changed its columns)."""
    rows = db.session.execute(text("SELECT key, record FROM datasets WHERE tbl = :tbl"), {"tbl": tbl}).all()
    updates = [{"tbl": tbl, "key": k, "record": rewrite(r, old_fields)} for k, r in rows]
    for batch in batches(updates, COPY_BATCH):
        db.session.execute(text("UPDATE datasets SET record = :record WHERE tbl = :tbl AND key = :key"), batch)
    return len(updates)
