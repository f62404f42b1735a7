"""The change-request workflow, the domain API both front ends call: submit an upload (or refuse it
with an error file), read requests, approve, reject, withdraw. Owns every transaction it opens.

The pages, the JSON API and the CLI turn its results and exceptions (errors.DomainError, each with
the HTTP status that fits) into pages or JSON; nothing here knows about HTTP.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import json
import logging
import re
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

import access
import accounts
import diff
import files.diff_csv
import history
import merge
import references
import store.accounts
import store.audit
import store.changes
import store.history
import store.table
import tables
from errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from files import bundle as bundles
from files import damage, errorfile, xlsx
from files import encoding as encodings
from files.formulas import unescaper
from files.names import clean_filename
from files.problems import FileProblems, Problem, TooLarge
from files.rows import Upload
from files.upload import open_upload
from files.xlsx import ENCODING as WORKBOOK_ENCODING
from models import ChangeRequest, ErrorReport, MergeConflict, db, utcnow
from records import SEP, pack, unpack
from schema import Schema
from values import show

log = logging.getLogger(__name__)
MODES = ("full", "partial")
ACTIONS = ("add", "modify", "delete")
ERROR_FILE_DAYS = 1
HELD_UPLOAD_HOURS = 1
DELETION_SAMPLE = 10  # rows a mass-deletion confirmation lists
CONFIRM_APPROVAL_OVER = 1000  # the review page asks to confirm approving more changes than this


class NotPending(Conflict):
    """The request was already decided (or withdrawn); nothing was done."""


class Stale(Conflict):
    """A later approval changed the same cells or rows as this request: it is sent back with conflicts."""


class Unresolved(Conflict):
    """The request has merge conflicts its submitter has not resolved yet."""


class UniqueClash(Conflict):
    """Applying would give two rows the same value in a `unique` column (a later approval added it)."""


class StillReferenced(Conflict):
    """The request deletes rows that other rows still refer to (foreignKeys in schema.json)."""


class MissingReason(Unprocessable):
    """A rejection needs a reason the submitter can act on."""


class ApplyFailed(DomainError):
    """The database refused the approval; everything was rolled back."""

    status = 500


class ConfirmDeletions(Unprocessable):
    """A full upload would delete many rows; the uploader must confirm the exact number.

    `sample` holds the first rows it would delete as (key, record); `held` the id of the upload
    kept for its owner to confirm without sending the file again (when asked to hold it)."""

    def __init__(self, message: str, deletions: int, sample: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.deletions = deletions
        self.sample = list(sample)
        self.held: int | None = None


class ConfirmApproval(Unprocessable):
    """Approving this many changes needs the admin to confirm the exact number first."""


class Refused(Unprocessable):
    """The file cannot be staged: its problems (the first MAX_PROBLEMS, `total` counts all) and the
    id of the error file kept for its owner (None when the file is no table to annotate).
    `status` is 413 when the file holds more than the app reads (files.problems.TooLarge)."""

    def __init__(self, problems: FileProblems, error_file: int | None):
        super().__init__(f"The file was not staged: {problems.total} problem(s) found.")
        self.problems = problems.problems
        self.total = problems.total
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
VERSION_IN_NAME = re.compile(r"-v(\d{1,9})(?!\d)")


def base_from_filename(filename: str) -> int | None:
    """The version a downloaded file's name carries, or None.

    >>> [base_from_filename(n) for n in ("datasets-v12 (1).csv", "Copy of datasets-v12-edited.xlsx", "table.csv")]
    [12, 12, None]
    """
    found = VERSION_IN_NAME.findall(filename.replace("\\", "/").rsplit("/", 1)[-1])
    return int(found[-1]) if found else None


def submit(
    stream: IO[bytes],
    *,
    submitter: str,
    filename: str = "",
    mode: str = "full",
    comment: str = "",
    confirm_deletions: int | None = None,
    sheet: str | None = None,
    base_version: int | None = None,
    hold: bool = False,
    table: str | None = None,
    encoding: str | None = None,
) -> StageResult:
    """Merge an uploaded file into a table (None: the first) and stage the differences as one pending request.

    The file's base version is `base_version`, else the version in its file name, else unknown.
    With a base older than the table, the upload is merged three ways (merge.py): what others
    changed since stays, what only you changed is staged, what both changed is a conflict. With an
    unknown base it is compared with the table now, and changes that would undo a later approval
    are warned about. A file with problems is refused (Refused, nothing staged) and kept for its
    owner with an `errors` column; a file larger than the app reads is refused (Refused, status
    413) without one; a full upload deleting many rows must be confirmed (ConfirmDeletions; with
    `hold`, the file is kept for `submit_held`). Someone with MAX_PENDING_PER_USER pending
    requests gets TooManyPending before the file is read. `encoding` is the text encoding the
    person says a CSV file is in (not guessed then; Unprocessable when it names none).
    """
    ref = tables.get(table)
    access.require(ref, access.EDIT, access.person(submitter))
    if encoding is not None and encodings.codec_name(encoding) is None:
        raise Unprocessable(encodings.unknown_encoding(encoding))
    _check_pending_quota(submitter)
    filename = clean_filename(filename)
    source = "field" if base_version is not None else ""
    if base_version is None and (base_version := base_from_filename(filename)) is not None:
        source = "filename"
    try:
        return _stage(
            ref, stream, submitter, filename, mode, comment, confirm_deletions, sheet, base_version, source, encoding
        )
    except TooLarge as exc:
        db.session.rollback()
        raise Refused(exc, None) from None
    except FileProblems as exc:
        db.session.rollback()
        raise Refused(exc, _keep_error_file(ref, stream, exc, submitter, filename, sheet)) from None
    except ConfirmDeletions as exc:
        db.session.rollback()
        if hold:
            exc.held = _hold(stream, submitter, filename)
        raise
    except DomainError:
        db.session.rollback()
        raise


def _hold(stream: IO[bytes], owner: str, filename: str) -> int:
    """Keep an upload (an hour) for its owner to confirm its deletions; deletes expired ones."""
    stream.seek(0)
    store.accounts.delete_held_uploads_before(utcnow() - dt.timedelta(hours=HELD_UPLOAD_HOURS))
    held = store.accounts.add_held_upload(owner, filename[:255], stream.read())
    store.accounts.keep_newest_held_uploads(owner, current_app.config["HELD_UPLOADS_PER_USER"])
    db.session.commit()
    return held.id


def submit_held(held_id: int, *, submitter: str, **options: Any) -> StageResult:
    """`submit` the upload kept by a mass-deletion confirmation (its owner's only), then forget it."""
    held = store.accounts.get_held_upload(held_id)
    if held is None or held.owner != submitter or held.created_at < utcnow() - dt.timedelta(hours=HELD_UPLOAD_HOURS):
        raise NotFound(
            "Your uploaded file is no longer kept (it is kept for an hour after the question); choose it again."
        )
    try:
        result = submit(io.BytesIO(held.content), submitter=submitter, filename=held.filename, **options)
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
        return _summary(self.result, len(self.merged.conflicts))

    @property
    def changes_something(self) -> bool:
        return bool(self.result.changed or self.merged.conflicts)


def _stage(
    ref: tables.TableRef,
    stream: IO[bytes],
    submitter: str,
    filename: str,
    mode: str,
    comment: str,
    confirm_deletions: int | None,
    sheet: str | None,
    base: int | None,
    base_source: str,
    encoding: str | None = None,
) -> StageResult:
    _check_mode_and_base(mode, base)
    bundle = _bundle(ref, stream, sheet)
    if bundle is not None and len(bundle.parts) > 1:
        return _stage_bundle(bundle, submitter, filename, mode, comment, confirm_deletions, base, base_source)
    if bundle is not None:  # a workbook or zip with one table's sheet or file: that table's
        part = bundle.parts[0]
        ref = tables.get(part.table)
        upload = part.read(ref.schema, current_app.config["MAX_UPLOAD_ROWS"])
        if notice := bundle.notice():
            upload.warnings.insert(0, notice)
    else:
        upload = open_upload(stream, ref.schema, sheet, current_app.config["MAX_UPLOAD_ROWS"], encoding)
    staging = _prepare(ref, upload, mode, base)
    _raise_dangling([staging])
    if not staging.changes_something:
        return StageResult(None, staging.version if base is None else base, staging.summary, upload.encoding)
    _guard(staging, mode, confirm_deletions)
    change = _write(staging, submitter, filename, mode, comment, base_source)
    db.session.commit()
    return StageResult(change, change.base_version, staging.summary, upload.encoding, change.warning_list)


def _check_mode_and_base(mode: str, base: int | None) -> None:
    if mode not in MODES:
        raise DomainError(f"mode must be 'full' or 'partial', not {mode!r}")
    if base is not None:
        _check_base(base)


def _bundle(ref: tables.TableRef, stream: IO[bytes], sheet: str | None) -> bundles.Bundle | None:
    """With several tables in schema.json, a workbook or zip split into the tables it holds (a
    sheet or file named after no table goes to `ref`, the table the upload was sent to); None for
    a plain file, a sheet chosen by name, or a deployment of one table (read as it always was)."""
    names = [t.name for t in tables.every()]
    # by its first bytes, as files.upload decides: zipfile.is_zipfile seeks before the start of a tiny file
    if len(names) < 2 or sheet is not None or not xlsx.is_workbook(stream):
        stream.seek(0)
        return None
    stream.seek(0)
    return bundles.open_bundle(
        stream, [ref.name, *(n for n in names if n != ref.name)], current_app.config["MAX_CONTENT_LENGTH"]
    )


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
            dup.line, schema.key, f"duplicate key {dup.key!r}: it is also on line {dup.first_line}", key=dup.key
        )
    if problems.total:
        problems.sort(key=lambda p: p.line or 0)
        problems.raise_if_any()
    merged = (
        merge.rebase(two_way, history.records_at(base, since or [], schema.names), current, schema.names)
        if base is not None and base < version
        else merge.MergeResult(two_way)
    )
    for line, column, message, key in check_unique(schema, current, merged.diff):
        problems.add(line, column, message, key=key)
    problems.raise_if_any()
    return _Staging(ref, upload, version, current, merged, base, label)


def _raise_dangling(stagings: Sequence[_Staging]) -> None:
    """FileProblems (each at its line and column) for references of added or changed cells to keys
    that the referenced tables will not have after this upload (foreignKeys in schema.json)."""
    by_table = {s.ref.name: s for s in stagings}

    def keys_of(name: str) -> Container[str]:
        if name in by_table:  # a table this upload changes too: with its additions, without its deletions
            return references.keys_after(by_table[name].current, by_table[name].result)
        return references.keys_after(store.table.keys(tables.get(name).id), None)

    found = [
        Problem(d.line, d.column, _in_part(s, d.message), row=s.upload.problems.row_of(d.line), key=d.key)
        for s in stagings
        for d in references.check_references(s.ref.spec, s.result, keys_of)
    ]
    if found:
        raise FileProblems(found)


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


def _write(
    staging: _Staging,
    submitter: str,
    filename: str,
    mode: str,
    comment: str,
    base_source: str,
    batch: int | None = None,
) -> ChangeRequest:
    """Stage one table's part of an upload as a pending request (the caller commits)."""
    schema, result, version, base = staging.ref.schema, staging.result, staging.version, staging.base
    warnings = staging.upload.warnings + damage.warnings(result, schema)
    change = store.changes.add_request(
        tbl=staging.ref.id,
        batch=batch,
        submitter=submitter,
        mode=mode,
        comment=comment.strip(),
        filename=filename,
        encoding=staging.upload.encoding,
        delimiter=staging.upload.delimiter,
        base_version=version if base is None else base,
        base_source=base_source,
        merged_version=version,
        fields=json.dumps(list(schema.names)),
        warnings=json.dumps(warnings),
        **staging.summary,
    )
    change.column_counts = json.dumps(store.changes.stage_rows(change.id, result, schema.names))
    store.changes.add_conflicts(change.id, staging.merged.conflicts, staging.merged.lines)
    if base is None and version > 0:  # version 0 has no approvals to undo
        undone = history.undo_warnings(staging.ref, change.id, result, staging.current)
        if undone:
            store.changes.set_row_warnings(change.id, undone)
            change.warnings = json.dumps([*warnings, *list(undone.values())[: damage.MAX_WARNINGS]])
    return change


