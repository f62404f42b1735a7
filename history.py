"""What happened to the table, and the table as it was: versions, the table as of a version and
its downloads, the diff between two versions, a record's versions and blame, and the changes of
an upload that would undo an approval. The audit log is audit.py.

Every approval makes a version; its request's staged rows are what it changed (store/history.py).
Reading the table as of version N starts from the table now and undoes what changed since, so the
cost grows with the changes since N, not with the table.
"""

from __future__ import annotations

import bisect
import io
import json
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import IO

import access
import files.diff_csv
import store.audit
import store.changes
import store.history
import store.table
import tables
from diff import DIFF_CSV_ORDER, ROW_KINDS, Diff
from errors import NotFound, Unprocessable
from files import xlsx_write
from files.csv_write import csv_chunks
from models import ChangeRequest
from records import RecordStream, repack, unpack
from store.history import HistoryRow
from values import show

# --- versions --------------------------------------------------------------------------------


def versions(offset: int, limit: int, table: tables.TableRef | None = None) -> tuple[list[ChangeRequest], int]:
    """(approved requests newest version first, how many there are): those of one table (None: of
    every table the person may view)."""
    tbl = table.id if table is not None else access.visible_ids()
    return store.history.approvals(offset, limit, tbl), store.history.approval_count(tbl)


def check_version(version: int) -> None:
    """NotFound unless `version` is a version of the database the history can still rebuild."""
    state = tables.database()
    if version < 0 or version > state.version:
        raise NotFound(f"There is no version {version}: the table is at version {state.version}.")
    if version < state.history_from:
        raise NotFound(
            f"Version {version} is older than the oldest version the history keeps ({state.history_from};"
            " HISTORY_KEEP_VERSIONS)."
        )


@lru_cache(maxsize=256)
def _names(fields: str) -> tuple[str, ...]:
    return tuple(json.loads(fields))


def current_form(record: str | None, fields: str, names: Sequence[str]) -> str | None:
    """A history record (packed with the field list its request had) in today's columns."""
    if record is None:
        return None
    old = _names(fields)
    return record if old == tuple(names) else repack(record, old, names)


def records_at(version: int, since: Iterable[HistoryRow], names: Sequence[str]) -> dict[str, str | None]:
    """{key: its record at `version` (None: it did not exist)} for every key changed after `version`.

    `since` are the row changes after `version`, oldest first: a key's first change after it
    holds, as `before`, the row as it was then.
    """
    at: dict[str, str | None] = {}
    for row in since:
        if row.version > version and row.key not in at:
            at[row.key] = current_form(row.before, row.fields, names)
    return at


# --- the table as of a version ---------------------------------------------------------------


def table_at(table: tables.TableRef, version: int) -> RecordStream[str]:
    """Start streaming a table as of `version`: the table now with the rows changed since put back."""
    check_version(version)
    names = table.schema.names
    since, now = store.history.open_as_of(table.id, version)
    overrides = records_at(version, since, names)
    exists_now = {row.key: row.after is not None for row in since}  # the last change of each key wins
    row_count = now.row_count + sum((record is not None) - exists_now[key] for key, record in overrides.items())
    return RecordStream(version, row_count, _apply(now.records, overrides), now.close)


def _apply(rows: Iterator[tuple[str, str]], overrides: dict[str, str | None]) -> Iterator[str]:
    """The records of `rows` (key order) with `overrides` applied: replaced, removed (None) or
    inserted in key order. Batches without an overridden key pass through untouched."""
    keys = sorted(overrides)
    taken = 0  # overridden keys already placed
    while batch := list(islice(rows, 5000)):
        last_key = batch[-1][0]
        end = bisect.bisect_right(keys, last_key)
        if end == taken:
            yield from map(itemgetter(1), batch)
            continue
        for key, record in batch:
            while taken < len(keys) and keys[taken] < key:  # rows that exist only in the past
                if (old := overrides[keys[taken]]) is not None:
                    yield old
                taken += 1
            if taken < len(keys) and keys[taken] == key:
                if (old := overrides[key]) is not None:
                    yield old
                taken += 1
            else:
                yield record
    for key in keys[taken:]:
        if (old := overrides[key]) is not None:
            yield old


# --- downloads: the table now, or as of a version -------------------------------------------


@dataclass
class CsvDownload:
    """A CSV download being streamed: its file name and version, its chunks; `close()` ends the read."""

    filename: str
    version: int
    chunks: Iterator[bytes]
    close: Callable[[], None]


