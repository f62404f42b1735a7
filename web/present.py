"""How requests, staged rows, audit entries and downloads are shown: one place, shared by the pages and the API."""

from __future__ import annotations

import datetime as dt
import io
import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, send_file, stream_with_context

import history
from diff import changed_fields
from files import xlsx
from models import ChangeRequest, ErrorReport, MergeConflict
from records import as_dict, unpack
from schema import Schema

# The three kinds of staged change: their names in the API and on the review page → stored action.
KINDS = {"added": "add", "modified": "modify", "deleted": "delete"}


def iso(value: dt.datetime | None) -> str | None:
    """A naive UTC datetime → ISO 8601 with Z."""
    return None if value is None else value.isoformat() + "Z"


# --- change requests -------------------------------------------------------------------------


def stage_json(result) -> tuple[dict[str, Any], int]:
    """The answer to an upload or a revert (changes.StageResult) and its status: 201 staged, 200 nothing to do."""
    body = {
        "id": result.change.id if result.change else None,
        "status": "pending" if result.change else "unchanged",
        "base_version": result.base_version,
        "summary": result.summary,
        "encoding": result.encoding,
        "warnings": result.warnings,
    }
    return body, 201 if result.change else 200


def change_json(cr: ChangeRequest) -> dict[str, Any]:
    """A change request's facts for the API (without its rows)."""
    return {
        "id": cr.id,
        "status": cr.status,
        "mode": cr.mode,
        "submitter": cr.submitter,
        "comment": cr.comment,
        "filename": cr.filename,
        "encoding": cr.encoding,
        "base_version": cr.base_version,
        "base_source": cr.base_source or None,
        "merged_version": cr.merged_version,
        "summary": cr.summary,
        "warnings": cr.warning_list,
        "created_at": iso(cr.created_at),
        "decided_by": cr.decided_by,
        "decided_at": iso(cr.decided_at),
        "reason": cr.reason,
        "applied_version": cr.applied_version,
        "reverts": cr.reverts,
        "rows_purged": cr.rows_purged_at is not None,
        "rows_purged_at": iso(cr.rows_purged_at),
    }


def warning_groups(cr: ChangeRequest) -> dict[str, list[str]]:
    """A request's warnings for the review page: those about undoing approvals, and spreadsheet damage."""
    messages = cr.warning_list
    return {
        "undo": [m for m in messages if history.is_undo_warning(m)],
        "damage": [m for m in messages if not history.is_undo_warning(m)],
    }


def row_dicts(change: ChangeRequest, schema: Schema, action: str, rows: Iterable[tuple]) -> Iterator[dict[str, Any]]:
    """Staged rows (key, line, before, after, …) → API objects: added/deleted rows, or modified {key, before, after, changed}."""
    names = change.field_names
    for key, line, before, after, *_ in rows:
        if action == "modify":
            yield {
                "key": key,
                "line": line,
                "before": schema.to_dict(before, names),
                "after": schema.to_dict(after, names),
                "changed": changed_fields(unpack(before), unpack(after), names),
            }
        else:
            yield schema.to_dict(after if action == "add" else before, names)


@dataclass
class CellView:
    """One cell of a staged row on the review page."""

    name: str
    label: str
    old: str | None
    new: str | None
    changed: bool


def cell_views(schema: Schema, names: list[str], before: str | None, after: str | None) -> list[CellView]:
    """Cells of one staged row for the review page, flagged where before and after differ."""
    old = as_dict(before, names) if before is not None else {}
    new = as_dict(after, names) if after is not None else {}
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


def conflict_json(conflict: MergeConflict, schema: Schema, names: list[str]) -> dict[str, Any]:
    """{"key", "column", "base", "theirs", "yours"}: cell values, or whole rows (column null), null where absent."""
    if conflict.column is None:
        values = [
            schema.to_dict(v, names) if v is not None else None
            for v in (conflict.base, conflict.theirs, conflict.yours)
        ]
    else:
        field = next((f for f in schema.fields if f.name == conflict.column), None)
        values = [
            None if v is None else field.to_json(v) if field is not None else v
            for v in (conflict.base, conflict.theirs, conflict.yours)
        ]
    return {"key": conflict.key, "column": conflict.column, "base": values[0], "theirs": values[1], "yours": values[2]}


@dataclass
class ConflictView:
    """A conflict as the review page shows it: a cell's three values, or a row's as `name: value; …`."""

    key: str
    column: str | None
    base: str | None
    theirs: str | None
    yours: str | None