def _stage_bundle(
    bundle: bundles.Bundle,
    submitter: str,
    filename: str,
    mode: str,
    comment: str,
    confirm_deletions: int | None,
    base: int | None,
    base_source: str,
) -> StageResult:
    """Stage a workbook or zip holding several tables: a request per table that changes, decided
    together (`batch`), or nothing when any part has problems (each named with its sheet or file)."""
    stagings, problems = [], []
    access.require_edit_all((part.table for part in bundle.parts), access.person(submitter))
    for part in bundle.parts:
        ref = tables.get(part.table)
        label = f'sheet "{part.sheet}"' if part.sheet else part.name
        try:
            upload = part.read(ref.schema, current_app.config["MAX_UPLOAD_ROWS"])
            stagings.append(_prepare(ref, upload, mode, base, label))
        except TooLarge:
            raise
        except FileProblems as exc:
            problems.extend(replace(p, message=f"{label}: {p.message}") for p in exc.problems)
    if problems:
        raise FileProblems(problems, len(problems))
    _raise_dangling(stagings)
    changing = [s for s in stagings if s.changes_something]
    summary = {k: sum(s.summary[k] for s in stagings) for k in SUMMARY_KEYS}
    encoding = stagings[0].upload.encoding
    if not changing:
        return StageResult(None, stagings[0].version if base is None else base, summary, encoding)
    _guard_bundle(changing, mode, confirm_deletions)
    if notice := bundle.notice():
        changing[0].upload.warnings.insert(0, notice)
    first = _write(changing[0], submitter, filename, mode, comment, base_source)
    if len(changing) == 1:  # the other tables are as they were: an ordinary request of one table
        db.session.commit()
        return StageResult(first, first.base_version, changing[0].summary, encoding, first.warning_list)
    first.batch = first.id
    members = [first] + [
        _write(s, submitter, filename, mode, comment, base_source, batch=first.id) for s in changing[1:]
    ]
    db.session.commit()
    return StageResult(first, first.base_version, summary, encoding, first.warning_list, members)


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


def _summary(result: diff.Diff, conflicts: int) -> dict[str, int]:
    return {
        "added": len(result.added),
        "modified": len(result.modified),
        "deleted": len(result.deleted),
        "unchanged": result.unchanged,
        "conflicts": conflicts,
    }