def records(table: tables.TableRef, version: int | None = None) -> RecordStream[str]:
    """A table's records in key order, now (None) or as of `version`: what every download writes.

    Given a version, the records are that version's even when an approval lands meanwhile: the
    table read now then turns out newer, and is read as of `version` instead."""
    if version is None or version == tables.database().version:
        now = store.table.open_export(table.id)
        if version is None or now.version == version:
            return now
        now.close()
    return table_at(table, version)


def csv_download(table: tables.TableRef, version: int | None = None) -> CsvDownload:
    """A whole table (as of `version`) as CSV chunks, named after it and its version. A version's CSV
    downloaded today is byte for byte the one downloaded when it was current (same columns)."""
    stream = records(table, version)
    schema = table.schema

    def chunks() -> Iterator[bytes]:
        with stream:  # closed as soon as the last chunk is sent, not only when the response closes
            yield from csv_chunks(stream.records, schema)

    return CsvDownload(f"{schema.name}-v{stream.version}.csv", stream.version, chunks(), stream.close)


@dataclass
class XlsxDownload:
    """A workbook built in a (spooled) temporary file, rewound; the caller sends and closes it."""

    filename: str
    version: int
    file: IO[bytes]


def xlsx_download(table: tables.TableRef, version: int | None = None) -> XlsxDownload:
    """A whole table (as of `version`) as an Excel workbook named after it and its version (built first, then sent)."""
    schema = table.schema
    with records(table, version) as stream:
        if stream.row_count >= xlsx_write.EXCEL_MAX_ROWS:
            raise Unprocessable(
                f"The table has {stream.row_count:,} rows, more than an Excel sheet holds; download it as CSV."
            )
        try:
            file = xlsx_write.xlsx_file(stream.records, schema, reference_choices(table))
        except xlsx_write.NotForExcel as exc:
            raise Unprocessable(str(exc)) from None
    return XlsxDownload(f"{schema.name}-v{stream.version}.xlsx", stream.version, _to_send(file))


MAX_LIST_KEYS = 10_000  # a reference column gets a drop-down list of the referenced keys up to this many


def reference_choices(table: tables.TableRef) -> dict[str, list[str]]:
    """{reference column: the keys it may take, sorted} for the workbook's drop-down lists: the
    referenced table's keys now (a table of over MAX_LIST_KEYS keys gets no list: too long to pick from)."""
    found = {}
    for fk in table.spec.foreign_keys:
        target = tables.get(fk.resource or table.name)
        if store.table.state(target.id).row_count > MAX_LIST_KEYS:
            continue
        found[fk.field] = sorted(store.table.keys(target.id))
    return found


def database_xlsx_download(version: int | None = None) -> XlsxDownload:
    """Every table as a sheet titled after it (`xlsx_write.sheet_titles`), in schema.json's order, all as
    of one database version: `version`, or the version now, read once. Each table is then read as
    of that version (`records`), so an approval landing while the workbook is built changes no
    sheet. Named after the package (`database` when it has no name) and the version. Unprocessable
    naming the table when one does not fit in a sheet."""
    if version is None:
        version = tables.database().version
    else:
        check_version(version)
    every = access.visible()  # the tables the person may not view are left out
    sheets = _sheets(every, version)
    try:
        file = xlsx_write.workbook_file([t.schema for t in every], sheets, [reference_choices(t) for t in every])
    except xlsx_write.NotForExcel as exc:
        raise Unprocessable(str(exc)) from None
    finally:
        sheets.close()  # the read of the table being written, when writing failed
    name = tables.package().name or "database"
    return XlsxDownload(f"{name}-v{version}.xlsx", version, _to_send(file))


def _sheets(every: Sequence[tables.TableRef], version: int) -> Generator[Iterator[str], None, None]:
    """The records of each table as of `version`, one table read at a time: a table's read is
    closed when the writer asks for the next table."""
    for table in every:
        with records(table, version) as stream:
            if stream.row_count >= xlsx_write.EXCEL_MAX_ROWS:
                raise Unprocessable(
                    f"The table {table.name!r} has {stream.row_count:,} rows, more than an Excel sheet holds, so"
                    " the whole database does not fit in one workbook; download that table as CSV and the others"
                    " one by one."
                )
            yield stream.records


def _to_send(file: IO[bytes]) -> IO[bytes]:
    """A built workbook, rewound; a small one is read into memory and its file closed now."""
    if file.seek(0, io.SEEK_END) <= xlsx_write.SPOOL_BYTES:
        with file:
            file.seek(0)
            file = io.BytesIO(file.read())
    file.seek(0)
    return file


