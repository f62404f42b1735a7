"""Sign-in for every request: the sign-in page, session cookies for pages, bearer tokens for the API,
the trusted proxy header, and the admin check. Accounts themselves live in accounts.py."""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user

import accounts
import changes
import tables
from models import ChangeRequest, User
from web.forms import LoginForm

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
PUBLIC_ENDPOINTS = {"auth.login", "oidc.start", "oidc.callback", "healthz", "static"}
FILE_ENDPOINTS = {
    "pages.upload",
    "api.upload",
    "pages.revise",
    "api.revise",
}  # the only ones whose body may be as large as MAX_UPLOAD_MB
SMALL_BODY_BYTES = 1024 * 1024  # every other body: a form or a JSON object
SMALL_BODY_PARTS = 100  # form fields of a request that takes no file


def approver_required(view):
    """Refuse (403) anyone who may not decide the request `change_id`: the admins (ADMIN_USER) and
    the approvers of its table (schema.json) may. Checked on the server for every call (and again
    by changes.approve / changes.reject)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        # Someone who may decide no table's requests is refused before the request is looked up.
        if not accounts.may_decide(current_user.username, tables.approvers()) or not may_decide(
            changes.get_request(kwargs["change_id"])
        ):
            abort(403, "Only admins and the table's approvers can approve or reject its changes.")
        return view(*args, **kwargs)

    return wrapped


def may_decide(change: ChangeRequest) -> bool:
    """May the signed-in user approve or reject this request?"""
    return current_user.is_authenticated and accounts.may_decide(
        current_user.username, tables.of_request(change).spec.approvers
    )


# --- request authentication ------------------------------------------------------------------


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session cookie's account, while the session is valid (checked on every request:
    signing out, a new password or a disabled account end it on every worker)."""
    # The API is exempt from CSRF, so it must not accept the session cookie: bearer tokens only.
    if request.path.startswith("/api/"):
        return None
    return accounts.user_for_session(user_id)


@login_manager.request_loader
def load_user_from_request(req) -> User | None:
    """Bearer tokens for /api; the trusted proxy header (AUTH_HEADER) for pages, from AUTH_PROXY_IPS only."""
    header = req.headers.get("Authorization", "")
    if req.path.startswith("/api/"):
        if header.startswith("Bearer "):
            try:
                found = accounts.token_owner_and_scope(header[7:].strip())
            except accounts.TokenExpired as exc:
                abort(401, str(exc))
            if found is None:
                return None
            g.token_scope = found[1]  # what the token may do: checked by web.roles for every call
            return found[0]
        return None
    proxy_header = current_app.config.get("AUTH_HEADER")
    name = req.headers.get(proxy_header, "").strip() if proxy_header else ""
    if name and "\x00" not in name and from_trusted_proxy(peer_address()):
        return accounts.user_for_proxy(name)
    return None


def from_trusted_proxy(address: str | None) -> bool:
    """Is the peer one of the proxies allowed to name the user (AUTH_PROXY_IPS)?"""
    try:
        peer = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if peer.version == 6 and peer.ipv4_mapped:
        peer = peer.ipv4_mapped
    return any(peer in network for network in current_app.config["AUTH_PROXY_IPS"])


def peer_address() -> str | None:
    """The address of whoever opened the connection (with PROXY_FIX, the proxy's, as it was
    before werkzeug's ProxyFix put the client's in its place)."""
    original = request.environ.get("werkzeug.proxy_fix.orig") or {}
    return original.get("REMOTE_ADDR", request.remote_addr)


def client_address() -> str:
    """The address sign-in throttling counts failures against: the client's, never a proxy's.

    Behind PROXY_FIX proxies, werkzeug's ProxyFix has already put the client's address in
    `remote_addr`. From a proxy of AUTH_PROXY_IPS, X-Forwarded-For is read from the right, past
    the addresses of trusted proxies: the first other address is the client's (anything further
    left was written by the client and may be a lie). From anyone else the header is ignored.
    """
    peer = request.remote_addr or "?"
    if not from_trusted_proxy(peer_address()):
        return peer
    forwarded = [a.strip() for a in ",".join(request.headers.getlist("X-Forwarded-For")).split(",") if a.strip()]
    for address in reversed(forwarded):
        if not from_trusted_proxy(address):
            return address[:100]
    return forwarded[0][:100] if forwarded else peer


@login_manager.unauthorized_handler
def unauthorized():
    if request.path.startswith("/api/"):
        abort(
            401,
            "Send a valid API token: Authorization: Bearer TOKEN (create one with `flask --app app tokens create NAME`).",
        )
    flash(login_manager.login_message, "info")
    return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


def require_login():
    """before_request, the first one: every page and API call needs a signed-in user, except
    sign-in and health. Runs before anything reads the body (only headers and the session cookie
    are looked at), so an anonymous body is never read; and every body but an upload's is limited
    to SMALL_BODY_BYTES before it is parsed (413)."""
    if request.endpoint not in FILE_ENDPOINTS:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        request.max_content_length = SMALL_BODY_BYTES if limit is None else min(limit, SMALL_BODY_BYTES)
        request.max_form_parts = SMALL_BODY_PARTS
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if not target:
        return url_for("pages.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.index")
    return target


# --- pages -----------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with a built-in account."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if not current_app.config["PASSWORD_LOGIN"]:
        if request.method == "POST":
            abort(403, "Sign-in with a password is turned off here; sign in with the company account.")
        return render_template("login.html", form=None)
    if form.validate_on_submit():
        try:
            user = accounts.sign_in(form.username.data.strip(), form.password.data, client_address())
        except accounts.TooManyFailures as exc:
            abort(429, str(exc))
        except accounts.AccountDisabled as exc:
            abort(403, str(exc))
        if user is not None:
            session.clear()  # a fresh session: a new CSRF token, nothing kept from before sign-in
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
        form.password.errors.append("Wrong user name or password.")
    return render_template("login.html", form=form), 200 if request.method == "GET" or not form.errors else 401


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST, so a link on another site cannot sign you out): every session of the account ends."""
    if current_user.is_authenticated:
        accounts.sign_out(current_user)
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
