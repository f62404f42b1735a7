"""The JSON API for scripts, under /api/v1. Authenticated by `Authorization: Bearer TOKEN`."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

import auth
import changes
import store
import tabular
import views
from models import ChangeRequest, db

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def schema():
    return current_app.extensions["schema"]


def error(status: int, message: str, **extra):
    return jsonify({"error": message, **extra}), status


def change_json(cr: ChangeRequest) -> dict:
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
        "created_at": changes._iso(cr.created_at),
        "decided_by": cr.decided_by,
        "decided_at": changes._iso(cr.decided_at),
        "reason": cr.reason,
        "applied_version": cr.applied_version,
    }


@bp.route("/export.csv")
def export():
    """The whole table as CSV; the version is in X-Dataset-Version."""
    return views.csv_response()


@bp.route("/export.xlsx")
def export_xlsx():
    """The whole table as an Excel workbook; the version is in X-Dataset-Version."""
    return views.xlsx_response()


@bp.route("/uploads/errors/<int:report_id>")
def error_file(report_id: int):
    """The same error file as /uploads/errors/ID (the 422 body's error_file), for scripts with a token."""
    return views.send_error_file(report_id)


@bp.route("/changes", methods=["POST"])
def upload():
    """Stage an upload (multipart: file, mode, comment, confirm_deletions, sheet for workbooks)."""
    file = request.files.get("file")
    if file is None:
        return error(400, "Send the table as a multipart form field named 'file'.")
    confirm = request.form.get("confirm_deletions", "").strip()
    if confirm and not confirm.isdigit():
        return error(400, "confirm_deletions must be a whole number.")
    sheet = request.form.get("sheet", "").strip() or None
    try:
        result = changes.stage(
            file.stream,
            schema(),
            submitter=current_user.username,
            filename=file.filename or "",
            mode=request.form.get("mode", "full") or "full",
            comment=request.form.get("comment", ""),
            confirm_deletions=int(confirm) if confirm else None,
            mass_delete_percent=current_app.config["MASS_DELETE_PERCENT"],
            sheet=sheet,
        )
    except tabular.FileProblems as exc:
        db.session.rollback()
        report = changes.save_error_file(
            file.stream, schema(), exc, owner=current_user.username, filename=file.filename or "", sheet=sheet
        )
        return error(
            422,
            f"The file was not staged: {exc.total} problem(s) found.",
            errors=[p.as_dict() for p in exc.problems],
            total_errors=exc.total,
            error_file=url_for("views.error_file", report_id=report) if report else None,
        )
    except changes.ConfirmDeletions as exc:
        db.session.rollback()
        return error(422, exc.message, deletions=exc.deletions, errors=[])
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
    status = request.args.get("status")
    limit = min(request.args.get("limit", 100, type=int), 1000)
    offset = request.args.get("offset", 0, type=int)
    query = select(ChangeRequest)
    count = select(func.count()).select_from(ChangeRequest)
    if status:
        query = query.where(ChangeRequest.status == status)
        count = count.where(ChangeRequest.status == status)
    items = db.session.scalars(query.order_by(ChangeRequest.id.desc()).offset(offset).limit(limit)).all()
    return jsonify({"items": [change_json(c) for c in items], "total": db.session.scalar(count)})


@bp.route("/changes/<int:change_id>")
def change_detail(change_id: int):
    """A change request with its added and deleted rows and its modifications.

    Every row by default; `?limit=N&offset=M` pages each of the three lists (for big requests).
    """
    cr = changes.get(change_id)
    limit, offset = request.args.get("limit", type=int), request.args.get("offset", 0, type=int)
    if (limit is not None and limit < 1) or offset < 0:
        return error(400, "limit must be 1 or more and offset 0 or more.")
    body = change_json(cr)
    for name, action in views.ACTIONS.items():
        rows = (
            store.pending_all(change_id, action)
            if limit is None
            else store.pending_page(change_id, action, offset, limit)
        )
        body[name] = list(changes.row_dicts(cr, schema(), action, rows))
    return jsonify(body)


@bp.route("/changes/<int:change_id>/approve", methods=["POST"])
@auth.admin_required
def approve(change_id: int):
    version = changes.approve(change_id, current_user.username)
    return jsonify({"id": change_id, "status": "approved", "version": version})


@bp.route("/changes/<int:change_id>/reject", methods=["POST"])
@auth.admin_required
def reject(change_id: int):
    data = request.get_json(silent=True) or {}
    reason = data.get("reason") or request.form.get("reason", "")
    if not isinstance(reason, str):
        return error(400, "reason must be a string.")
    changes.reject(change_id, current_user.username, reason)
    return jsonify({"id": change_id, "status": "rejected", "reason": reason})


@bp.route("/changes/<int:change_id>/withdraw", methods=["POST"])
def withdraw(change_id: int):
    changes.withdraw(change_id, current_user.username)
    return jsonify({"id": change_id, "status": "withdrawn"})


def audit_filter() -> store.AuditFilter:
    return store.AuditFilter(
        key=request.args.get("key") or None,
        user=request.args.get("user") or None,
        since=views.parse_when(request.args.get("since")),
        until=views.parse_when(request.args.get("until"), end=True),
        change_id=request.args.get("change_id", type=int),
    )


@bp.route("/audit")
def audit():
    """Audit entries newest first; filters key, user, since, until, change_id; paging with ?before=ID&limit=."""
    limit = min(request.args.get("limit", 500, type=int), 5000)
    entries = store.audit_page(audit_filter(), request.args.get("before", type=int), limit)
    return jsonify({"items": changes.audit_dicts(entries, schema())})


@bp.route("/records/<path:key>/history")
def history(key: str):
    """Every audit entry of one record, newest first."""
    entries = store.audit_page(store.AuditFilter(key=key), None, 100_000)
    return jsonify({"items": changes.audit_dicts(entries, schema())})