def _check_pending_quota(submitter: str) -> None:
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
    ref: tables.TableRef, stream: IO[bytes], refused: FileProblems, owner: str, filename: str, sheet: str | None
) -> int | None:
    """Keep the refused upload with an `errors` column for its owner (a day, and only the newest
    ERROR_FILES_PER_USER of theirs); return its id, or None when the file is not a table to
    annotate (or its owner keeps none)."""
    keep = current_app.config["ERROR_FILES_PER_USER"]
    if keep < 1:
        return None
    annotated = errorfile.annotate(stream, ref.schema, refused.problems, refused.total, sheet)
    if annotated is None:
        return None
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    store.accounts.delete_error_reports_before(utcnow() - dt.timedelta(ERROR_FILE_DAYS))
    store.accounts.keep_newest_error_reports(owner, keep - 1)
    report = store.accounts.add_error_report(
        owner, f"{stem or 'upload'}-errors{annotated.suffix}"[-255:], annotated.content
    )
    db.session.commit()
    return report.id


def error_file(report_id: int, user: str) -> ErrorReport:
    """An error file, for its owner only (to anyone else it does not exist)."""
    report = store.accounts.get_error_report(report_id)
    if report is None or report.owner != user or report.created_at < utcnow() - dt.timedelta(ERROR_FILE_DAYS):
        raise NotFound(
            "There is no such error file, or it has expired (they are kept for a day). Upload the file again."
        )
    return report


# --- clean-up --------------------------------------------------------------------------------


def expire_kept() -> tuple[int, int]:
    """Delete, in one commit, what is kept only for a while: error files older than ERROR_FILE_DAYS,
    and the staged rows of requests rejected or withdrawn more than KEEP_DECIDED_DAYS ago (the
    requests, their counts and their audit entries stay; the review page and the API say the rows
    were deleted). Staged rows of approved requests are never deleted: they are what was applied.
    Returns (error files deleted, requests whose rows were deleted)."""
    now = utcnow()
    files = store.accounts.delete_error_reports_before(now - dt.timedelta(ERROR_FILE_DAYS))
    purged = store.changes.purge_decided_rows(now - dt.timedelta(current_app.config["KEEP_DECIDED_DAYS"]), now)
    db.session.commit()
    return files, purged


# --- reading requests ------------------------------------------------------------------------


def get_request(change_id: int) -> ChangeRequest:
    """A change request by id (NotFound when there is none)."""
    change = store.changes.get_request(change_id)
    if change is None:
        raise NotFound(f"There is no change request #{change_id}.")
    return change


def list_requests(
    status: str | None, offset: int, limit: int, table: tables.TableRef | None = None
) -> tuple[list[ChangeRequest], int]:
    """(requests newest first, how many there are in all) of one status, or of every status (None);
    of one table, or of every table the person may view (None)."""
    tbl = table.id if table is not None else access.visible_ids()
    return store.changes.list_requests(status, offset, limit, tbl), store.changes.count_requests(status, tbl)


def staged_rows(change_id: int, action: str, offset: int = 0, limit: int | None = None) -> Iterator[tuple]:
    """(key, line, before, after, warning) of one kind of staged change in upload order: a page, or
    all (`limit` None). None at all once the request's rows were purged (`ChangeRequest.rows_purged_at`)."""
    if limit is None:
        return store.changes.pending_all(change_id, action)
    return iter(store.changes.pending_page(change_id, action, offset, limit))


REVIEW_SHOWS = {"modified": "modify", "added": "add", "deleted": "delete", "flagged": None}


@dataclass
class ReviewPage:
    """One page of a request's staged rows as the review page filters them, and how many match in all.

    rows: (key, line, before, after, warning, action)."""

    rows: list[tuple]
    total: int


def review_rows(
    change: ChangeRequest, show: str, offset: int, limit: int, column: str | None = None, q: str | None = None
) -> ReviewPage:
    """Staged rows of one kind (`show`: modified, added, deleted, or flagged: those with a warning),
    those changing `column` (modifications), whose key contains `q` (any case), in upload order.

    The total comes from the request's stored counts where they answer it (column_counts, kept
    when the rows change), else from a count of the request's rows.
    """
    action = REVIEW_SHOWS[show]
    flagged = show == "flagged"
    column = column if action == "modify" else None
    rows = store.changes.pending_page(change.id, action, offset, limit, column=column, q=q, flagged=flagged)
    if not q and not flagged and column is None:
        total = {"add": change.added, "modify": change.modified, "delete": change.deleted}[action]  # type: ignore[index]
    elif not q and not flagged:
        total = change.column_count_map.get(column or "", 0)
    else:
        total = store.changes.pending_count(change.id, action, column=column, q=q, flagged=flagged)
    return ReviewPage(rows, total)


def flagged_count(change_id: int) -> int:
    """How many staged rows carry a warning (an undo of a later approval)."""
    return store.changes.pending_count(change_id, None, flagged=True)