def page_at(table: tables.TableRef, version: int, q: str, offset: int, limit: int) -> tables.Page:
    """A page of a table as of `version`, in key order, `q` matching any text (case-insensitive)."""
    with table_at(table, version) as past:
        if q:  # every match is counted, for the page count: a search of a past version reads it all
            needle = q.casefold()
            found = [r for r in past.records if needle in r.casefold()]
            total, rows = len(found), found[offset : offset + limit + 1]
        else:
            total, rows = past.row_count, list(islice(past.records, offset, offset + limit + 1))
    state = tables.state(table)
    return tables.Page(
        rows=[(unpack(r)[table.schema.key_index], unpack(r), version) for r in rows[:limit]],
        has_next=len(rows) > limit,
        state=state,
        pending=store.changes.count_requests("pending", table.id),
        version=version,
        row_count=past.row_count,
        total=total,
    )


# --- the diff between two versions -----------------------------------------------------------


@dataclass
class VersionDiff:
    """What changed from version `low` to `high` (or back, when `reverse`), by key:
    [(key, before, after)], each list in key order."""

    added: list[tuple[str, None, str]] = field(default_factory=list)
    modified: list[tuple[str, str, str]] = field(default_factory=list)
    deleted: list[tuple[str, str, None]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "modified": len(self.modified), "deleted": len(self.deleted)}

    def rows(self, kind: str) -> list[tuple[str, str | None, str | None]]:
        return getattr(self, kind)


def diff(table: tables.TableRef, from_version: int, to_version: int) -> VersionDiff:
    """Every row that differs between two versions (`from > to`: the reverse diff)."""
    check_version(from_version)
    check_version(to_version)
    low, high = sorted((from_version, to_version))
    names = table.schema.names
    first: dict[str, str | None] = {}
    last: dict[str, str | None] = {}
    for row in store.history.rows_between(table.id, low, high):
        first.setdefault(row.key, current_form(row.before, row.fields, names))
        last[row.key] = current_form(row.after, row.fields, names)
    out = VersionDiff()
    for key in sorted(first):
        before, after = first[key], last[key]
        if from_version > to_version:
            before, after = after, before
        if before == after:
            continue
        if before is None:
            out.added.append((key, None, after))  # type: ignore[arg-type]
        elif after is None:
            out.deleted.append((key, before, None))
        else:
            out.modified.append((key, before, after))
    return out


def filter_rows(
    rows: list[tuple[str, str | None, str | None]], column: str | None, q: str | None, names: Sequence[str]
) -> list[tuple[str, str | None, str | None]]:
    """A version diff's rows (key, before, after) that change `column` (modifications) and whose
    key contains `q` (any case); the diff is in memory, so this is a pass over it."""
    if q:
        needle = q.casefold()
        rows = [r for r in rows if needle in r[0].casefold()]
    if column:
        if column not in names:
            return []
        i = list(names).index(column)
        rows = [r for r in rows if r[1] is not None and r[2] is not None and unpack(r[1])[i] != unpack(r[2])[i]]
    return rows


def diff_csv(table: tables.TableRef, from_version: int, to_version: int) -> tuple[str, Iterator[bytes]]:
    """(file name, chunks) of the diff between two versions in the tabular diff format (files/diff_csv.py)."""
    found, names = diff(table, from_version, to_version), table.schema.names
    rows = (
        (ROW_KINDS[kind], unpack(before) if before is not None else None, unpack(after) if after is not None else None)
        for kind in DIFF_CSV_ORDER
        for _, before, after in found.rows(kind)
    )
    return f"{table.name}-v{from_version}-v{to_version}-diff.csv", files.diff_csv.diff_csv(names, rows)


# --- one record ------------------------------------------------------------------------------


@dataclass
class Version:
    """One version of a record: the request that made it, the row after it, and the cells it changed."""

    version: int
    change_id: int
    action: str
    values: dict[str, str] | None  # None: deleted by this version
    changed: list[str]
    request: ChangeRequest | None


def record_versions(table: tables.TableRef, key: str) -> list[Version]:
    """Each version of one record, newest first, with the cells each changed (all cells for an addition)."""
    names = table.schema.names
    out = []
    for row in store.history.key_rows(table.id, key):
        before = current_form(row.before, row.fields, names)
        after = current_form(row.after, row.fields, names)
        if row.action == "add":
            changed = list(names)
        elif before is None or after is None:
            changed = []
        else:
            changed = [n for n, a, b in zip(names, unpack(before), unpack(after), strict=True) if a != b]
        values = dict(zip(names, unpack(after), strict=True)) if after is not None else None
        out.append(
            Version(row.version, row.change_id, row.action, values, changed, store.changes.get_request(row.change_id))
        )
    return out[::-1]


