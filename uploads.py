"""Uploads, the way in for a change request: a file (or a workbook or zip of several tables) read,
compared with its table, merged three ways when its base is older, and staged as a pending request;
or refused with an error file kept for its owner, or held while its owner confirms its deletions.
Owns every transaction it opens; changes.py takes the request from there (read, resolve, decide).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import json
import re
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO

from flask import current_app

import access
import approvals
import diff
import events
import history
import merge
import notifications
import references
import store.accounts
import store.changes
import store.history
import store.table
import tables
from errors import DomainError, NotFound, Unprocessable
from files import bundle as bundles
from files import damage, errorfile, xlsx
from files import encoding as encodings
from files.formulas import unescaper
from files.names import clean_filename
from files.problems import FileProblems, Groups, Problem, TooLarge, split_message
from files.rows import Upload
from files.upload import open_upload
from files.xlsx import ENCODING as WORKBOOK_ENCODING
from models import ChangeRequest, ErrorReport, RequestWarning, WarningKind, db, utcnow, warnings_json
from records import SEP
from schema import Schema
from values import show

MODES = ("full", "partial")
ERROR_FILE_DAYS = 1
HELD_UPLOAD_HOURS = 1
DELETION_SAMPLE = 10  # rows a mass-deletion confirmation lists


class ConfirmDeletions(Unprocessable):
    """A full upload would delete many rows; the uploader must confirm the exact number.

    `sample` holds the first rows it would delete as (key, record); `held` the id of the upload
    kept for its owner to confirm without sending the file again (when asked to hold it)."""

    def __init__(self, message: str, deletions: int, sample: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.deletions = deletions
        self.sample = list(sample)
        self.held: int | None = None


class Refused(Unprocessable):
    """The file cannot be staged: its problems (the first MAX_PROBLEMS, `total` counts all) and the
    id of the error file kept for its owner (None when the file is no table to annotate).
    `status` is 413 when the file holds more than the app reads (files.problems.TooLarge)."""

    def __init__(self, problems: FileProblems, error_file: int | None):
        found = "1 problem" if problems.total == 1 else f"{problems.total:,} problems"
        super().__init__(f"The file was not staged: {found} found.")
        self.problems = problems.problems
        self.total = problems.total
        self.groups = problems.groups.ordered()
        self.error_file = error_file
        if isinstance(problems, TooLarge):
            self.status = 413


class TooManyPending(DomainError):
    """The uploader has MAX_PENDING_PER_USER pending requests already; `pending` are their ids."""

    status = 429

    def __init__(self, message: str, pending: list[int]):
        super().__init__(message)
        self.pending = pending


@dataclass
class StageResult:
    """The outcome of an upload: the new request (None when the file changes nothing) and its counts."""

    change: ChangeRequest | None
    base_version: int
    summary: dict[str, int]
    encoding: str
    warnings: list[str] = field(default_factory=list)
    members: list[ChangeRequest] = field(default_factory=list)  # an upload of several tables: a request each


# --- submitting an upload --------------------------------------------------------------------

# The version in a downloaded file's name: datasets-v12.csv, "datasets-v12 (1).csv",
# datasets-v12-edited.xlsx, "Copy of datasets-v12.csv".
ERRORS_SUFFIX = re.compile(r"-errors(?: ?\(\d+\))?$")
VERSION_IN_NAME = re.compile(r"-v(\d{1,9})(?!\d)")


def base_from_filename(filename: str) -> int | None:
    """The version a downloaded file's name carries, or None.

    >>> [base_from_filename(n) for n in ("datasets-v12 (1).csv", "Copy of datasets-v12-edited.xlsx", "table.csv")]
    [12, 12, None]
    """
    found = VERSION_IN_NAME.findall(filename.replace("\\", "/").rsplit("/", 1)[-1])
    return int(found[-1]) if found else None


@dataclass(frozen=True)
class UploadOptions:
    """What the uploader asked for along with the file, as the upload form and the API take it.

    `base_version`: the version the file was downloaded at (None: the `-vN` of `filename`, else
    unknown); `confirm_deletions`: the exact number of deletions confirmed; `sheet`: the sheet of
    a workbook to read; `hold`: keep the file for `submit_held` when its deletions must be confirmed;
    `encoding`: the text encoding the person says a CSV file is in (not guessed then).
    """

    submitter: str
    filename: str = ""
    mode: str = "full"
    comment: str = ""
    confirm_deletions: int | None = None
    sheet: str | None = None
    base_version: int | None = None
    hold: bool = False
    encoding: str | None = None


@dataclass(frozen=True)
class _Request:
    """An upload's options as staging uses them: the file name cleaned, the base found, and where from."""

    options: UploadOptions
    base: int | None
    base_source: str  # "field", "filename", or "" (unknown)


def submit(table: tables.TableRef, stream: IO[bytes], options: UploadOptions) -> StageResult:
    """Merge an uploaded file into `table` and stage the differences as a pending request (with a
    workbook or zip of several tables: a request per table that changes, decided together).

    The file's base version is `options.base_version`, else the version in its file name, else
    unknown. With a base older than the table, the upload is merged three ways (merge.py): what
    others changed since stays, what only you changed is staged, what both changed is a conflict.
    With an unknown base it is compared with the table now, and changes that would undo a later
    approval are warned about. A file with problems is refused (Refused, nothing staged) and kept
    for its owner with an `errors` column; a file larger than the app reads is refused (Refused,
    status 413) without one; a full upload deleting many rows must be confirmed (ConfirmDeletions;
    with `hold`, the file is kept for `submit_held`). Someone with MAX_PENDING_PER_USER pending
    requests gets TooManyPending before the file is read. An `encoding` that names none is
    Unprocessable.
    """
    access.require(table, access.EDIT, access.person(options.submitter))
    if options.encoding is not None and encodings.codec_name(options.encoding) is None:
        raise Unprocessable(encodings.unknown_encoding(options.encoding))
    check_pending_quota(options.submitter)
    options = replace(options, filename=clean_filename(options.filename))
    base, source = options.base_version, "field" if options.base_version is not None else ""
    if base is None and (base := base_from_filename(options.filename)) is not None:
        source = "filename"
    file = options.filename
    try:
        result = _stage(table, stream, _Request(options, base, source))
    except TooLarge as exc:
        db.session.rollback()
        events.record_now(
            "upload-refused", user=options.submitter, table=table.name, details={"file": file, "problem": str(exc)}
        )
        raise Refused(exc, None) from None
    except FileProblems as exc:
        db.session.rollback()
        refused = Refused(exc, _keep_error_file(table, stream, exc, options))
        events.record_now(
            "upload-refused", user=options.submitter, table=table.name, details={"file": file, "problems": exc.total}
        )
        raise refused from None
    except ConfirmDeletions as exc:
        db.session.rollback()
        if options.hold:
            exc.held = _hold(stream, options.submitter, options.filename)
        raise
    except DomainError:
        db.session.rollback()
        raise
    if result.change is not None:
        requests = [m.id for m in result.members or [result.change]]
        details = {"file": file, "mode": options.mode, "requests": requests, **result.summary}
        table_name = tables.of_request(result.change).name
        events.record_now(
            "upload-staged", user=options.submitter, table=table_name, change_id=result.change.id, details=details
        )
    return result


def _hold(stream: IO[bytes], owner: str, filename: str) -> int:
    """Keep an upload (an hour) for its owner to confirm its deletions; deletes expired ones."""
    stream.seek(0)
    store.accounts.delete_held_uploads_before(utcnow() - dt.timedelta(hours=HELD_UPLOAD_HOURS))
    held = store.accounts.add_held_upload(owner, filename[:255], stream.read())
    store.accounts.keep_newest_held_uploads(owner, current_app.config["HELD_UPLOADS_PER_USER"])
    db.session.commit()
    return held.id