def diff_csv(change_id: int) -> tuple[str, Iterator[bytes]]:
    """(file name, chunks) of a request's staged changes in the tabular diff format (files/diff_csv.py)."""
    change = get_request(change_id)
    names = change.field_names

    def rows() -> Iterator[tuple[str, list[str] | None, list[str] | None]]:
        for action in ("modify", "add", "delete"):
            for _, _, before, after, _ in store.changes.pending_all(change_id, action):
                yield (
                    action,
                    unpack(before) if before is not None else None,
                    unpack(after) if after is not None else None,
                )

    return f"change-{change_id}-diff.csv", files.diff_csv.diff_csv(names, rows())


def conflicts(change_id: int, offset: int = 0, limit: int | None = None) -> list[MergeConflict]:
    """A request's open merge conflicts, in key order."""
    return store.changes.conflicts_of(change_id, offset, limit)


# --- resolving conflicts ---------------------------------------------------------------------

TAKES = ("yours", "theirs")


def resolve(change_id: int, user: str, resolutions: Sequence[Mapping[str, Any]]) -> list[MergeConflict]:
    """Settle conflicts of one's own pending request, each by taking "yours" (the file's) or
    "theirs" (the table's: that cell or row leaves the request). Returns the conflicts left.

    All or nothing: a resolution naming no open conflict refuses the whole call (Unprocessable).
    """
    change = get_request(change_id)
    if change.submitter != user:
        raise Forbidden("Only the person who uploaded a change request can resolve its conflicts.")
    _require_pending(change)
    open_ = {(c.key, c.column): c for c in store.changes.conflicts_of(change_id)}
    chosen = []
    for r in resolutions:
        where = (r.get("key"), r.get("column"))
        if r.get("take") not in TAKES:
            raise Unprocessable(f"take must be 'yours' or 'theirs' (key {where[0]!r}, column {where[1]!r}).")
        if where not in open_:
            what = f"column {where[1]!r} of row {where[0]!r}" if where[1] else f"row {where[0]!r}"
            raise Unprocessable(f"{what} is not an open conflict of change request #{change_id}.", [str(where[0])])
        chosen.append((open_.pop(where), r["take"]))
    for conflict, take in chosen:
        _settle(change, conflict, take)
        store.audit.write(
            change_id,
            "resolve",
            change.submitter,
            user,
            change.created_at,
            key=conflict.key,
            note=f"{conflict.column or 'whole row'}: kept {'mine' if take == 'yours' else 'theirs'}",
        )
        store.changes.delete_conflict(conflict)
    db.session.flush()
    store.changes.recount(change_id)
    db.session.commit()
    return store.changes.conflicts_of(change_id)


def _settle(change: ChangeRequest, conflict: MergeConflict, take: str) -> None:
    """Stage what one resolution asks for: the file's value, or nothing (the table's stays)."""
    names, key = change.field_names, conflict.key
    row = store.changes.staged_row(change.id, key)
    if take == "theirs" and row is None:
        return  # the table's value stands and nothing of this row is staged
    if conflict.column is not None:  # a cell: the staged row keeps theirs in it until yours is taken
        before = row.before if row is not None else _record_now(change.tbl, key)
        after = unpack(row.after if row is not None else before)
        if take == "yours":
            after[names.index(conflict.column)] = conflict.yours or ""
        after_record = pack(after)
        store.changes.put_staged_row(
            change.id,
            key,
            "modify" if after_record != before else None,
            before,
            after_record,
            conflict.line,
            names=names,
        )
    elif take == "theirs":
        store.changes.put_staged_row(change.id, key, None, None, None, names=names)
    elif conflict.yours is None:  # you deleted a row others changed
        store.changes.put_staged_row(
            change.id, key, "delete", _record_now(change.tbl, key), None, conflict.line, names=names
        )
    elif conflict.theirs is None:  # you changed a row others deleted: it comes back as yours
        store.changes.put_staged_row(change.id, key, "add", None, conflict.yours, conflict.line, names=names)
    else:  # both added the key
        store.changes.put_staged_row(
            change.id, key, "modify", _record_now(change.tbl, key), conflict.yours, conflict.line, names=names
        )


def _record_now(tbl: int, key: str) -> str:
    found = store.table.record(tbl, key)
    if found is None:
        raise Conflict(
            f"Row {key!r} was deleted by an approval after this conflict was found; withdraw the request and"
            " upload again from a fresh download.",
            [key],
        )
    return found[0]


# --- deciding --------------------------------------------------------------------------------


