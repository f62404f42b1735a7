"""Settings, read from the environment (and `.env`).

Each is declared once, as data (`SETTINGS`: name, default, reader, help); `from_environment` reads
them all from it, and tests check the README's table against it (tests/test_config.py).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what to do."""


def database_url(raw: str | None, instance_path: Path) -> str:
    """Normalise DATABASE_URL: default SQLite file; plain `postgresql://` → the psycopg2 driver we ship."""
    if not raw:
        return f"sqlite:///{instance_path / 'tracker.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg2://" + raw[len(prefix) :]
    return raw


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write a file only its owner can read, from the first byte on (never briefly world-readable)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # also when it existed with looser rights
    with os.fdopen(fd, "w") as out:
        out.write(text)


def proxy_networks(value: str | Iterable[object] | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """AUTH_PROXY_IPS as networks: a comma-separated string (or a list) of addresses and CIDR networks.

    >>> [str(n) for n in proxy_networks("127.0.0.1, 10.0.0.0/24 ,::1")]
    ['127.0.0.1/32', '10.0.0.0/24', '::1/128']
    """
    items = value.split(",") if isinstance(value, str) else list(value or ())
    networks = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(
                f"AUTH_PROXY_IPS: {text!r} is not an IP address or network (write e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    return tuple(networks)


@dataclass(frozen=True)
class SmtpServer:
    """SMTP_URL taken apart: how to connect (plain, starttls or tls), where, and as whom."""

    security: str  # plain | starttls | tls
    host: str
    port: int
    user: str
    password: str


SMTP_SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


def smtp_server(url: str) -> SmtpServer:
    """SMTP_URL as an SmtpServer; ConfigError names what is wrong.

    >>> smtp_server("smtp+starttls://me%40x.org:s3cret@mail.x.org")
    SmtpServer(security='starttls', host='mail.x.org', port=587, user='me@x.org', password='s3cret')
    >>> smtp_server("smtps://mail.x.org:2465").port
    2465
    """
    parts = urlsplit(url)
    if parts.scheme not in SMTP_SCHEMES:
        raise ConfigError(
            f"SMTP_URL must start with smtp://, smtp+starttls:// or smtps:// (got {parts.scheme + '://' if parts.scheme else url!r})"
        )
    security, default_port = SMTP_SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ConfigError(f"SMTP_URL: the port of {parts.netloc.rsplit('@', 1)[-1]!r} is not a number") from None
    if not parts.hostname:
        raise ConfigError("SMTP_URL names no host (write e.g. smtp://mail.example.org:25)")
    return SmtpServer(security, parts.hostname, port, unquote(parts.username or ""), unquote(parts.password or ""))


# Passwords are hashed with scrypt. Tests set a cheap method (hashing is most of a fresh test
# database's set-up); production refuses anything but the strong default (`check`).
STRONG_PASSWORD_HASH = "scrypt"
# New passwords must take at least 10^this many guesses by zxcvbn's estimate (accounts.py). Not an
# environment setting: only the tests lower it (their fixtures' passwords are weak on purpose).
STRONG_PASSWORD_GUESSES_LOG10 = 9.0


def check(settings: Mapping[str, object]) -> None:
    """Refuse combinations that must never run: a weak password hash in production, a trusted
    sign-in header without the proxies it may come from."""
    if settings.get("APP_ENV") == "production" and settings.get("PASSWORD_HASH_METHOD") != STRONG_PASSWORD_HASH:
        raise ConfigError(
            f"PASSWORD_HASH_METHOD is {settings.get('PASSWORD_HASH_METHOD')!r}; production uses {STRONG_PASSWORD_HASH!r} only"
        )
    if settings.get("OIDC_ISSUER") and not settings.get("OIDC_CLIENT_ID"):
        raise ConfigError(
            "OIDC_ISSUER is set but OIDC_CLIENT_ID is not: set the client id the identity provider gave the app."
        )
    if settings.get("PASSWORD_LOGIN") is False and not (settings.get("OIDC_ISSUER") or settings.get("AUTH_HEADER")):
        raise ConfigError(
            "PASSWORD_LOGIN=false but neither OIDC_ISSUER nor AUTH_HEADER is set: nobody could sign in."
            " Set OIDC_ISSUER (and OIDC_CLIENT_ID), or PASSWORD_LOGIN=true."
        )
    if settings.get("SMTP_URL"):
        smtp_server(str(settings["SMTP_URL"]))
    if not 0 <= int(settings.get("DIGEST_HOUR", 7)) <= 23:  # type: ignore[call-overload]
        raise ConfigError(f"DIGEST_HOUR must be an hour of the day, 0 to 23 (got {settings.get('DIGEST_HOUR')})")
    if settings.get("AUTH_HEADER") and not settings.get("AUTH_PROXY_IPS"):
        raise ConfigError(
            f"AUTH_HEADER={settings['AUTH_HEADER']} is set but AUTH_PROXY_IPS is not: anyone who reaches the app could send"
            " that header and be any user, an admin too. Set AUTH_PROXY_IPS to the address(es) of the proxy that sets"
            " the header (e.g. AUTH_PROXY_IPS=127.0.0.1 or 10.0.0.0/24), or unset AUTH_HEADER."
        )


# --- the settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What reading a setting's text may need: its name (for messages), the instance folder, and
    whether this is production."""

    name: str
    instance_path: Path
    production: bool


def _text(raw: str, source: Source) -> str:
    return raw.strip()


def _bool(raw: str, source: Source) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{source.name} must be true or false, got {value!r}")


def _int(raw: str, source: Source) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{source.name} must be a whole number, got {raw!r}") from None


def _megabytes(raw: str, source: Source) -> int:
    return _int(raw, source) * 1024 * 1024


def _int_or_none(raw: str, source: Source) -> int | None:
    return _int(raw, source) if raw.strip() else None


def _base_url(raw: str, source: Source) -> str:
    return raw.strip().rstrip("/")


def _app_env(raw: str, source: Source) -> str:
    return "production" if raw.strip().lower() == "production" else "development"


def _names(raw: str, source: Source) -> list[str]:
    return [a.strip() for a in raw.split(",") if a.strip()]


def _database_url(raw: str, source: Source) -> str:
    return database_url(raw, source.instance_path)


def _networks(raw: str, source: Source) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return proxy_networks(raw)


def _path(raw: str, source: Source) -> Path:
    path = Path(raw)
    return path if path.is_absolute() else HERE / path


def _secret_key(raw: str, source: Source) -> str:
    if raw:
        return raw
    if source.production:
        raise ConfigError(
            "SECRET_KEY is not set. In production (APP_ENV=production) set it to a long random value, e.g.\n"
            "  export SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    path = source.instance_path / "secret_key"
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another worker was first
            write_private(path, secrets.token_hex(32), exclusive=True)
    return path.read_text().strip()


def _instance_path(raw: str, source: Source) -> Path:
    return Path(raw.strip()).resolve() if raw.strip() else source.instance_path


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, its default (as the environment would write it), what
    it does (README's table says it at more length), how its text is read into the Flask config
    (`read`, which raises ConfigError naming it), under which key (`key`, else its name), and its
    default as the README shows it (`shown`, else the default itself)."""

    name: str
    default: str
    help: str
    read: Callable[[str, Source], Any] = _text
    key: str = ""
    shown: str = ""

    def value(self, instance_path: Path, production: bool) -> Any:
        """This setting's value from the environment (its default when unset)."""
        return self.read(os.environ.get(self.name, self.default), Source(self.name, instance_path, production))


SETTINGS = (
    Setting("DATABASE_URL", "", "Database. Unset: an SQLite file under instance/. "
            "`postgresql://user:pass@host/db` for PostgreSQL (psycopg2 is used).",
            _database_url, "SQLALCHEMY_DATABASE_URI", shown="`sqlite:///instance/tracker.db`"),
    Setting("SECRET_KEY", "", "Signs sessions and CSRF tokens. Required when APP_ENV=production.",
            _secret_key, shown="random, kept in `instance/secret_key`"),
    Setting("ADMIN_USER", "admin", "User name, or comma-separated names, of the admins who approve and reject changes.",
            _names, "ADMIN_USERS"),
    Setting("AUDITORS", "", "Comma-separated user names who may read the event log (/events, /api/v1/events) "
            "besides the admins.", _names, shown="(empty: the admins only)"),
    Setting("APP_ENV", "development", "`production` requires SECRET_KEY and marks session cookies Secure (HTTPS only).",
            _app_env),
    Setting("MAX_UPLOAD_MB", "512", "Largest upload accepted, in MB; larger ones get HTTP 413.",
            _megabytes, "MAX_CONTENT_LENGTH"),
    Setting("MAX_UPLOAD_ROWS", "5000000", "Most rows one upload may hold (blank ones included); more get HTTP 413. "
            "Workbooks also stop at Excel's 1,048,576.", _int),
    Setting("MASS_DELETE_PERCENT", "20", "A full upload deleting more than this share of the table must be confirmed.",
            _int),
    Setting("AUTH_HEADER", "", "Trust this request header (e.g. X-Forwarded-User) as the signed-in user name, "
            "from the proxies in AUTH_PROXY_IPS only; off when empty.", shown="(empty: off)"),
    Setting("AUTH_PROXY_IPS", "", "Addresses or networks (e.g. 127.0.0.1, 10.0.0.0/24) of the proxies whose AUTH_HEADER "
            "is trusted. Required with AUTH_HEADER: without it the app refuses to start.", _networks, shown="(empty)"),
    Setting("PROXY_FIX", "0", "How many reverse proxies stand in front of the app (0: none). With N, werkzeug's ProxyFix "
            "takes the client's address (and scheme) from the last N X-Forwarded-For (X-Forwarded-Proto) entries: set it "
            "only when the app can be reached through those proxies alone.", _int),
    Setting("AUTH_HEADER_TOKENS", "false", "`true` lets accounts created through AUTH_HEADER create their own API tokens.",
            _bool),
    Setting("OIDC_ISSUER", "", "Sign in with an OpenID Connect identity provider: its issuer URL (discovery at "
            "ISSUER/.well-known/openid-configuration); off when empty.", shown="(empty: off)"),
    Setting("OIDC_CLIENT_ID", "", "The app's client id at the identity provider. Required with OIDC_ISSUER.",
            shown="(empty)"),
    Setting("OIDC_CLIENT_SECRET", "", "The app's client secret (empty: a public client, PKCE only).", shown="(empty)"),
    Setting("OIDC_NAME", "company account", "The sign-in button's label: \"Sign in with …\"."),
    Setting("OIDC_SCOPES", "openid email profile", "Scopes asked for (add the one that brings the groups claim, "
            "if the provider needs one)."),
    Setting("OIDC_GROUPS_CLAIM", "groups", "The ID token (or userinfo) claim listing the person's groups; roles name "
            "them as `group:NAME`."),
    Setting("OIDC_ADMIN_GROUPS", "", "Comma-separated groups whose members are admins (besides ADMIN_USER).",
            _names, shown="(empty)"),
    Setting("PASSWORD_LOGIN", "true", "`false` hides and refuses the password form (sign-in through OIDC_ISSUER or "
            "AUTH_HEADER only; `flask` commands still work on the console).", _bool),
    Setting("SCHEMA_PATH", "schema.json", "The tables and their columns: a Frictionless Table Schema (one table) or "
            "Data Package (several tables, with references between them).", _path),
    Setting("DROP_REMOVED_TABLES", "false", "`true` for one start: delete the rows of tables schema.json no longer "
            "has. Otherwise the app refuses to start while such a table holds rows.", _bool),
    Setting("PAGE_SIZE", "50", "Rows per page on the table, review and audit pages.", _int),
    Setting("LOGIN_MAX_FAILURES", "10", "Failed sign-ins for one user name from one address within 15 minutes before "
            "that pair is refused (429); a name failing this often from many addresses is slowed down, not refused.", _int),
    Setting("LOGIN_MAX_FAILURES_PER_ADDRESS", "50", "Failed sign-ins from one address, for any names, within 15 minutes "
            "before that address is refused (429).", _int),
    Setting("MAX_PENDING_PER_USER", "10", "Pending change requests one person may have; the next upload gets HTTP 429.",
            _int),
    Setting("HELD_UPLOADS_PER_USER", "3", "Uploads kept per person while they answer the mass-deletion question "
            "(the newest); each is deleted after an hour.", _int),
    Setting("ERROR_FILES_PER_USER", "3", "Refused uploads kept (with an errors column) per person, newest first; "
            "each is deleted after a day.", _int),
    Setting("KEEP_DECIDED_DAYS", "30", "Days the staged rows of rejected and withdrawn requests are kept; then they are "
            "deleted (the request, its counts and its audit entries stay).", _int),
    Setting("CLIENT_TIMEOUT_SECONDS", "15", "gunicorn only (gunicorn.conf.py): the longest a client may leave a worker "
            "waiting for its next bytes (headers or body) before the connection is dropped.", _int),
    Setting("CLEANUP_INTERVAL_MINUTES", "60", "How often each app process deletes expired error files and old staged "
            "rows (also at start-up and with `flask --app app cleanup`); 0: only those two.", _int),
    Setting("HISTORY_KEEP_VERSIONS", "", "Empty: keep the whole history. N: keep the last N versions' row changes "
            "(never past the base of a pending request); older versions can no longer be shown, compared, reverted or blamed.",
            _int_or_none, shown="(empty: keep everything)"),
    Setting("SMTP_URL", "", "Where e-mail goes: `smtp://user:pass@host:port` (plain, port 25), `smtp+starttls://…` "
            "(STARTTLS, port 587) or `smtps://…` (TLS, port 465). Empty: no e-mail; nothing else changes.",
            shown="(empty: no e-mail)"),
    Setting("MAIL_FROM", "dataset-tracker@localhost", "The From address of the e-mails."),
    Setting("APP_URL", "http://localhost:8000", "The app's address as people reach it: the base of the links in "
            "e-mails and webhook messages.", _base_url),
    Setting("NOTIFY_SENDER", "true", "`true`: each app process delivers e-mails and webhook calls in a background "
            "thread. `false`: only `flask --app app notify run` (a worker of its own) delivers them.", _bool),
    Setting("NOTIFY_RETRY_SECONDS", "30", "Wait before the first retry of a failed delivery; it doubles each time "
            "(at most an hour), for NOTIFY_RETRY_HOURS.", _int),
    Setting("NOTIFY_RETRY_HOURS", "24", "How long a failing delivery is retried before it is marked failed.", _int),
    Setting("NOTIFY_CLAIM_SECONDS", "300", "How long a sender's claim on messages lasts: a sender that died "
            "leaves its messages to the others (or to itself after a restart) this much later.", _int),
    Setting("DIGEST_HOUR", "7", "Hour of the day (UTC, 0-23) the daily digests go out to the people who chose one.",
            _int),
    Setting("INSTANCE_PATH", "", "The folder of the secret key file, the SQLite database, the start-up lock and the "
            "first admin's password (app.py hands it to Flask).", _instance_path, shown="`instance/` beside `app.py`"),
)  # fmt: skip
SETTING = {s.name: s for s in SETTINGS}  # by name


def from_environment(instance_path: Path) -> dict[str, object]:
    """The Flask config built from the environment (each of `SETTINGS`, and what follows from
    them); raises ConfigError for bad settings."""
    if not instance_path.exists():
        instance_path.mkdir(parents=True, mode=0o700)  # secrets and the SQLite database live here
    production = SETTING["APP_ENV"].value(instance_path, production=False) == "production"
    read = {s.key or s.name: s.value(instance_path, production) for s in SETTINGS}
    return read | {
        "PASSWORD_HASH_METHOD": STRONG_PASSWORD_HASH,
        "PASSWORD_MIN_GUESSES_LOG10": STRONG_PASSWORD_GUESSES_LOG10,
        "FIRST_ADMIN_PASSWORD_FILE": instance_path / "first-admin-password",  # when the console is no terminal
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }
