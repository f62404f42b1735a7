"""Fixtures: every test gets a fresh database, on SQLite and on PostgreSQL.

PostgreSQL runs when TEST_DATABASE_URL is set (e.g. postgresql://postgres@127.0.0.1:5432/test);
each test gets its own schema in a database created for this run. With REQUIRE_POSTGRES=1 (CI)
a missing or unreachable PostgreSQL fails the run instead of skipping those tests.

Property tests run under a Hypothesis profile chosen by HYPOTHESIS_PROFILE: `ci` (the default,
used by CI and the README's command) is derandomised, so two runs give the same result; `nightly`
draws new examples on every run, for a deeper search by hand or on a schedule. Whatever either
finds is kept as an explicit `@example` beside the test. Hypothesis keeps its files in a temporary
directory, never in the checkout.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

import accounts
import config
from app import create_app
from models import db

# Tests hash passwords cheaply (scrypt is most of a fresh test database's set-up); production
# refuses this method (config.check, tests/test_startup.py).
CHEAP_PASSWORD_HASH = "pbkdf2:sha256:1"
PG_BASE = os.environ.get("TEST_DATABASE_URL", "") and config.database_url(os.environ["TEST_DATABASE_URL"], Path("."))
REQUIRE_PG = os.environ.get("REQUIRE_POSTGRES") == "1"
# The tests' table: the catalog alone (the default schema.json adds teams and source systems,
# with references to them; tests/test_tables.py drives several tables).
CATALOG_SCHEMA = Path(__file__).resolve().parent.parent / "examples" / "catalog.schema.json"
HEADER = "id,name,description,owner,team,source_system,update_frequency,contains_pii,row_count,created,url"

# Reproducible by default: the same examples on every run and machine, no example database, and a
# failure printed with the blob that replays it (@reproduce_failure) when derandomising is off.
HYPOTHESIS_PROFILES = {
    "ci": {"derandomize": True, "database": None, "print_blob": True},
    "nightly": {"derandomize": False, "database": None, "print_blob": True},
}
for _name, _values in HYPOTHESIS_PROFILES.items():
    settings.register_profile(_name, deadline=None, suppress_health_check=[HealthCheck.too_slow], **_values)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)
# Hypothesis writes .hypothesis/ (its cache of the code's constants) into the working directory.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="dt-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


# Every app the tests start, in this process or a subprocess (gunicorn, flask), keeps its instance
# files (secret key, start-up lock, first admin's password) here, never in the checkout's instance/.
_INSTANCE = tempfile.mkdtemp(prefix="dt-instance-")
os.environ["INSTANCE_PATH"] = _INSTANCE
CHECKOUT_INSTANCE = Path(__file__).resolve().parent.parent / "instance"
_checkout_instance = pytest.StashKey[dict[str, bytes] | None]()


def folder_state(folder: Path) -> dict[str, bytes] | None:
    """Every file under `folder` with its bytes (None: no such folder), to tell whether a run changed it."""
    if not folder.is_dir():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def pytest_sessionstart(session):
    session.stash[_checkout_instance] = folder_state(CHECKOUT_INSTANCE)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a test wrote into the checkout's instance/ (its real first admin's password)."""
    if session.stash.get(_checkout_instance, None) != folder_state(CHECKOUT_INSTANCE):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"the tests changed {CHECKOUT_INSTANCE}: a test wrote outside its temporary directories"
        if reporter is not None:
            reporter.write_line(f"\nFAILED (conftest): {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config):
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)
    shutil.rmtree(_INSTANCE, ignore_errors=True)


# What the browser tests need: Debian's Chromium (on PATH, as `apt-get install chromium` puts it)
# and axe-core from tests/js (`npm ci --prefix tests/js`) for the accessibility checks.
AXE = Path(__file__).resolve().parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = {
    "chromium": "install Debian's browser with `apt-get install -y chromium`",
    "axe-core": "run `npm ci --prefix tests/js`",
}


def browser_missing(chromium: str | None, axe: Path | None = None) -> list[str]:
    """What the browser tests lack, each with how to install it: `chromium` is where the browser
    was found (None: nowhere), `axe` the axe-core script when the tests need it."""
    missing = []
    if chromium is None:
        missing.append(f"chromium is missing (not on PATH): {INSTALL['chromium']}")
    if axe is not None and not axe.is_file():
        missing.append(f"axe-core is missing ({axe}): {INSTALL['axe-core']}")
    return missing


def browser_verdict(missing: list[str], required: bool) -> tuple[str, str] | None:
    """None when the browser tests can run; else ("skip" or "fail", the reason): a fresh clone
    without the browser skips them, CI (REQUIRE_BROWSER=1) fails naming what is missing."""
    if not missing:
        return None
    if required:
        return "fail", "REQUIRE_BROWSER=1 but " + "; ".join(missing)
    return "skip", "; ".join(missing) + " (REQUIRE_BROWSER=1 makes this a failure)"


def need_browser(axe: bool = False) -> str:
    """The path of Chromium for a browser test; skips or fails the test (browser_verdict) when it
    or, with `axe`, axe-core is missing."""
    chromium = shutil.which("chromium")
    verdict = browser_verdict(browser_missing(chromium, AXE if axe else None), os.environ.get("REQUIRE_BROWSER") == "1")
    if verdict is not None:
        action, reason = verdict
        (pytest.fail if action == "fail" else pytest.skip)(reason)
    assert chromium is not None
    return chromium


def pytest_collection_modifyitems(config, items):
    if REQUIRE_PG and not PG_BASE:
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")


@pytest.fixture(scope="session")
def pg_database():
    """A PostgreSQL database for this test run (dropped at the end), or None when not configured."""
    if not PG_BASE:
        yield None
        return
    name = f"dt_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required but unreachable: {exc}")
        yield None
        return
    url = PG_BASE.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextlib.contextmanager
def fresh_database(kind: str, directory: Path, pg_database: str | None):
    """A URL to an empty database: an SQLite file in `directory`, or a new schema on PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'test.db'}"
        return
    if pg_database is None:
        if REQUIRE_PG:
            pytest.fail("PostgreSQL tests are required (REQUIRE_POSTGRES=1)")
        pytest.skip("PostgreSQL not configured (set TEST_DATABASE_URL)")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{pg_database}?options=-csearch_path%3D{schema},public"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path, pg_database):
    """A URL to an empty database of each kind (a fresh schema on PostgreSQL)."""
    with fresh_database(request.param, tmp_path, pg_database) as url:
        yield url


def build_app(database_url: str, **config) -> Flask:
    """An app on `database_url` with the tests' settings; `config` overrides them."""
    settings = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "ADMIN_USERS": ["boss"],
        "WTF_CSRF_ENABLED": False,
        "PAGE_SIZE": 5,
        "PASSWORD_HASH_METHOD": CHEAP_PASSWORD_HASH,
        "PASSWORD_MIN_GUESSES_LOG10": 0,  # the fixtures' passwords (alice-password) are weak on purpose
        "SCHEMA_PATH": CATALOG_SCHEMA,
    } | config
    return create_app(settings)


def close_app(instance: Flask) -> None:
    with instance.app_context():
        db.session.remove()
        db.engine.dispose()


def add_test_users(instance: Flask) -> Flask:
    """alice and bob, and boss (the admin start-up created) with a known password."""
    with instance.app_context():
        for name in ("alice", "bob"):
            accounts.create_user(name, f"{name}-password")
        accounts.set_password("boss", "boss-password")
    return instance


@pytest.fixture
def make_app(database_url, monkeypatch):
    """Build an app on the test database; extra config overrides the defaults."""
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    apps = []

    def factory(**config):
        apps.append(build_app(database_url, **config))
        return apps[-1]

    yield factory
    for instance in apps:
        close_app(instance)


@pytest.fixture
def app(make_app):
    return add_test_users(make_app())


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_app(request, tmp_path_factory, pg_database):
    """One app (users as in `app`) per test module and database kind, for tests that leave its
    database as they found it: building a fresh database for each of them is most of their time."""
    with (
        pytest.MonkeyPatch.context() as patch,
        fresh_database(request.param, tmp_path_factory.mktemp("shared"), pg_database) as url,
    ):
        patch.setenv("SECRET_KEY", "test-secret")
        instance = add_test_users(build_app(url))
        yield instance
        close_app(instance)


class Browser:
    """A test client signed in as one user, with helpers for the common steps."""

    def __init__(self, app, username: str):
        self.app = app
        self.client = app.test_client()
        self.username = username
        response = self.client.post("/login", data={"username": username, "password": f"{username}-password"})
        assert response.status_code == 302, response.text

    def get(self, *args, **kwargs):
        return self.client.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        return self.client.post(*args, **kwargs)

    def upload(self, text: str | bytes, mode: str = "full", filename: str = "table.csv", **fields):
        data = text.encode("utf-8") if isinstance(text, str) else text
        form = {"file": (io.BytesIO(data), filename), "mode": mode, "comment": fields.pop("comment", "")} | fields
        return self.client.post("/upload", data=form, content_type="multipart/form-data")


@pytest.fixture
def login(app):
    """login("alice") → a Browser signed in as alice."""
    return lambda username: Browser(app, username)


class Api:
    """A JSON API client holding a bearer token."""

    def __init__(self, app, username: str):
        with app.app_context():
            self.token = accounts.create_token(username)
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def get(self, url, **kwargs):
        return self.client.get(url, headers=self.headers, **kwargs)

    def post(self, url, **kwargs):
        return self.client.post(url, headers=self.headers, **kwargs)

    def upload(self, text: str | bytes, filename: str = "table.csv", **form):
        data = text.encode("utf-8") if isinstance(text, str) else text
        return self.post("/api/v1/changes", data={"file": (io.BytesIO(data), filename), **form},
                         content_type="multipart/form-data")  # fmt: skip


@pytest.fixture
def api(app):
    """api("alice") → an API client with a fresh token of alice's."""
    return lambda username: Api(app, username)


def row(key: str, name: str = "Name", **values) -> str:
    """One CSV line of the default schema, with sensible defaults."""
    defaults = {
        "description": "",
        "owner": "owner@example.com",
        "team": "Data",
        "source_system": "SAP",
        "update_frequency": "daily",
        "contains_pii": "false",
        "row_count": "10",
        "created": "2024-01-31",
        "url": "https://example.com/d",
    } | values
    cells = [key, name] + [defaults[n] for n in HEADER.split(",")[2:]]
    return ",".join(f'"{c}"' if re.search(r'[,"\n]', c) else c for c in cells)


def table(*rows: str) -> str:
    """A CSV file of the default schema."""
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.fixture
def seeded(app, api):
    """A table with three approved rows (DS-1..DS-3); returns the admin's API client."""
    alice, boss = api("alice"), api("boss")
    r = alice.upload(table(row("DS-1", "Sales"), row("DS-2", "HR"), row("DS-3", "Finance")))
    assert r.status_code == 201, r.text
    r = boss.post(f"/api/v1/changes/{r.json['id']}/approve")
    assert r.status_code == 200, r.text
    return boss
