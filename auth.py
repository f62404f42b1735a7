"""Users, passwords, API tokens, sign-in and the admin check."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from models import ApiToken, LoginFailure, User, db, utcnow

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
THROTTLE_WINDOW = dt.timedelta(minutes=15)
PUBLIC_ENDPOINTS = {"auth.login", "healthz", "static"}


class AuthError(Exception):
    """A user-management command that cannot be done (e.g. the user exists already)."""


# --- accounts --------------------------------------------------------------------------------


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def create_user(username: str, password: str) -> User:
    """Add an account; the caller commits."""
    username = username.strip()
    if not username or len(username) > 150:
        raise AuthError("A user name must be 1–150 characters.")
    if find_user(username):
        raise AuthError(f"User {username!r} already exists (use `users set-password` to change the password).")
    user = User(username=username, password_hash=generate_password_hash(password) if password else "")
    db.session.add(user)
    return user


def set_password(username: str, password: str) -> User:
    user = find_user(username)
    if user is None:
        raise AuthError(f"There is no user {username!r} (use `users create` first).")
    user.password_hash = generate_password_hash(password)
    return user


def is_admin(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.username in current_app.config["ADMIN_USERS"]


def admin_required(view):
    """Refuse (403) anyone who is not named in ADMIN_USER: checked on the server for every call."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not is_admin(current_user):
            abort(403, "Only admins can approve or reject changes.")
        return view(*args, **kwargs)

    return wrapped


# --- tokens ----------------------------------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(username: str) -> str:
    """A new API token for a user; only its hash is stored, so it is shown once. The caller commits."""
    user = find_user(username)
    if user is None:
        raise AuthError(f"There is no user {username!r}.")
    token = "dt_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_hash_token(token), prefix=token[:10]))
    return token


def user_for_token(token: str) -> User | None:
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _hash_token(token), ApiToken.revoked_at.is_(None))
    )
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1):  # not a write per call
        row.last_used_at = now
        db.session.commit()
    return db.session.get(User, row.user_id)


def list_tokens(username: str | None = None) -> list[tuple[ApiToken, str]]:
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if username:
        query = query.where(User.username == username)
    return [(t, name) for t, name in db.session.execute(query)]


def revoke_tokens(username: str, token_id: int | None = None) -> int:
    """Revoke a user's tokens (all, or one by id); returns how many. The caller commits."""
    user = find_user(username)
    if user is None:
        raise AuthError(f"There is no user {username!r}.")
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    tokens = db.session.scalars(query).all()
    for t in tokens:
        t.revoked_at = utcnow()
    return len(tokens)


# --- request authentication ------------------------------------------------------------------


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    # The API is exempt from CSRF, so it must not accept the session cookie: bearer tokens only.
    if request.path.startswith("/api/"):
        return None
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


@login_manager.request_loader
def load_user_from_request(req) -> User | None:
    """Bearer tokens for /api; the trusted proxy header (AUTH_HEADER) for pages when configured."""
    header = req.headers.get("Authorization", "")
    if req.path.startswith("/api/"):
        if header.startswith("Bearer "):
            return user_for_token(header[7:].strip())
        return None
    proxy_header = current_app.config.get("AUTH_HEADER")
    if proxy_header and (name := req.headers.get(proxy_header, "").strip()):
        user = find_user(name)
        if user is None:
            user = create_user(name, "")
            db.session.commit()
        return user
    return None


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
    """before_request: every page and API call needs a signed-in user, except sign-in and health."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if not target:
        return url_for("views.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("views.index")
    return target


# --- throttling ------------------------------------------------------------------------------


def too_many_failures(username: str, address: str) -> bool:
    since = utcnow() - THROTTLE_WINDOW
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    count = db.session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(
            LoginFailure.created_at >= since, (LoginFailure.username == username) | (LoginFailure.address == address)
        )
    )
    return (count or 0) >= limit


def record_failure(username: str, address: str) -> None:
    db.session.add(LoginFailure(username=username[:150], address=address[:64]))
    db.session.execute(db.delete(LoginFailure).where(LoginFailure.created_at < utcnow() - THROTTLE_WINDOW))
    db.session.commit()


# --- pages -----------------------------------------------------------------------------------


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=150)])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with a built-in account."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        username, address = form.username.data.strip(), request.remote_addr or "?"
        if too_many_failures(username, address):
            abort(
                429, "Too many failed sign-ins. Wait 15 minutes and try again, or ask an admin to reset your password."
            )
        user = find_user(username)
        if user and user.password_hash and check_password_hash(user.password_hash, form.password.data):
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
        record_failure(username, address)
        form.password.errors.append("Wrong user name or password.")
    return render_template("login.html", form=form), 200 if request.method == "GET" or not form.errors else 401


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST, so a link on another site cannot sign you out)."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
