"""Start-up work on the database: migrations, the table-state row, schema changes, the first admin.

Runs in every process that creates the app (each gunicorn worker), so it holds a lock while it
works: a PostgreSQL advisory lock, or a file lock beside the SQLite database.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import secrets
import sys
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.engine import Engine

import auth
import store
from models import TableState, User, db
from schema import Schema

log = logging.getLogger(__name__)
ADVISORY_LOCK_ID = 74_204_311
# The migration whose tables equal what db.create_all() made before the app had migrations.
BASELINE_REVISION = "0001"


def configure_engine(engine: Engine) -> None:
    """SQLite: WAL (readers never wait for the approving writer), foreign keys, a patient busy timeout."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()


@contextlib.contextmanager
def _startup_lock(engine: Engine, instance_path: Path):
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
                conn.commit()
    else:
        instance_path.mkdir(parents=True, exist_ok=True)
        with open(instance_path / "startup.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def init_database(app: Flask, schema: Schema) -> None:
    """Migrate the tables to the newest revision and bring stored records in line with schema.json; idempotent."""
    with _startup_lock(db.engine, Path(app.instance_path)):
        upgrade_schema(app)
        state = db.session.get(TableState, 1)
        if state is None:
            db.session.add(TableState(id=1, version=0, row_count=0, fields=json.dumps(list(schema.names))))
        elif state.field_names != list(schema.names):
            _migrate_fields(state, schema)
        _create_first_admins(app)
        db.session.commit()


def upgrade_schema(app: Flask) -> None:
    """Run the Alembic migrations up to head (what `flask --app app db upgrade` does).

    A database created by `db.create_all()` before the app had migrations has the tables of the
    baseline revision but no `alembic_version`: it is stamped as the baseline, then upgraded.
    A database already at head is left alone without running the migration environment.
    """
    config = app.extensions["migrate"].migrate.get_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as conn:  # read directly: MigrationContext would log on every start
        tables = inspect(conn)
        current = set()
        if tables.has_table("alembic_version"):
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        legacy = not current and tables.has_table("datasets")
    if current == heads:
        return
    if legacy:
        log.warning("tables made before migrations existed: stamping them as revision %s", BASELINE_REVISION)
        command.stamp(config, BASELINE_REVISION)
    command.upgrade(config, "head")


def _migrate_fields(state: TableState, schema: Schema) -> None:
    """schema.json gained, lost or reordered columns: rewrite stored records to the new field list."""
    old = state.field_names
    dropped = [n for n in old if n not in schema.names]
    count = store.repack_records(schema.repack, old)
    store.repack_pending(schema.repack, schema.names)
    state.fields = json.dumps(list(schema.names))
    log.warning(
        "schema.json columns changed: rewrote %d records (added: %s; removed: %s)",
        count,
        ", ".join(n for n in schema.names if n not in old) or "none",
        ", ".join(dropped) or "none",
    )


def _create_first_admins(app: Flask) -> None:
    """On an empty database, create the ADMIN_USER accounts and print their passwords once."""
    if db.session.scalar(select(func.count()).select_from(User)):
        return
    for name in app.config["ADMIN_USERS"]:
        password = secrets.token_urlsafe(12)
        auth.create_user(name, password)
        print(
            f"\n  Dataset Tracker: created admin account {name!r} with password: {password}\n"
            f"  (shown once; change it with: flask --app app users set-password {name})\n",
            file=sys.stderr,
            flush=True,
        )
