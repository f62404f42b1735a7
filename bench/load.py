"""Load test: simulated users against gunicorn on PostgreSQL, on loopback; stops by itself.

    .venv/bin/python bench/load.py                      # 25 users, 60 s, 4 workers, 10,000 rows

Creates a fresh PostgreSQL database (dropped at the end), seeds it with the benchmark table
(bench/generate.py) through the app's own upload and approval, starts `gunicorn -w 4 app:app` on
127.0.0.1 (with the project's gunicorn.conf.py), and runs the users as threads: each signs in
through the login form and then, until the time is up, browses the table (pages and searches),
downloads the CSV, uploads a small partial edit through the upload form, or opens a change
request's review page. It reports requests/s, p50/p95/p99 latency per kind and in total, and the
errors (anything but the expected status, or no answer at all). Target: zero errors.
Results: stdout, and bench/out/load.json and load.md.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
CATALOG = ROOT / "examples" / "catalog.schema.json"  # the catalog alone, as bench/run.py measures it
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
import serve  # noqa: E402

ACCOUNTS = [f"user{i}" for i in range(1, 6)]
PASSWORD = "load-test-password"  # a throwaway account in a throwaway database
SEARCHES = ["DS-00012", "forecast", "sales", "zephyr", "EMEA", "anna", "qxjvw", "Finance"]
KINDS = {"browse": 45, "search": 15, "review": 15, "export": 15, "upload": 10}  # relative weights
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CHANGE = re.compile(r"/changes/(\d+)$")


@dataclass
class Sample:
    kind: str
    seconds: float
    error: str | None = None


@dataclass
class Shared:
    """What the simulated users share: the server, the deadline, the samples, the request ids."""

    base: str
    deadline: float
    rows: int
    keys: list[str]
    samples: list[Sample] = field(default_factory=list)
    change_ids: list[int] = field(default_factory=lambda: [1])
    lock: threading.Lock = field(default_factory=threading.Lock)


def csrf_token(html: str) -> str:
    match = CSRF.search(html)
    if not match:
        raise RuntimeError("no CSRF token in the page")
    return match.group(1)


class User(threading.Thread):
    """One simulated person: signs in, then browses, searches, reviews, downloads and uploads."""

    def __init__(self, shared: Shared, number: int):
        super().__init__(daemon=True)
        self.shared, self.rnd = shared, random.Random(number)
        self.account = ACCOUNTS[number % len(ACCOUNTS)]
        self.http = requests.Session()
        self.token = ""

    def url(self, path: str) -> str:
        return self.shared.base + path

    def sign_in(self) -> None:
        page = self.http.get(self.url("/login"), timeout=60)
        form = {"username": self.account, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
        r = self.http.post(self.url("/login"), data=form, allow_redirects=False, timeout=60)
        if r.status_code != 302:
            raise RuntimeError(f"sign-in of {self.account}: HTTP {r.status_code}")
        self.token = csrf_token(self.http.get(self.url("/upload"), timeout=60).text)

    def run(self) -> None:
        try:
            self.sign_in()
        except (requests.RequestException, RuntimeError) as exc:
            self.record("sign-in", 0.0, str(exc))
            return
        kinds, weights = list(KINDS), list(KINDS.values())
        while time.monotonic() < self.shared.deadline:
            kind = self.rnd.choices(kinds, weights)[0]
            t0 = time.perf_counter()
            try:
                error = getattr(self, kind)()
            except requests.RequestException as exc:
                error = f"{exc.__class__.__name__}: {exc}"
            self.record(kind, time.perf_counter() - t0, error)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        with self.shared.lock:
            self.shared.samples.append(Sample(kind, seconds, error))

    def expect(self, r: requests.Response, status: int) -> str | None:
        return None if r.status_code == status else f"{r.request.method} {r.url}: HTTP {r.status_code}"

    def browse(self) -> str | None:
        last = max(self.shared.rows // 50, 1)
        page = self.rnd.choice([1, 1, 2, self.rnd.randint(1, last)])
        return self.expect(self.http.get(self.url(f"/?page={page}"), timeout=60), 200)

    def search(self) -> str | None:
        q = self.rnd.choice(SEARCHES)
        return self.expect(self.http.get(self.url("/"), params={"q": q}, timeout=60), 200)

    def review(self) -> str | None:
        with self.shared.lock:
            change_id = self.rnd.choice(self.shared.change_ids)
        return self.expect(self.http.get(self.url(f"/changes/{change_id}"), timeout=60), 200)

    def export(self) -> str | None:
        with self.http.get(self.url("/download"), stream=True, timeout=60) as r:
            size = sum(len(chunk) for chunk in r.iter_content(1 << 16))
            if r.status_code == 200 and size < 100:
                return f"download of {size} bytes"
            return self.expect(r, 200)

    def upload(self) -> str | None:
        keys = self.rnd.sample(self.shared.keys, self.rnd.randint(1, 3))
        lines = [",".join(generate.HEADER)]
        for key in keys:
            name = f"Edited by {self.account} {self.rnd.randrange(10**9)}"
            lines.append(
                f"{key},{name},,{self.account}@example.com,BI,SAP,daily,false,1,2024-01-31,https://x.example/{key}"
            )
        body = ("\r\n".join(lines) + "\r\n").encode()
        form = {"mode": "partial", "comment": "load test", "csrf_token": self.token}
        files = {"file": ("edit.csv", io.BytesIO(body), "text/csv")}
        r = self.http.post(self.url("/upload"), data=form, files=files, allow_redirects=False, timeout=60)
        if r.status_code != 302 or not CHANGE.search(r.headers.get("Location", "")):
            return f"upload: HTTP {r.status_code} {r.headers.get('Location', '')}"
        with self.shared.lock:
            self.shared.change_ids.append(int(CHANGE.search(r.headers["Location"]).group(1)))
        return None


# --- setting up and tearing down -------------------------------------------------------------


def seed(url: str, rows: int) -> list[str]:
    """Accounts, and the benchmark table loaded through the app's own upload and approval."""
    os.environ["SECRET_KEY"] = "load-test-secret"
    logging.basicConfig(level=logging.WARNING)  # before create_app: keeps its start-up log quiet
    import accounts
    import changes
    import config
    import tables
    import uploads
    from app import create_app
    from models import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": config.database_url(url, Path(".")),
            "ADMIN_USERS": ["boss"],
            "SCHEMA_PATH": CATALOG,
            "FIRST_ADMIN_PASSWORD_FILE": OUT / "load-first-admin-password",  # not the checkout's instance/
        }
    )
    with app.app_context():
        for name in [*ACCOUNTS, "boss"]:
            if accounts.find_user(name) is None:
                accounts.create_user(name, PASSWORD)
        with (generate.DATA / f"base-{rows}.csv").open("rb") as f:
            result = uploads.submit(tables.get(None), f, uploads.UploadOptions(submitter="user1", filename="seed.csv"))
        changes.approve(result.change.id, "boss")
        keys = [k for (k,) in db.session.execute(db.text("SELECT key FROM datasets"))]
        db.session.remove()
        db.engine.dispose()
    return keys


