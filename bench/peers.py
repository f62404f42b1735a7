"""The peers the app's steps are measured against, on the same files in the same run: Python's
`csv.reader` (the parse floor), csv-diff, a pandas keyed diff, and PostgreSQL's COPY."""

from __future__ import annotations

import time
from pathlib import Path

import generate

# --- peers -----------------------------------------------------------------------------------


def best_of(peer):
    """Run a peer `repeat` times; keep its fastest run (the machine is shared and noisy)."""

    def run(base: Path, edited: Path, url: str, repeat: int) -> dict:
        results = [peer(base, edited, url) for _ in range(repeat)]
        best = min(results, key=lambda r: r["seconds"])
        return best | {"times": [r["seconds"] for r in results]}

    return run


def peer_parse(base: Path, edited: Path, _url: str) -> dict:
    import csv

    t0 = time.perf_counter()
    n = 0
    for path in (base, edited):
        with path.open(encoding="utf-8", newline="") as f:
            for _ in csv.reader(f):
                n += 1
    return {"seconds": time.perf_counter() - t0, "rows": n - 2}


def peer_csv_diff(base: Path, edited: Path, _url: str) -> dict:
    from csv_diff import compare, load_csv

    t0 = time.perf_counter()
    with base.open(encoding="utf-8", newline="") as a, edited.open(encoding="utf-8", newline="") as b:
        result = compare(load_csv(a, key="id"), load_csv(b, key="id"))
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "counts": {k: len(result[k]) for k in ("added", "removed", "changed")},
    }


def peer_pandas(base: Path, edited: Path, _url: str) -> dict:
    import pandas as pd

    t0 = time.perf_counter()
    a = pd.read_csv(base, dtype=str, keep_default_na=False)
    b = pd.read_csv(edited, dtype=str, keep_default_na=False)
    merged = a.merge(b, on="id", how="outer", suffixes=("_a", "_b"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    changed = None
    for column in a.columns:
        if column == "id":
            continue
        differs = both[f"{column}_a"] != both[f"{column}_b"]
        changed = differs if changed is None else changed | differs
    counts = {
        "added": int((merged["_merge"] == "right_only").sum()),
        "removed": int((merged["_merge"] == "left_only").sum()),
        "changed": int(changed.sum()),
    }
    return {"seconds": time.perf_counter() - t0, "counts": counts}


def peer_pg_copy(base: Path, _edited: Path, url: str) -> dict:
    import psycopg2

    conn = psycopg2.connect(url)
    columns = ", ".join(f"{c} text" for c in generate.HEADER[1:])
    try:
        cur = conn.cursor()
        t0 = time.perf_counter()
        cur.execute(f"CREATE TABLE bench_copy (id text PRIMARY KEY, {columns})")
        with base.open("rb") as f:
            cur.copy_expert("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)", f)
        conn.commit()
        seconds = time.perf_counter() - t0
        cur.execute("SELECT count(*) FROM bench_copy")
        n = cur.fetchone()[0]
        cur.execute("DROP TABLE bench_copy")
        conn.commit()
    finally:
        conn.close()
    return {"seconds": seconds, "rows": n}


PEERS = {
    "peer_parse": best_of(peer_parse),
    "peer_csv_diff": best_of(peer_csv_diff),
    "peer_pandas": best_of(peer_pandas),
    "peer_pg_copy": best_of(peer_pg_copy),
}
