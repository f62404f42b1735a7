"""Start-up work on the database: migrations, the table-state row, schema changes, the first admin.

Runs in every process that creates the app (each gunicorn worker), so it holds a lock while it
works: a PostgreSQL advisory lock, or a file lock beside the SQLite database.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from flask import Flask

import accounts
import config
import store.base
import store.changes
import store.table
from models import TableState, db
from schema import Schema

log = logging.getLogger(__name__)
# The migration whose tables equal what db.create_all() made before the app had migrations.
BASELINE_REVISION = "0001"


def init_database(app: Flask, schema: Schema) -> None:
    """Migrate the tables to the newest revision and bring stored records in line with schema.json; idempotent."""
    with store.base.startup_lock(Path(app.instance_path)):
        upgrade_schema(app)
        state = store.table.get_state()
        if state is None:
            store.table.add_state(json.dumps(list(schema.names)))
        elif state.field_names != list(schema.names):
            _migrate_fields(state, schema)
        first_admins = accounts.create_first_admins()
        db.session.commit()
    if first_admins:
        announce_first_admins(first_admins, Path(app.config["FIRST_ADMIN_PASSWORD_FILE"]))


def announce_first_admins(created: list[tuple[str, str]], path: Path) -> None:
    """Tell the person starting the app the first admins' passwords, once: on the console when it
    is a terminal; else (gunicorn, systemd, docker: a log others may read) in a file in instance/
    that only this user can read, and the log says where."""
    if sys.stderr.isatty():
        for name, password in created:
            print(
                f"\n  Dataset Tracker: created admin account {name!r} with password: {password}\n"
                f"  (shown once; change it with: flask --app app users set-password {name})\n",
                file=sys.stderr,
                flush=True,
            )
        return
    config.write_private(path, "".join(f"{name}: {password}\n" for name, password in created))
    names = ", ".join(repr(name) for name, _ in created)
    print(
        f"\n  Dataset Tracker: created admin account(s) {names}; the password is in {path} (readable by this user"
        f" only). Sign in, delete that file, and change the password with: flask --app app users set-password NAME\n",
        file=sys.stderr,
        flush=True,
    )


def upgrade_schema(app: Flask) -> None:
    """Run the Alembic migrations up to head (what `flask --app app db upgrade` does).

    A database created by `db.create_all()` before the app had migrations has the tables of the
    baseline revision but no `alembic_version`: it is stamped as the baseline, then upgraded.
    A database already at head is left alone without running the migration environment.
    """
    config = app.extensions["migrate"].migrate.get_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    current, has_tables = store.base.migration_state()
    legacy = not current and has_tables
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
    count = store.table.repack_records(schema.repack, old)
    store.changes.repack_pending(schema.repack, schema.names)
    state.fields = json.dumps(list(schema.names))
    log.warning(
        "schema.json columns changed: rewrote %d records (added: %s; removed: %s)",
        count,
        ", ".join(n for n in schema.names if n not in old) or "none",
        ", ".join(dropped) or "none",
    )
