"""Start-up work on the database: migrations, a state row per table, schema changes, the first admin.

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
import events
import store.approvals
import store.base
import store.changes
import store.table
from models import TableState, db
from package import Package, Table
from schema import Schema, SchemaError

log = logging.getLogger(__name__)
# The migration whose tables equal what db.create_all() made before the app had migrations.
BASELINE_REVISION = "0001"


def init_database(app: Flask, package: Package) -> None:
    """Migrate the tables to the newest revision and bring stored tables in line with schema.json; idempotent."""
    with store.base.startup_lock(Path(app.instance_path)):
        upgrade_schema(app)
        try:
            sync_tables(package, drop=app.config["DROP_REMOVED_TABLES"])
        except SchemaError:
            db.session.rollback()
            raise
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


def sync_tables(package: Package, drop: bool = False) -> None:
    """A state row for every table of schema.json (a new resource is a new, empty table), stored
    records in line with each table's columns, and the tables schema.json no longer names dropped
    when they are empty or `drop` (DROP_REMOVED_TABLES) says so; otherwise SchemaError.

    Row 1 of a database made before several tables existed has no name: it is the first table.
    """
    store.table.add_database_state()
    states = {s.name: s for s in store.table.all_states()}
    unnamed = states.pop(None, None)
    new_database = not states and unnamed is None
    for position, table in enumerate(package.tables):
        state = states.pop(table.name, None)
        if state is None and position == 0 and unnamed is not None:
            state, unnamed = unnamed, None
            state.name = table.name
        if state is None:
            store.table.add_state(table.name, json.dumps(list(table.schema.names)))
            if not new_database:
                log.warning("schema.json has a new table %r: added it, empty", table.name)
                events.record("schema-change", user=None, table=table.name, details={"change": "table added"})
        elif state.field_names != list(table.schema.names):
            _migrate_fields(state, table)
    removed = [s for s in [*states.values(), unnamed] if s is not None]
    holding = [s for s in removed if s.row_count]
    if holding and not drop:
        names = ", ".join(f"{s.name or 'the first table'!r} ({s.row_count:,} rows)" for s in holding)
        raise SchemaError(
            f"schema.json no longer has the table(s) {names}, which hold rows. Put the resource back, or"
            " set DROP_REMOVED_TABLES=1 for one start to delete those rows (their history stays in the audit log)."
        )
    for s in removed:
        gone = store.table.drop_table(s.id)
        log.warning("schema.json no longer has the table %r: dropped it (%d rows)", s.name, gone)
        events.record("schema-change", user=None, table=s.name, details={"change": "table dropped", "rows": gone})


def _migrate_fields(state: TableState, table: Table) -> None:
    """schema.json gained, lost or reordered columns: rewrite stored records to the new field list."""
    schema: Schema = table.schema
    old = state.field_names
    dropped = [n for n in old if n not in schema.names]
    count = store.table.repack_records(state.id, schema.repack, old)
    store.changes.repack_pending(state.id, schema.repack, schema.names)
    store.approvals.forget_pending_digests(state.id)
    state.fields = json.dumps(list(schema.names))
    added = [n for n in schema.names if n not in old]
    log.warning(
        "schema.json columns of %r changed: rewrote %d records (added: %s; removed: %s)",
        table.name,
        count,
        ", ".join(added) or "none",
        ", ".join(dropped) or "none",
    )
    details = {"change": "columns changed", "added": added, "removed": dropped, "records": count}
    events.record("schema-change", user=None, table=table.name, details=details)
