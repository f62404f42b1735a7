"""The pages people use: the table, download, upload, review and decide, history, tokens.

Each view parses its request, calls one domain function, and renders or redirects.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import markdown
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_from_directory, url_for
from flask_login import current_user
from markupsafe import Markup

import access
import accounts
import approvals
import audit as audit_log
import changes
import discussion
import history
import tables
import uploads
from errors import DomainError, Unprocessable
from files.codepages import CHOICES as ENCODING_CHOICES
from files.csv_read import encoding_label
from models import ChangeRequest
from web import downloads, present, table_urls
from web.auth import approver_required, may_decide
from web.event_log import downloaded
from web.forms import ActionForm, CommentForm, RejectForm, RequestChangesForm, RevisionForm, UploadForm
from web.params import (
    audit_cursor,
    audit_filter,
    check_page,
    every_table,
    int_arg,
    page_args,
    required_int,
    review_args,
    sort_args,
)

bp = Blueprint("pages", __name__)
bp.add_app_template_filter(present.linked, "linked")  # plain text escaped, links clickable (comments)
table_urls.register(bp)
TABLE = "/t/<table>"


def table_route(rule: str, **options):
    """A page of one table: at `rule` for the first table, at /t/NAME`rule` for table NAME."""
    return table_urls.route(bp, TABLE, rule, **options)


# --- the table -------------------------------------------------------------------------------


@table_route("/")
def index():
    """A table, paged and searchable; ?version=N shows it as it was after version N. At `/`, with
    several tables in schema.json: the overview of the tables."""
    if table_urls.whole_database():
        items = access.overview()
        shown = {t.name for t in items}  # the tables the person may view
        first_load = [t for t in tables.load_order() if t[0] in shown] if not any(t.rows for t in items) else []
        return render_template("tables.html", items=items, first_load=first_load)
    table = table_urls.current()
    q = request.args.get("q", "").strip()
    page, offset, size = page_args()
    version = int_arg("version")
    sort, descending = sort_args()
    if version is not None and version != tables.database().version:
        found = history.page_at(table, version, q, offset, size)
        sort, descending = None, False  # a past version is shown in key order
    else:
        found = tables.page(table, q, offset, size, sort, descending)
    pages = present.page_count(found.total, size)
    if not found.total_capped:
        check_page(page, pages)
    elif not found.rows and page > 1:  # past the matches of a search too common to count
        check_page(page, page - 1)
    else:
        pages = max(pages, page)
    schema = table.schema
    return render_template(
        "index.html",
        table=table,
        found=found,
        rows=[(key, present.value_views(schema, values)) for key, values, _ in found.rows],
        page=page,
        pages=pages,
        q=q,
        sort=sort or schema.key,
        descending=descending,
        schema=schema,
    )


@table_route("/download")
def download():
    """Download the whole table as CSV (?version=N: as it was after version N)."""
    table = table_urls.current()
    return downloaded(downloads.csv_response(table, int_arg("version")), "download", table.name, "csv")


@table_route("/download.xlsx")
def download_xlsx():
    """Download the whole table as an Excel workbook (?version=N: as it was after version N). At
    /download.xlsx with several tables in schema.json: the whole database, a sheet per table."""
    version = int_arg("version")
    if table_urls.whole_database():
        return downloaded(downloads.database_xlsx_response(version), "download", None, "xlsx")
    table = table_urls.current()
    return downloaded(downloads.xlsx_response(table, version), "download", table.name, "xlsx")


@table_route("/records/<path:key>")
def record(key: str):
    """One record: its values with who last changed each, and every version of it."""
    table = table_urls.current()
    values = tables.record(table, key)
    versions = history.record_versions(table, key)
    if values is None and not versions:
        abort(404, f"There is no record with key {key!r}, now or in the history.")
    return render_template(
        "record.html",
        key=key,
        values=values,
        last_values=history.last_values(table, key) if values is None else None,
        blame=history.blame(table, key) if versions else {},
        versions=versions,
        schema=table.schema,
        table=table,
        action_form=ActionForm(),
    )


# --- versions --------------------------------------------------------------------------------


@table_route("/versions")
def versions():
    """Every version of the table (?all=1: of every table, with a Table column), newest first, with the request that made it."""
    page, offset, size = page_args()
    every = every_table()
    items, total = history.versions(offset, size, None if every else table_urls.current())
    return render_template(
        "versions.html",
        items=items,
        total=total,
        page=page,
        size=size,
        every=every,
        table=table_urls.current(),
        table_of=tables.of_requests([cr.id for cr in items]) if every else {},
    )


@table_route("/diff")
def version_diff():
    """What changed between two versions (?from=A&to=B), one kind and one page at a time, filtered like the review page."""
    low, high, table = required_int("from"), required_int("to"), table_urls.current()
    found, schema = history.diff(table, low, high), table.schema
    kinds = [k for k in ("modified", "added", "deleted") if found.summary[k]] or ["modified"]
    args = review_args(tuple(present.KINDS), kinds[0])
    page, offset, size = page_args()
    rows = history.filter_rows(found.rows(args.show), args.column, args.q, schema.names)
    pages = present.page_count(len(rows), size)
    check_page(page, pages)
    shown = [
        (key, None, before, after, None, present.KINDS[args.show])
        for key, before, after in rows[offset : offset + size]
    ]
    return render_template(
        "diff.html",
        low=low,
        high=high,
        summary=found.summary,
        args=args,
        columns=present.column_counts(schema, present.version_diff_counts(schema, found.modified)),
        rows=present.row_views(schema, schema.names, shown),
        total=len(rows),
        page=page,
        pages=pages,
        schema=schema,
    )


@table_route("/diff.csv")
def version_diff_csv():
    """Download the diff between two versions (?from=A&to=B) in the tabular diff format of daff."""
    return downloads.csv_stream(*history.diff_csv(table_urls.current(), required_int("from"), required_int("to")))


# --- the user guide ----------------------------------------------------------------------------

PROJECT = Path(__file__).resolve().parent.parent
GUIDE = PROJECT / "USER_GUIDE.md"
SCREENSHOTS = PROJECT / "docs" / "screenshots"


@lru_cache(maxsize=1)
def _guide_html(mtime: float) -> str:
    """USER_GUIDE.md as HTML (read again when the file changes: `mtime`)."""
    del mtime
    return markdown.markdown(GUIDE.read_text(encoding="utf-8"), extensions=["tables", "toc"])


@bp.route("/guide")
def guide():
    """The user guide (USER_GUIDE.md), served by the app: the upload and review pages link it."""
    return render_template("guide.html", body=Markup(_guide_html(GUIDE.stat().st_mtime)))


@bp.route("/docs/screenshots/<path:name>")
def guide_screenshot(name: str):
    """A screenshot of the user guide."""
    return send_from_directory(SCREENSHOTS, name)


# --- upload ----------------------------------------------------------------------------------


@table_route("/upload", methods=["GET", "POST"])
def upload():
    """Upload an edited table; on success go to the review page of the new change request."""
    form = UploadForm()
    if not form.validate_on_submit():
        return render_upload(form, 400 if request.method == "POST" else 200)
    file = form.file.data
    options = uploads.UploadOptions(
        submitter=current_user.username,
        filename=(file.filename or "") if file else "",
        mode=form.mode.data,
        comment=form.comment.data or "",
        confirm_deletions=form.confirm_deletions.data,
        sheet=form.sheet.data or None,
        base_version=form.base_version.data,
        encoding=(form.encoding.data or "").strip() or None,
        hold=True,
    )
    try:
        if file:  # a file chosen (again) replaces one kept for a confirmation
            result = uploads.submit(table_urls.current(), file.stream, options)
        else:
            result = uploads.submit_held(table_urls.current(), form.held.data, options)
    except uploads.Refused as exc:
        return render_upload(
            form, exc.status, problems=exc.problems, total=exc.total, groups=exc.groups, error_file=exc.error_file
        )
    except uploads.ConfirmDeletions as exc:
        form.held.data = exc.held
        return render_upload(
            form,
            422,
            confirm=exc,
            sample=present.deletion_sample(table_urls.current().schema, exc.sample),
            held_name=exc.held and (file.filename if file else None),
        )
    except uploads.TooManyPending as exc:
        flash(exc.message, "error")
        return render_upload(form, exc.status)
    if result.change is None:
        flash(
            f"No changes: your file matches the current table (version {result.base_version}). Nothing was staged."
            if result.base_version == tables.database().version
            else f"No changes of yours: your file matches version {result.base_version}, and everything changed"
            " since was changed by others. Nothing was staged.",
            "info",
        )
        return redirect(url_for("pages.index"))
    if result.members:
        names = ", ".join(f"{tables.of_request(m).name} (#{m.id})" for m in result.members)
        flash(
            f"Uploaded: changes to {len(result.members)} tables, {names}, waiting for approval."
            " They are reviewed, approved or rejected together.",
            "success",
        )
        return redirect(url_for("pages.change", change_id=result.change.id))
    if open_ := result.change.conflicts:
        flash(
            f"Uploaded as change request #{result.change.id}: resolve {present.plural(open_, 'conflict')} before it"
            " can be approved (below: keep your value or the newer one).",
            "warning",
        )
        return redirect(url_for("pages.change", change_id=result.change.id))
    flash(f"Uploaded. Change request #{result.change.id} is waiting for an admin's approval.", "success")
    return redirect(url_for("pages.change", change_id=result.change.id))


def render_upload(form: UploadForm, status: int, **extra):
    """The upload page (with the problems, or the question about deletions, of the last try)."""
    limit_mb = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    table = table_urls.current()
    page = render_template(
        "upload.html",
        form=form,
        table=table,
        version=tables.database().version,
        schema=table.schema,
        limit_mb=limit_mb,
        encoding_choices=ENCODING_CHOICES,
        **extra,
    )
    return page, status


@bp.route("/uploads/errors/<id:report_id>")
def error_file(report_id: int):
    """Your refused upload with an `errors` column added (yours only; kept for a day)."""
    return downloads.error_file_response(uploads.error_file(report_id, current_user.username))


# --- change requests -------------------------------------------------------------------------


@table_route("/changes")
def change_list():
    """Change requests, newest first, filtered by status (under /t/NAME/: of that table; else of every table)."""
    status = request.args.get("status", "pending")
    page, offset, size = page_args()
    items, _ = changes.list_requests(None if status == "all" else status, offset, size + 1, table_urls.named_table())
    return render_template(
        "changes.html",
        items=items[:size],
        lines=present.request_lines(items[:size]),
        has_next=len(items) > size,
        page=page,
        status=status,
        table_titles={t.id: t.title for t in tables.every()},
    )


REVIEW_SHOWS = ("modified", "added", "deleted", "flagged", "conflicts", "commented")
CONFLICTS_ON_TOP = 20  # the first conflicts shown above the changes; ?show=conflicts pages through all


@bp.route("/changes/<id:change_id>")
def change(change_id: int):
    """The review page: who, when, counts, and the diff, one kind, filter and page at a time."""
    cr = changes.get_request(change_id)
    args = review_args(REVIEW_SHOWS, _first_kind(cr))
    page, offset, size = page_args()
    table = tables.of_request(cr)
    schema, names = table.schema, cr.field_names
    warnings = present.warning_groups(cr)
    if args.show == "conflicts":
        total, rows = cr.conflicts, []
        conflict_list = changes.conflicts(change_id, offset, size)
    else:
        found = changes.review_rows(cr, args.show, offset, size, args.column, args.q)
        total, rows = found.total, present.row_views(schema, names, found.rows)
        conflict_list = changes.conflicts(change_id, 0, CONFLICTS_ON_TOP) if cr.conflicts else []
    pages = present.page_count(total, size)
    check_page(page, pages)
    members = changes.batch_of(cr)
    return render_template(
        "change.html",
        cr=cr,
        table=table,
        members=[(m, tables.of_request(m)) for m in members] if len(members) > 1 else [],
        decide_total=sum(m.added + m.modified + m.deleted for m in members),
        conflicts=present.conflict_views(conflict_list, names, changes.theirs_made_by(cr, conflict_list)),
        open_conflicts=sum(m.conflicts for m in members),
        resolved=changes.resolved_conflicts(change_id),
        warnings=warnings,
        flagged=changes.flagged_count(change_id) if warnings["undo"] else 0,
        encoding=encoding_label(cr.encoding),
        args=args,
        columns=present.column_counts(schema, cr.column_count_map),
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        schema=schema,
        confirm_over=changes.CONFIRM_APPROVAL_OVER,
        is_submitter=current_user.username == cr.submitter,
        may_decide=may_decide(cr),
        approval=approvals.view(cr, current_user.username),
        reject_form=RejectForm(),
        action_form=ActionForm(),
        keep_days=current_app.config["KEEP_DECIDED_DAYS"],
        **discussion_context(cr),
    )


def require_action_form() -> None:
    """400 unless the POST carries a valid CSRF token (the forms of buttons: approve, withdraw, …)."""
    if not ActionForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")


def _first_kind(cr: ChangeRequest) -> str:
    return "modified" if cr.modified else "added" if cr.added else "deleted" if cr.deleted else "modified"


@bp.route("/changes/<id:change_id>/diff.csv")
def change_diff_csv(change_id: int):
    """Download a change request's changes in the tabular diff format of daff."""
    return downloads.csv_stream(*changes.diff_csv(change_id))


@bp.route("/changes/<id:change_id>/resolve", methods=["POST"])
def resolve(change_id: int):
    """The submitter keeps their value or the newer one for one conflict."""
    require_action_form()
    resolution = {
        "key": request.form.get("key", ""),
        "column": request.form.get("column") or None,
        "take": request.form.get("take", ""),
    }
    try:
        left = changes.resolve(change_id, current_user.username, [resolution])
    except (changes.NotPending, Unprocessable) as exc:
        flash(exc.message, "error")
    else:
        kept = "your value" if resolution["take"] == "yours" else "the newer value"
        flash(f"Kept {kept} for {resolution['key']}. {present.plural(len(left), 'conflict')} left.", "success")
    return redirect(url_for("pages.change", change_id=change_id))


@bp.route("/changes/<id:change_id>/revert", methods=["POST"])
def revert(change_id: int):
    """Stage the inverse of an approved request as a new request, for review like any other."""
    require_action_form()
    result = changes.revert(change_id, current_user.username)
    if result.change is None:
        flash(f"Nothing to revert: the table already has what it had before #{change_id}.", "info")
        return redirect(url_for("pages.change", change_id=change_id))
    flash(f"Change request #{result.change.id} reverts #{change_id}; it waits for an admin's approval.", "success")
    return redirect(url_for("pages.change", change_id=result.change.id))