def submit_held(table: tables.TableRef, held_id: int, options: UploadOptions) -> StageResult:
    """`submit` the upload kept by a mass-deletion confirmation (its owner's only, under the name
    it was sent with), then forget it."""
    held = store.accounts.get_held_upload(held_id)
    expired = utcnow() - dt.timedelta(hours=HELD_UPLOAD_HOURS)
    if held is None or held.owner != options.submitter or held.created_at < expired:
        raise NotFound(
            "Your uploaded file is no longer kept (it is kept for an hour after the question); choose it again."
        )
    try:
        result = submit(table, io.BytesIO(held.content), replace(options, filename=held.filename, hold=False))
    except ConfirmDeletions as exc:
        exc.held = held_id
        raise
    store.accounts.delete_held_upload(held_id)
    db.session.commit()
    return result


def _check_base(base: int) -> None:
    """Unprocessable unless the history can rebuild the table at version `base`."""
    state = tables.database()
    if base > state.version:
        raise Unprocessable(
            f"base_version {base} is newer than the table, which is at version {state.version}."
            " Download the table again, or leave the base version empty."
        )
    if base < state.history_from:
        raise Unprocessable(
            f"base_version {base} is older than the oldest version the history keeps ({state.history_from}):"
            " download the table again and redo your edits on it."
        )


@dataclass
class _Staging:
    """One table's part of an upload, read, compared with the table and merged; not yet written."""

    ref: tables.TableRef
    upload: Upload
    version: int  # the database version the table was read at
    current: dict[str, str]  # {key: record} of the table then
    merged: merge.MergeResult
    base: int | None
    label: str = ""  # which part of a workbook or zip it is ("" for a plain file), for messages

    @property
    def result(self) -> diff.Diff:
        return self.merged.diff

    @property
    def summary(self) -> dict[str, int]:
        return summary_of(self.result, len(self.merged.conflicts))

    @property
    def changes_something(self) -> bool:
        return bool(self.result.changed or self.merged.conflicts)


def _stage(ref: tables.TableRef, stream: IO[bytes], request: _Request) -> StageResult:
    """The one pipeline: split the upload into its tables' parts (a plain file is a one-part
    bundle), read and compare each, check references across them, guard deletions, and write a
    request per table that changes (several: decided together, `batch`), in one commit."""
    options, base = request.options, request.base
    if options.mode not in MODES:
        raise DomainError(f"mode must be 'full' or 'partial', not {options.mode!r}")
    if base is not None:
        _check_base(base)
    bundle = _bundle(ref, stream, options.sheet, options.encoding)
    # a workbook or zip touching a table the person may not edit is refused, naming that table
    access.require_edit_all((part.table for part in bundle.parts), access.person(options.submitter))
    several = len(bundle.parts) > 1
    if several:
        stagings, unread = _prepare_parts(bundle, options.mode, base)
    else:
        stagings, unread = [_prepare_one(bundle, options.mode, base)], None
    _raise_problems(stagings, unread)
    changing = [s for s in stagings if s.changes_something]
    summary = {k: sum(s.summary[k] for s in stagings) for k in SUMMARY_KEYS}
    encoding = stagings[0].upload.encoding
    if not changing:
        return StageResult(None, stagings[0].version if base is None else base, summary, encoding)
    if several:
        _guard_bundle(changing, options.mode, options.confirm_deletions)
    else:
        _guard(changing[0], options.mode, options.confirm_deletions)
    if notice := bundle.notice():
        changing[0].upload.warnings.insert(0, notice)
    first = _write(changing[0], request)
    if len(changing) == 1:  # the other tables are as they were: an ordinary request of one table
        db.session.commit()
        return StageResult(first, first.base_version, changing[0].summary, encoding, first.warning_list)
    first.batch = first.id
    members = [first] + [_write(s, request, batch=first.id) for s in changing[1:]]
    db.session.commit()
    return StageResult(first, first.base_version, summary, encoding, first.warning_list, members)


