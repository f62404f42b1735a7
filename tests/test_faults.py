"""Faults: a worker killed mid-approval, a PostgreSQL restart, a database that does not answer."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CATALOG_SCHEMA, HEADER, Api, Browser, row, table

import accounts
import changes
import tables
import uploads
from models import ChangeRequest, db

ROOT = Path(__file__).resolve().parent.parent
OUTAGE_PAGES = ("/", "/upload", "/changes", "/audit", "/tokens", "/records/DS-1")


def wait_for(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# --- a worker killed in the middle of an approval --------------------------------------------

APPROVER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import changes
import store.changes
from app import create_app

apply_pending = store.changes.apply_pending


def announced(*args, **kwargs):
    print("applying", flush=True)
    result = apply_pending(*args, **kwargs)
    if sys.argv[4] == "hold":  # every row written, nothing committed: wait to be killed
        print("applied", flush=True)
        time.sleep(600)
    return result


store.changes.apply_pending = announced
app = create_app(json.loads(sys.argv[2]))
with app.app_context():
    changes.approve(int(sys.argv[3]), "boss")
print("done", flush=True)
"""


def line(i: int, name: str = "Name") -> str:
    return f"K{i:07d},{name} {i},,o@example.com,Data,SAP,daily,false,{i},2024-01-31,https://example.com/{i}"


def stage(app, lines: list[str]) -> ChangeRequest:
    data = ("\n".join([HEADER, *lines]) + "\n").encode()
    result = uploads.submit(tables.get(None), io.BytesIO(data), uploads.UploadOptions(submitter="alice"))
    assert result.change is not None
    return result.change


def table_snapshot() -> dict:
    """Everything an approval writes: every row with its version, the table state, the audit log size
    (its decisions, and the row changes in the history: the staged rows of approved requests)."""
    return {
        "rows": {k: (r, v) for k, r, v in db.session.execute(sa.text("SELECT key, record, version FROM datasets"))},
        "state": tuple(db.session.execute(sa.text("SELECT version, row_count FROM table_state")).one()),
        "audit": db.session.scalar(sa.text("SELECT count(*) FROM audit_log")),
        "history": db.session.scalar(
            sa.text(
                "SELECT count(*) FROM pending_changes p JOIN change_requests c ON c.id = p.change_id"
                " WHERE c.status = 'approved'"
            )
        ),
    }


def expected_after(before: dict, change_id: int) -> dict:
    """The snapshot an approval must produce, computed from the staged rows (not by the code under test)."""
    version = before["state"][0] + 1
    rows = dict(before["rows"])
    staged = db.session.execute(
        sa.text("SELECT action, key, after FROM pending_changes WHERE change_id = :id"), {"id": change_id}
    ).all()
    for action, key, after in staged:
        if action == "delete":
            del rows[key]
        else:
            rows[key] = (after, version)
    return {
        "rows": rows,
        "state": (version, len(rows)),
        "audit": before["audit"] + 1,  # the approve entry
        "history": before["history"] + len(staged),
    }


def status(change_id: int) -> str:
    db.session.expire_all()
    return db.session.get(ChangeRequest, change_id).status


def backend_query(engine, application_name: str) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT query FROM pg_stat_activity WHERE application_name = :name AND state <> 'idle'"),
            {"name": application_name},
        ).scalars().all()  # fmt: skip


def backend_gone(engine, application_name: str) -> bool:
    with engine.connect() as conn:
        return not conn.execute(
            sa.text("SELECT 1 FROM pg_stat_activity WHERE application_name = :name"), {"name": application_name}
        ).first()


@pytest.mark.slow
def test_sigkill_during_approval_of_100000_changes_applies_nothing(make_app, database_url, tmp_path):
    app = make_app()
    with app.app_context():
        first = stage(app, [line(i) for i in range(1000)])
        changes.approve(first.id, "boss")
        # 100,000 changes: 99,500 added, 400 modified, 100 deleted (keys 0..99 left out), 500 unchanged
        rows = [line(i, "Changed" if i < 500 else "Name") for i in range(100, 1000)]
        big = stage(app, rows + [line(i) for i in range(1000, 100_500)])
        assert big.added + big.modified + big.deleted == 100_000
        before = table_snapshot()
        after = expected_after(before, big.id)
        db.session.remove()

    postgres = database_url.startswith("postgresql")
    name = f"dt_fault_{uuid.uuid4().hex[:8]}"
    child_url = f"{database_url}&application_name={name}" if postgres else database_url
    config = {"SQLALCHEMY_DATABASE_URI": child_url, "ADMIN_USERS": ["boss"], "TESTING": True}
    config["SCHEMA_PATH"] = str(CATALOG_SCHEMA)
    # PostgreSQL: killed while the server writes the rows; SQLite (no server to watch): killed once
    # every row is written, before the commit (timing alone is not enough: the apply can be that fast)
    hold = "run" if postgres else "hold"
    args = [sys.executable, "-c", APPROVER, str(ROOT), json.dumps(config), str(big.id), hold]
    with (tmp_path / "approver.log").open("w") as log, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True) as child:  # fmt: skip
        assert child.stdout.readline().strip() == "applying", (tmp_path / "approver.log").read_text()
        watcher = sa.create_engine(database_url) if postgres else None
        try:
            if postgres:  # kill while the server is writing the rows
                wait_for(
                    lambda: any(q.startswith(("INSERT INTO datasets", "INSERT INTO audit_log"))
                                for q in backend_query(watcher, name)),
                    what="the apply statements",
                )  # fmt: skip
            else:
                assert child.stdout.readline().strip() == "applied", (tmp_path / "approver.log").read_text()
            child.send_signal(signal.SIGKILL)
            assert child.wait() == -signal.SIGKILL, "the approval finished before it could be killed"
            if postgres:  # the server ends the dead worker's transaction once its statement finishes
                wait_for(lambda: backend_gone(watcher, name), what="the killed worker's backend to end")
        finally:
            if watcher is not None:
                watcher.dispose()

    with app.app_context():
        now = table_snapshot()
        assert now["state"] == before["state"] and now["audit"] == before["audit"]
        assert now["history"] == before["history"]
        assert now["rows"] == before["rows"]  # exactly as before: nothing half-applied
        assert status(big.id) == "pending"
        changes.approve(big.id, "boss")  # and it can still be approved
        assert table_snapshot() == after
        assert status(big.id) == "approved"