def approve(change_id: int, admin: str, *, confirmed: int | None = None, ask_over: int | None = None) -> int:
    """Apply every staged change in one transaction; return the new database version.

    A request of an upload spanning tables is applied with the others of that upload (`batch`),
    all in the one transaction and version: all tables or none.

    With `ask_over` (the review page: CONFIRM_APPROVAL_OVER), a request of more changes than that
    is applied only when `confirmed` is its exact number of changes (ConfirmApproval otherwise).

    Exactly one of several concurrent approvals wins (the status update is conditional). A request
    that a later approval made stale is merged again with the table as it is now: cells nobody else
    touched apply, the newer cells stay; when both changed the same thing, it is sent back with the
    new conflicts (Stale, nothing applied, still pending). References to rows that are not there
    once everything is applied (foreignKeys) refuse it too (StillReferenced).
    """
    members = batch_of(get_request(change_id))
    for member in members:
        _require_decider(member, admin)
        _require_pending(member)
    total = sum(m.added + m.modified + m.deleted for m in members)
    if ask_over is not None and total > ask_over and confirmed != total:
        added, modified, deleted = (sum(getattr(m, k) for m in members) for k in ("added", "modified", "deleted"))
        raise ConfirmApproval(
            f"Confirm that you want to apply all {total:,} changes ({added:,} added, {modified:,}"
            f" modified, {deleted:,} deleted): tick the box next to the Approve button. Nothing was applied."
        )
    for member in members:
        if member.conflicts:
            keys = sorted({c.key for c in store.changes.conflicts_of(member.id)})
            raise Unresolved(
                f"Change request #{member.id} has {member.conflicts} unresolved conflict(s) (keys: {_listed(keys)});"
                " its submitter resolves them first (keep mine / keep theirs), or withdraws it.",
                keys,
            )
    merged_at = {m.id: _merged_at(m) for m in members}  # before merging again at approval moves it
    try:
        for member in members:
            if not store.changes.claim_pending(member.id, "approved", admin):
                db.session.rollback()
                raise NotPending(f"Change request #{member.id} was decided by someone else a moment ago.")
        version = store.table.bump_version(sorted({m.tbl for m in members}))
        for member in members:
            _apply(member, admin, version)
        _refuse_dangling_references(members, merged_at)
        _prune_history(version)
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.exception("approval of change request %s failed", change_id)
        raise ApplyFailed(
            f"Approval failed and nothing was applied; the request is still pending. Database said: {_short(exc)}"
        ) from exc
    db.session.expire_all()
    return version


def batch_of(change: ChangeRequest) -> list[ChangeRequest]:
    """The requests of the upload a request belongs to (itself alone, unless the upload spanned tables)."""
    if change.batch is None:
        return [change]
    return store.changes.batch_members(change.batch)


def _apply(change: ChangeRequest, admin: str, version: int) -> None:
    """Write one request's staged rows as part of approval `version` (merged again when stale)."""
    merged_version = change.merged_version if change.merged_version is not None else change.base_version
    # Staged rows can only be stale if another request was approved since they were merged.
    if version != merged_version + 1:
        found = _merge_again(change)
        if found:
            db.session.rollback()
            keys = _send_back(change.id)
            raise Stale(
                f"Not applied: a later approval changed the same cells or rows as change request #{change.id} "
                f"(keys: {_listed(keys)}). It stays pending with these conflicts: its submitter "
                "keeps their values or the newer ones, then it can be approved.",
                keys,
            )
        db.session.flush()
        store.changes.recount(change.id, merged_version=version - 1)
        _refuse_unique_clashes(change)
    store.changes.apply_pending(change.tbl, change.id, version)
    store.audit.write(change.id, "approve", change.submitter, admin, change.created_at, version=version)
    store.changes.set_applied_version(change.id, version)


def _refuse_dangling_references(members: Sequence[ChangeRequest], merged_at: Mapping[int, int]) -> None:
    """StillReferenced (rolled back) when, with the requests applied, a row refers to a key its
    referenced table no longer has: a deleted row other rows still refer to, or a row added or
    changed to refer to a key deleted since the upload, by an approval or by another request of
    the batch (foreignKeys in schema.json). Read after applying, so every table is as the approval
    leaves it. The upload checked the added and changed rows already: they are checked again only
    when a referenced table lost rows since (`merged_at`: the version each request was merged with),
    which a million additions would otherwise pay for with a second pass (docs/PERFORMANCE.md)."""
    package = tables.package()
    deleting = {m.tbl for m in members if m.deleted}
    for change in members:
        ref = tables.of_request(change)
        referred_by = package.references_to(ref.name) if change.deleted else []
        deleted = {key for key, *_ in store.changes.pending_all(change.id, "delete")} if referred_by else set()
        referring = [
            references.Referring(
                t.name, fk.field, t.schema.names.index(fk.field), store.table.rows(tables.get(t.name).id)
            )
            for t, fk in referred_by
        ]
        found = references.referencing_rows(deleted, referring)
        if found.total:
            db.session.rollback()
            raise StillReferenced(
                f"Not applied: {found.message(ref.name)}. Change or delete those rows first, or keep these;"
                " the request stays pending.",
                sorted({r.value for r in found.rows}),
            )
        targets = {tables.get(fk.resource).id for fk in ref.spec.foreign_keys}
        if targets & deleting or any(store.history.deleted_since(t, merged_at[change.id]) for t in targets):
            staged = _staged_diff(change.id)
            dangling = references.check_references(ref.spec, staged, lambda name: store.table.keys(tables.get(name).id))
            if dangling:
                db.session.rollback()
                shown = "; ".join(f"{d.key}: {d.message}" for d in dangling[:5])
                raise StillReferenced(
                    f"Not applied: rows of this request refer to rows deleted since it was uploaded ({shown})."
                    " The request stays pending; withdraw it and upload again from a fresh download.",
                    sorted({d.key for d in dangling}),
                )