@bp.route("/changes/<id:change_id>/approve", methods=["POST"])
@approver_required
def approve(change_id: int):
    """Apply a change request (admins and the table's approvers only)."""
    require_action_form()
    try:
        version = changes.approve(
            change_id,
            current_user.username,
            confirmed=request.form.get("confirm", type=int),
            ask_over=changes.CONFIRM_APPROVAL_OVER,
            signoff=approvals.Signoff(
                reason=request.form.get("approve_reason", ""),
                password=request.form.get("password") or None,
                meaning=request.form.get("meaning") or None,
            ),
        )
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("pages.change", change_id=change_id))
    if version is None:
        state = approvals.pending(changes.get_request(change_id))
        flash(f"Your approval is recorded: {len(state.approvals)} of {state.needed} needed.", "success")
        return redirect(url_for("pages.change", change_id=change_id))
    members = changes.batch_of(changes.get_request(change_id))
    if len(members) > 1:
        named = ", ".join(
            f"{tables.of_request(m).title} (#{m.id}: {present.plural(m.added + m.modified + m.deleted, 'change')})"
            for m in members
        )
        flash(
            f"Approved and applied to {len(members)} tables, {named}: the database is now version {version}.", "success"
        )
    else:
        flash(f"Approved and applied: the table is now version {version}.", "success")
    return redirect(url_for("pages.change", change_id=change_id))


