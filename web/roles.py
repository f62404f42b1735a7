"""Roles on every request: which role each page and API call needs on the table its URL names
(or on the table of the change request it names), checked before the view runs by
`access.require`; what an API token's scope allows; and the access review (`/access`,
`GET /api/v1/access`, `.csv`).

Every endpoint of the app is in `ENDPOINT_ROLES` (tests/test_roles.py fails on one that is not),
so a new view cannot forget its check.
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, abort, g, jsonify, render_template, request
from flask_login import current_user

import access
import accounts
import changes
import events
import tables
from errors import NotFound
from files.formulas import escape_formula
from web import downloads, table_urls
from web.auth import PUBLIC_ENDPOINTS

bp = Blueprint("access", __name__)
api_bp = Blueprint("access_api", __name__, url_prefix="/api/v1")

NONE = None  # no table: sign-in, tokens, error files (their owner only), the overview (filtered)
VIEW, EDIT, DECIDE = access.VIEW, access.EDIT, access.DECIDE
ENDPOINT_ROLES: dict[str, str | None] = {
    "static": NONE,
    "healthz": NONE,
    "auth.login": NONE,
    "auth.logout": NONE,
    "oidc.start": NONE,
    "oidc.callback": NONE,
    "access.review": NONE,
    "access.review_csv": NONE,
    "access_api.review": NONE,
    "access_api.review_csv": NONE,
    "pages.tokens": NONE,
    "pages.guide": NONE,  # the user guide and its pictures
    "pages.guide_screenshot": NONE,
    "account.account": NONE,  # one's own e-mail and notifications
    "account.webhooks": NONE,  # the admins' webhook list (checked by the view)
    "event_log.page": NONE,  # the event log: admins and AUDITORS (events.require_reader)
    "event_log.api_events": NONE,
    "event_log.api_events_csv": NONE,
    "event_log.api_head": NONE,
    "pages.error_file": NONE,
    "api.error_file": NONE,
    "api.table_list": NONE,
    "pages.index": VIEW,
    "pages.download": VIEW,
    "pages.download_xlsx": VIEW,
    "pages.record": VIEW,
    "pages.versions": VIEW,
    "pages.version_diff": VIEW,
    "pages.version_diff_csv": VIEW,
    "pages.audit": VIEW,
    "pages.audit_csv": VIEW,
    "pages.change_list": VIEW,
    "pages.change": VIEW,
    "pages.change_diff_csv": VIEW,
    "pages.upload": EDIT,
    "pages.resolve": EDIT,
    "pages.revert": EDIT,
    "pages.withdraw": EDIT,
    "pages.approve": DECIDE,
    "pages.reject": DECIDE,
    "api.export": VIEW,
    "api.export_xlsx": VIEW,
    "api.change_list": VIEW,
    "api.change_detail": VIEW,
    "api.change_diff_csv": VIEW,
    "api.audit": VIEW,
    "api.audit_csv": VIEW,
    "api.record_history": VIEW,
    "api.blame": VIEW,
    "api.versions": VIEW,
    "api.version_diff": VIEW,
    "api.version_diff_csv": VIEW,
    "api.upload": EDIT,
    "api.resolve": EDIT,
    "api.revert": EDIT,
    "api.withdraw": EDIT,
    "api.approve": DECIDE,
    "api.reject": DECIDE,
    # the discussion: anyone who may view the table comments; the submitter (an editor) revises
    "pages.add_comment": VIEW,
    "pages.edit_comment": VIEW,
    "pages.delete_comment": VIEW,
    "pages.request_changes": DECIDE,
    "pages.revise": EDIT,
    "api.comments": VIEW,
    "api.add_comment": VIEW,
    "api.edit_comment": VIEW,
    "api.delete_comment": VIEW,
    "api.request_changes": DECIDE,
    "api.revise": EDIT,
    "api.revisions": VIEW,
    "api.revision_diff": VIEW,
}
# Endpoints that, at a plain path of a deployment of several tables, serve every table the person
# may view (the overview, the whole database's workbook, the change lists): no one table to check.
ACROSS_TABLES = {"pages.index", "pages.download_xlsx", "pages.change_list", "api.change_list", "api.export_xlsx"}
# What each token scope allows: read only reads; submit also changes (uploads, resolve, revert, withdraw).
SCOPE_ALLOWS = {"read": {VIEW, NONE}, "submit": {VIEW, EDIT, NONE}, "decide": {VIEW, EDIT, DECIDE, NONE}}


def check_access() -> None:
    """before_request (after sign-in): the role the endpoint needs on its table, and the token's scope."""
    endpoint = request.endpoint
    # The public endpoints (health, sign-in, static) must not load the account: /healthz answers
    # while the database is down.
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS or not current_user.is_authenticated:
        return
    if endpoint not in ENDPOINT_ROLES:
        abort(403, "This page has no access rule; refused until it has one.")
    role = ENDPOINT_ROLES[endpoint]
    scope = g.get("token_scope")
    if scope is not None and (role not in SCOPE_ALLOWS.get(scope, ()) or (scope == "read" and request.method != "GET")):
        abort(
            403,
            f"This API token's scope is {scope!r}, which does not allow this call; create one with a wider --scope.",
        )
    if role is NONE:
        return
    change_id = (request.view_args or {}).get("change_id")
    if change_id is not None:
        if role == DECIDE and not accounts.may_decide(current_user.username, tables.approvers()):
            # as before roles: someone who may decide no table's requests is refused before the lookup
            abort(403, "Only admins and the table's approvers can approve or reject its changes.")
        change = changes.get_request(change_id)
        if not access.may(access.current(), tables.of_request(change), VIEW):
            # a request of a table one may not see is not there (and its 404 does not name the table)
            raise NotFound(f"There is no change request #{change_id}.")
        # An upload spanning tables is shown and decided as a whole: every table of it counts (its
        # review page names them all, so one hidden table hides the batch).
        for member in changes.batch_of(change):
            access.require(tables.of_request(member), role)
        return
    if endpoint in ACROSS_TABLES and not table_urls.named() and _across_tables(endpoint):
        return
    try:
        table = table_urls.current()
    except NotFound:
        raise _unknown_table() from None
    if not access.may(access.current(), table, VIEW):
        raise _unknown_table()
    access.require(table, role)


