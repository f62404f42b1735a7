"""gunicorn and fresh databases for the benchmarks: the one starter bench/run.py and bench/load.py share.

`gunicorn` starts `gunicorn -w N app:app` on a free loopback port in the project's folder (so
gunicorn.conf.py applies), waits for /healthz, and stops it at the end; `fresh_database` makes an
SQLite file or a PostgreSQL database and removes it afterwards; `machine` says what ran the numbers.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_PG = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def peak_rss(pid: int) -> int:
    with contextlib.suppress(OSError, AttributeError):
        return int(re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)) * 1024
    return 0


@dataclass
class Server:
    """A running gunicorn: its base URL and master process."""

    base: str
    pid: int

    def workers(self) -> list[int]:
        return children(self.pid)

    def peak_rss(self) -> int:
        """The peak RSS of the busiest worker, in bytes."""
        return max((peak_rss(p) for p in self.workers()), default=0)


@contextlib.contextmanager
def gunicorn(
    url: str, log: Path, workers: int, env: dict[str, str] | None = None, wait_s: int = 120, stop_s: int = 120
) -> Iterator[Server]:
    """`gunicorn -w workers app:app` on 127.0.0.1 on the database at `url` (gunicorn.conf.py applies),
    output appended to `log`; `env` adds to the environment (SECRET_KEY, SCHEMA_PATH, …)."""
    import requests

    port = free_port()
    env = os.environ | {"SECRET_KEY": "bench-secret", "ADMIN_USER": "boss"} | (env or {}) | {"DATABASE_URL": url}
    env.pop("APP_ENV", None)  # development: cookies without Secure, as plain http on loopback needs
    cmd = [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "-b", f"127.0.0.1:{port}", "app:app"]
    with log.open("a") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(wait_s * 2):
                with contextlib.suppress(requests.RequestException):
                    if requests.get(base + "/healthz", timeout=5).status_code == 200:
                        break
                if proc.poll() is not None:
                    raise SystemExit(f"gunicorn exited ({proc.returncode}); see {log}")
                time.sleep(0.5)
            else:
                raise SystemExit(f"gunicorn did not answer within {wait_s} s; see {log}")
            yield Server(base, proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=stop_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def fresh_database(kind: str, pg_url: str):
    """A URL to a new, empty database of this kind; removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    import psycopg2

    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def machine(pg_url: str) -> dict:
    info = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", cpuinfo).group(1)
    with contextlib.suppress(OSError):
        mem = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
        info["ram_gib"] = round(int(mem.group(1)) / 1024 / 1024, 1)
    try:
        import psycopg2

        conn = psycopg2.connect(pg_url)
        cur = conn.cursor()
        cur.execute("SHOW server_version")
        info["postgresql"] = cur.fetchone()[0]
        conn.close()
    except Exception as exc:  # noqa: BLE001 - informational only
        info["postgresql"] = f"unavailable ({exc.__class__.__name__})"
    return info
