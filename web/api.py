"""The JSON API for scripts, under /api/v1. Authenticated by `Authorization: Bearer TOKEN`.

Each endpoint parses its request, calls one domain function, and answers JSON (web/present.py
shapes it). Domain errors become `{"error": …}` with their status (web/error_pages.py).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for
from flask_login import current_user

import changes
import history
import tables
from web import present
from web.auth import admin_required
from web.error_pages import json_error
from web.params import MAX_OFFSET, audit_filter, int_arg, limit_arg, offset_arg

bp = Blueprint("api", __name__, url_prefix="/api/v1")


# The whole table as CSV or as an Excel workbook; the version is in X-Dataset-Version.
bp.add_url_rule("/export.csv", "export", present.csv_response)
bp.add_url_rule("/export.xlsx", "export_xlsx", present.xlsx_response)


@bp.route("/uploads/errors/<id:report_id>")
def error_file(report_id: int):
    """The same error file as /uploads/errors/ID (the 422 body's error_file), for scripts with a token."""
    return present.error_file_response(changes.error_file(report_id, current_user.username))


@bp.route("/changes", methods=["POST"])
def upload():
    """Stage an upload (multipart: file, mode, comment, confirm_deletions, sheet for workbooks)."""
    file = request.files.get("file")
    if file is None:
        return json_error(400, "Send the table as a multipart form field named 'file'.")
    confirm = int_arg("confirm_deletions", None, high=MAX_OFFSET, source=request.form)
    try:
        result = changes.submit(
            file.stream,
            submitter=current_user.username,
            filename=file.filename or "",
            mode=request.form.get("mode", "full") or "full",
            comment=request.form.get("comment", ""),
            confirm_deletions=confirm,
            sheet=request.form.get("sheet", "").strip() or None,
        )
    except changes.Refused as exc:
        return json_error(
            exc.status,
            exc.message,
            errors=[p.as_dict() for p in exc.problems],
            total_errors=exc.total,
            error_file=url_for("pages.error_file", report_id=exc.error_file) if exc.error_file else None,
        )
    except changes.ConfirmDeletions as exc:
        return json_error(422, exc.message, deletions=exc.deletions, errors=[])
    except changes.TooManyPending as exc:
        return json_error(exc.status, exc.message, pending=exc.pending)
    body = {
        "id": result.change.id if result.change else None,
        "status": "pending" if result.change else "unchanged",
        "base_version": result.base_version,
        "summary": result.summary,
        "encoding": result.encoding,
        "warnings": result.warnings,
    }
    return jsonify(body), 201 if result.change else 200


@bp.route("/changes")
def change_list():
    """Change requests, newest first; ?status=pending|approved|rejected|withdrawn, ?limit, ?offset."""
    limit, offset = limit_arg(100, 1000), offset_arg()
    items, total = changes.list_requests(request.args.get("status") or None, offset, limit)
    return jsonify({"items": [present.change_json(c) for c in items], "total": total})


@bp.route("/changes/<id:change_id>")
def change_detail(change_id: int):
    """A change request with its added and deleted rows and its modifications.

    Every row by default; `?limit=N&offset=M` pages each of the three lists (for big requests).
    """
    cr = changes.get_request(change_id)
    limit, offset = int_arg("limit", None, low=1, high=MAX_OFFSET), offset_arg()
    body = present.change_json(cr)
    for name, action in present.KINDS.items():
        rows = changes.staged_rows(change_id, action, offset, limit)
        body[name] = list(present.row_dicts(cr, tables.schema(), action, rows))
    return jsonify(body)


@bp.route("/changes/<id:change_id>/approve", methods=["POST"])
@admin_required
def approve(change_id: int):
    """Apply a change request (admins only)."""
    version = changes.approve(change_id, current_user.username)
    return jsonify({"id": change_id, "status": "approved", "version": version})


@bp.route("/changes/<id:change_id>/reject", methods=["POST"])
@admin_required
def reject(change_id: int):
    """Close a change request without applying it (admins only); JSON {"reason"} required."""
    data = request.get_json(silent=True) or {}
    reason = data.get("reason") or request.form.get("reason", "")
    if not isinstance(reason, str) or "\x00" in reason:
        return json_error(400, "reason must be a string (without NUL characters).")
    changes.reject(change_id, current_user.username, reason)
    return jsonify({"id": change_id, "status": "rejected", "reason": reason})


@bp.route("/changes/<id:change_id>/withdraw", methods=["POST"])
def withdraw(change_id: int):
    """The submitter takes back their own pending request."""
    changes.withdraw(change_id, current_user.username)
    return jsonify({"id": change_id, "status": "withdrawn"})


@bp.route("/audit")
def audit():
    """Audit entries newest first; filters key, user, since, until, change_id; paging with ?before=ID&limit=."""
    limit = limit_arg(500, 5000)
    entries = history.audit(audit_filter("change_id"), int_arg("before"), limit)
    return jsonify({"items": present.audit_dicts(entries, tables.schema())})


@bp.route("/records/<path:key>/history")
def record_history(key: str):
    """Every audit entry of one record, newest first."""
    return jsonify({"items": present.audit_dicts(history.record_history(key), tables.schema())})
