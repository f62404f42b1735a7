"""The JSON API for scripts, under /api/v1. Authenticated by `Authorization: Bearer TOKEN`.

Each endpoint parses its request, calls one domain function, and answers JSON (web/present.py
shapes it). Domain errors become `{"error": …}` with their status (web/error_pages.py).
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, jsonify, request, url_for
from flask_login import current_user

import access
import approvals
import audit as audit_log
import changes
import discussion
import history
import tables
import uploads
from web import downloads, present, table_urls
from web.auth import approver_required
from web.error_pages import json_error
from web.event_log import downloaded
from web.params import (
    MAX_OFFSET,
    audit_cursor,
    audit_filter,
    every_table,
    int_arg,
    json_body,
    limit_arg,
    offset_arg,
    refuse,
    required_int,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
table_urls.register(bp)


def table_route(rule: str, **options):
    """An endpoint of one table: at `rule` for the first table, at /tables/NAME`rule` for table NAME."""
    return table_urls.route(bp, "/tables/<table>", rule, **options)


@bp.route("/tables")
def table_list():
    """Every table of schema.json: name, title, rows, the version that last changed it, pending requests."""
    return jsonify({"items": [present.table_json(t) for t in access.overview()]})


@table_route("/export.csv")
def export():
    """The whole table as CSV (?version=N: as it was after version N); the version is in X-Dataset-Version."""
    table = table_urls.current()
    return downloaded(downloads.csv_response(table, int_arg("version")), "export", table.name, "csv")


@table_route("/export.xlsx")
def export_xlsx():
    """The whole table as an Excel workbook (?version=N: as it was); the version is in X-Dataset-Version.
    `/api/v1/export.xlsx?all=1`: the whole database, a sheet per table, all as of one version."""
    version = int_arg("version")
    if int_arg("all", 0, high=1):
        if table_urls.named():
            refuse("all=1 asks for the whole database: use /api/v1/export.xlsx?all=1, not a table's URL.")
        return downloaded(downloads.database_xlsx_response(version), "export", None, "xlsx")
    table = table_urls.current()
    return downloaded(downloads.xlsx_response(table, version), "export", table.name, "xlsx")


@bp.route("/uploads/errors/<id:report_id>")
def error_file(report_id: int):
    """The same error file as /uploads/errors/ID (the 422 body's error_file), for scripts with a token."""
    return downloads.error_file_response(uploads.error_file(report_id, current_user.username))


# A file sent as the request body instead of a form (scripts): its options go in the query string.
RAW_UPLOAD_TYPES = (
    "text/csv",
    "application/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/zip",  # several tables: a CSV file per table
)


@table_route("/changes", methods=["POST"])
def upload():
    """Stage an upload: multipart (file, mode, comment, confirm_deletions, sheet for workbooks,
    base_version, encoding for CSV files), or the file itself as the body (Content-Type text/csv or
    the xlsx type) with the same options, and `filename`, in the query string."""
    result, refused = _staged(
        lambda stream, options: uploads.submit(table_urls.current(), stream, options),
        "Send the table as a multipart form field named 'file', or as the request body with"
        " Content-Type text/csv (or the xlsx type) and the options in the query string.",
    )
    if refused is not None:
        return refused
    body, status = present.stage_json(result)
    return jsonify(body), status


def _staged(stage, missing: str):
    """(what `stage(stream, options)` returns, None), or (None, the JSON answer of a refusal), for
    an upload or a revision: multipart fields and file, or the file as the body with the options in
    the query string; the options are checked before the body is read. `missing`: the answer to a
    multipart request without its file."""
    if request.mimetype in RAW_UPLOAD_TYPES:
        options, stream, filename = request.args, None, request.args.get("filename", "")
    else:
        file = request.files.get("file")
        if file is None:
            return None, json_error(400, missing)
        options, stream, filename = request.form, file.stream, file.filename or ""
    confirm = int_arg("confirm_deletions", None, high=MAX_OFFSET, source=options)
    base = int_arg("base_version", None, high=10**9, source=options)
    if stream is None:
        stream = request.body_file()
    try:
        return stage(
            stream,
            uploads.UploadOptions(
                submitter=current_user.username,
                filename=filename,
                mode=options.get("mode", "full") or "full",
                comment=options.get("comment", ""),
                confirm_deletions=confirm,
                sheet=options.get("sheet", "").strip() or None,
                base_version=base,
                encoding=options.get("encoding", "").strip() or None,
            ),
        ), None
    except uploads.Refused as exc:
        return None, json_error(
            exc.status,
            exc.message,
            errors=[p.as_dict() for p in exc.problems],
            total_errors=exc.total,
            groups=[g.as_dict() for g in exc.groups],
            error_file=url_for("pages.error_file", report_id=exc.error_file) if exc.error_file else None,
        )
    except uploads.ConfirmDeletions as exc:
        return None, json_error(
            422, exc.message, deletions=exc.deletions, errors=[], first_deleted=[key for key, _ in exc.sample]
        )
    except uploads.TooManyPending as exc:
        return None, json_error(exc.status, exc.message, pending=exc.pending)


@table_route("/changes")
def change_list():
    """Change requests, newest first (of every table; under /tables/NAME: of that table);
    ?status=pending|changes_requested|approved|rejected|withdrawn, ?limit, ?offset."""
    limit, offset = limit_arg(100, 1000), offset_arg()
    table = table_urls.named_table()
    items, total = changes.list_requests(request.args.get("status") or None, offset, limit, table)
    return jsonify({"items": [present.change_json(c) for c in items], "total": total})


@bp.route("/changes/<id:change_id>")
def change_detail(change_id: int):
    """A change request with its added and deleted rows and its modifications.

    Every row by default; `?limit=N&offset=M` pages each of the three lists (for big requests).
    """
    cr = changes.get_request(change_id)
    limit, offset = int_arg("limit", None, low=1, high=MAX_OFFSET), offset_arg()
    body, schema = present.change_json(cr), tables.of_request(cr).schema
    if cr.batch is not None:
        body["requests"] = [present.member_json(m) for m in changes.batch_of(cr)]
    for name, action in present.KINDS.items():
        rows = changes.staged_rows(change_id, action, offset, limit)
        body[name] = list(present.row_dicts(cr, schema, action, rows))
    body["conflicts"] = [
        present.conflict_json(c, schema, cr.field_names) for c in changes.conflicts(change_id, offset, limit)
    ]
    return jsonify(body)


@bp.route("/changes/<id:change_id>/diff.csv")
def change_diff_csv(change_id: int):
    """A change request's changes in the tabular diff format of daff (`@@`, `+++`, `---`, `->`)."""
    return downloads.csv_stream(*changes.diff_csv(change_id))


@bp.route("/changes/<id:change_id>/resolve", methods=["POST"])
def resolve(change_id: int):
    """The submitter settles conflicts: JSON {"resolutions": [{"key", "column", "take": "yours"|"theirs"}]}."""
    if changes.get_request(change_id).submitter != current_user.username:  # before the body is parsed
        abort(403, "Only the person who uploaded a change request can resolve its conflicts.")
    data = json_body()
    resolutions = data.get("resolutions") if isinstance(data, dict) else None
    if not isinstance(resolutions, list) or not all(isinstance(r, dict) for r in resolutions):
        return json_error(
            400, 'Send JSON {"resolutions": [{"key": …, "column": … or null, "take": "yours" or "theirs"}]}.'
        )
    cr = changes.get_request(change_id)
    remaining = changes.resolve(change_id, current_user.username, resolutions)
    schema = tables.of_request(cr).schema
    return jsonify({"conflicts": [present.conflict_json(c, schema, cr.field_names) for c in remaining]})


@bp.route("/changes/<id:change_id>/revert", methods=["POST"])
def revert(change_id: int):
    """Stage the inverse of an approved request as a new request, merged with the table now."""
    body, status = present.stage_json(changes.revert(change_id, current_user.username))
    return jsonify(body), status


@bp.route("/changes/<id:change_id>/approve", methods=["POST"])
@approver_required
def approve(change_id: int):
    """Approve a change request (admins and the table's approvers only), with optional JSON
    {"reason", "password", "meaning"} (a password and meaning sign it, where the table's policy
    asks for signatures): 200 {"status": "approved", "version"} when it applies, 202 {"status":
    "pending", "approvals", "approvals_needed"} while the table's quorum needs more."""
    version = changes.approve(change_id, current_user.username, signoff=signoff())
    if version is None:
        state = approvals.pending(changes.get_request(change_id))
        return jsonify(
            {
                "id": change_id,
                "status": "pending",
                "approvals": [present_approval(a) for a in state.approvals],
                "approvals_needed": state.needed,
            }
        ), 202
    return jsonify({"id": change_id, "status": "approved", "version": version})


def signoff() -> approvals.Signoff:
    """The approval's optional JSON body {"reason", "password", "meaning"} (no body: none of them;
    a form body, as scripts may have sent before, gives the same fields)."""
    if not request.is_json:
        form = request.form
        return approvals.Signoff(form.get("reason", ""), form.get("password") or None, form.get("meaning") or None)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        refuse('Send no body, or a JSON object {"reason": …, "password": …, "meaning": …} (each optional).')
    values = {}
    for name in ("reason", "password", "meaning"):
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or "\x00" in value or len(value) > 2000):
            refuse(f"{name} must be a string (at most 2,000 characters, no NUL characters).")
        values[name] = value
    return approvals.Signoff(reason=values["reason"] or "", password=values["password"], meaning=values["meaning"])