def last_values(table: tables.TableRef, key: str) -> dict[str, str] | None:
    """A deleted record's values before it was deleted (None when it never existed)."""
    names = table.schema.names
    rows = store.history.key_rows(table.id, key)
    if not rows or rows[-1].after is not None:
        return None
    before = current_form(rows[-1].before, rows[-1].fields, names)
    return dict(zip(names, unpack(before), strict=True)) if before is not None else None


def blame(table: tables.TableRef, key: str) -> dict[str, Version]:
    """For each field, the version that last changed it (of the record now, or of its last values
    when it is deleted). NotFound when the key never existed."""
    life = record_versions(table, key)
    if not life:
        raise NotFound(f"There is no record with key {key!r}, now or in the history.")
    if life[0].values is None:  # deleted: blame the values it had before
        life = life[1:]
    out: dict[str, Version] = {}
    for v in life:
        for name in v.changed:
            out.setdefault(name, v)
        if v.action == "add":
            break  # an addition set every cell; older versions belong to an earlier life of the key
    return out


# --- changes that would undo a later approval -------------------------------------------------

ADDED_KEYS_SAMPLE = 1000


def undo_warnings(table: tables.TableRef, change_id: int, staged: Diff, current: Mapping[str, str]) -> dict[str, str]:
    """{key: warning} for the staged changes of an upload of unknown base that would undo an
    approval: a cell going back to a value an approval replaced, a row an approval deleted coming
    back, a row disappearing that an approval added which the file shows no sign of having seen.

    The cost grows with the history of the staged keys, not with the table.
    """
    schema = table.schema
    rows = store.history.of_staged(table.id, change_id)
    if not rows:
        return {}
    names, labels = schema.names, {f.name: f.label for f in schema.fields}
    by_key: dict[str, list[HistoryRow]] = defaultdict(list)
    for row in rows:
        by_key[row.key].append(row)
    requests: dict[int, ChangeRequest | None] = {}

    def by(row: HistoryRow) -> str:
        if row.change_id not in requests:
            requests[row.change_id] = store.changes.get_request(row.change_id)
        cr = requests[row.change_id]
        when = cr.decided_at.date().isoformat() if cr and cr.decided_at else "?"
        return f"change request #{row.change_id} by {cr.submitter if cr else '?'}, approved {when}"

    out: dict[str, str] = {}
    for m in staged.modified:
        theirs, yours = unpack(m.before), unpack(m.after)
        for i, name in enumerate(names):
            if theirs[i] != yours[i] and (undone := _replaced(by_key.get(m.key, []), i, yours[i], names)):
                out[m.key] = f"row {m.key}: {labels[name]} would go back to {show(yours[i])}, undoing {by(undone)}"
                break
    for row in staged.added:
        if (past := by_key.get(row.key)) and past[-1].action == "delete":
            out[row.key] = f"row {row.key} would come back, undoing its deletion by {by(past[-1])}"
    deleted = {key for key, _ in staged.deleted}
    file_saw: dict[int, bool] = {}
    for key, _ in staged.deleted:
        adder = next((r for r in reversed(by_key.get(key, [])) if r.action == "add"), None)
        if adder is None:
            continue
        if adder.change_id not in file_saw:
            sample = store.history.adders_sample(adder.change_id, ADDED_KEYS_SAMPLE)
            file_saw[adder.change_id] = any(k in current and k not in deleted for k in sample if k != key)
        if not file_saw[adder.change_id]:
            out[key] = (
                f"row {key} would be deleted, undoing its addition by {by(adder)}"
                " (your file has none of the rows that request added)"
            )
    return out


def _replaced(past: Sequence[HistoryRow], index: int, value: str, names: Sequence[str]) -> HistoryRow | None:
    """The latest approval that changed cell `index` away from `value` in this row's current life."""
    for row in reversed(past):
        if row.action == "add":
            return None  # before that, the row did not exist (or was another row with the same key)
        if row.action != "modify":
            continue
        before = unpack(current_form(row.before, row.fields, names) or "")
        after = unpack(current_form(row.after, row.fields, names) or "")
        if before[index] == value and after[index] != value:
            return row
    return None
