"""What happened to the table, and the table as it was: versions, the table as of a version, the
diff between two versions, a record's history and blame, the audit log.

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
from typing import IO, Any

import access
import files.diff_csv
import store.audit
import store.changes
import store.history
import store.table
import tables
from diff import Diff
from errors import NotFound, Unprocessable
from files import xlsx_write
from files.csv_write import FormulaSafeWriter, TextSink, csv_chunks
from models import ChangeRequest
from records import repack, unpack
from store.audit import EVENT_ACTIONS, ROW_ACTIONS, AuditFilter
from store.history import HistoryRow
from values import show

__all__ = ["AuditFilter"]

RECORD_HISTORY_LIMIT = 100_000
AUDIT_ACTIONS = ROW_ACTIONS + EVENT_ACTIONS
Cursor = tuple[int, int]  # (audit entry id, staged row id; 0 when the entry itself is the item)


# --- versions --------------------------------------------------------------------------------


def versions(offset: int, limit: int, table: tables.TableRef | None = None) -> tuple[list[ChangeRequest], int]:
    """(approved requests newest version first, how many there are): those of one table (None: of every table)."""
    tbl = table.id if table is not None else None
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


@dataclass
class TableAt:
    """The table as it was after `version`, its records streamed in key order; `close()` ends the read."""

    version: int
    row_count: int
    records: Iterator[str]
    close: Any


def table_at(table: tables.TableRef, version: int) -> TableAt:
    """Start streaming a table as of `version` (the current version streams the table itself)."""
    check_version(version)
    names = table.schema.names
    as_of = store.history.open_as_of(table.id, version)
    overrides = records_at(version, as_of.since, names)
    exists_now = {row.key: row.after is not None for row in as_of.since}  # the last change of each key wins
    row_count = as_of.row_count + sum((record is not None) - exists_now[key] for key, record in overrides.items())
    return TableAt(version, row_count, _apply(as_of.rows, overrides), as_of.close)


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


def _records(table: tables.TableRef, version: int | None) -> tuple[int, int, Iterator[str], Callable[[], None]]:
    """(version, row count, records in key order, close) of a table now or as of `version`.

    Given a version, the records are that version's even when an approval lands meanwhile: the
    table read now then turns out newer, and is read as of `version` instead."""
    if version is None or version == tables.database().version:
        now = store.table.open_export(table.id)
        if version is None or now.version == version:
            return now.version, now.row_count, now.records, now.close
        now.close()
    past = table_at(table, version)
    return past.version, past.row_count, past.records, past.close


def csv_download(table: tables.TableRef, version: int | None = None) -> CsvDownload:
    """A whole table (as of `version`) as CSV chunks, named after it and its version. A version's CSV
    downloaded today is byte for byte the one downloaded when it was current (same columns)."""
    number, _, records, close = _records(table, version)
    schema = table.schema

    def chunks() -> Iterator[bytes]:
        try:
            yield from csv_chunks(records, schema)
        finally:
            close()  # as soon as the last chunk is sent, not only when the response closes

    return CsvDownload(f"{schema.name}-v{number}.csv", number, chunks(), close)


@dataclass
class XlsxDownload:
    """A workbook built in a (spooled) temporary file, rewound; the caller sends and closes it."""

    filename: str
    version: int
    file: IO[bytes]


def xlsx_download(table: tables.TableRef, version: int | None = None) -> XlsxDownload:
    """A whole table (as of `version`) as an Excel workbook named after it and its version (built first, then sent)."""
    number, row_count, records, close = _records(table, version)
    schema = table.schema
    try:
        if row_count >= xlsx_write.EXCEL_MAX_ROWS:
            raise Unprocessable(
                f"The table has {row_count:,} rows, more than an Excel sheet holds; download it as CSV."
            )
        try:
            file = xlsx_write.xlsx_file(records, schema)
        except xlsx_write.NotForExcel as exc:
            raise Unprocessable(str(exc)) from None
    finally:
        close()
    return XlsxDownload(f"{schema.name}-v{number}.xlsx", number, _to_send(file))


def database_xlsx_download(version: int | None = None) -> XlsxDownload:
    """Every table as a sheet titled after it (`xlsx_write.sheet_titles`), in schema.json's order, all as
    of one database version: `version`, or the version now, read once. Each table is then read as
    of that version (`_records`), so an approval landing while the workbook is built changes no
    sheet. Named after the package (`database` when it has no name) and the version. Unprocessable
    naming the table when one does not fit in a sheet."""
    if version is None:
        version = tables.database().version
    else:
        check_version(version)
    every = access.visible()  # the tables the person may not view are left out
    sheets = _sheets(every, version)
    try:
        file = xlsx_write.workbook_file([t.schema for t in every], sheets)
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
        _, row_count, records, close = _records(table, version)
        try:
            if row_count >= xlsx_write.EXCEL_MAX_ROWS:
                raise Unprocessable(
                    f"The table {table.name!r} has {row_count:,} rows, more than an Excel sheet holds, so the"
                    " whole database does not fit in one workbook; download that table as CSV and the others"
                    " one by one."
                )
            yield records
        finally:
            close()


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
    past = table_at(table, version)
    try:
        if q:  # every match is counted, for the page count: a search of a past version reads it all
            needle = q.casefold()
            found = [r for r in past.records if needle in r.casefold()]
            total, rows = len(found), found[offset : offset + limit + 1]
        else:
            total, rows = past.row_count, list(islice(past.records, offset, offset + limit + 1))
    finally:
        past.close()
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
    actions = (("modified", "modify"), ("added", "add"), ("deleted", "delete"))
    rows = (
        (action, unpack(before) if before is not None else None, unpack(after) if after is not None else None)
        for kind, action in actions
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


UNDO_WORD = " undoing "  # in every message undo_warnings writes, and in no other warning


def is_undo_warning(message: str) -> bool:
    """Does a request's warning say that a change would undo an approval (not spreadsheet damage)?"""
    return UNDO_WORD in message


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


# --- the audit log ---------------------------------------------------------------------------


@dataclass
class AuditPage:
    """Audit entries newest first, and the cursor of the next page (None: this is the last)."""

    items: list
    next: Cursor | None


def audit(filters: AuditFilter, before: Cursor | None, limit: int) -> AuditPage:
    """Row changes (from the approvals' staged rows) and decisions, newest first, after cursor `before`."""
    if filters.action and filters.action not in ROW_ACTIONS + EVENT_ACTIONS:
        raise Unprocessable(f"action must be one of {', '.join(ROW_ACTIONS + EVENT_ACTIONS)}, not {filters.action!r}")
    row_actions = ROW_ACTIONS if not filters.action else tuple(a for a in ROW_ACTIONS if a == filters.action)
    event_actions = EVENT_ACTIONS if not filters.action else tuple(a for a in EVENT_ACTIONS if a == filters.action)
    items = (
        _key_entries(filters, row_actions, event_actions, before, limit + 1)
        if filters.key
        else _entries(filters, row_actions, event_actions, before, limit + 1)
    )
    more = len(items) > limit
    items = items[:limit]
    return AuditPage(items, _cursor_of(items[-1]) if more and items else None)


def _cursor_of(item) -> Cursor:
    return (item.event_id, item.id if item.action in ROW_ACTIONS else 0)


def _older(cursor: Cursor | None, item) -> bool:
    return cursor is None or (item.event_id, item.id if item.action in ROW_ACTIONS else 0) < cursor


def _entries(f: AuditFilter, row_actions: tuple, event_actions: tuple, before: Cursor | None, limit: int) -> list:
    """Walk the decisions newest first; an approval stands for its row changes."""
    actions = (("approve",) if row_actions else ()) + event_actions
    out: list = []
    before_event = before[0] + (1 if before and before[1] else 0) if before else None
    while len(out) < limit:
        batch = store.audit.events(f, actions, before_event, 100)
        for event in batch:
            if event.action != "approve":
                if _older(before, event):
                    out.append(event)
            else:
                before_row = before[1] if before and before[0] == event.id and before[1] else None
                out.extend(
                    store.history.approval_rows(event.id, event.change_id, row_actions, before_row, limit - len(out))
                )
            if len(out) >= limit:
                break
        if len(batch) < 100:
            break
        before_event = batch[-1].id
    return out[:limit]


def _key_entries(f: AuditFilter, row_actions: tuple, event_actions: tuple, before: Cursor | None, limit: int) -> list:
    """The entries of one key: its row changes and the resolutions of its conflicts."""
    where, params = store.audit.clauses(f)
    rows = []
    if row_actions:
        marks = ", ".join(f":act{i}" for i in range(len(row_actions)))
        clauses = [*where, f"p.action IN ({marks})"]
        params = params | {f"act{i}": a for i, a in enumerate(row_actions)}
        if before:
            clauses.append("(a.id < :be OR (a.id = :be AND p.id < :br))")
            params |= {"be": before[0], "br": before[1] or 0}
        rows = store.history.key_entries(f.key or "", clauses, params, limit, prefix=f.key_prefix)
    events = store.audit.events(f, event_actions, before[0] if before else None, limit) if event_actions else []
    merged = sorted(rows + events, key=lambda i: (i.event_id, i.id if i.action in ROW_ACTIONS else 0), reverse=True)
    return merged[:limit]


def record_history(table: tables.TableRef, key: str, limit: int = RECORD_HISTORY_LIMIT) -> list:
    """Every audit entry of one record of a table, newest first."""
    return audit(AuditFilter(key=key, tbl=table.id), None, limit).items


AUDIT_CSV_COLUMNS = ("id", "created_at", "action", "key", "change_id", "version", "submitter", "approver",
                     "changed", "before", "after", "note")  # fmt: skip


def audit_csv(filters: AuditFilter, as_dicts) -> Iterator[bytes]:
    """The audit entries matching `filters` as CSV, streamed a page at a time; `as_dicts` turns
    entries into API objects (web.present.audit_dicts)."""
    sink = TextSink()
    writer = FormulaSafeWriter(sink)  # keys, reasons and user names are anyone's text
    writer.writerow(AUDIT_CSV_COLUMNS)
    yield "\ufeff".encode() + sink.take().encode()
    cursor: Cursor | None = None
    while True:
        page = audit(filters, cursor, 2000)
        for item in as_dicts(page.items):
            before, after = item["before"] or {}, item["after"] or {}
            changed = (
                [n for n in (after or before) if before.get(n) != after.get(n)] if item["action"] == "modify" else []
            )
            writer.writerow(
                [
                    item["id"],
                    item["created_at"],
                    item["action"],
                    item["key"],
                    item["change_id"],
                    item["version"],
                    item["submitter"],
                    item["approver"],
                    " ".join(changed),
                    json.dumps(item["before"], ensure_ascii=False) if item["before"] is not None else "",
                    json.dumps(item["after"], ensure_ascii=False) if item["after"] is not None else "",
                    item["note"] or "",
                ]
            )
        yield sink.take().encode()
        if page.next is None:
            return
        cursor = page.next