def present_approval(approval) -> dict:
    """One approval as the 202 answer lists it."""
    return {"user": approval.username, "at": approval.at.isoformat() + "Z", "reason": approval.reason}


@bp.route("/changes/<id:change_id>/reject", methods=["POST"])
@approver_required
def reject(change_id: int):
    """Close a change request without applying it (admins only); JSON {"reason"} required."""
    data = json_body()
    data = data if isinstance(data, dict) else {}
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


@table_route("/audit")
def audit():
    """Audit entries of the table (?all=1: of every table, each with its `table`) newest first; filters key, user, since, until, action, change_id;
    ?limit=; the next page with ?before= the answer's `next`."""
    if every_table():  # ?all=1: the whole database, each item with its `table`
        page = audit_log.page(audit_filter(None), audit_cursor(), limit_arg(500, 5000))
        items = present.audit_dicts_all(page.items)
    else:
        table = table_urls.current()
        page = audit_log.page(audit_filter(table.id), audit_cursor(), limit_arg(500, 5000))
        items = [dict(d, table=table.name) for d in present.audit_dicts(page.items, table.schema)]
    next_ = f"{page.next[0]}-{page.next[1]}" if page.next else None
    return jsonify({"items": items, "next": next_})


@table_route("/audit.csv")
def audit_csv():
    """The audit entries matching the same filters as /audit, as a streamed CSV."""
    table = table_urls.current()
    chunks = audit_log.csv_chunks(audit_filter(table.id), lambda entries: present.audit_dicts(entries, table.schema))
    return downloads.csv_stream("audit.csv", chunks)


