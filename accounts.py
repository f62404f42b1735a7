"""Accounts: users and passwords, API tokens, sign-in with throttling, who is an admin. Owns its commits.

The sign-in pages and the request loaders (web/auth.py) and the CLI (cli.py) call these; nothing
here knows about HTTP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

import store.accounts
from models import ApiToken, User, db, utcnow

THROTTLE_WINDOW = dt.timedelta(minutes=15)
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)  # last_used_at is written at most this often: not a write per call


class AuthError(Exception):
    """A user-management step that cannot be done (e.g. the user exists already)."""


class TooManyFailures(AuthError):
    """Sign-in is paused for this user name or address after too many wrong passwords."""


# --- users -----------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A salted hash with the configured method (scrypt; tests configure a cheap one)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _add_user(username: str, password: str) -> User:
    username = username.strip()
    if not username or len(username) > 150:
        raise AuthError("A user name must be 1–150 characters.")
    if store.accounts.find_user(username):
        raise AuthError(f"User {username!r} already exists (use `users set-password` to change the password).")
    return store.accounts.add_user(username, hash_password(password) if password else "")


def create_user(username: str, password: str) -> User:
    """Add an account (an empty password: one that can only sign in through AUTH_HEADER)."""
    user = _add_user(username, password)
    db.session.commit()
    return user


def set_password(username: str, password: str) -> User:
    user = store.accounts.find_user(username)
    if user is None:
        raise AuthError(f"There is no user {username!r} (use `users create` first).")
    user.password_hash = hash_password(password)
    db.session.commit()
    return user


def find_user(username: str) -> User | None:
    return store.accounts.find_user(username)


def user_by_id(user_id: int) -> User | None:
    return store.accounts.get_user(user_id)


def list_users() -> list[User]:
    return store.accounts.all_users()


def is_admin(user) -> bool:
    """Is this (signed-in) user named in ADMIN_USER?"""
    return bool(getattr(user, "is_authenticated", False)) and user.username in current_app.config["ADMIN_USERS"]


def create_first_admins() -> list[tuple[str, str]]:
    """On an empty database, the ADMIN_USER accounts with random passwords: [(name, password)].

    The caller (start-up) commits, and shows each password once."""
    if store.accounts.count_users():
        return []
    created = []
    for name in current_app.config["ADMIN_USERS"]:
        password = secrets.token_urlsafe(12)
        _add_user(name, password)
        created.append((name, password))
    return created


# --- sign-in ---------------------------------------------------------------------------------


def sign_in(username: str, password: str, address: str) -> User | None:
    """The account when the password is right; None (and the failure counted) when not.

    Raises TooManyFailures when this user name or address failed LOGIN_MAX_FAILURES times in
    the last THROTTLE_WINDOW.
    """
    now = utcnow()
    if (
        store.accounts.count_failures(username, address, now - THROTTLE_WINDOW)
        >= current_app.config["LOGIN_MAX_FAILURES"]
    ):
        raise TooManyFailures(
            "Too many failed sign-ins. Wait 15 minutes and try again, or ask an admin to reset your password."
        )
    user = store.accounts.find_user(username)
    if user and user.password_hash and check_password_hash(user.password_hash, password):
        return user
    store.accounts.add_failure(username, address, forget_before=now - THROTTLE_WINDOW)
    db.session.commit()
    return None


def user_for_proxy(username: str) -> User:
    """The account named by a trusted proxy's header (AUTH_HEADER), created on first sight."""
    user = store.accounts.find_user(username)
    if user is None:
        user = create_user(username, "")
    return user


# --- API tokens ------------------------------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(username: str) -> str:
    """A new API token for a user; only its hash is stored, so it is shown once."""
    user = store.accounts.find_user(username)
    if user is None:
        raise AuthError(f"There is no user {username!r}.")
    token = "dt_" + secrets.token_urlsafe(32)
    store.accounts.add_token(user.id, _hash_token(token), token[:10])
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """The owner of an active token (its last use noted), or None."""
    row = store.accounts.active_token(_hash_token(token))
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH_INTERVAL:
        row.last_used_at = now
        db.session.commit()
    return store.accounts.get_user(row.user_id)


def list_tokens(username: str | None = None) -> list[tuple[ApiToken, str]]:
    """(token, owner's name) of one user, or of everyone."""
    return store.accounts.tokens_with_owners(username)


def revoke_tokens(username: str, token_id: int | None = None) -> int:
    """Revoke a user's tokens (all, or one by id); returns how many."""
    user = store.accounts.find_user(username)
    if user is None:
        raise AuthError(f"There is no user {username!r}.")
    tokens = store.accounts.active_tokens(user.id, token_id)
    for t in tokens:
        t.revoked_at = utcnow()
    db.session.commit()
    return len(tokens)