def conflict_views(conflicts: Iterable[MergeConflict], names: list[str]) -> list[ConflictView]:
    def shown(value: str | None, whole_row: bool) -> str | None:
        if value is None or not whole_row:
            return value
        return "; ".join(f"{n}: {v}" for n, v in as_dict(value, names).items() if v)

    return [
        ConflictView(c.key, c.column, *(shown(v, c.column is None) for v in (c.base, c.theirs, c.yours)))
        for c in conflicts
    ]


# --- versions --------------------------------------------------------------------------------


def version_json(cr: ChangeRequest) -> dict[str, Any]:
    """One version: the approved request that made it."""
    return {
        "version": cr.applied_version,
        "change_id": cr.id,
        "comment": cr.comment,
        "submitter": cr.submitter,
        "approver": cr.decided_by,
        "approved_at": iso(cr.decided_at),
        "summary": {"added": cr.added, "modified": cr.modified, "deleted": cr.deleted},
    }


def version_diff_rows(schema: Schema, kind: str, rows: Iterable[tuple]) -> list[dict[str, Any]]:
    """A version diff's (key, before, after) rows in the shapes of a change request's detail."""
    names = list(schema.names)
    if kind == "modified":
        return [
            {
                "key": key,
                "before": schema.to_dict(before),
                "after": schema.to_dict(after),
                "changed": changed_fields(unpack(before), unpack(after), names),
            }
            for key, before, after in rows
        ]
    return [schema.to_dict(after if kind == "added" else before) for _, before, after in rows]


def blame_json(key: str, blamed: dict[str, history.Version], schema: Schema) -> dict[str, Any]:
    """{"key", "fields": {name: {"version", "change_id", "submitter", "approver", "at"} or null}}."""
    fields = {}
    for name in schema.names:
        v = blamed.get(name)
        fields[name] = (
            None
            if v is None
            else {
                "version": v.version,
                "change_id": v.change_id,
                "submitter": v.request.submitter if v.request else None,
                "approver": v.request.decided_by if v.request else None,
                "at": iso(v.request.decided_at) if v.request else None,
            }
        )
    return {"key": key, "fields": fields}


# --- audit -----------------------------------------------------------------------------------


def audit_dicts(entries: Iterable, schema: Schema) -> list[dict[str, Any]]:
    """Audit rows (from history.audit) → API objects with before/after as field → value."""
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
                "submitted_at": iso(e.submitted_at),
                "created_at": iso(e.created_at),
                "version": e.version,
                "note": e.note,
            }
        )
    return out


# --- downloads -------------------------------------------------------------------------------


def download_name(name: str) -> str:
    """A file name fit for a Content-Disposition header: no control characters (a CR or LF would
    end the header), no quotes or backslashes.

    >>> download_name('a"b\\\\c\\r\\nSet-Cookie: x.csv')
    'abcSet-Cookie: x.csv'
    """
    cleaned = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '"\\')
    return cleaned.strip() or "download"


def csv_response(version: int | None = None) -> Response:
    """The whole table (as of `version`) as a streamed CSV download named after its version."""
    download = history.csv_download(version)
    response = _attachment(Response(download.chunks, mimetype="text/csv"), download.filename)
    response.headers["X-Dataset-Version"] = str(download.version)
    response.call_on_close(download.close)
    return response


def xlsx_response(version: int | None = None) -> Response:
    """The whole table (as of `version`) as an Excel workbook named after its version."""
    download = history.xlsx_download(version)
    response = send_file(
        download.file, xlsx.MIMETYPE, as_attachment=True, download_name=download_name(download.filename)
    )
    response.headers["X-Dataset-Version"] = str(download.version)
    return response


def csv_stream(filename: str, chunks: Iterable[bytes]) -> Response:
    """Streamed CSV chunks made from the request's database session, as a download named `filename`
    (the request stays open while they are made; the table's download reads a snapshot of its own)."""
    return _attachment(Response(stream_with_context(chunks), mimetype="text/csv"), filename)


def _attachment(response: Response, filename: str) -> Response:
    response.headers["Content-Disposition"] = f'attachment; filename="{download_name(filename)}"'
    return response


def error_file_response(report: ErrorReport) -> Response:
    """A refused upload with its `errors` column, as a download."""
    mimetype = xlsx.MIMETYPE if report.filename.endswith(".xlsx") else "text/csv"
    name = download_name(report.filename)
    return send_file(io.BytesIO(report.content), mimetype, as_attachment=True, download_name=name)