# --- report ----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def report(samples: list[Sample], seconds: float) -> tuple[list[dict], list[str]]:
    rows, errors = [], [s.error for s in samples if s.error]
    for kind in [*KINDS, "all"]:
        chosen = [s for s in samples if kind in ("all", s.kind) and s.kind != "sign-in"]
        if not chosen:
            continue
        times = [s.seconds for s in chosen]
        rows.append(
            {
                "kind": kind,
                "requests": len(chosen),
                "per_s": len(chosen) / seconds,
                "p50": statistics.median(times),
                "p95": percentile(times, 95),
                "p99": percentile(times, 99),
                "max": max(times),
                "errors": sum(1 for s in chosen if s.error),
            }
        )
    return rows, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the table (default 10000)")
    parser.add_argument("--pg-url", default=serve.DEFAULT_PG, help="PostgreSQL server for the fresh database")
    args = parser.parse_args()
    if args.seconds > 600:
        raise SystemExit("--seconds: at most 600 (a bounded test)")

    generate.ensure(args.rows)
    OUT.mkdir(exist_ok=True)
    with serve.fresh_database("postgres", args.pg_url) as url:
        keys = seed(url, args.rows)
        log = OUT / "load-gunicorn.log"
        log.unlink(missing_ok=True)
        env = {"SECRET_KEY": "load-test-secret", "SCHEMA_PATH": str(CATALOG)}
        with serve.gunicorn(url, log, args.workers, env, wait_s=60, stop_s=90) as server:
            base = server.base
            shared = Shared(base, time.monotonic() + args.seconds, args.rows, keys)
            users = [User(shared, i) for i in range(args.users)]
            started = time.monotonic()
            for u in users:
                u.start()
            for u in users:
                u.join(timeout=max(1.0, shared.deadline - time.monotonic()) + 120)
            elapsed = time.monotonic() - started
    rows, errors = report(shared.samples, elapsed)
    info = serve.machine(args.pg_url)
    title = (
        f"{args.users} users, {elapsed:.0f} s, gunicorn -w {args.workers}, PostgreSQL {info.get('postgresql')}, "
        f"{args.rows:,} rows, {info.get('nproc')} CPUs"
    )
    lines = [
        title,
        "",
        "| requests | count | per s | p50 s | p95 s | p99 s | max s | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['requests']:,} | {r['per_s']:.1f} | {r['p50']:.3f} | {r['p95']:.3f} "
            f"| {r['p99']:.3f} | {r['max']:.3f} | {r['errors']} |"
        )
    lines.append("")
    lines.append(f"errors: {len(errors)}" + "".join(f"\n- {e}" for e in sorted(set(errors))[:20]))
    text = "\n".join(lines)
    print(text)
    (OUT / "load.md").write_text(text + "\n")
    (OUT / "load.json").write_text(json.dumps({"title": title, "rows": rows, "errors": errors}, indent=1))
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