@table_route("/records/<path:key>/history")
def record_history(key: str):
    """Every audit entry of one record, newest first."""
    table = table_urls.current()
    return jsonify({"items": present.audit_dicts(audit_log.record_history(table, key), table.schema)})


@table_route("/records/<path:key>/blame")
def blame(key: str):
    """The version, request and people that last changed each cell of one record."""
    table = table_urls.current()
    return jsonify(present.blame_json(key, history.blame(table, key), table.schema))


# --- versions ----------------------------------------------------------------------------------


@table_route("/versions")
def versions():
    """Every version of the table newest first, with the approved request that made it; ?all=1: of
    every table, each with its `table`; ?limit, ?offset."""
    every = every_table()
    items, total = history.versions(offset_arg(), limit_arg(100, 1000), None if every else table_urls.current())
    return jsonify({"items": [present.version_json(cr, with_table=every) for cr in items], "total": total})


@table_route("/diff")
def version_diff():
    """The rows that differ between versions ?from=A and ?to=B (A > B: the reverse diff); ?limit, ?offset per list."""
    low, high, table = required_int("from"), required_int("to"), table_urls.current()
    found, schema = history.diff(table, low, high), table.schema
    offset, limit = offset_arg(), int_arg("limit", None, low=1, high=MAX_OFFSET)
    end = None if limit is None else offset + limit
    body: dict = {"from": low, "to": high, "summary": found.summary}
    for kind in ("added", "modified", "deleted"):
        body[kind] = present.version_diff_rows(schema, kind, found.rows(kind)[offset:end])
    return jsonify(body)


