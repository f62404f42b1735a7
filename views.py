"""The pages people use: the table, download, upload, review and decide, history, tokens."""

from __future__ import annotations

import datetime as dt
import io

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from wtforms import IntegerField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

import auth
import changes
import store
import tabular
import workbook
from models import ChangeRequest, db
from schema import unpack

bp = Blueprint("views", __name__)
ACTIONS = {"added": "add", "modified": "modify", "deleted": "delete"}


def schema():
    return current_app.extensions["schema"]


def page_args() -> tuple[int, int, int]:
    """(page number, offset, page size) from ?page=."""
    size = current_app.config["PAGE_SIZE"]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    return page, (page - 1) * size, size


# --- forms -----------------------------------------------------------------------------------


class UploadForm(FlaskForm):
    file = FileField("CSV or Excel file", validators=[FileRequired("Choose the file to upload.")])
    comment = TextAreaField("What did you change, and why?", validators=[Optional(), Length(max=2000)])
    mode = RadioField(
        "The file holds",
        choices=[
            SelectChoice("full", "the whole table: rows missing from it are deleted"),
            SelectChoice("partial", "only some rows: add and update them, delete nothing"),
        ],
        default="full",
    )
    confirm_deletions = IntegerField("Confirm the number of deletions", validators=[Optional()])
    sheet = StringField("Sheet (Excel workbooks only)", validators=[Optional(), Length(max=100)])


class RejectForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired("Say why, so the submitter can fix it."), Length(max=2000)])


class ActionForm(FlaskForm):
    """A form with nothing but its CSRF token (approve, withdraw, revoke, create token)."""


# --- the table -------------------------------------------------------------------------------


@bp.route("/")
def index():
    """The current table, paged and searchable."""
    q = request.args.get("q", "").strip()
    page, offset, size = page_args()
    rows = store.records_page(q, offset, size + 1)
    state = store.table_state()
    pending = db.session.scalar(
        select(func.count()).select_from(ChangeRequest).where(ChangeRequest.status == "pending")
    )
    return render_template(
        "index.html",
        rows=[(key, unpack(record), version) for key, record, version in rows[:size]],
        has_next=len(rows) > size,
        page=page,
        q=q,
        state=state,
        pending=pending,
        schema=schema(),
    )


