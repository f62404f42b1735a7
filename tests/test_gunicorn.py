"""Real gunicorn, where the test client cannot tell: the headers gunicorn refuses to send, and how a
start-up refusal ends the server (gunicorn.conf.py, app.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import build_app, close_app, fresh_database
from test_browser import free_port

import accounts
from models import db

ROOT = Path(__file__).resolve().parent.parent
NAME = "таблица"  # Cyrillic: not even Latin-1, which is all an HTTP header can carry
TABLE_SCHEMA = {
    "name": NAME,
    "title": "Таблица",
    "primaryKey": "id",
    "fields": [{"name": "id"}, {"name": "name"}],
}


def gunicorn_env(database_url: str, schema_path: Path) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "gunicorn-test-secret",
        "ADMIN_USER": "boss",
        "SCHEMA_PATH": str(schema_path),
    }


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log_path: Path, *args: str) -> Iterator[subprocess.Popen]:
    """gunicorn (2 workers, this checkout's gunicorn.conf.py) on a free loopback port; stopped at the end."""
    cmd = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{free_port()}", *args, "app:app"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def base_url(proc: subprocess.Popen, log_path: Path) -> str:
    """The server's URL once /healthz answers."""
    port = proc.args[proc.args.index("-b") + 1].rsplit(":", 1)[1]
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            pytest.fail("gunicorn exited:\n" + log_path.read_text())
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return base
        except OSError:
            time.sleep(0.1)
    pytest.fail("gunicorn did not answer /healthz in time:\n" + log_path.read_text())


def get(url: str, token: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_table_whose_name_is_not_ascii_downloads(kind, tmp_path, pg_database, monkeypatch):
    """The CSV's Content-Disposition was written by hand: gunicorn answered 500 to `таблица-v1.csv`."""
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(TABLE_SCHEMA, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    with fresh_database(kind, tmp_path, pg_database) as url:
        app = build_app(url, SCHEMA_PATH=schema_path)
        with app.app_context():
            accounts.create_user("alice", "alice-password")
            token = accounts.create_token("alice")
            db.session.commit()
        close_app(app)
        log_path = tmp_path / "gunicorn.log"
        with gunicorn(gunicorn_env(url, schema_path), log_path) as proc:
            base = base_url(proc, log_path)
            quoted = urllib.parse.quote(NAME)
            for path, body in [
                ("/api/v1/export.csv", b"\xef\xbb\xbfid,name\r\n"),
                (f"/api/v1/tables/{quoted}/export.csv", b"\xef\xbb\xbfid,name\r\n"),
                ("/api/v1/export.xlsx", b"PK\x03\x04"),
            ]:
                status, headers, content = get(base + path, token)
                assert status == 200, (path, status, content[:300], log_path.read_text()[-2000:])
                assert content.startswith(body)
                extension = path.rsplit(".", 1)[1]
                disposition = headers["Content-Disposition"]
                assert disposition.startswith("attachment; filename=")
                assert disposition.endswith(f"; filename*=UTF-8''{quoted}-v0.{extension}"), disposition
                disposition.encode("ascii")  # all of it ASCII: no header gunicorn refuses


def test_a_single_tables_name_is_checked_like_a_resource_name(tmp_path):
    """`"name": "My table"` would make URLs and file names it cannot be part of: refused at start-up."""
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(TABLE_SCHEMA | {"name": "My table/2"}), encoding="utf-8")
    with pytest.raises(SystemExit, match=r"\"name\" must be lower-case letters.*got 'My table/2'"):
        build_app(f"sqlite:///{tmp_path / 'db.sqlite'}", SCHEMA_PATH=schema_path)


# --- a start-up refusal stops gunicorn -------------------------------------------------------


def broken_schema(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text('{"primaryKey": "id", "fields": [{"name": "id"},]}', encoding="utf-8")
    return path


def wait_for_exit(proc: subprocess.Popen, seconds: float) -> int | None:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


def test_a_broken_schema_stops_gunicorn_within_10_seconds(tmp_path):
    """gunicorn.conf.py checks in the master before any worker starts; before, each worker printed
    the message and exited 1, and the master started another, forever."""
    log_path = tmp_path / "gunicorn.log"
    env = gunicorn_env(f"sqlite:///{tmp_path / 'db.sqlite'}", broken_schema(tmp_path))
    with gunicorn(env, log_path) as proc:
        status = wait_for_exit(proc, 10)
    log = log_path.read_text()
    assert status is not None, "gunicorn still running after 10 s:\n" + log
    assert status != 0
    assert "Dataset Tracker cannot start" in log and "schema.json: not valid JSON" in log, log


def test_a_refusal_in_a_worker_stops_the_master_too(tmp_path):
    """Without gunicorn.conf.py's check (another config file, or a refusal only a worker finds), the
    worker exits with gunicorn's WORKER_BOOT_ERROR and the master halts instead of starting another."""
    log_path = tmp_path / "gunicorn.log"
    env = gunicorn_env(f"sqlite:///{tmp_path / 'db.sqlite'}", broken_schema(tmp_path))
    empty_config = tmp_path / "empty.conf.py"
    empty_config.write_text("")
    with gunicorn(env, log_path, "-c", str(empty_config)) as proc:
        status = wait_for_exit(proc, 60)
    log = log_path.read_text()
    assert status == 3, log
    assert "Worker failed to boot" in log and "schema.json: not valid JSON" in log, log
    assert log.count("Booting worker") == 2, log  # the two workers of -w 2, none started again