# --- PostgreSQL restarted while the app runs -------------------------------------------------


def terminate_app_connections(database_url: str, application_name: str) -> int:
    """What a PostgreSQL restart does to the app: all its connections are dropped (the fixtures' are spared)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": application_name},
                ).all()
            )
    finally:
        engine.dispose()


@pytest.fixture
def named_app(make_app, database_url):
    """named_app(**config) → (app with users alice and boss, the application_name its connections carry)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a server restart concerns PostgreSQL; SQLite has no server")

    def factory(**config):
        name = f"dt_app_{uuid.uuid4().hex[:8]}"
        app = make_app(SQLALCHEMY_DATABASE_URI=f"{database_url}&application_name={name}", **config)
        with app.app_context():
            accounts.create_user("alice", "alice-password")
            accounts.set_password("boss", "boss-password")
            db.session.commit()
        return app, name

    return factory


def test_next_request_after_a_postgresql_restart_succeeds(named_app, database_url):
    app, name = named_app()
    alice, boss = Browser(app, "alice"), Api(app, "boss")
    assert alice.get("/").status_code == 200 and boss.get("/api/v1/changes").status_code == 200
    assert terminate_app_connections(database_url, name) >= 1
    assert alice.get("/").status_code == 200
    assert boss.upload(table(row("DS-1"))).status_code == 201
    assert terminate_app_connections(database_url, name) >= 1
    assert alice.client.get("/healthz").json == {"status": "ok", "database": "ok"}
    assert boss.get("/api/v1/changes").json


def test_without_pre_ping_a_restart_would_fail_the_next_request(named_app, database_url):
    """The counter-test: pool_pre_ping is what makes the test above pass (and the failure is a friendly 503)."""
    app, name = named_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": False})
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert terminate_app_connections(database_url, name) >= 1
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json["status"] == "unavailable"
    assert client.get("/healthz").status_code == 200  # the broken connection was thrown away


# --- database unreachable --------------------------------------------------------------------


class TcpProxy:
    """Forwards a local port to PostgreSQL; stop() makes the database unreachable (connection refused)."""

    def __init__(self, target: tuple[str, int], port: int = 0):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self._start(self._accept)

    def _start(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            self._start(self._pipe, client, upstream)
            self._start(self._pipe, upstream, client)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def stop(self):
        self.stopping.set()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(timeout=5)
        with self.lock:
            for s in self.sockets:
                s.close()
            self.sockets.clear()
        self.listener.close()


@contextlib.contextmanager
def reachable_database(make_app, database_url: str, tmp_path: Path):
    """An app started on a working database, a function that cuts the database off, and one that brings it back."""
    if database_url.startswith("postgresql"):
        url = sa.engine.make_url(database_url)
        proxies = [TcpProxy((url.host, url.port or 5432))]
        port = proxies[0].port
        app = make_app(SQLALCHEMY_DATABASE_URI=url.set(port=port).render_as_string(hide_password=False))
        try:
            yield app, proxies[-1].stop, lambda: proxies.append(TcpProxy((url.host, url.port or 5432), port))
        finally:
            for proxy in proxies:
                proxy.stop()
    else:
        folder, moved = tmp_path / "data", tmp_path / "moved"
        folder.mkdir()
        app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder / 'tracker.db'}")

        def lose_the_file():  # the disk went away: the path no longer opens
            folder.rename(moved)
            with app.app_context():
                db.engine.dispose()

        yield app, lose_the_file, lambda: moved.rename(folder)


def test_unreachable_database_answers_503_without_traceback(make_app, database_url, tmp_path):
    with reachable_database(make_app, database_url, tmp_path) as (app, cut_off, restore):
        with app.app_context():
            accounts.create_user("alice", "alice-password")
            db.session.commit()
            token = accounts.create_token("alice")
            db.session.commit()
        client = app.test_client()
        assert client.post("/login", data={"username": "alice", "password": "alice-password"}).status_code == 302
        assert client.get("/").status_code == 200
        assert client.get("/healthz").json["database"] == "ok"

        cut_off()

        for path in OUTAGE_PAGES:
            r = client.get(path)
            assert r.status_code == 503, (path, r.status_code)
            assert r.mimetype == "text/html"
            assert "Database unavailable" in r.text and "Try again in a minute" in r.text, path
            for marker in ("Traceback", "OperationalError", "psycopg2", "sqlite3", 'File "'):
                assert marker not in r.text, (path, marker)
        r = client.get("/healthz")
        assert r.status_code == 503 and r.is_json
        assert r.json == {"status": "unavailable", "database": "unreachable"}
        r = client.get("/api/v1/changes", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503 and r.is_json and "database" in r.json["error"].lower()
        assert "Traceback" not in r.text
        r = client.post("/login", data={"username": "alice", "password": "alice-password"})
        assert r.status_code == 503 and "Traceback" not in r.text

        restore()
        assert client.get("/healthz").status_code == 200
        r = client.get("/")
        assert r.status_code == 200 and "alice" in r.text