def _unknown_table() -> NotFound:
    """404 for a table that is not there or that the person may not view (told apart by nothing),
    listing only the tables they may view; a plain path (the first table's) names none."""
    names = ", ".join(t.name for t in access.visible()) or "none"
    if table_urls.named():
        return NotFound(f"There is no table {g.table_name!r}. Tables: {names}.")
    return NotFound(f"There is no table to show here. Tables: {names}.")


def _across_tables(endpoint: str) -> bool:
    """Does this plain-path request serve several tables (each filtered to what the person may view)?"""
    if endpoint in ("pages.change_list", "api.change_list"):
        return True
    if endpoint == "api.export_xlsx":
        return request.args.get("all") == "1"
    return table_urls.whole_database()


# --- the access review -----------------------------------------------------------------------


def _require_reviewer() -> None:
    """The access review is for admins and the AUDITORS (who read the event log too)."""
    if not (accounts.is_admin(current_user) or events.may_read(current_user.username)):
        abort(403, "Only admins and auditors can see the access review.")


COLUMNS = ("table", "role", "who", "via")


def _items() -> list[dict[str, str]]:
    return [{"table": a.table, "role": a.role, "who": a.who, "via": a.via} for a in access.review()]


def _csv():
    """The review as a CSV download (BOM, \\r\\n, cells that look like formulas escaped)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([escape_formula(item[c]) for c in COLUMNS] for item in _items())
    return downloads.csv_stream("access.csv", ["\ufeff".encode() + out.getvalue().encode()])


@bp.route("/access")
def review():
    """Who may view, edit and approve each table, resolved through groups."""
    _require_reviewer()
    return render_template("access.html", items=_items())


@bp.route("/access.csv")
def review_csv():
    """The access review as CSV."""
    _require_reviewer()
    return _csv()


@api_bp.route("/access", endpoint="review")
def api_review():
    """The access review: {"items": [{"table", "role", "who", "via"}]}."""
    _require_reviewer()
    return jsonify({"items": _items()})


@api_bp.route("/access.csv", endpoint="review_csv")
def api_review_csv():
    """The access review as CSV."""
    _require_reviewer()
    return _csv()