def _bundle(ref: tables.TableRef, stream: IO[bytes], sheet: str | None, encoding: str | None) -> bundles.Bundle:
    """The upload split into the tables it holds: with several tables in schema.json, a workbook or
    zip (a sheet or file named after no table goes to `ref`, the table the upload was sent to);
    else (a plain file, a sheet chosen by name, a deployment of one table) the whole file for `ref`."""
    names = [t.name for t in tables.every()]
    # by its first bytes, as files.upload decides: zipfile.is_zipfile seeks before the start of a tiny file
    if len(names) < 2 or sheet is not None or not xlsx.is_workbook(stream):
        stream.seek(0)
        return _whole_file(ref, stream, sheet, encoding)
    stream.seek(0)
    return bundles.open_bundle(
        stream, [ref.name, *(n for n in names if n != ref.name)], current_app.config["MAX_CONTENT_LENGTH"]
    )


def _whole_file(ref: tables.TableRef, stream: IO[bytes], sheet: str | None, encoding: str | None) -> bundles.Bundle:
    """A one-part bundle: the whole upload for one table, read by `files.upload.open_upload` (at
    `sheet`; a CSV file in `encoding` when the person named one)."""

    def opened() -> IO[bytes]:
        stream.seek(0)
        return stream

    def read(schema: Schema, max_rows: int | None) -> Upload:
        return open_upload(opened(), schema, sheet, max_rows, encoding)

    return bundles.Bundle("file", [bundles.Part(ref.name, "", sheet, opened, read)], (ref.name,))


def _prepare_one(bundle: bundles.Bundle, mode: str, base: int | None) -> _Staging:
    """The one part of a bundle read and prepared; its problems as they are (no part to name)."""
    part = bundle.parts[0]
    ref = tables.get(part.table)
    return _prepare(ref, part.read(ref.schema, current_app.config["MAX_UPLOAD_ROWS"]), mode, base)


def _prepare_parts(bundle: bundles.Bundle, mode: str, base: int | None) -> tuple[list[_Staging], FileProblems | None]:
    """Every part of a bundle of several tables read and prepared, and the problems of the parts
    that could not be read at all (each named with its sheet or file); TooLarge for the first
    part too large to read."""
    stagings, problems = [], []
    unread, unread_total = Groups(), 0
    for part in bundle.parts:
        ref = tables.get(part.table)
        label = f'sheet "{part.sheet}"' if part.sheet else part.name
        try:
            upload = part.read(ref.schema, current_app.config["MAX_UPLOAD_ROWS"])
            stagings.append(_prepare(ref, upload, mode, base, label))
        except TooLarge:
            raise
        except FileProblems as exc:  # a part that cannot be read at all (its header, its sheet)
            problems.extend(replace(p, message=f"{label}: {p.message}") for p in exc.problems)
            unread.extend(exc.groups, label)
            unread_total += exc.total
    return stagings, (FileProblems(problems, unread_total, unread) if problems else None)


def _prepare(ref: tables.TableRef, upload: Upload, mode: str, base: int | None, label: str = "") -> _Staging:
    """Read the table (and, with a base, what changed since), compare the upload with it, merge
    three ways when the base is older; FileProblems for bad cells, duplicate keys and `unique` clashes."""
    schema = ref.schema
    version, current, since = store.table.read_current(
        ref.id, also=(lambda raw: store.history.since_rows(raw, ref.id, base)) if base is not None else None
    )
    problems = upload.problems
    escaped = upload.encoding != WORKBOOK_ENCODING  # a workbook's rows come unescaped (files.xlsx)
    parse = schema.row_parser(  # a cell that reads two ways is settled by the value the table holds for its key
        problems.add, upload.conventions, clean=unescaper(schema) if escaped else None, stored=current.get
    )
    with _gc_paused():
        two_way = diff.compare_cells(
            current,
            upload.rows,
            schema.key_index,
            parse,
            full=mode == "full",
            sep=SEP,
            trust_raw=upload.trust_raw,
        )
    problems.keys.update(two_way.bad_lines)
    for dup in two_way.duplicates:
        problems.add(
            dup.line,
            schema.key,
            f"duplicate key {dup.key!r}: it is also on line {dup.first_line}",
            key=dup.key,
            value=show(dup.key),
            what="is a duplicate key: another row has it too",
        )
    if problems.total:  # refused: every other check still runs, so one answer lists every problem
        bad = set(two_way.bad_lines.values())  # a row that could not be read is not a deletion
        two_way.deleted = [(key, record) for key, record in two_way.deleted if key not in bad]
        merged = merge.MergeResult(two_way)
    elif base is not None and base < version:
        merged = merge.rebase(two_way, history.records_at(base, since or [], schema.names), current, schema.names)
    else:
        merged = merge.MergeResult(two_way)
    for line, column, message, key in check_unique(schema, current, merged.diff):
        value, _ = split_message(message)
        problems.add(
            line, column, message, key=key, value=value, what="is used by another row too; each row needs its own"
        )
    return _Staging(ref, upload, version, current, merged, base, label)


