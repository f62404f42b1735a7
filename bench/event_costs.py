"""The event log's own costs, measured alone (issue 22; docs/PERFORMANCE.md): the SHA-256 of a
1,000,000-row change set computed while staging (approvals.staged), and one event written and
committed on a fresh SQLite file and a fresh PostgreSQL database. CPU seconds are printed next to
wall seconds: a busy machine moves the second much more than the first.

    .venv/bin/python bench/event_costs.py [--rows 1000000] [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

Needs bench/data/base-N.csv (bench/run.py generates it).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("SECRET_KEY", "bench")

import sqlalchemy as sa  # noqa: E402

import approvals  # noqa: E402
import diff  # noqa: E402
import store.approvals  # noqa: E402


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def digest_cost(rows: int) -> None:
    lines = (HERE / "data" / f"base-{rows}.csv").read_text(encoding="utf-8").splitlines()[1 : rows + 1]
    result = diff.Diff(
        added=[diff.Row(i, line.split(",", 1)[0], line.replace(",", "\x1f")) for i, line in enumerate(lines)]
    )
    keep, store.approvals.keep_digest = store.approvals.keep_digest, lambda change_id, digest: None  # no database
    runs = []
    for _ in range(3):
        wall, used = time.perf_counter(), cpu()
        approvals.staged(1, result)
        runs.append((time.perf_counter() - wall, cpu() - used))
    store.approvals.keep_digest = keep
    print(
        f"digest of {len(lines):,} staged additions: wall {min(r[0] for r in runs):.3f} s, cpu {min(r[1] for r in runs):.3f} s"
    )


def event_cost(kind: str, pg_url: str, count: int = 500) -> None:
    from conftest import build_app

    import events
    from models import db

    workdir = Path(tempfile.mkdtemp(prefix="event-costs-"))
    admin = None
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        name = f"event_costs_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(
            pg_url.replace("postgresql://", "postgresql+psycopg2://"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = pg_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://") + "/" + name
    app = build_app(url, FIRST_ADMIN_PASSWORD_FILE=workdir / "first-admin-password")
    with app.app_context():
        wall, used = time.perf_counter(), cpu()
        for n in range(count):
            events.record("download", user="bench", table="datasets", details={"version": n, "format": "csv"})
            db.session.commit()
        wall, used = (time.perf_counter() - wall) / count, (cpu() - used) / count
        assert events.verify().broken is None
        db.session.remove()
        db.engine.dispose()
    print(
        f"{kind}: one event written and committed: wall {wall * 1000:.2f} ms, app cpu {used * 1000:.2f} ms (mean of {count})"
    )
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    digest_cost(args.rows)
    for kind in ("sqlite", "postgres"):
        event_cost(kind, args.pg_url)


if __name__ == "__main__":
    main()
