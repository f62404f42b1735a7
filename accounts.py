"""Accounts: users and passwords, API tokens, sign-in with throttling, sessions, who is an admin.
Owns its commits.

The sign-in pages and the request loaders (web/auth.py) and the CLI (cli.py) call these; nothing
here knows about HTTP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

import config
import events
import store.accounts
from models import DB_INT_MAX, ApiToken, User, db, utcnow

THROTTLE_WINDOW = dt.timedelta(minutes=15)
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)  # last_used_at is written at most this often: not a write per call
MAX_SLOWDOWN_SECONDS = 5.0
PASSWORD_MIN_LENGTH = 12
# The strength estimate (zxcvbn: dictionaries of common passwords, names and words, keyboard
# patterns, repeats, dates, l33t) must put a password at 10^9 guesses or more: with scrypt, years
# of guessing for one stolen hash. `davedave2026` (10^5.9) and `dataset-tracker1` (10^8.2) fall short.
PASSWORD_MIN_GUESSES_LOG10 = config.STRONG_PASSWORD_GUESSES_LOG10
# Words of this app a password must not lean on (zxcvbn's user_inputs, with the user name).
APP_WORDS = ("dataset", "datasets", "tracker", "dataset-tracker", "datasettracker", "admin", "catalog")
# Passwords of 12 or more characters that lead the lists of leaked passwords: refused too.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012", "1234567890123", "12345678901234", "123456789000", "111111111111", "000000000000",
        "password1234", "password12345", "password123456", "passwordpassword", "password!234",
        "qwerty123456", "qwertyuiop12", "qwertyuiop123", "qwertyuiopasdf", "1q2w3e4r5t6y", "1qaz2wsx3edc",
        "zaq12wsxcde3", "abcdefghijkl", "abc123456789", "iloveyou1234", "welcome12345", "letmein12345",
        "changeme1234", "administrator", "admin1234567", "adminadmin12", "p@ssw0rd1234", "passw0rd1234",
        "trustno11234", "football1234", "baseball1234", "sunshine1234", "princess1234", "dragon123456",
        "monkey123456", "superman1234", "starwars1234", "computer1234", "internet1234", "datasettracker",
    }
)  # fmt: skip


class AuthError(Exception):
    """A user-management step that cannot be done (e.g. the user exists already)."""


class WeakPassword(AuthError):
    """A new password that is too short or too common."""


class TooManyFailures(AuthError):
    """Sign-in is paused for this user name from this address, or for this address, after too many wrong passwords."""


class AccountDisabled(AuthError):
    """The password was right, but the account is disabled."""


class TokenExpired(AuthError):
    """An API token past its expiry date."""


class SignInRefused(AuthError):
    """The identity provider's answer cannot sign anyone in (the message says why)."""


class TokensNotAllowed(AuthError):
    """This account may not create API tokens (made by the sign-in proxy, or disabled)."""


# --- users -----------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A salted hash with the configured method (scrypt; tests configure a cheap one)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def check_password_policy(username: str, password: str, min_guesses_log10: float | None = None) -> None:
    """Refuse (WeakPassword) a new password shorter than PASSWORD_MIN_LENGTH, a common one, one of
    very few different characters, the user name itself, or one the strength estimate (zxcvbn,
    given the user name and the app's own words) puts below 10^`min_guesses_log10` guesses
    (PASSWORD_MIN_GUESSES_LOG10; the app's setting of that name when there is an app).

    >>> check_password_policy("alice", "correct horse battery staple")
    >>> check_password_policy("alice", "password1234")
    Traceback (most recent call last):
    accounts.WeakPassword: That password is one of the most common ones; choose another.
    >>> check_password_policy("dave", "davedave2026")
    Traceback (most recent call last):
    accounts.WeakPassword: That password is too easy to guess (Repeats like "abcabcabc" are only slightly harder to guess than "abc".). Choose a longer one, for example four or five unrelated words.
    """
    if len(password) < PASSWORD_MIN_LENGTH:
        raise WeakPassword(
            f"A password needs at least {PASSWORD_MIN_LENGTH} characters (this one has {len(password)})."
        )
    folded = password.casefold()
    if folded in COMMON_PASSWORDS or len(set(folded)) < 4:
        raise WeakPassword("That password is one of the most common ones; choose another.")
    if folded == username.strip().casefold():
        raise WeakPassword("A password must not be the user name.")
    if min_guesses_log10 is None:
        configured = current_app.config.get("PASSWORD_MIN_GUESSES_LOG10") if current_app else None
        min_guesses_log10 = PASSWORD_MIN_GUESSES_LOG10 if configured is None else configured
    if min_guesses_log10 <= 0:
        return
    estimate = zxcvbn(password[:100], user_inputs=[username.strip(), *APP_WORDS])  # its cost grows with length
    if estimate["guesses_log10"] < min_guesses_log10:
        feedback = estimate["feedback"]
        why = feedback.get("warning") or "it follows a pattern or a word people often use"
        raise WeakPassword(
            f"That password is too easy to guess ({why.rstrip('.')}.). Choose a longer one, for example four or"
            " five unrelated words."
        )


def _add_user(username: str, password: str, created_by_proxy: bool = False) -> User:
    username = username.strip()
    if not username or len(username) > 150:
        raise AuthError("A user name must be 1–150 characters.")
    if store.accounts.find_user(username):
        raise AuthError(f"User {username!r} already exists (use `users set-password` to change the password).")
    return store.accounts.add_user(username, hash_password(password) if password else "", created_by_proxy)


def create_user(username: str, password: str) -> User:
    """Add an account (an empty password: one that can only sign in through AUTH_HEADER)."""
    if password:
        check_password_policy(username, password)
    user = _add_user(username, password)
    events.record("user-created", details={"username": user.username})
    db.session.commit()
    return user


def _existing(username: str) -> User:
    user = store.accounts.find_user(username)
    if user is None:
        raise AuthError(f"There is no user {username!r} (use `users create` first).")
    return user


def set_password(username: str, password: str) -> User:
    """A new password; every session of the account ends (its API tokens stay)."""
    check_password_policy(username, password)
    user = _existing(username)
    user.password_hash = hash_password(password)
    store.accounts.bump_session_generation(user.id)
    events.record("password-changed", details={"username": username})
    db.session.commit()
    forget_first_password(username)
    return user


def forget_first_password(username: str) -> None:
    """Take an admin's line out of the first-admin password file (FIRST_ADMIN_PASSWORD_FILE) once
    their password is changed; delete the file when no line is left. A password that is no longer
    anyone's must not lie on disk."""
    path = Path(current_app.config.get("FIRST_ADMIN_PASSWORD_FILE") or "")
    if not path.name:
        return
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, IsADirectoryError):
        return
    kept = [line for line in lines if line.partition(": ")[0] != username]
    if len(kept) == len(lines):
        return
    if kept:
        config.write_private(path, "".join(line + "\n" for line in kept))
    else:
        path.unlink(missing_ok=True)


def set_disabled(username: str, disabled: bool) -> User:
    """Disable an account (it cannot sign in, its sessions end, its tokens answer 401; its change
    requests and audit entries stay, under its name) or enable it again."""
    user = _existing(username)
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        store.accounts.bump_session_generation(user.id)
    events.record("user-disabled" if disabled else "user-enabled", details={"username": username})
    db.session.commit()
    return user


def sign_out(user: User) -> None:
    """End every session of the account, on every worker (not only the one signing out)."""
    store.accounts.bump_session_generation(user.id)
    events.record("sign-out", user=user.username)
    db.session.commit()


def user_for_session(session_id: str) -> User | None:
    """The account of a session cookie's user id ("id:generation"), while that session is valid:
    the account exists, is not disabled and has not ended its sessions since."""
    user_id, _, generation = session_id.partition(":")
    if not (user_id.isdecimal() and generation.isdecimal()) or len(user_id) > 12 or len(generation) > 12:
        return None
    if not 0 < int(user_id) <= DB_INT_MAX:
        return None
    user = store.accounts.get_user(int(user_id))
    if user is None or not user.is_active or user.session_generation != int(generation):
        return None
    return user


def check_password(username: str, password: str) -> bool:
    """Is this the account's password? (An electronic signature asks for it again.)"""
    user = store.accounts.find_user(username)
    return user is not None and bool(user.password_hash) and check_password_hash(user.password_hash, password)


def find_user(username: str) -> User | None:
    return store.accounts.find_user(username)


def list_users() -> list[User]:
    return store.accounts.all_users()


def expire_failures() -> int:
    """Forget failed sign-ins older than the throttling window (clean-up); returns how many."""
    count = store.accounts.forget_failures_before(utcnow() - THROTTLE_WINDOW)
    db.session.commit()
    return count


def is_admin(user) -> bool:
    """Is this (signed-in) user named in ADMIN_USER, or in one of the OIDC_ADMIN_GROUPS?"""
    return bool(getattr(user, "is_authenticated", False)) and is_admin_name(user.username)


def is_admin_name(username: str) -> bool:
    """Is the user called `username` an admin: named in ADMIN_USER, or a member of an OIDC_ADMIN_GROUPS group?"""
    if username in current_app.config["ADMIN_USERS"]:
        return True
    admin_groups = current_app.config.get("OIDC_ADMIN_GROUPS") or []
    return bool(admin_groups) and not set(admin_groups).isdisjoint(groups_of(username))


def may_decide(username: str, approvers: Sequence[str]) -> bool:
    """May this user approve or reject a request whose table names `approvers` in schema.json
    (user names and `group:NAME` entries)? The admins may decide every request."""
    if username in approvers or is_admin_name(username):
        return True
    wanted = {a[6:].strip() for a in approvers if a.startswith("group:")}
    return bool(wanted) and not wanted.isdisjoint(groups_of(username))


# --- groups ----------------------------------------------------------------------------------

LOCAL, FROM_PROVIDER = "local", "oidc"


def groups_of(username: str) -> list[str]:
    """The groups of a user (added by admins, and from the identity provider at the last sign-in)."""
    user = store.accounts.find_user(username)
    return store.accounts.group_names(user.id) if user is not None else []