def _staged_diff(change_id: int) -> diff.Diff:
    """A request's staged additions, modifications and deletions as a diff.Diff."""
    return diff.Diff(
        added=[diff.Row(line, key, after) for key, line, _, after, _ in store.changes.pending_all(change_id, "add")],
        modified=[
            diff.Modified(line, key, b, a) for key, line, b, a, _ in store.changes.pending_all(change_id, "modify")
        ],
        deleted=[(key, before) for key, _, before, _, _ in store.changes.pending_all(change_id, "delete")],
    )


def _prune_history(version: int) -> None:
    """Keep only the last HISTORY_KEEP_VERSIONS versions' row changes (when set), never past the base
    of a pending request: they are what the pending requests merge against."""
    keep = current_app.config.get("HISTORY_KEEP_VERSIONS")
    if not keep:
        return
    oldest = version - keep
    pending_base = store.changes.oldest_pending_base()
    if pending_base is not None:
        oldest = min(oldest, pending_base)
    if oldest > tables.database().history_from:
        store.history.prune(oldest)


def _merge_again(change: ChangeRequest) -> list[merge.Conflict]:
    """Merge the staged rows a later approval made stale with the table now (base: the row they
    were staged against); the clean merges are written, the conflicts returned."""
    names, found = change.field_names, []
    for _, key, _, line, before, after, current in store.changes.stale_rows(change.tbl, change.id, _merged_at(change)):
        merged = merge.merge_row(key, before, current, after, names)
        found.extend(merged.conflicts)
        store.changes.put_staged_row(change.id, key, merged.action, merged.before, merged.after, line, names=names)
    return found


def _merged_at(change: ChangeRequest) -> int:
    """The table version a request's staged rows were merged with (their `before`)."""
    return change.merged_version if change.merged_version is not None else change.base_version


def _send_back(change_id: int) -> list[str]:
    """After a refused approval: merge again in a transaction of its own and keep the conflicts; their keys."""
    change = get_request(change_id)
    lines = {key: line for _, key, _, line, *_ in store.changes.stale_rows(change.tbl, change_id, _merged_at(change))}
    found = _merge_again(change)
    store.changes.add_conflicts(change_id, found, lines)
    db.session.flush()
    store.changes.recount(change_id, merged_version=tables.database().version)
    db.session.commit()
    return sorted({c.key for c in found})


def _listed(keys: Sequence[str], most: int = 20) -> str:
    return ", ".join(keys[:most]) + (" …" if len(keys) > most else "")


def _refuse_unique_clashes(change: ChangeRequest) -> None:
    """UniqueClash (rolled back) when the staged rows repeat a `unique` value that a later approval added."""
    change_id, ref = change.id, tables.of_request(change)
    schema = ref.schema
    if not schema.unique_indexes:
        return
    _, current, _ = store.table.read_current(ref.id)
    staged = _staged_diff(change_id)
    clashes = check_unique(schema, current, staged)
    if clashes:
        db.session.rollback()
        shown = "; ".join(f"line {line}, {column}: {message}" for line, column, message, _ in clashes[:5])
        raise UniqueClash(
            f"Not applied: a later approval gave other rows values this request also uses in unique columns ({shown}). "
            "The request stays pending; the submitter can withdraw it and upload again from a fresh download.",
        )


def reject(change_id: int, admin: str, reason: str) -> None:
    """Close a pending request (with the others of its upload) without applying it; the reason
    (required) is kept and audited."""
    for member in batch_of(get_request(change_id)):
        _require_decider(member, admin)
    if not reason.strip():
        raise MissingReason("Say why the request is rejected, so the submitter knows what to fix.")
    _close(change_id, "rejected", admin, reason.strip(), "reject")


def withdraw(change_id: int, user: str) -> None:
    """The submitter takes back their own pending request (with the others of its upload)."""
    change = get_request(change_id)
    if change.submitter != user:
        raise Forbidden("Only the person who uploaded a change request can withdraw it.")
    _close(change_id, "withdrawn", user, None, "withdraw")


def _close(change_id: int, status: str, user: str, reason: str | None, action: str) -> None:
    """Decide a pending request (and the others of its upload) without applying it, with an audit
    entry each, in one commit."""
    members = batch_of(get_request(change_id))
    for member in members:
        _require_pending(member)
    for member in members:
        if not store.changes.claim_pending(member.id, status, user, reason):
            db.session.rollback()
            raise NotPending(f"Change request #{member.id} was decided by someone else a moment ago.")
        approver = user if action == "reject" else None
        store.audit.write(member.id, action, member.submitter, approver, member.created_at, note=reason)
    db.session.commit()
    db.session.expire_all()