@bp.route("/changes/<id:change_id>/reject", methods=["POST"])
@approver_required
def reject(change_id: int):
    """Close a change request without applying it (admins only)."""
    form = RejectForm()
    if not form.validate_on_submit():
        flash("Give a reason for the rejection, so the submitter knows what to fix.", "error")
        return redirect(url_for("pages.change", change_id=change_id))
    try:
        changes.reject(change_id, current_user.username, form.reason.data)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Change request #{change_id} rejected.", "success")
    return redirect(url_for("pages.change", change_id=change_id))


@bp.route("/changes/<id:change_id>/withdraw", methods=["POST"])
def withdraw(change_id: int):
    """The submitter takes back their own pending request."""
    require_action_form()
    try:
        changes.withdraw(change_id, current_user.username)
    except changes.NotPending as exc:
        flash(exc.message, "error")
    else:
        flash(f"Change request #{change_id} withdrawn.", "success")
    return redirect(url_for("pages.change", change_id=change_id))


# --- audit -----------------------------------------------------------------------------------


@table_route("/audit")
def audit():
    """Every applied row change, rejection, withdrawal and resolved conflict of the table (?all=1: of every
    table, with a Table column), newest first, with filters."""
    table, every = table_urls.current(), every_table()
    page = audit_log.page(
        audit_filter(None if every else table.id, key_prefix=True), audit_cursor(), current_app.config["PAGE_SIZE"]
    )
    return render_template(
        "audit.html",
        items=present.audit_dicts_all(page.items) if every else present.audit_dicts(page.items, table.schema),
        every=every,
        table=table,
        next_before=f"{page.next[0]}-{page.next[1]}" if page.next else None,
        args=request.args,
        actions=audit_log.ACTIONS,
    )