def _raise_problems(stagings: Sequence[_Staging], unread: FileProblems | None = None) -> None:
    """One FileProblems with every problem of the upload, whatever found it: the cells, duplicate
    keys and `unique` clashes of each part (`_prepare`), and references of added or changed cells
    to keys the referenced tables will not have after this upload (foreignKeys in schema.json),
    each at its line and column, summed up per column and value with the nearest existing key.
    `unread`: the problems of parts that could not be read at all (their references are not checked)."""
    by_table = {s.ref.name: s for s in stagings}

    def keys_of(name: str) -> Container[str]:
        if name in by_table:  # a table this upload changes too: with its additions, without its deletions
            return references.keys_after(by_table[name].current, by_table[name].result)
        return references.keys_after(store.table.keys(tables.get(name).id), None)

    found: list[Problem] = list(unread.problems) if unread else []
    groups = Groups()
    if unread:
        groups.extend(unread.groups)
    total = unread.total if unread else 0
    for s in stagings:
        problems = s.upload.problems
        found.extend(replace(p, message=_in_part(s, p.message)) for p in problems.located())
        groups.extend(problems.groups, s.label)
        total += problems.total
        dangling = references.check_references(s.ref.spec, s.result, keys_of) if unread is None else []
        if not dangling:
            continue
        mine = Groups()
        for d in dangling:
            mine.add(d.line, d.column, d.message, value=d.value, what=f'is not a key of table "{d.resource}"')
        for fk in s.ref.spec.foreign_keys:
            mine.suggest(
                fk.field, f'is not a key of table "{fk.resource}"', _keys_for_suggestion(fk.resource, by_table)
            )
        groups.extend(mine, s.label)
        total += len(dangling)
        found.extend(
            Problem(d.line, d.column, _in_part(s, d.message), row=problems.row_of(d.line), key=d.key) for d in dangling
        )
    if total:
        found.sort(key=lambda p: p.line or 0)
        raise FileProblems(found, total, groups)


def _keys_for_suggestion(name: str, by_table: Mapping[str, _Staging]) -> Iterator[str]:
    """The keys a referenced table will have, to find the one a wrong reference most likely meant."""
    if name in by_table:
        staging = by_table[name]
        deleted = {key for key, _ in staging.result.deleted}
        yield from (key for key in staging.current if key not in deleted)
        yield from (row.key for row in staging.result.added)
    else:
        yield from store.table.keys(tables.get(name).id)


def _in_part(staging: _Staging, message: str) -> str:
    """A message about a part of a workbook or zip says which part."""
    return f"{staging.label}: {message}" if staging.label else message


def _guard(staging: _Staging, mode: str, confirmed: int | None) -> None:
    """ConfirmDeletions when the upload deletes many rows of the table (see _guard_mass_deletion)."""
    result = staging.result
    header_only = mode == "full" and not (result.added or result.modified or result.unchanged)
    _guard_mass_deletion(
        result.deleted,
        len(staging.current),
        confirmed,
        current_app.config["MASS_DELETE_PERCENT"],
        header_only,
        damage.damaged_keys(result, staging.ref.schema),
    )