def _require_decider(change: ChangeRequest, user: str) -> None:
    """Forbidden unless `user` is an admin or an approver of the request's table (schema.json)."""
    table = tables.of_request(change)
    if not accounts.may_decide(user, table.spec.approvers):
        allowed = ", ".join(table.spec.approvers)
        raise Forbidden(
            f"Only admins{' and the approvers of ' + repr(table.name) + ' (' + allowed + ')' if allowed else ''}"
            " can approve or reject changes to this table."
        )


def _require_pending(change: ChangeRequest) -> None:
    if change.status != "pending":
        raise NotPending(f"Change request #{change.id} is {change.status}, not pending; nothing was done.")


def _short(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]


# --- reverting an approved request -----------------------------------------------------------


def revert(change_id: int, user: str) -> StageResult:
    """Stage the inverse of an approved request as a new pending request, merged with the table now
    (of an upload spanning tables: the inverse of each of its requests, decided together).

    For each row it changed: base = the row right after it, yours = the row before it, theirs =
    the row now. Cells changed again since are conflicts, never silently overwritten; untouched
    cells of the same rows revert cleanly.
    """
    _check_pending_quota(user)  # a revert is a pending request like an upload's (and copies rows)
    undone = get_request(change_id)
    access.require_edit_all((tables.of_request(m).name for m in batch_of(undone)), access.person(user))
    if undone.status != "approved" or undone.applied_version is None:
        raise NotPending(f"Change request #{change_id} is {undone.status}: only an approved request can be reverted.")
    state = tables.database()
    if undone.applied_version <= state.history_from:
        raise Conflict(
            f"The history of change request #{change_id} (version {undone.applied_version}) was pruned"
            f" (HISTORY_KEEP_VERSIONS keeps versions from {state.history_from}); it cannot be reverted."
        )
    inverses = [(member, *_inverse(member)) for member in batch_of(undone)]
    changing = [(member, result, found, lines) for member, result, found, lines in inverses if result.changed or found]
    summary = {k: sum(_summary(r, len(f))[k] for _, r, f, _ in inverses) for k in SUMMARY_KEYS}
    if not changing:
        return StageResult(None, undone.applied_version, summary, "")
    members: list[ChangeRequest] = []
    for member, result, found, lines in changing:
        ref = tables.of_request(member)
        change = store.changes.add_request(
            tbl=ref.id,
            batch=members[0].id if members else None,
            submitter=user,
            mode="partial",
            comment=f"Revert #{member.id}: {member.comment}".strip()[:2000],
            filename="",
            encoding="",
            delimiter="",
            base_version=member.applied_version,
            base_source="revert",
            merged_version=state.version,
            fields=json.dumps(list(ref.schema.names)),
            warnings="[]",
            reverts=member.id,
            **_summary(result, len(found)),
        )
        change.column_counts = json.dumps(store.changes.stage_rows(change.id, result, ref.schema.names))
        store.changes.add_conflicts(change.id, found, lines)
        members.append(change)
    if len(members) > 1:
        members[0].batch = members[0].id
    db.session.commit()
    first = members[0]
    return StageResult(first, first.base_version, summary, "", [], members if len(members) > 1 else [])


def _inverse(undone: ChangeRequest) -> tuple[diff.Diff, list[merge.Conflict], dict[str, int]]:
    """The rows that undo an approved request, merged with its table now: (changes, conflicts,
    their lines); UniqueClash when undoing would repeat a `unique` value the table has now."""
    ref = tables.of_request(undone)
    schema = ref.schema
    names = schema.names
    current = store.changes.current_records_of(ref.id, undone.id)
    result, found, lines = diff.Diff(), [], {}
    for action in ACTIONS:
        for key, line, before, after, _ in store.changes.pending_all(undone.id, action):
            after_it = history.current_form(after, undone.fields, names)
            before_it = history.current_form(before, undone.fields, names)
            merged = merge.merge_row(key, after_it, current.get(key), before_it, names)
            found.extend(merged.conflicts)
            if merged.conflicts:
                lines[key] = line
            if merged.action == "add":
                result.added.append(diff.Row(line or 0, key, merged.after))  # type: ignore[arg-type]
            elif merged.action == "modify":
                result.modified.append(diff.Modified(line or 0, key, merged.before, merged.after))  # type: ignore[arg-type]
            elif merged.action == "delete":
                result.deleted.append((key, merged.before))  # type: ignore[arg-type]
    if schema.unique_indexes and result.changed:
        _, table_now, _ = store.table.read_current(ref.id)
        clashes = check_unique(schema, table_now, result)
        if clashes:
            raise UniqueClash(
                "Cannot revert: " + "; ".join(f"{column}: {message}" for _, column, message, _ in clashes[:5]),
            )
    return result, found, lines