@table_route("/audit.csv")
def audit_csv():
    """Download the audit entries matching the page's filters as CSV."""
    table = table_urls.current()
    if every_table():
        return downloads.csv_stream(
            "audit.csv", audit_log.csv_chunks(audit_filter(None, key_prefix=True), present.audit_dicts_all)
        )
    return downloads.csv_stream(
        "audit.csv",
        audit_log.csv_chunks(
            audit_filter(table.id, key_prefix=True), lambda entries: present.audit_dicts(entries, table.schema)
        ),
    )


# --- API tokens ------------------------------------------------------------------------------


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    """Your API tokens: create one (shown once) or revoke them."""
    form = ActionForm()
    new_token, status = None, 200
    if form.validate_on_submit():
        if revoke := request.form.get("revoke"):
            token_id = None if revoke == "all" else int_arg("revoke", low=1, source=request.form)
            n = accounts.revoke_tokens(current_user.username, token_id)
            flash(f"Revoked {n} token(s).", "success")
            return redirect(url_for("pages.tokens"))
        scope = request.form.get("scope") or "decide"
        if scope not in accounts.TOKEN_SCOPES:
            abort(400, f"A token's scope is one of {', '.join(accounts.TOKEN_SCOPES)}.")
        days = int_arg("expires", None, low=1, high=accounts.MAX_TOKEN_DAYS, source=request.form)
        try:
            new_token = accounts.create_token(current_user.username, self_service=True, scope=scope, expires_days=days)
        except accounts.TokensNotAllowed as exc:
            flash(str(exc), "error")
            status = 403
    page = render_template(
        "tokens.html", form=form, tokens=accounts.list_tokens(current_user.username), new_token=new_token
    )
    return page, status


# --- discussion: comments, changes requested, revisions (discussion.py) -----------------------


def discussion_context(cr: ChangeRequest) -> dict:
    """What templates/_discussion.html and the rows' comment boxes show: the thread, the anchored
    comments by row, the revisions and what changed since the one before."""
    thread = discussion.comments(cr.id)
    by_key: dict[str, list] = {}
    for c in thread:
        if c.key is not None:
            by_key.setdefault(c.key, []).append(c)
    since = None
    if cr.revision > 1:
        asked = request.args.get("since", cr.revision - 1, type=int) or 1
        since = discussion.revision_diff(cr, min(max(asked, 1), cr.revision - 1))
    return {
        "thread": thread,
        "row_comments": by_key,
        "timeline": discussion.timeline(cr),
        "revisions": discussion.revisions(cr.id),
        "since": since,
        "comment_form": CommentForm(),
        "changes_form": RequestChangesForm(),
        "revision_form": RevisionForm(),
        "is_open": cr.status in discussion.OPEN,
        "me": current_user.username,
    }


@bp.route("/changes/<id:change_id>/comments", methods=["POST"])
def add_comment(change_id: int):
    """A comment on the request, or on one of its rows or cells (the box anchored there)."""
    form = CommentForm()
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors) or "The form expired.", "error")
        return redirect(url_for("pages.change", change_id=change_id))
    try:
        comment = discussion.add_comment(change_id, current_user.username, form.text.data, form.key.data or None,
                                         form.column.data or None)  # fmt: skip
    except Unprocessable as exc:
        flash(exc.message, "error")
        return redirect(url_for("pages.change", change_id=change_id))
    flash("Comment added.", "success")
    return redirect(url_for("pages.change", change_id=change_id, **request.args) + f"#comment-{comment.id}")


@bp.route("/changes/<id:change_id>/comments/<id:comment_id>/edit", methods=["POST"])
def edit_comment(change_id: int, comment_id: int):
    """The author changes their comment while the request is open."""
    form = CommentForm()
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors) or "The form expired.", "error")
    else:
        try:
            discussion.edit_comment(change_id, comment_id, current_user.username, form.text.data)
        except (Unprocessable, discussion.Closed) as exc:
            flash(exc.message, "error")
        else:
            flash("Comment changed.", "success")
    return redirect(url_for("pages.change", change_id=change_id) + f"#comment-{comment_id}")


@bp.route("/changes/<id:change_id>/comments/<id:comment_id>/delete", methods=["POST"])
def delete_comment(change_id: int, comment_id: int):
    """The author deletes their comment while the request is open."""
    require_action_form()
    try:
        discussion.delete_comment(change_id, comment_id, current_user.username)
    except discussion.Closed as exc:
        flash(exc.message, "error")
    else:
        flash("Comment deleted.", "success")
    return redirect(url_for("pages.change", change_id=change_id) + "#discussion")


@bp.route("/changes/<id:change_id>/request-changes", methods=["POST"])
@approver_required
def request_changes(change_id: int):
    """A decider sends the request back to its submitter with what to fix."""
    form = RequestChangesForm()
    if not form.validate_on_submit():
        flash("Say what should change, so the submitter knows what to fix.", "error")
        return redirect(url_for("pages.change", change_id=change_id))
    try:
        discussion.request_changes(change_id, current_user.username, form.changes_reason.data)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(
            f"Changes requested: #{change_id} is back with its submitter until they upload a corrected file.", "success"
        )
    return redirect(url_for("pages.change", change_id=change_id))


@bp.route("/changes/<id:change_id>/revisions", methods=["POST"])
def revise(change_id: int):
    """The submitter uploads a corrected file to their open request."""
    discussion.check_reviser(change_id, current_user.username)
    form = RevisionForm()
    back = redirect(url_for("pages.change", change_id=change_id) + "#revise")
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors) or "The form expired.", "error")
        return back
    file = form.file.data
    try:
        result = discussion.revise(
            change_id,
            file.stream,
            uploads.UploadOptions(
                submitter=current_user.username,
                filename=file.filename or "",
                mode=form.mode.data,
                comment=form.revision_comment.data or "",
                confirm_deletions=form.confirm_deletions.data,
                base_version=form.base_version.data,
            ),
        )
    except uploads.Refused as exc:
        shown = "; ".join(f"line {p.line}, {p.column}: {p.message}" if p.line else p.message for p in exc.problems[:5])
        flash(f"{exc.message} {shown}", "error")
        return back
    except (uploads.ConfirmDeletions, Unprocessable) as exc:
        flash(exc.message, "error")
        return back
    if not result.changed:
        flash("Your corrected file stages exactly what this request stages already: nothing changed.", "info")
    else:
        flash(f"Revision {result.change.revision} uploaded: the request waits for a decision again.", "success")
    return redirect(url_for("pages.change", change_id=change_id))