def _write(staging: _Staging, request: _Request, batch: int | None = None) -> ChangeRequest:
    """Stage one table's part of an upload as a pending request (the caller commits)."""
    schema, result, version, base = staging.ref.schema, staging.result, staging.version, staging.base
    options = request.options
    warnings = [RequestWarning(WarningKind.FILE, m) for m in staging.upload.warnings + damage.warnings(result, schema)]
    change = store.changes.add_request(
        tbl=staging.ref.id,
        batch=batch,
        submitter=options.submitter,
        mode=options.mode,
        comment=options.comment.strip(),
        filename=options.filename,
        encoding=staging.upload.encoding,
        delimiter=staging.upload.delimiter,
        base_version=version if base is None else base,
        base_source=request.base_source,
        merged_version=version,
        fields=json.dumps(list(schema.names)),
        warnings=warnings_json(warnings),
        **staging.summary,
    )
    change.column_counts = json.dumps(store.changes.stage_rows(change.id, result, schema.names))
    approvals.staged(change.id, result)
    store.changes.add_conflicts(change.id, staging.merged.conflicts, staging.merged.lines)
    if base is None and version > 0:  # version 0 has no approvals to undo
        undone = history.undo_warnings(staging.ref, change.id, result, staging.current)
        if undone:
            store.changes.set_row_warnings(change.id, undone)
            undo = [RequestWarning(WarningKind.UNDO, m) for m in list(undone.values())[: damage.MAX_WARNINGS]]
            change.warnings = warnings_json([*warnings, *undo])
    notifications.submitted(change)
    return change


def _guard_bundle(stagings: Sequence[_Staging], mode: str, confirmed: int | None) -> None:
    """The mass-deletion question for an upload of several tables: one number confirms them all
    (the deletions of every table in it)."""
    total = sum(len(s.result.deleted) for s in stagings)
    for s in stagings:
        try:
            _guard(s, mode, len(s.result.deleted) if confirmed == total else confirmed)
        except ConfirmDeletions as exc:
            raise ConfirmDeletions(
                f"Table {s.ref.name!r}: {exc.message} (With several tables in one upload, confirm the deletions"
                f" of all of them: {total:,}.)",
                total,
                exc.sample,
            ) from None


SUMMARY_KEYS = ("added", "modified", "deleted", "unchanged", "conflicts")


def summary_of(result: diff.Diff, conflicts: int) -> dict[str, int]:
    counts = {kind: len(getattr(result, kind)) for kind in diff.ROW_KINDS}
    return counts | {"unchanged": result.unchanged, "conflicts": conflicts}


def check_pending_quota(submitter: str) -> None:
    """TooManyPending when the submitter has MAX_PENDING_PER_USER pending requests already."""
    limit = current_app.config["MAX_PENDING_PER_USER"]
    pending = store.changes.pending_ids(submitter, limit)
    if len(pending) >= limit:
        listed = ", ".join(f"#{i}" for i in pending)
        raise TooManyPending(
            f"You have {len(pending)} change requests waiting for a decision ({listed}); the limit is {limit}"
            " (MAX_PENDING_PER_USER). Withdraw one, or wait until an admin decides, then upload again.",
            pending,
        )