def change_groups(username: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> list[str]:
    """Add and remove a user's local groups (`flask users groups`); returns all their groups after."""
    user = _existing(username)
    for name in [*add, *remove]:
        if not name.strip() or len(name.strip()) > 150 or name.strip().startswith("group:"):
            raise AuthError(f"{name!r} is not a group name: write it without 'group:', 1–150 characters.")
    for name in add:
        store.accounts.add_group(user.id, name.strip(), LOCAL)
    for name in remove:
        store.accounts.remove_group(user.id, name.strip(), LOCAL)
    if add or remove:
        events.record(
            "groups-changed",
            details={"username": username, "added": [n.strip() for n in add], "removed": [n.strip() for n in remove]},
        )
    db.session.commit()
    return store.accounts.group_names(user.id)


def create_first_admins() -> list[tuple[str, str]]:
    """On an empty database, the ADMIN_USER accounts with random passwords: [(name, password)].

    The caller (start-up) commits, and shows each password once."""
    if store.accounts.count_users():
        return []
    created = []
    for name in current_app.config["ADMIN_USERS"]:
        password = secrets.token_urlsafe(12)
        _add_user(name, password)
        events.record("user-created", user=None, details={"username": name, "by": "start-up (ADMIN_USER)"})
        created.append((name, password))
    return created


# --- sign-in ---------------------------------------------------------------------------------


def pause(seconds: float) -> None:
    """Wait before checking a password of a name being guessed (tests replace it)."""
    time.sleep(seconds)


def slowdown(failures: int, limit: int) -> float:
    """Seconds to wait before checking a password for a user name that failed `failures` times in
    the window, from any address: none below `limit`, then 1 s, growing to MAX_SLOWDOWN_SECONDS.

    >>> [slowdown(n, 10) for n in (9, 10, 15, 20, 100)]
    [0.0, 1.0, 1.5, 2.0, 5.0]
    """
    if failures < limit:
        return 0.0
    return min(MAX_SLOWDOWN_SECONDS, 1.0 + (failures - limit) / max(limit, 1))


_dummy_hashes: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash no password matches, checked for unknown names so they cost what known ones cost."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return _dummy_hashes[method]


def sign_in(username: str, password: str, address: str) -> User | None:
    """The account when the password is right; None (and the failure counted) when not.

    Raises TooManyFailures when this user name failed LOGIN_MAX_FAILURES times from this address,
    or this address LOGIN_MAX_FAILURES_PER_ADDRESS times, in the last THROTTLE_WINDOW. A name that
    failed LOGIN_MAX_FAILURES times from anywhere is slowed down, never refused: guessing from many
    addresses cannot lock its owner out. Unknown names cost a password check too (no timing hint).
    Raises AccountDisabled for the right password of a disabled account.
    """
    now = utcnow()
    config = current_app.config
    pair, from_address, for_name = store.accounts.count_failures(username, address, now - THROTTLE_WINDOW)
    if pair >= config["LOGIN_MAX_FAILURES"] or from_address >= config["LOGIN_MAX_FAILURES_PER_ADDRESS"]:
        raise TooManyFailures(
            "Too many failed sign-ins from your address. Wait 15 minutes and try again, or ask an admin to reset"
            " your password."
        )
    delay = slowdown(for_name, config["LOGIN_MAX_FAILURES"])
    if delay:
        pause(delay)
    user = store.accounts.find_user(username)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    if check_password_hash(stored, password) and user is not None and user.password_hash:
        if not user.is_active:
            raise AccountDisabled("This account is disabled. Ask an admin to enable it.")
        events.record("sign-in", user=user.username)
        db.session.commit()
        return user
    store.accounts.add_failure(username, address, forget_before=now - THROTTLE_WINDOW)
    events.record("sign-in-failed", user=username[:150])
    db.session.commit()
    return None


def user_for_proxy(username: str) -> User | None:
    """The account named by a trusted proxy's header (AUTH_HEADER), created (and marked so) on
    first sight; None when it is disabled."""
    user = store.accounts.find_user(username)
    if user is None:
        user = _add_user(username, "", created_by_proxy=True)
        events.record("user-created", user=username, details={"username": username, "by": "sign-in proxy"})
        db.session.commit()
    return user if user.is_active else None


def sign_in_with_provider(subject: str, username: str, email: str | None, groups: Sequence[str]) -> User:
    """The account an identity provider's verified ID token names: found by its subject (`sub`),
    else by name (an account made by hand or by the sign-in proxy is linked to the subject), else
    made now. Its e-mail and its provider groups are refreshed at every sign-in.

    Raises SignInRefused when the account is disabled, or when the name belongs to an account
    already linked to another subject."""
    try:
        user, created = _provider_account(subject, username, email, groups)
    except SignInRefused as exc:
        db.session.rollback()
        provider_sign_in_failed(str(exc), username)
        raise
    if created:
        events.record(
            "user-created", user=user.username, details={"username": user.username, "by": "identity provider"}
        )
    events.record("sign-in", user=user.username, details={"via": "oidc"})
    db.session.commit()
    return user


def provider_sign_in_failed(reason: str, username: str | None = None) -> None:
    """A sign-in through the identity provider that was refused, in the event log (its own commit)."""
    name = (username or "").strip()[:150] or None
    events.record("sign-in-failed", user=name, details={"via": "oidc", "reason": reason})
    db.session.commit()


def _provider_account(subject: str, username: str, email: str | None, groups: Sequence[str]) -> tuple[User, bool]:
    """(the account, whether it was made now) with its e-mail and provider groups refreshed; not committed."""
    created = False
    user = store.accounts.find_user_by_subject(subject)
    if user is None:
        username = username.strip()
        if not username or len(username) > 150 or "\x00" in username:
            raise SignInRefused("The identity provider sent no usable user name (preferred_username or email).")
        user = store.accounts.find_user(username)
        if user is not None and user.oidc_subject not in (None, subject):
            raise SignInRefused(
                f"The account {username!r} belongs to another person of the identity provider; ask an admin."
            )
        if user is None:
            user, created = store.accounts.add_user(username, "", created_by_proxy=True), True
        user.oidc_subject = subject
        db.session.flush()  # its id, for its groups
    if not user.is_active:
        raise SignInRefused("This account is disabled. Ask an admin to enable it.")
    if email:
        user.email = email[:320]
    store.accounts.replace_groups(user.id, [g.strip()[:150] for g in groups if g.strip()], FROM_PROVIDER)
    return user, created


# --- API tokens ------------------------------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_SCOPES = ("read", "submit", "decide")  # each allows what the ones before it allow
MAX_TOKEN_DAYS = 3650


def create_token(
    username: str, *, self_service: bool = False, scope: str = "decide", expires_days: int | None = None
) -> str:
    """A new API token for a user; only its hash is stored, so it is shown once.

    `scope`: read (GET only), submit (also uploads, resolving, reverting, withdrawing) or decide
    (also approving and rejecting, as far as the owner may). `expires_days`: it stops working
    that many days from now (None: never).

    `self_service`: the person asks for it themselves (the tokens page). Accounts the sign-in
    proxy created may not, unless AUTH_HEADER_TOKENS allows it; disabled accounts never get one.
    """
    user = store.accounts.find_user(username)
    if user is None:
        raise AuthError(f"There is no user {username!r}.")
    if not user.is_active:
        raise TokensNotAllowed(f"The account {username!r} is disabled; enable it first.")
    if self_service and user.created_by_proxy and not current_app.config["AUTH_HEADER_TOKENS"]:
        raise TokensNotAllowed(
            "Accounts created through the company sign-in cannot create API tokens here; ask an admin"
            " (`flask --app app tokens create NAME`)."
        )
    if scope not in TOKEN_SCOPES:
        raise AuthError(f"A token's scope is one of {', '.join(TOKEN_SCOPES)}, not {scope!r}.")
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise AuthError(f"A token expires in 1 to {MAX_TOKEN_DAYS} days, not {expires_days}.")
    expires_at = utcnow() + dt.timedelta(days=expires_days) if expires_days is not None else None
    token = "dt_" + secrets.token_urlsafe(32)
    store.accounts.add_token(user.id, _hash_token(token), token[:10], scope, expires_at)
    events.record(
        "token-created",
        details={
            "username": username,
            "prefix": token[:10],
            "scope": scope,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """The owner of an active token (its last use noted), or None; TokenExpired past its expiry."""
    found = token_owner_and_scope(token)
    return found[0] if found else None


def token_owner_and_scope(token: str) -> tuple[User, str] | None:
    """(owner, scope) of an active token (its last use noted), or None; TokenExpired past its expiry."""
    row = store.accounts.active_token(_hash_token(token))
    if row is None:
        return None
    user = store.accounts.get_user(row.user_id)
    if user is None or not user.is_active:
        return None
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        raise TokenExpired(
            f"This API token expired on {row.expires_at:%Y-%m-%d %H:%M} UTC; create a new one"
            " (the tokens page, or `flask --app app tokens create NAME --expires DAYS`)."
        )
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH_INTERVAL:
        row.last_used_at = now
        db.session.commit()
    return user, row.scope


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
    if tokens:
        events.record("token-revoked", details={"username": username, "tokens": [t.id for t in tokens]})
    db.session.commit()
    return len(tokens)