def csv_response(filename_prefix: str = "") -> Response:
    """The whole table as a streamed CSV download named after its version."""
    snapshot = store.open_export()
    name = f"{filename_prefix or schema().name}-v{snapshot.version}.csv"
    response = Response(_until_done(tabular.csv_chunks(snapshot.records, schema()), snapshot), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["X-Dataset-Version"] = str(snapshot.version)
    response.call_on_close(snapshot.close.close)
    return response


def _until_done(chunks, snapshot):
    """End the snapshot's read transaction as soon as the last chunk is sent, not only when the response closes."""
    try:
        yield from chunks
    finally:
        snapshot.close.close()


@bp.route("/download")
def download():
    """Download the whole table as CSV."""
    return csv_response()


def xlsx_response() -> Response:
    """The whole table as an Excel workbook named after its version (built first, then sent)."""
    snapshot = store.open_export()
    with snapshot.close:
        if snapshot.row_count >= workbook.EXCEL_MAX_ROWS:
            abort(
                422, f"The table has {snapshot.row_count:,} rows, more than an Excel sheet holds; download it as CSV."
            )
        try:
            file = workbook.xlsx_file(snapshot.records, schema())
        except workbook.NotForExcel as exc:
            abort(422, str(exc))
    if file.seek(0, io.SEEK_END) <= workbook.SPOOL_BYTES:  # small: send from memory, close the file now
        with file:
            file.seek(0)
            file = io.BytesIO(file.read())
    file.seek(0)
    response = send_file(
        file, workbook.MIMETYPE, as_attachment=True, download_name=f"{schema().name}-v{snapshot.version}.xlsx"
    )
    response.headers["X-Dataset-Version"] = str(snapshot.version)
    return response


@bp.route("/download.xlsx")
def download_xlsx():
    """Download the whole table as an Excel workbook."""
    return xlsx_response()


@bp.route("/records/<path:key>")
def record(key: str):
    """One record: its current values and its full history."""
    current = store.record(key)
    entries = changes.audit_dicts(store.audit_page(store.AuditFilter(key=key), None, 500), schema())
    if current is None and not entries:
        abort(404, f"There is no record with key {key!r}, now or in the history.")
    values = dict(zip(schema().names, unpack(current[0]), strict=False)) if current else None
    return render_template("record.html", key=key, values=values, entries=entries, schema=schema())


# --- upload ----------------------------------------------------------------------------------


@bp.route("/upload", methods=["GET", "POST"])
def upload():
    """Upload an edited table; on success go to the review page of the new change request."""
    form = UploadForm()
    if not form.validate_on_submit():
        return render_upload(form, 400 if request.method == "POST" else 200)
    file = form.file.data
    try:
        result = changes.stage(
            file.stream,
            schema(),
            submitter=current_user.username,
            filename=file.filename or "",
            mode=form.mode.data,
            comment=form.comment.data or "",
            confirm_deletions=form.confirm_deletions.data,
            mass_delete_percent=current_app.config["MASS_DELETE_PERCENT"],
            sheet=form.sheet.data or None,
        )
    except tabular.FileProblems as exc:
        db.session.rollback()
        report = changes.save_error_file(
            file.stream, schema(), exc, owner=current_user.username, filename=file.filename or "", sheet=form.sheet.data
        )
        return render_upload(form, 422, problems=exc.problems, total=exc.total, error_file=report)
    except changes.ConfirmDeletions as exc:
        db.session.rollback()
        return render_upload(form, 422, confirm=exc)
    if result.change is None:
        flash(
            f"No changes: your file matches the current table (version {result.base_version}). Nothing was staged.",
            "info",
        )
        return redirect(url_for("views.index"))
    flash(f"Uploaded. Change request #{result.change.id} is waiting for an admin's approval.", "success")
    return redirect(url_for("views.change", change_id=result.change.id))


@bp.route("/uploads/errors/<int:report_id>")
def error_file(report_id: int):
    """Your refused upload with an `errors` column added (yours only; kept for a day)."""
    return send_error_file(report_id)


def send_error_file(report_id: int) -> Response:
    report = changes.error_file(report_id, current_user.username)
    mimetype = workbook.MIMETYPE if report.filename.endswith(".xlsx") else "text/csv"
    return send_file(io.BytesIO(report.content), mimetype, as_attachment=True, download_name=report.filename)


def render_upload(form: UploadForm, status: int, **extra):
    return render_template("upload.html", form=form, state=store.table_state(), schema=schema(), **extra), status


# --- change requests -------------------------------------------------------------------------


@bp.route("/changes")
def change_list():
    """Change requests, newest first, filtered by status."""
    status = request.args.get("status", "pending")
    page, offset, size = page_args()
    query = select(ChangeRequest).order_by(ChangeRequest.id.desc())
    if status != "all":
        query = query.where(ChangeRequest.status == status)
    items = db.session.scalars(query.offset(offset).limit(size + 1)).all()
    return render_template("changes.html", items=items[:size], has_next=len(items) > size, page=page, status=status)


@bp.route("/changes/<int:change_id>")
def change(change_id: int):
    """The review page: who, when, counts, and the diff, one kind and one page at a time."""
    cr = changes.get(change_id)
    kind = request.args.get("show") if request.args.get("show") in ACTIONS else _first_kind(cr)
    page, offset, size = page_args()
    rows = store.pending_page(change_id, ACTIONS[kind], offset, size + 1)
    names = cr.field_names
    views = [
        (key, line, changes.cell_views(schema(), names, before, after)) for key, line, before, after in rows[:size]
    ]
    return render_template(
        "change.html",
        cr=cr,
        encoding=tabular.encoding_label(cr.encoding),
        kind=kind,
        rows=views,
        has_next=len(rows) > size,
        page=page,
        is_submitter=current_user.username == cr.submitter,
        reject_form=RejectForm(),
        action_form=ActionForm(),
        conflicts=request.args.getlist("conflict"),
    )


def _first_kind(cr: ChangeRequest) -> str:
    return "modified" if cr.modified else "added" if cr.added else "deleted"


@bp.route("/changes/<int:change_id>/approve", methods=["POST"])
@auth.admin_required
def approve(change_id: int):
    """Apply a change request (admins only)."""
    if not ActionForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    try:
        version = changes.approve(change_id, current_user.username)
    except changes.ChangeError as exc:
        flash(exc.message, "error")
        return redirect(url_for("views.change", change_id=change_id))
    flash(f"Approved and applied: the table is now version {version}.", "success")
    return redirect(url_for("views.change", change_id=change_id))


@bp.route("/changes/<int:change_id>/reject", methods=["POST"])
@auth.admin_required
def reject(change_id: int):
    """Close a change request without applying it (admins only)."""
    form = RejectForm()
    if not form.validate_on_submit():
        flash("Give a reason for the rejection, so the submitter knows what to fix.", "error")
        return redirect(url_for("views.change", change_id=change_id))
    try:
        changes.reject(change_id, current_user.username, form.reason.data)
    except changes.ChangeError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Change request #{change_id} rejected.", "success")
    return redirect(url_for("views.change", change_id=change_id))


@bp.route("/changes/<int:change_id>/withdraw", methods=["POST"])
def withdraw(change_id: int):
    """The submitter takes back their own pending request."""
    if not ActionForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    try:
        changes.withdraw(change_id, current_user.username)
    except changes.Forbidden as exc:
        abort(403, exc.message)
    except changes.ChangeError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Change request #{change_id} withdrawn.", "success")
    return redirect(url_for("views.change", change_id=change_id))


# --- audit -----------------------------------------------------------------------------------


def parse_when(value: str | None, *, end: bool = False) -> dt.datetime | None:
    """An ISO date or date-time from a filter; a bare end date includes that whole day."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        abort(400, f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM.")
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    if end and len(value.strip()) == 10:
        when += dt.timedelta(days=1)
    return when


@bp.route("/audit")
def audit():
    """Every applied row change, rejection and withdrawal, newest first, with filters."""
    size = current_app.config["PAGE_SIZE"]
    filters = store.AuditFilter(
        key=request.args.get("key", "").strip() or None,
        user=request.args.get("user", "").strip() or None,
        since=parse_when(request.args.get("since")),
        until=parse_when(request.args.get("until"), end=True),
        change_id=request.args.get("change", type=int),
    )
    before = request.args.get("before", type=int)
    entries = store.audit_page(filters, before, size + 1)
    items = changes.audit_dicts(entries[:size], schema())
    next_before = items[-1]["id"] if len(entries) > size else None
    return render_template("audit.html", items=items, next_before=next_before, args=request.args, schema=schema())


# --- API tokens ------------------------------------------------------------------------------


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    """Your API tokens: create one (shown once) or revoke them."""
    form = ActionForm()
    new_token = None
    if form.validate_on_submit():
        if request.form.get("revoke"):
            n = auth.revoke_tokens(current_user.username, request.form.get("revoke", type=int))
            db.session.commit()
            flash(f"Revoked {n} token(s).", "success")
            return redirect(url_for("views.tokens"))
        new_token = auth.create_token(current_user.username)
        db.session.commit()
    return render_template(
        "tokens.html", form=form, tokens=auth.list_tokens(current_user.username), new_token=new_token
    )
