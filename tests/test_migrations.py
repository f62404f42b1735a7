"""Alembic migrations: from an empty database they build exactly the tables of models.py, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import accounts
import bootstrap
from models import db


def alembic_config(app):
    return app.extensions["migrate"].migrate.get_config()


def head(app) -> str:
    return ScriptDirectory.from_config(alembic_config(app)).get_current_head()


def current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def shape(inspector: sa.Inspector, table: str, dialect) -> dict:
    """What a table looks like to the database: columns, keys, indexes, constraints."""
    columns = {
        c["name"]: (c["type"].compile(dialect=dialect), c["nullable"], getattr(c["type"], "collation", None))
        for c in inspector.get_columns(table)
    }
    return {
        "columns": columns,
        "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
        "indexes": sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table)
            if not i.get("duplicates_constraint")  # PostgreSQL backs a unique constraint with an index
        ),
        "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        "foreign_keys": sorted(
            (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
             (f.get("options") or {}).get("ondelete"))
            for f in inspector.get_foreign_keys(table)
        ),
    }  # fmt: skip


def model_shape(table: sa.Table, dialect) -> dict:
    """The same description, read from the models."""
    columns = {}
    for c in table.columns:
        impl = c.type.dialect_impl(dialect)
        columns[c.name] = (impl.compile(dialect=dialect), c.nullable, getattr(impl, "collation", None))
    indexes = [(i.name, tuple(col.name for col in i.columns), bool(i.unique)) for i in table.indexes]
    uniques = [tuple(col.name for col in u.columns) for u in table.constraints if isinstance(u, sa.UniqueConstraint)]
    uniques += [(c.name,) for c in table.columns if c.unique]
    return {
        "columns": columns,
        "primary_key": [c.name for c in table.primary_key.columns],
        "indexes": sorted(indexes),
        "unique": sorted(set(uniques)),
        "foreign_keys": sorted(
            ((f.parent.name,), f.column.table.name, (f.column.name,), f.ondelete) for f in table.foreign_keys
        ),
    }


def app_tables(inspector: sa.Inspector) -> set[str]:
    return set(inspector.get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_builds_the_model_tables(make_app):
    app = make_app(SKIP_DB_INIT=True)
    runner = app.test_cli_runner()
    with app.app_context():
        assert app_tables(sa.inspect(db.engine)) == set()
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert current_revision() == head(app)
        inspector = sa.inspect(db.engine)
        dialect = db.engine.dialect
        models = db.metadata.tables
        assert app_tables(inspector) == set(models)
        for name, table in models.items():
            assert shape(inspector, name, dialect) == model_shape(table, dialect), name


def test_keys_sort_bytewise_on_postgresql(make_app):
    """The key columns carry COLLATE "C" on PostgreSQL, as the models say (SQLite compares bytes anyway)."""
    app = make_app()
    with app.app_context():
        expected = "C" if db.engine.dialect.name == "postgresql" else None
        for table in ("datasets", "pending_changes", "audit_log"):
            columns = {c["name"]: c["type"] for c in sa.inspect(db.engine).get_columns(table)}
            assert getattr(columns["key"], "collation", None) == expected, table
            assert all(getattr(t, "collation", None) is None for name, t in columns.items() if name != "key")


def test_autogenerate_finds_no_differences(make_app):
    """`flask db check` (alembic check): the migrated database and the models agree."""
    app = make_app()
    runner = app.test_cli_runner()
    with app.app_context():
        result = runner.invoke(args=["db", "check"])
        assert result.exit_code == 0, result.output
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, db.metadata)
        assert diffs == []


def test_check_notices_a_missing_index(make_app):
    """The check can fail: drop an index the models declare and it is reported."""
    app = make_app()
    runner = app.test_cli_runner()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_audit_log_key_id"))
        result = runner.invoke(args=["db", "check"])
        assert result.exit_code != 0


def test_start_up_migrates_a_fresh_database_and_is_idempotent(make_app):
    app = make_app()
    with app.app_context():
        assert current_revision() == head(app)
        accounts.create_user("carol", "carol-password")
        db.session.commit()
    again = make_app()  # a second process starting on the same database
    with again.app_context():
        assert current_revision() == head(again)
        assert accounts.find_user("carol") is not None


def test_database_made_by_create_all_is_stamped_and_kept(make_app):
    """A database created by db.create_all() before migrations existed: stamped, data kept, then at head."""
    old = make_app(SKIP_DB_INIT=True)
    with old.app_context():
        db.create_all()
        db.session.execute(sa.text("INSERT INTO datasets (key, record, version) VALUES ('DS-1', 'x', 1)"))
        db.session.commit()
        assert current_revision() is None
    app = make_app()
    with app.app_context():
        assert current_revision() == head(app)
        assert db.session.execute(sa.text("SELECT record FROM datasets WHERE key = 'DS-1'")).scalar_one() == "x"


def test_every_revision_downgrades_and_upgrades_again(make_app):
    app = make_app(SKIP_DB_INIT=True)
    with app.app_context():
        config = alembic_config(app)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        assert app_tables(sa.inspect(db.engine)) == set()
        command.upgrade(config, "head")
        assert app_tables(sa.inspect(db.engine)) == set(db.metadata.tables)


def test_baseline_revision_exists():
    """bootstrap stamps legacy databases with this revision; it must stay the root of the history."""
    from app import MIGRATIONS

    assert (MIGRATIONS / "versions").is_dir()
    assert any(p.name.startswith(bootstrap.BASELINE_REVISION + "_") for p in (MIGRATIONS / "versions").iterdir())
