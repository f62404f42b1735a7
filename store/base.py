"""What the other store modules share: the dialect, raw cursors, read snapshots, batched reads."""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine, make_url

from models import db

T = TypeVar("T")
ADVISORY_LOCK_ID = 74_204_311
COPY_BATCH = 50_000
FETCH_BATCH = 20_000


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def raw_cursor():
    """A DB-API cursor inside the session's current transaction."""
    return db.session.connection().connection.cursor()


@contextlib.contextmanager
def snapshot():
    """A connection of its own in a read transaction that sees one consistent version of the database.

    Long reads (an upload's diff, a download) use it, so they do not hold the request's session."""
    conn = db.engine.connect()
    try:
        if is_postgres():
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
            raw = conn.connection.driver_connection
        else:
            raw = conn.connection.driver_connection
            raw.execute("BEGIN")
        yield raw
    finally:
        with contextlib.suppress(Exception):
            conn.connection.driver_connection.rollback()
        conn.close()


def iter_cursor(raw, sql: str, name: str) -> Iterator[list[tuple]]:
    """Run a query now; return its rows in batches (a server-side cursor on PostgreSQL)."""
    if is_postgres():
        cur = raw.cursor(name=name)
        cur.itersize = FETCH_BATCH
        cur.execute(sql)
        return _prefetched(cur)
    cur = raw.cursor()
    cur.execute(sql)
    return _drain(cur)


def _prefetched(cur) -> Iterator[list[tuple]]:
    """The rows of a server-side cursor in batches, each fetched by a helper thread while the last is used.

    PostgreSQL then sends rows while Python builds the upload's dictionary or the download's CSV
    (the driver lets go of the GIL while it waits): a million rows arrive in about 1.5 s instead
    of 2.5 s. At most three batches are in memory.
    """
    batches: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def hand_over(item) -> None:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def fetch() -> None:
        try:
            while not stop.is_set():
                batch = cur.fetchmany(FETCH_BATCH)
                hand_over(batch)
                if not batch:
                    return
        except Exception as exc:  # noqa: BLE001 - raised again in the reading thread
            hand_over(exc)

    thread = threading.Thread(target=fetch, name="fetch-rows", daemon=True)
    thread.start()
    try:
        while True:
            batch = batches.get()
            if isinstance(batch, Exception):
                raise batch
            if not batch:
                return
            yield batch
    finally:
        stop.set()
        thread.join()
        cur.close()


def _drain(cur) -> Iterator[list[tuple]]:
    try:
        while batch := cur.fetchmany(FETCH_BATCH):
            yield batch
    finally:
        cur.close()


def like_pattern(text: str) -> str:
    """`text` escaped for LIKE ... ESCAPE '\\' (its %, _ and \\ match themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


MAX_CASE_RANGES = 16


def case_variants(prefix: str) -> list[str]:
    """The case variants of a prefix's first letters, as many as MAX_CASE_RANGES allows.

    >>> case_variants("ds-1"), len(case_variants("abcdefgh")), case_variants("1é")
    (['DS-1', 'Ds-1', 'dS-1', 'ds-1'], 16, ['1É', '1é'])
    """
    variants = [""]
    for char in prefix:
        cases = sorted({char.lower(), char.upper()}) if char.lower() != char.upper() else [char]
        if len(variants) * len(cases) > MAX_CASE_RANGES:
            break
        variants = [v + c for v in variants for c in cases]
    return sorted(variants)


def prefix_end(prefix: str) -> str | None:
    """The first string after every string that starts with `prefix` (in code point order, the
    order of UTF-8 bytes): its last character one higher, skipping the surrogates (no database
    holds them) and carrying past U+10FFFF; None when there is none (all U+10FFFF).

    >>> prefix_end("DS-1"), prefix_end("a\ud7ff") == "a\ue000", prefix_end("a\U0010ffff"), prefix_end("\U0010ffff")
    ('DS-2', True, 'b', None)
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def key_prefix_clause(column: str, prefix: str, name: str = "kp") -> tuple[str, dict[str, str]]:
    """SQL (and its parameters) for `column` starting with `prefix` in any case, as ranges the key
    index serves: one per case variant of the prefix's first letters (at most MAX_CASE_RANGES),
    then a case-insensitive LIKE on what they found (ILIKE on PostgreSQL, folding ASCII letters
    under the keys' C collation; SQLite's LIKE folds ASCII too).

    """
    variants = case_variants(prefix)
    params: dict[str, str] = {}
    ranges = []
    for i, v in enumerate(sorted(variants)):
        params[f"{name}{i}"] = v
        end = prefix_end(v)
        if end is None:  # a prefix of U+10FFFF only: every key from it on
            ranges.append(f"({column} >= :{name}{i})")
        else:
            params[f"{name}{i}_end"] = end
            ranges.append(f"({column} >= :{name}{i} AND {column} < :{name}{i}_end)")
    params[f"{name}_like"] = like_pattern(prefix) + "%"
    like = "ILIKE" if is_postgres() else "LIKE"
    return f"({' OR '.join(ranges)}) AND {column} {like} :{name}_like ESCAPE '\\'", params


def batches(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    """`rows` in lists of at most `size`."""
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- start-up --------------------------------------------------------------------------------


def configure_sqlite(engine: Engine) -> None:
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
        # One field of a packed record (1-based), for sorting the table by a column: PostgreSQL's split_part.
        dbapi_connection.create_function("field_at", 2, _field_at, deterministic=True)


def _field_at(record: str | None, position: int) -> str | None:
    if record is None:
        return None
    cells = record.split("\x1f")
    return cells[position - 1] if 0 < position <= len(cells) else ""


def prepare_sqlite_file(url: str) -> None:
    """An SQLite database file readable by its owner only, from the first byte on: created 0600
    before SQLite opens it (SQLite gives its -wal and -shm files the database file's rights), and
    an existing one (with its -wal and -shm) set to 0600. Nothing for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another worker was first
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # not there, or not ours to change
            file.chmod(0o600)


@contextlib.contextmanager
def startup_lock(instance_path: Path):
    """Held while a process migrates and checks the database at start-up (each gunicorn worker does):
    a PostgreSQL advisory lock, or a file lock beside the SQLite database."""
    if is_postgres():
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
                conn.commit()
    else:
        instance_path.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(instance_path / "startup.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(lock_fd, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def migration_state() -> tuple[set[str], bool]:
    """(the Alembic revisions the database is at, whether it has the app's tables at all).

    Read directly: Alembic's MigrationContext would log on every start."""
    with db.engine.connect() as conn:
        tables = inspect(conn)
        current: set[str] = set()
        if tables.has_table("alembic_version"):
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        return current, tables.has_table("datasets")


def ping() -> None:
    """A trivial query: raises when the database does not answer."""
    db.session.execute(text("SELECT 1"))
