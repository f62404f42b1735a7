"""The change-request workflow, the domain API both front ends call: submit an upload (or refuse it
with an error file), read requests, approve, reject, withdraw. Owns every transaction it opens.

The pages, the JSON API and the CLI turn its results and exceptions (errors.DomainError, each with
the HTTP status that fits) into pages or JSON; nothing here knows about HTTP.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

import diff
import store.accounts
import store.audit
import store.changes
import store.table
import tables
from errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from files import damage, errorfile
from files.formulas import unescaped_as_is, unescaper
from files.problems import FileProblems, TooLarge
from files.upload import open_upload
from files.xlsx import ENCODING as WORKBOOK_ENCODING
from models import ChangeRequest, ErrorReport, db, utcnow
from records import SEP
from schema import Schema, show

log = logging.getLogger(__name__)
MODES = ("full", "partial")
ACTIONS = ("add", "modify", "delete")
ERROR_FILE_DAYS = 1


class NotPending(Conflict):
    """The request was already decided (or withdrawn); nothing was done."""


class Stale(Conflict):
    """Rows this request touches changed after it was uploaded; approving would overwrite them."""


class UniqueClash(Conflict):
    """Applying would give two rows the same value in a `unique` column (a later approval added it)."""


class MissingReason(Unprocessable):
    """A rejection needs a reason the submitter can act on."""


class ApplyFailed(DomainError):
    """The database refused the approval; everything was rolled back."""

    status = 500


class ConfirmDeletions(Unprocessable):
    """A full upload would delete many rows; the uploader must confirm the exact number."""

    def __init__(self, message: str, deletions: int):
        super().__init__(message)
        self.deletions = deletions


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


# --- submitting an upload --------------------------------------------------------------------


def submit(
    stream: IO[bytes],
    *,
    submitter: str,
    filename: str = "",
    mode: str = "full",
    comment: str = "",
    confirm_deletions: int | None = None,
    sheet: str | None = None,
) -> StageResult:
    """Diff an uploaded file against the table and stage the differences as one pending request.

    A file with problems is refused (Refused, nothing staged) and kept for its owner with an
    `errors` column; a file larger than the app reads is refused (Refused, status 413) without
    one; a full upload deleting many rows must be confirmed (ConfirmDeletions). Someone with
    MAX_PENDING_PER_USER pending requests gets TooManyPending before the file is read.
    """
    _check_pending_quota(submitter)
    filename = clean_filename(filename)
    try:
        return _stage(stream, submitter, filename, mode, comment, confirm_deletions, sheet)
    except TooLarge as exc:
        db.session.rollback()
        raise Refused(exc, None) from None
    except FileProblems as exc:
        db.session.rollback()
        raise Refused(exc, _keep_error_file(stream, exc, submitter, filename, sheet)) from None
    except DomainError:
        db.session.rollback()
        raise


def _stage(
    stream: IO[bytes],
    submitter: str,
    filename: str,
    mode: str,
    comment: str,
    confirm_deletions: int | None,
    sheet: str | None,
) -> StageResult:
    if mode not in MODES:
        raise DomainError(f"mode must be 'full' or 'partial', not {mode!r}")
    schema = tables.schema()
    upload = open_upload(stream, schema, sheet, current_app.config["MAX_UPLOAD_ROWS"])
    version, current = store.table.read_current()
    problems = upload.problems
    escaped = upload.encoding != WORKBOOK_ENCODING  # no ' escaping in xlsx
    parse = schema.row_parser(
        problems.add, decimal_comma=upload.decimal_comma, clean=unescaper(schema) if escaped else None
    )
    with _gc_paused():
        result = diff.compare_cells(
            current,
            upload.rows,
            schema.key_index,
            parse,
            full=mode == "full",
            sep=SEP,
            trust_raw=unescaped_as_is if escaped else None,
        )
    for dup in result.duplicates:
        problems.add(dup.line, schema.key, f"duplicate key {dup.key!r}: it is also on line {dup.first_line}")
    for line, column, message in check_unique(schema, current, result):
        problems.add(line, column, message)
    if problems.total:
        problems.sort(key=lambda p: p.line or 0)
        problems.raise_if_any()
    summary = {
        "added": len(result.added),
        "modified": len(result.modified),
        "deleted": len(result.deleted),
        "unchanged": result.unchanged,
    }
    if not result.changed:
        return StageResult(None, version, summary, upload.encoding)
    header_only = mode == "full" and not (result.added or result.modified or result.unchanged)
    _guard_mass_deletion(
        len(result.deleted), len(current), confirm_deletions, current_app.config["MASS_DELETE_PERCENT"], header_only
    )
    warnings = damage.warnings(result, schema)
    change = store.changes.add_request(
        submitter=submitter,
        mode=mode,
        comment=comment.strip(),
        filename=filename,
        encoding=upload.encoding,
        delimiter=upload.delimiter,
        base_version=version,
        fields=json.dumps(list(schema.names)),
        warnings=json.dumps(warnings),
        **summary,
    )
    store.changes.stage_rows(change.id, result)
    db.session.commit()
    return StageResult(change, version, summary, upload.encoding, warnings)


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


def clean_filename(name: str) -> str:
    """An uploaded file's name without control characters (a CR or LF would break the headers of
    its error file's download), at most 255 characters.

    >>> clean_filename("evil\\r\\nSet-Cookie: x.csv")
    'evilSet-Cookie: x.csv'
    """
    return "".join(c for c in name if unicodedata.category(c)[0] != "C")[:255]


def check_unique(schema: Schema, current: dict[str, str], result: diff.Diff) -> list[tuple[int, str, str]]:
    """(line, column, message) for each added or changed row whose value in a `unique` column
    another row of the table would have after `result` is applied."""
    found = []
    for index in schema.unique_indexes:
        name = schema.names[index]
        for c in diff.unique_clashes(current, result, index):
            where = (
                f"row {c.other_key!r} (line {c.other_line})" if c.other_line else f"row {c.other_key!r} of the table"
            )
            found.append((c.line, name, f"{show(c.value)} is also the {name} of {where}; each row needs its own"))
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
    deletions: int, table_rows: int, confirmed: int | None, percent: int, header_only: bool
) -> None:
    """Refuse (ConfirmDeletions) a header-only file or more than `percent`% deletions unless exactly confirmed."""
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
    raise ConfirmDeletions(
        f"{what}{wrong} If that is intended, confirm the deletion of exactly {deletions:,} rows and upload again; "
        "if not, check that you uploaded the whole table (or choose a partial upload).",
        deletions,
    )


# --- error files: a refused upload with an `errors` column, for its owner --------------------


def _keep_error_file(
    stream: IO[bytes], refused: FileProblems, owner: str, filename: str, sheet: str | None
) -> int | None:
    """Keep the refused upload with an `errors` column for its owner (a day, and only the newest
    ERROR_FILES_PER_USER of theirs); return its id, or None when the file is not a table to
    annotate (or its owner keeps none)."""
    keep = current_app.config["ERROR_FILES_PER_USER"]
    if keep < 1:
        return None
    annotated = errorfile.annotate(stream, tables.schema(), refused.problems, refused.total, sheet)
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


def list_requests(status: str | None, offset: int, limit: int) -> tuple[list[ChangeRequest], int]:
    """(requests newest first, how many there are in all) of one status, or of every status (None)."""
    return store.changes.list_requests(status, offset, limit), store.changes.count_requests(status)


def staged_rows(change_id: int, action: str, offset: int = 0, limit: int | None = None) -> Iterator[tuple]:
    """(key, line, before, after) of one kind of staged change in upload order: a page, or all (`limit` None).

    None at all once the request's rows were purged (`ChangeRequest.rows_purged_at`)."""
    if limit is None:
        return store.changes.pending_all(change_id, action)
    return iter(store.changes.pending_page(change_id, action, offset, limit))


# --- deciding --------------------------------------------------------------------------------


def approve(change_id: int, admin: str) -> int:
    """Apply every staged change in one transaction; return the new table version.

    Exactly one of several concurrent approvals wins (the status update is conditional); a
    request whose rows changed since its upload is refused as Stale and stays pending.
    """
    change = get_request(change_id)
    _require_pending(change)
    submitter, submitted_at, base_version = change.submitter, change.created_at, change.base_version
    try:
        if not store.changes.claim_pending(change_id, "approved", admin):
            db.session.rollback()
            raise NotPending(f"Change request #{change_id} was decided by someone else a moment ago.")
        version = store.table.bump_version()
        # Rows this request touches can only have changed if another request was approved since
        # its upload; then compare them (for 20,000 changes on a million rows that takes 0.3 s).
        rebased = version != base_version + 1
        conflicts = store.changes.conflicting_keys(change_id) if rebased else []
        if conflicts:
            db.session.rollback()
            shown = ", ".join(conflicts[:20]) + (" …" if len(conflicts) > 20 else "")
            raise Stale(
                f"Not applied: {len(conflicts)} row(s) this request changes were changed by a later approval "
                f"after it was uploaded (keys: {shown}). Approving would overwrite those newer edits. "
                "The request stays pending; the submitter can withdraw it and upload again from a fresh download.",
                conflicts,
            )
        if rebased:
            _refuse_unique_clashes(change_id)
        store.changes.apply_pending(change_id, version)
        store.audit.write_row_changes(change_id, version, submitter, admin, submitted_at)
        store.changes.set_applied_version(change_id, version)
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.exception("approval of change request %s failed", change_id)
        raise ApplyFailed(
            f"Approval failed and nothing was applied; the request is still pending. Database said: {_short(exc)}"
        ) from exc
    db.session.expire_all()
    return version


def _refuse_unique_clashes(change_id: int) -> None:
    """UniqueClash (rolled back) when the staged rows repeat a `unique` value that a later approval added."""
    schema = tables.schema()
    if not schema.unique_indexes:
        return
    _, current = store.table.read_current()
    staged = diff.Diff(
        added=[diff.Row(line, key, after) for key, line, _, after in store.changes.pending_all(change_id, "add")],
        modified=[diff.Modified(line, key, b, a) for key, line, b, a in store.changes.pending_all(change_id, "modify")],
        deleted=[(key, before) for key, _, before, _ in store.changes.pending_all(change_id, "delete")],
    )
    clashes = check_unique(schema, current, staged)
    if clashes:
        db.session.rollback()
        shown = "; ".join(f"line {line}, {column}: {message}" for line, column, message in clashes[:5])
        raise UniqueClash(
            f"Not applied: a later approval gave other rows values this request also uses in unique columns ({shown}). "
            "The request stays pending; the submitter can withdraw it and upload again from a fresh download.",
        )


def reject(change_id: int, admin: str, reason: str) -> None:
    """Close a pending request without applying it; the reason (required) is kept and audited."""
    if not reason.strip():
        raise MissingReason("Say why the request is rejected, so the submitter knows what to fix.")
    _close(change_id, "rejected", admin, reason.strip(), "reject")


def withdraw(change_id: int, user: str) -> None:
    """The submitter takes back their own pending request."""
    change = get_request(change_id)
    if change.submitter != user:
        raise Forbidden("Only the person who uploaded a change request can withdraw it.")
    _close(change_id, "withdrawn", user, None, "withdraw")


def _close(change_id: int, status: str, user: str, reason: str | None, action: str) -> None:
    """Decide a pending request without applying it, with its audit entry, in one commit."""
    change = get_request(change_id)
    _require_pending(change)
    if not store.changes.claim_pending(change_id, status, user, reason):
        db.session.rollback()
        raise NotPending(f"Change request #{change_id} was decided by someone else a moment ago.")
    store.audit.write_decision(
        change_id, action, change.submitter, user if action == "reject" else None, change.created_at, reason
    )
    db.session.commit()
    db.session.expire_all()


def _require_pending(change: ChangeRequest) -> None:
    if change.status != "pending":
        raise NotPending(f"Change request #{change.id} is {change.status}, not pending; nothing was done.")


def _short(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
