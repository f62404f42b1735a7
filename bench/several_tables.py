"""Several tables (issue 14): what the reference check adds to a big upload and its approval, and
whether many tables slow the pages. In process (`create_app`, the domain functions and Flask's
test client), on SQLite and PostgreSQL; run by hand, never by the tests.

    .venv/bin/python bench/generate.py --sizes 1000000        # bench/data/base-1000000.csv
    .venv/bin/python bench/several_tables.py --rows 1000000 --referenced 100000 --tables 100

- references: the catalog (`--rows` additions, bench/data/base-N.csv) uploaded and approved with
  its `team` column referring to a teams table of `--referenced` rows, and again without the
  reference: the ratio is what the check costs (target: the upload at most 1.3×).
- many tables: a package of the catalog and `--tables` - 1 small tables; the overview, a table
  page, the API's table list and an upload + approval of a small table, next to the same with the
  catalog alone (target: no slower).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
CATALOG = json.loads((ROOT / "examples" / "catalog.schema.json").read_text())

import generate  # noqa: E402 - bench/ is on the path when run as a script
from client import Answer, timed_get  # noqa: E402
from serve import DEFAULT_PG  # noqa: E402


def package(referring: bool, small_tables: int, teams: bool = True) -> dict:
    """The catalog (referring to teams by `team` or not), a teams table, and `small_tables` more."""
    catalog = {k: v for k, v in CATALOG.items() if k not in ("name", "title", "description")}
    if referring:
        catalog["foreignKeys"] = [{"fields": "team", "reference": {"resource": "teams", "fields": "name"}}]
    resources = [{"name": "datasets", "title": "Datasets", "schema": catalog}]
    if teams:
        resources.append(
            {"name": "teams", "schema": {"primaryKey": "name", "fields": [{"name": "name"}, {"name": "lead"}]}}
        )
    resources += [
        {"name": f"t{i:03d}", "schema": {"primaryKey": "name", "fields": [{"name": "name"}, {"name": "value"}]}}
        for i in range(1, small_tables + 1)
    ]
    return {"name": "bench", "resources": resources}


def make_app(url: str, schema: dict, directory: Path):
    os.environ.setdefault("SECRET_KEY", "bench-secret")
    from app import create_app

    path = directory / f"schema-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(schema))
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "ADMIN_USERS": ["boss"],
            "WTF_CSRF_ENABLED": False,
            "SCHEMA_PATH": path,
            "MAX_PENDING_PER_USER": 1000,
        }
    )


def database(kind: str, directory: Path, pg_url: str) -> str:
    """A fresh, empty database of `kind`."""
    if kind == "sqlite":
        return f"sqlite:///{directory / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    import sqlalchemy as sa

    import config

    server = config.database_url(pg_url, directory)  # the psycopg2 driver the app ships
    name = f"bench_tables_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def stage_and_approve(table: str | None, data: bytes) -> tuple[float, float]:
    """(upload seconds, approval seconds) of `data` into `table`, through the domain API."""
    import changes
    import tables
    import uploads

    t0 = time.perf_counter()
    result = uploads.submit(
        tables.get(table), io.BytesIO(data), uploads.UploadOptions(submitter="boss", filename="bench.csv")
    )
    upload = time.perf_counter() - t0
    t0 = time.perf_counter()
    changes.approve(result.change.id, "boss")
    return upload, time.perf_counter() - t0


def teams_csv(rows: int) -> bytes:
    """`rows` teams: every team the generated catalog uses, then filler."""
    names = list(generate.TEAMS) + [f"Team {i:06d}" for i in range(rows - len(generate.TEAMS))]
    return ("name,lead\n" + "".join(f"{n},lead{i}\n" for i, n in enumerate(names))).encode()


def references(kind: str, rows: int, referenced: int, directory: Path, pg_url: str) -> dict:
    catalog = (generate.DATA / f"base-{rows}.csv").read_bytes()
    out = {}
    for referring in (False, True):
        app = make_app(database(kind, directory, pg_url), package(referring, 0), directory)
        with app.app_context():
            stage_and_approve("teams", teams_csv(referenced))
            out["with" if referring else "without"] = stage_and_approve("datasets", catalog)
    (up0, ap0), (up1, ap1) = out["without"], out["with"]
    return {
        "upload_without": up0,
        "upload_with": up1,
        "upload_ratio": up1 / up0,
        "approve_without": ap0,
        "approve_with": ap1,
        "approve_ratio": ap1 / ap0,
    }


def timed(client, url: str, repeat: int = 7, headers: dict | None = None) -> float:
    """The median time of `repeat` GETs of `url` through a Flask test client (bench/client.py's loop)."""
    return timed_get(lambda u: Answer.of(client.get(u, headers=headers)), url, repeat)["seconds"]


def many_tables(kind: str, tables: int, directory: Path, pg_url: str) -> dict:
    """Page and small-request times with the catalog, teams and `tables` - 2 small tables, and with one small table."""
    catalog = (generate.DATA / "base-10000.csv").read_bytes()
    small = b"name,value\n" + b"".join(b"k%d,v%d\n" % (i, i) for i in range(100))
    out = {}
    for count in (3, tables):
        app = make_app(database(kind, directory, pg_url), package(False, count - 2), directory)
        with app.app_context():
            import accounts

            accounts.set_password("boss", "boss-password-long")
            token = {"Authorization": f"Bearer {accounts.create_token('boss')}"}
            stage_and_approve("datasets", catalog)
            upload, approve = stage_and_approve(f"t{count - 2:03d}", small)
        client = app.test_client()
        client.post("/login", data={"username": "boss", "password": "boss-password-long"})
        out[count] = {
            "overview /": timed(client, "/"),
            "GET /api/v1/tables": timed(client, "/api/v1/tables", headers=token),
            "table page /t/datasets/": timed(client, "/t/datasets/"),
            "small upload": upload,
            "small approval": approve,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--referenced", type=int, default=100_000)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    args = parser.parse_args()
    for size in (args.rows, 10_000):
        if not (generate.DATA / f"base-{size}.csv").exists():
            raise SystemExit(f"run first: .venv/bin/python bench/generate.py --sizes {size}")
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for kind in kinds:
            found = references(kind, args.rows, args.referenced, directory, args.pg_url)
            print(f"\n{kind}: {args.rows:,} catalog rows referring to {args.referenced:,} teams")
            writer = csv.writer(sys.stdout, delimiter="|", lineterminator="\n")
            for step in ("upload", "approve"):
                writer.writerow(
                    [
                        f" {step} ",
                        f" {found[step + '_without']:.2f} s without the reference ",
                        f" {found[step + '_with']:.2f} s with it ",
                        f" {found[step + '_ratio']:.2f}× ",
                    ]
                )
            pages = many_tables(kind, args.tables, directory, args.pg_url)
            print(f"\n{kind}: 3 tables → {args.tables} tables (median of 7 requests)")
            for what in pages[3]:
                print(f"| {what} | {pages[3][what]:.3f} s | {pages[args.tables][what]:.3f} s |")


if __name__ == "__main__":
    main()
