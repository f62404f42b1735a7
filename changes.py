"""The change-request workflow: stage an upload, approve, reject, withdraw. Owns the transaction.

Views and the API call these functions and turn their exceptions into pages or JSON; nothing
here knows about HTTP except the status each error suggests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

import damage
import diff
import errorfile
import store
import tabular
import workbook
from models import AuditEntry, ChangeRequest, ErrorReport, db, utcnow
from schema import SEP, Schema, unescaped_as_is, unpack

log = logging.getLogger(__name__)
MODES = ("full", "partial")


class ChangeError(Exception):
    """A workflow step that cannot happen; `status` is the HTTP status that fits."""

    status = 400

    def __init__(self, message: str, keys: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.keys = keys or []


class NotFound(ChangeError):
    status = 404


class Forbidden(ChangeError):
    status = 403


class NotPending(ChangeError):
    status = 409


class Stale(ChangeError):
    """Rows this request touches changed after it was uploaded; approving would overwrite them."""

    status = 409


class MissingReason(ChangeError):
    status = 422


class ApplyFailed(ChangeError):
    status = 500


class ConfirmDeletions(ChangeError):
    """A full upload would delete many rows; the uploader must confirm the exact number."""

    status = 422

    def __init__(self, message: str, deletions: int):
        super().__init__(message)
        self.deletions = deletions


@dataclass
class StageResult:
    """The outcome of an upload: the new request (None when the file changes nothing) and its counts."""

    change: ChangeRequest | None
    base_version: int
    summary: dict[str, int]
    encoding: str
    warnings: list[str] = field(default_factory=list)


def stage(
    stream: IO[bytes],
    schema: Schema,
    *,
    submitter: str,
    filename: str = "",
    mode: str = "full",
    comment: str = "",
    confirm_deletions: int | None = None,
    mass_delete_percent: int = 20,
    sheet: str | None = None,
) -> StageResult:
    """Diff an uploaded file against the table and stage the differences as one pending request.

    Raises tabular.FileProblems (nothing staged) when any row or the file itself is invalid.
    """
    if mode not in MODES:
        raise ChangeError(f"mode must be 'full' or 'partial', not {mode!r}")
    upload = tabular.open_upload(stream, schema, filename, sheet)
    version, current = store.read_current()
    problems = upload.problems
    escaped = upload.encoding != workbook.ENCODING  # no ' escaping in xlsx
    parse = schema.row_parser(
        problems.add, decimal_comma=upload.decimal_comma, clean=tabular.unescaper(schema) if escaped else None
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
    _guard_mass_deletion(len(result.deleted), len(current), confirm_deletions, mass_delete_percent, header_only)
    warnings = damage.warnings(result, schema)
    change = ChangeRequest(
        submitter=submitter,
        mode=mode,
        comment=comment.strip(),
        filename=filename[:255],
        encoding=upload.encoding,
        delimiter=upload.delimiter,
        base_version=version,
        fields=json.dumps(list(schema.names)),
        warnings=json.dumps(warnings),
        **summary,
    )
    db.session.add(change)
    db.session.flush()
    store.stage_rows(change.id, result)
    db.session.commit()
    return StageResult(change, version, summary, upload.encoding, warnings)


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


ERROR_FILE_DAYS = 1


def save_error_file(
    stream: IO[bytes],
    schema: Schema,
    refused: tabular.FileProblems,
    *,
    owner: str,
    filename: str = "",
    sheet: str | None = None,
) -> int | None:
    """Keep the refused upload with an `errors` column for its owner (a day); return its id, or
    None when the file is not a table to annotate. Deletes expired ones; commits."""
    annotated = errorfile.annotate(stream, schema, refused.problems, refused.total, sheet)
    if annotated is None:
        return None
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    db.session.execute(db.delete(ErrorReport).where(ErrorReport.created_at < utcnow() - dt.timedelta(ERROR_FILE_DAYS)))
    report = ErrorReport(
        owner=owner, filename=f"{stem or 'upload'}-errors{annotated.suffix}"[-255:], content=annotated.content
    )
    db.session.add(report)
    db.session.commit()
    return report.id


def error_file(report_id: int, user: str) -> ErrorReport:
    """An error file, for its owner only (to anyone else it does not exist)."""
    report = db.session.get(ErrorReport, report_id)
    if report is None or report.owner != user or report.created_at < utcnow() - dt.timedelta(ERROR_FILE_DAYS):
        raise NotFound(
            "There is no such error file, or it has expired (they are kept for a day). Upload the file again."
        )
    return report


def get(change_id: int) -> ChangeRequest:
    change = db.session.get(ChangeRequest, change_id)
    if change is None:
        raise NotFound(f"There is no change request #{change_id}.")
    return change


def approve(change_id: int, admin: str) -> int:
    """Apply every staged change in one transaction; return the new table version.

    Exactly one of several concurrent approvals wins (the status update is conditional); a
    request whose rows changed since its upload is refused as Stale and stays pending.
    """
    change = get(change_id)
    _require_pending(change)
    submitter, submitted_at, base_version = change.submitter, change.created_at, change.base_version
    try:
        if not store.claim_pending(change_id, "approved", admin):
            db.session.rollback()
            raise NotPending(f"Change request #{change_id} was decided by someone else a moment ago.")
        version = store.bump_version()
        # Rows this request touches can only have changed if another request was approved since
        # its upload; then compare them (for 20,000 changes on a million rows that takes 0.3 s).
        conflicts = store.conflicting_keys(change_id) if version != base_version + 1 else []
        if conflicts:
            db.session.rollback()
            shown = ", ".join(conflicts[:20]) + (" …" if len(conflicts) > 20 else "")
            raise Stale(
                f"Not applied: {len(conflicts)} row(s) this request changes were changed by a later approval "
                f"after it was uploaded (keys: {shown}). Approving would overwrite those newer edits. "
                "The request stays pending; the submitter can withdraw it and upload again from a fresh download.",
                conflicts,
            )
        store.apply_pending(change_id, version, submitter, admin, submitted_at)
        db.session.execute(
            db.update(ChangeRequest).where(ChangeRequest.id == change_id).values(applied_version=version)
        )
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.exception("approval of change request %s failed", change_id)
        raise ApplyFailed(
            f"Approval failed and nothing was applied; the request is still pending. Database said: {_short(exc)}"
        ) from exc
    db.session.expire_all()
    return version


def reject(change_id: int, admin: str, reason: str) -> None:
    """Close a pending request without applying it; the reason (required) is kept and audited."""
    if not reason.strip():
        raise MissingReason("Say why the request is rejected, so the submitter knows what to fix.")
    _decide(change_id, "rejected", admin, reason.strip(), "reject")


def withdraw(change_id: int, user: str) -> None:
    """The submitter takes back their own pending request."""
    change = get(change_id)
    if change.submitter != user:
        raise Forbidden("Only the person who uploaded a change request can withdraw it.")
    _decide(change_id, "withdrawn", user, None, "withdraw")


def _decide(change_id: int, status: str, user: str, reason: str | None, action: str) -> None:
    change = get(change_id)
    _require_pending(change)
    if not store.claim_pending(change_id, status, user, reason):
        db.session.rollback()
        raise NotPending(f"Change request #{change_id} was decided by someone else a moment ago.")
    db.session.add(
        AuditEntry(
            change_id=change_id,
            action=action,
            submitter=change.submitter,
            approver=user if action == "reject" else None,
            submitted_at=change.created_at,
            note=reason,
            version=None,
        )
    )
    db.session.commit()
    db.session.expire_all()


def _require_pending(change: ChangeRequest) -> None:
    if change.status != "pending":
        raise NotPending(f"Change request #{change.id} is {change.status}, not pending; nothing was done.")


def _short(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]


# --- reading a request's rows ----------------------------------------------------------------


def row_dicts(
    change: ChangeRequest, schema: Schema, action: str, rows: list[tuple] | Iterator[tuple]
) -> Iterator[dict[str, Any]]:
    """Staged rows (key, line, before, after) → API objects: added/deleted rows, or modified {key, before, after, changed}."""
    names = change.field_names
    for key, line, before, after in rows:
        if action == "modify":
            yield {
                "key": key,
                "line": line,
                "before": schema.to_dict(before, names),
                "after": schema.to_dict(after, names),
                "changed": diff.changed_fields(unpack(before), unpack(after), names),
            }
        else:
            yield schema.to_dict(after if action == "add" else before, names)


@dataclass
class CellView:
    name: str
    label: str
    old: str | None
    new: str | None
    changed: bool


def cell_views(schema: Schema, names: list[str], before: str | None, after: str | None) -> list[CellView]:
    """Cells of one staged row for the review page, flagged where before and after differ."""
    old = dict(zip(names, unpack(before), strict=False)) if before is not None else {}
    new = dict(zip(names, unpack(after), strict=False)) if after is not None else {}
    labels = {f.name: f.label for f in schema.fields}
    return [
        CellView(
            n,
            labels.get(n, n),
            old.get(n) if before is not None else None,
            new.get(n) if after is not None else None,
            before is not None and after is not None and old.get(n) != new.get(n),
        )
        for n in names
    ]


def audit_dicts(entries: list, schema: Schema) -> list[dict[str, Any]]:
    """Audit rows (from store.audit_page) → API objects with before/after as field → value."""
    out = []
    for e in entries:
        names = json.loads(e.fields) if e.fields else list(schema.names)
        out.append(
            {
                "id": e.id,
                "action": e.action,
                "key": e.key,
                "before": schema.to_dict(e.before, names) if e.before is not None else None,
                "after": schema.to_dict(e.after, names) if e.after is not None else None,
                "change_id": e.change_id,
                "submitter": e.submitter,
                "approver": e.approver,
                "submitted_at": _iso(e.submitted_at),
                "created_at": _iso(e.created_at),
                "version": e.version,
                "note": e.note,
            }
        )
    return out


def _iso(value: dt.datetime | None) -> str | None:
    """A naive UTC datetime → ISO 8601 with Z."""
    return None if value is None else value.isoformat() + "Z"
