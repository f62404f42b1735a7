"""How requests, staged rows, audit entries and downloads are shown: one place, shared by the pages and the API."""

from __future__ import annotations

import datetime as dt
import io
import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, send_file

import tables
from diff import changed_fields
from files import xlsx
from models import ChangeRequest, ErrorReport
from records import as_dict, unpack
from schema import Schema

# The three kinds of staged change: their names in the API and on the review page → stored action.
KINDS = {"added": "add", "modified": "modify", "deleted": "delete"}


def iso(value: dt.datetime | None) -> str | None:
    """A naive UTC datetime → ISO 8601 with Z."""
    return None if value is None else value.isoformat() + "Z"


# --- change requests -------------------------------------------------------------------------


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
        "summary": cr.summary,
        "warnings": cr.warning_list,
        "created_at": iso(cr.created_at),
        "decided_by": cr.decided_by,
        "decided_at": iso(cr.decided_at),
        "reason": cr.reason,
        "applied_version": cr.applied_version,
        "rows_purged": cr.rows_purged_at is not None,
        "rows_purged_at": iso(cr.rows_purged_at),
    }


def row_dicts(change: ChangeRequest, schema: Schema, action: str, rows: Iterable[tuple]) -> Iterator[dict[str, Any]]:
    """Staged rows (key, line, before, after) → API objects: added/deleted rows, or modified {key, before, after, changed}."""
    names = change.field_names
    for key, line, before, after in rows:
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


def csv_response() -> Response:
    """The whole table as a streamed CSV download named after its version."""
    download = tables.csv_download()
    response = Response(download.chunks, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{download_name(download.filename)}"'
    response.headers["X-Dataset-Version"] = str(download.version)
    response.call_on_close(download.close)
    return response


def xlsx_response() -> Response:
    """The whole table as an Excel workbook named after its version."""
    download = tables.xlsx_download()
    response = send_file(
        download.file, xlsx.MIMETYPE, as_attachment=True, download_name=download_name(download.filename)
    )
    response.headers["X-Dataset-Version"] = str(download.version)
    return response


def error_file_response(report: ErrorReport) -> Response:
    """A refused upload with its `errors` column, as a download."""
    mimetype = xlsx.MIMETYPE if report.filename.endswith(".xlsx") else "text/csv"
    name = download_name(report.filename)
    return send_file(io.BytesIO(report.content), mimetype, as_attachment=True, download_name=name)
