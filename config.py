"""Settings, read from the environment (and `.env`). Declared as data so the README can be checked against them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what to do."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS = (
    Setting("DATABASE_URL", "sqlite:///instance/tracker.db", "Database. Unset: an SQLite file under instance/. "
            "`postgresql://user:pass@host/db` for PostgreSQL (psycopg2 is used)."),
    Setting("SECRET_KEY", "(random, kept in instance/secret_key)", "Signs sessions and CSRF tokens. Required when APP_ENV=production."),
    Setting("ADMIN_USER", "admin", "User name, or comma-separated names, of the admins who approve and reject changes."),
    Setting("APP_ENV", "development", "`production` requires SECRET_KEY and marks session cookies Secure (HTTPS only)."),
    Setting("MAX_UPLOAD_MB", "512", "Largest upload accepted, in MB; larger ones get HTTP 413."),
    Setting("MASS_DELETE_PERCENT", "20", "A full upload deleting more than this share of the table must be confirmed."),
    Setting("AUTH_HEADER", "", "Trust this request header (e.g. X-Forwarded-User) as the signed-in user name. "
            "Only behind a proxy that sets it; off when empty."),
    Setting("SCHEMA_PATH", "schema.json", "The table's column definitions (Frictionless Table Schema)."),
    Setting("PAGE_SIZE", "50", "Rows per page on the table, review and audit pages."),
    Setting("LOGIN_MAX_FAILURES", "10", "Failed sign-ins per user name or address within 15 minutes before sign-in is refused (429)."),
    Setting("HISTORY_KEEP_VERSIONS", "", "Empty: keep the whole history. N: keep the last N versions' row changes "
            "(never past the base of a pending request); older versions can no longer be shown, compared, reverted or blamed."),
)  # fmt: skip


def database_url(raw: str | None, instance_path: Path) -> str:
    """Normalise DATABASE_URL: default SQLite file; plain `postgresql://` → the psycopg2 driver we ship."""
    if not raw:
        return f"sqlite:///{instance_path / 'tracker.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg2://" + raw[len(prefix) :]
    return raw


def _secret_key(instance_path: Path, production: bool) -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if production:
        raise ConfigError(
            "SECRET_KEY is not set. In production (APP_ENV=production) set it to a long random value, e.g.\n"
            "  export SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    path = instance_path / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _int(name: str, default: str) -> int:
    raw = os.environ.get(name, default)
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


# Passwords are hashed with scrypt. Tests set a cheap method (hashing is most of a fresh test
# database's set-up); production refuses anything but the strong default (`check`).
STRONG_PASSWORD_HASH = "scrypt"


def check(settings: Mapping[str, object]) -> None:
    """Refuse combinations that must never run: a weak password hash in production."""
    if settings.get("APP_ENV") == "production" and settings.get("PASSWORD_HASH_METHOD") != STRONG_PASSWORD_HASH:
        raise ConfigError(
            f"PASSWORD_HASH_METHOD is {settings.get('PASSWORD_HASH_METHOD')!r}; production uses {STRONG_PASSWORD_HASH!r} only"
        )


def from_environment(instance_path: Path) -> dict[str, object]:
    """The Flask config built from the environment; raises ConfigError for bad settings."""
    instance_path.mkdir(parents=True, exist_ok=True)
    production = os.environ.get("APP_ENV", "development").strip().lower() == "production"
    admins = [a.strip() for a in os.environ.get("ADMIN_USER", "admin").split(",") if a.strip()]
    schema_path = Path(os.environ.get("SCHEMA_PATH", "schema.json"))
    return {
        "APP_ENV": "production" if production else "development",
        "SECRET_KEY": _secret_key(instance_path, production),
        "SQLALCHEMY_DATABASE_URI": database_url(os.environ.get("DATABASE_URL"), instance_path),
        "ADMIN_USERS": admins,
        "MAX_CONTENT_LENGTH": _int("MAX_UPLOAD_MB", "512") * 1024 * 1024,
        "MASS_DELETE_PERCENT": _int("MASS_DELETE_PERCENT", "20"),
        "AUTH_HEADER": os.environ.get("AUTH_HEADER", "").strip(),
        "SCHEMA_PATH": schema_path if schema_path.is_absolute() else HERE / schema_path,
        "PAGE_SIZE": _int("PAGE_SIZE", "50"),
        "LOGIN_MAX_FAILURES": _int("LOGIN_MAX_FAILURES", "10"),
        "HISTORY_KEEP_VERSIONS": _int("HISTORY_KEEP_VERSIONS", "0")
        if os.environ.get("HISTORY_KEEP_VERSIONS", "").strip()
        else None,
        "PASSWORD_HASH_METHOD": STRONG_PASSWORD_HASH,
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }
