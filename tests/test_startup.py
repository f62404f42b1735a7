"""Start-up: schema.json checked (and its new columns adopted without losing data), the first admin,
production settings, and the database URL."""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path

import pytest
from conftest import CATALOG_SCHEMA, HEADER, Api, row, table
from sqlalchemy import text

import accounts
import config
from app import create_app
from models import db

DEFAULT_SCHEMA = json.loads(CATALOG_SCHEMA.read_text())


def write_schema(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def with_fields(**changes) -> dict:
    """The default schema with some fields changed, e.g. with_fields(row_count={"type": "text"})."""
    data = json.loads(json.dumps(DEFAULT_SCHEMA))
    for f in data["fields"]:
        f.update(changes.get(f["name"], {}))
    return data


# --- an invalid schema.json stops start-up ---------------------------------------------------


BAD_SCHEMAS = [
    ("bad JSON", '{"fields": [', "not valid JSON"),
    ("bad type", with_fields(row_count={"type": "text"}), "unknown type 'text'"),
    ("unknown primaryKey", DEFAULT_SCHEMA | {"primaryKey": "ident"}, "primaryKey"),
    ("no fields", {"primaryKey": "id", "fields": []}, '"fields"'),
    ("duplicate field", DEFAULT_SCHEMA | {"fields": DEFAULT_SCHEMA["fields"] + [{"name": "name"}]}, "used twice"),
    ("bad enum value", with_fields(contains_pii={"constraints": {"enum": ["maybe"]}}), "contains_pii"),
    ("bad pattern", with_fields(url={"constraints": {"pattern": "("}}), "invalid pattern"),
    ("unknown constraint", with_fields(name={"constraints": {"requird": True}}), "requird"),
]


@pytest.mark.parametrize("content, problem", [b[1:] for b in BAD_SCHEMAS], ids=[b[0] for b in BAD_SCHEMAS])
def test_invalid_schema_stops_start_up(make_app, monkeypatch, tmp_path, capfd, content, problem):
    path = write_schema(tmp_path / "broken-schema.json", content)
    with pytest.raises(SystemExit) as stopped:
        make_app(SCHEMA_PATH=path)
    message = str(stopped.value.code)
    assert "cannot start" in message and "broken-schema.json" in message and problem in message
    assert problem in capfd.readouterr().err  # also on the console, for `python app.py` and gunicorn


def test_missing_schema_file_stops_start_up(make_app, monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match=r"nowhere\.json: file not found"):
        make_app(SCHEMA_PATH=tmp_path / "nowhere.json")


# --- adding a column is an edit of schema.json and a restart ---------------------------------


def test_a_new_column_keeps_existing_data(make_app, monkeypatch, tmp_path):
    path = write_schema(tmp_path / "schema.json", DEFAULT_SCHEMA)
    first = make_app(SCHEMA_PATH=path)
    with first.app_context():
        accounts.create_user("alice", "alice-password")
        db.session.commit()
    alice, boss = Api(first, "alice"), Api(first, "boss")
    r = alice.upload(table(row("DS-1", "Sales"), row("DS-2", "HR", row_count="7")))
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    pending = alice.upload(table(row("DS-2", "HR Global", row_count="7")), mode="partial").json["id"]

    fields = list(DEFAULT_SCHEMA["fields"])
    fields.insert(2, {"name": "licence", "type": "string", "title": "Licence"})
    fields.append({"name": "retired", "type": "boolean"})
    write_schema(path, DEFAULT_SCHEMA | {"fields": fields})
    second = make_app(SCHEMA_PATH=path)  # the restart
    alice, boss = Api(second, "alice"), Api(second, "boss")

    r = alice.get("/api/v1/export.csv")
    assert r.headers["X-Dataset-Version"] == "1"
    names = HEADER.split(",")
    new_header = ",".join([*names[:2], "licence", *names[2:], "retired"])
    old_rows = [row("DS-1", "Sales").split(","), row("DS-2", "HR", row_count="7").split(",")]
    assert r.data.decode("utf-8-sig").split("\r\n") == [
        new_header,
        *(",".join([*cells[:2], "", *cells[2:], ""]) for cells in old_rows),
        "",
    ]

    detail = alice.get(f"/api/v1/changes/{pending}").json  # staged before the restart
    [m] = detail["modified"]
    assert m["changed"] == ["name"]
    assert m["after"]["name"] == "HR Global" and m["after"]["licence"] is None and m["after"]["row_count"] == 7
    assert m["after"]["owner"] == "owner@example.com"
    assert boss.post(f"/api/v1/changes/{pending}/approve").status_code == 200
    [latest] = alice.get("/api/v1/records/DS-2/history").json["items"][:1]
    assert latest["after"]["name"] == "HR Global" and latest["after"]["description"] is None
    assert latest["after"]["row_count"] == 7

    exported = alice.get("/api/v1/export.csv").data.decode("utf-8-sig")
    r = alice.upload(exported.replace("DS-1,Sales,,", "DS-1,Sales,CC-BY,"))
    assert r.status_code == 201, r.text
    [m] = alice.get(f"/api/v1/changes/{r.json['id']}").json["modified"]
    assert m["changed"] == ["licence"] and m["after"]["licence"] == "CC-BY"
    old_file = table(row("DS-1", "Sales"), row("DS-2", "HR Global", row_count="7"))
    r = alice.upload(old_file)
    assert r.status_code == 422 and {e["column"] for e in r.json["errors"]} == {"licence", "retired"}


# --- the first admin -------------------------------------------------------------------------


@pytest.fixture
def secret(tmp_path):
    """Where start-up writes the first admins' passwords (instance/first-admin-password outside tests)."""
    return tmp_path / "first-admin-password"


def test_the_first_password_file_is_in_the_instance_folder(tmp_path):
    assert config.from_environment(tmp_path)["FIRST_ADMIN_PASSWORD_FILE"] == tmp_path / "first-admin-password"


def test_first_run_writes_the_admin_password_to_a_private_file_when_not_on_a_terminal(make_app, capfd, secret):
    """Under gunicorn or systemd the console is a log others may read: the password goes to a file."""
    app = make_app(ADMIN_USERS=["root"], FIRST_ADMIN_PASSWORD_FILE=secret)
    err = capfd.readouterr().err
    assert str(secret) in err and "password" in err
    found = re.fullmatch(r"root: (\S+)\n", secret.read_text())
    assert found, secret.read_text()
    password = found.group(1)
    assert password not in err
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    r = app.test_client().post("/login", data={"username": "root", "password": password})
    assert r.status_code == 302
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM users")).scalar() == 1
    secret.unlink()
    make_app(ADMIN_USERS=["root"], FIRST_ADMIN_PASSWORD_FILE=secret)  # a restart (or another worker) makes none
    assert "password" not in capfd.readouterr().err and not secret.exists()
    assert app.test_client().post("/login", data={"username": "root", "password": password}).status_code == 302


def test_first_run_prints_the_password_once_on_a_terminal(make_app, capfd, secret, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    app = make_app(ADMIN_USERS=["root"], FIRST_ADMIN_PASSWORD_FILE=secret)
    err = capfd.readouterr().err
    found = re.search(r"created admin account 'root' with password: (\S+)", err)
    assert found, err
    assert not secret.exists()
    assert app.test_client().post("/login", data={"username": "root", "password": found.group(1)}).status_code == 302


def test_first_run_creates_every_listed_admin(make_app, secret):
    make_app(ADMIN_USERS=["root", "chief"], FIRST_ADMIN_PASSWORD_FILE=secret)
    lines = secret.read_text().splitlines()
    assert [line.split(": ")[0] for line in lines] == ["root", "chief"]


# --- settings --------------------------------------------------------------------------------


def test_production_without_secret_key_refuses_to_start(make_app, monkeypatch, capfd):
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(SystemExit, match="SECRET_KEY"):
        make_app()
    assert "SECRET_KEY is not set" in capfd.readouterr().err


def test_production_cookies_are_secure(make_app, monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    app = make_app(PASSWORD_HASH_METHOD="scrypt")
    assert app.config["APP_ENV"] == "production" and app.config["SESSION_COOKIE_SECURE"] is True
    with app.app_context():
        accounts.create_user("alice", "alice-password")
    r = app.test_client().post("/login", data={"username": "alice", "password": "alice-password"})
    assert r.status_code == 302
    assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


def test_production_hashes_passwords_with_scrypt_and_refuses_a_cheap_hash(make_app, monkeypatch, tmp_path, capsys):
    """Tests hash passwords cheaply; production never does, whatever its configuration says."""
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("PASSWORD_HASH_METHOD", raising=False)
    with pytest.raises(SystemExit, match="PASSWORD_HASH_METHOD"):
        make_app()  # the tests' cheap hash
    app = make_app(PASSWORD_HASH_METHOD=config.from_environment(tmp_path)["PASSWORD_HASH_METHOD"])
    with app.app_context():
        assert accounts.create_user("carol", "carol-password").password_hash.startswith("scrypt:")


def test_development_secret_key_is_generated_once(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("APP_ENV", raising=False)
    first = config.from_environment(tmp_path)["SECRET_KEY"]
    assert len(first) >= 32 and (tmp_path / "secret_key").read_text().strip() == first
    assert config.from_environment(tmp_path)["SECRET_KEY"] == first  # kept across restarts


@pytest.mark.parametrize(
    "env, key, expected",
    [
        ({"ADMIN_USER": "boss"}, "ADMIN_USERS", ["boss"]),
        ({"ADMIN_USER": " boss, chief ,,"}, "ADMIN_USERS", ["boss", "chief"]),
        ({}, "ADMIN_USERS", ["admin"]),
        ({"MAX_UPLOAD_MB": "3"}, "MAX_CONTENT_LENGTH", 3 * 1024 * 1024),
        ({"AUTH_HEADER": ""}, "AUTH_HEADER", ""),
        ({"AUTH_HEADER": "X-Forwarded-User"}, "AUTH_HEADER", "X-Forwarded-User"),
        ({"APP_ENV": "development"}, "SESSION_COOKIE_SECURE", False),
    ],
)
def test_settings_from_the_environment(tmp_path, monkeypatch, env, key, expected):
    for name in ("ADMIN_USER", "MAX_UPLOAD_MB", "AUTH_HEADER", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "x")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config.from_environment(tmp_path)[key] == expected


def test_a_malformed_number_setting_stops_start_up(make_app, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_MB", "lots")
    with pytest.raises(SystemExit, match="MAX_UPLOAD_MB must be a whole number"):
        make_app()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("postgresql://u:p@db.example:5432/tracker", "postgresql+psycopg2://u:p@db.example:5432/tracker"),
        ("postgres://u@db/tracker", "postgresql+psycopg2://u@db/tracker"),
        ("postgresql+psycopg2://u@db/tracker", "postgresql+psycopg2://u@db/tracker"),
        ("sqlite:////var/lib/tracker.db", "sqlite:////var/lib/tracker.db"),
        (None, "sqlite:////srv/instance/tracker.db"),
        ("", "sqlite:////srv/instance/tracker.db"),
    ],
)
def test_database_url(raw, expected):
    assert config.database_url(raw, Path("/srv/instance")) == expected


def test_a_plain_database_url_from_the_environment_works(database_url, monkeypatch):
    """DATABASE_URL as a user writes it (plain postgresql://) reaches the database through psycopg2."""
    plain = database_url.replace("postgresql+psycopg2://", "postgresql://")
    monkeypatch.setenv("DATABASE_URL", plain)
    monkeypatch.setenv("SECRET_KEY", "x")
    monkeypatch.setenv("ADMIN_USER", "boss")
    app = create_app({"TESTING": True})
    try:
        with app.app_context():
            assert app.config["SQLALCHEMY_DATABASE_URI"] == database_url
            if database_url.startswith("postgresql"):
                assert db.engine.dialect.driver == "psycopg2"
            assert db.session.execute(text("SELECT version FROM table_state")).scalar() == 0
        assert app.test_client().get("/healthz").json["database"] == "ok"
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