@table_route("/diff.csv")
def version_diff_csv():
    """The diff between versions ?from=A and ?to=B in the tabular diff format of daff."""
    return downloads.csv_stream(*history.diff_csv(table_urls.current(), required_int("from"), required_int("to")))


# --- discussion: comments, changes requested, revisions (discussion.py) -----------------------


def _json_object() -> dict:
    """The request's JSON object; 400 when the body is not one."""
    data = json_body()
    if not isinstance(data, dict):
        abort(400, "Send a JSON object as the body (Content-Type: application/json).")
    return data


@bp.route("/changes/<id:change_id>/comments")
def comments(change_id: int):
    """A request's comments in order: {"items": [{"id", "user", "at", "text", "key", "column"}, …]}."""
    return jsonify({"items": [present.comment_json(c) for c in discussion.comments(change_id)]})


@bp.route("/changes/<id:change_id>/comments", methods=["POST"])
def add_comment(change_id: int):
    """Comment on a request (JSON {"text"}), one of its rows ({"text", "key"}) or a cell ({"text", "key", "column"})."""
    data = _json_object()
    comment = discussion.add_comment(change_id, current_user.username, data.get("text"), data.get("key"),
                                     data.get("column"))  # fmt: skip
    return jsonify(present.comment_json(comment)), 201


@bp.route("/changes/<id:change_id>/comments/<id:comment_id>", methods=["PATCH"])
def edit_comment(change_id: int, comment_id: int):
    """The author changes their comment's text (JSON {"text"}) while the request is open."""
    comment = discussion.edit_comment(change_id, comment_id, current_user.username, _json_object().get("text"))
    return jsonify(present.comment_json(comment))


@bp.route("/changes/<id:change_id>/comments/<id:comment_id>", methods=["DELETE"])
def delete_comment(change_id: int, comment_id: int):
    """The author deletes their comment while the request is open."""
    discussion.delete_comment(change_id, comment_id, current_user.username)
    return "", 204


@bp.route("/changes/<id:change_id>/request-changes", methods=["POST"])
@approver_required
def request_changes(change_id: int):
    """Send a pending request back to its submitter (deciders only); JSON {"reason"} required."""
    comment = discussion.request_changes(change_id, current_user.username, _json_object().get("reason"))
    return jsonify({"id": change_id, "status": "changes_requested", "comment": present.comment_json(comment)})


@bp.route("/changes/<id:change_id>/revisions", methods=["POST"])
def revise(change_id: int):
    """The submitter's corrected file for their open request, with the same fields and body options
    as an upload (POST /changes); 201 the new revision, 200 when it changes nothing."""
    discussion.check_reviser(change_id, current_user.username)  # before the body is read
    result, refused = _staged(
        lambda stream, options: discussion.revise(change_id, stream, options),
        "Send the corrected file as a multipart form field named 'file', or as the body.",
    )
    if refused is not None:
        return refused
    body, status = present.revision_json(result)
    return jsonify(body), status


@bp.route("/changes/<id:change_id>/revisions")
def revisions(change_id: int):
    """A request's revisions: {"revision": N now, "items": [{"revision", "user", "at", "filename", "base_version", "summary"}]}."""
    cr = changes.get_request(change_id)
    items = [
        {"revision": 1, "user": cr.submitter, "at": present.iso(cr.created_at), "filename": None}
    ] + [
        {"revision": r.number, "user": r.user, "at": present.iso(r.created_at), "filename": r.filename,
         "base_version": r.base_version, "summary": json.loads(r.summary)}
        for r in discussion.revisions(change_id)
    ]  # fmt: skip
    return jsonify({"revision": cr.revision, "items": items})


@bp.route("/changes/<id:change_id>/revisions/diff")
def revision_diff(change_id: int):
    """Staged rows added, removed and changed between revisions ?since=A and ?until=B (default: now)."""
    cr = changes.get_request(change_id)
    found = discussion.revision_diff(cr, required_int("since"), int_arg("until"))
    return jsonify(present.revision_diff_json(found, tables.of_request(cr).schema, cr.field_names))