def check_unique(schema: Schema, current: dict[str, str], result: diff.Diff) -> list[tuple[int, str, str, str]]:
    """(line, column, message, key) for each added or changed row whose value in a `unique` column
    another row of the table would have after `result` is applied."""
    found = []
    for index in schema.unique_indexes:
        name = schema.names[index]
        for c in diff.unique_clashes(current, result, index):
            where = (
                f"row {c.other_key!r} (line {c.other_line})" if c.other_line else f"row {c.other_key!r} of the table"
            )
            found.append(
                (c.line, name, f"{show(c.value)} is also the {name} of {where}; each row needs its own", c.key)
            )
    return found


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cycle collector while a diff builds a million small objects.

    They hold no reference cycles, so nothing waits to be collected, but the collector would
    scan them again and again: 1.2 s of the 8.4 s a 1,000,000-row first upload spends in Python.
    Reference counting frees everything as usual meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _guard_mass_deletion(
    deleted: Sequence[tuple[str, str]],
    table_rows: int,
    confirmed: int | None,
    percent: int,
    header_only: bool,
    damaged: list[damage.DamagedKey] | None = None,
) -> None:
    """Refuse (ConfirmDeletions) a header-only file or more than `percent`% deletions unless exactly
    confirmed; say so when deleted keys are `damaged` ones (a spreadsheet rewrote them, so they look added)."""
    deletions = len(deleted)
    if not deletions or confirmed == deletions:
        return
    if not header_only and deletions * 100 <= table_rows * percent:
        return
    if header_only:
        what = (
            f"This file has a header row but no data rows: as the whole table it would delete all {deletions:,} rows."
        )
    else:
        share = deletions * 100 / table_rows
        what = (
            f"This upload would delete {deletions:,} of {table_rows:,} rows ({share:.0f}%; "
            f"more than {percent}% must be confirmed)."
        )
    wrong = (
        f" You confirmed {confirmed:,} deletions, which is not the number this file deletes."
        if confirmed is not None
        else ""
    )
    if damaged:
        first = damaged[0]
        raise ConfirmDeletions(
            f"{what}{wrong} {len(damaged):,} of these deletions are keys a spreadsheet damaged, not deletions:"
            f" {first.why} (key {first.before!r} is now {first.after!r} on line {first.line}), so the row looks"
            " deleted and added again. Format the key column as Text before saving, or upload the file as it was"
            " downloaded; only if the deletions are intended, confirm the deletion of exactly"
            f" {deletions:,} rows and upload again.",
            deletions,
            sorted(deleted)[:DELETION_SAMPLE],
        )
    raise ConfirmDeletions(
        f"{what}{wrong} If that is intended, confirm the deletion of exactly {deletions:,} rows and upload again; "
        "if not, check that you uploaded the whole table (or choose a partial upload).",
        deletions,
        sorted(deleted)[:DELETION_SAMPLE],
    )


# --- error files: a refused upload with an `errors` column, for its owner --------------------


def _keep_error_file(
    ref: tables.TableRef, stream: IO[bytes], refused: FileProblems, options: UploadOptions
) -> int | None:
    """Keep the refused upload with an `errors` column for its owner (a day, and only the newest
    ERROR_FILES_PER_USER of theirs); return its id, or None when the file is not a table to
    annotate (or its owner keeps none)."""
    keep = current_app.config["ERROR_FILES_PER_USER"]
    if keep < 1:
        return None
    annotated = errorfile.annotate(stream, ref.schema, refused.problems, refused.total, options.sheet)
    if annotated is None:
        return None
    stem = error_file_stem(options.filename)
    store.accounts.delete_error_reports_before(utcnow() - dt.timedelta(ERROR_FILE_DAYS))
    store.accounts.keep_newest_error_reports(options.submitter, keep - 1)
    report = store.accounts.add_error_report(
        options.submitter, f"{stem or 'upload'}-errors{annotated.suffix}"[-255:], annotated.content
    )
    db.session.commit()
    return report.id


def error_file_stem(filename: str) -> str:
    """The name of an error file without its suffix: the same in every round of fixing, since an
    uploaded error file's name loses its `-errors` (and a browser's ` (1)`) first.

    >>> [error_file_stem(n) for n in ("catalog.csv", "catalog-errors.csv", "catalog-errors (2).xlsx", "x-errors-errors")]
    ['catalog', 'catalog', 'catalog', 'x']
    """
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    while True:
        shorter = ERRORS_SUFFIX.sub("", stem)
        if shorter == stem:
            return stem
        stem = shorter


def error_file(report_id: int, user: str) -> ErrorReport:
    """An error file, for its owner only (to anyone else it does not exist)."""
    report = store.accounts.get_error_report(report_id)
    if report is None or report.owner != user or report.created_at < utcnow() - dt.timedelta(ERROR_FILE_DAYS):
        raise NotFound(
            "There is no such error file, or it has expired (they are kept for a day). Upload the file again."
        )
    return report
