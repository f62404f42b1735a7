"""Benchmark: the app's upload, diff, approval, download, history and pages at scale, each step
both ways, next to its peers.

    .venv/bin/python bench/run.py --rows 1000000            # one size, SQLite and PostgreSQL
    .venv/bin/python bench/run.py --sizes 10000,100000 --db sqlite --via http

Every app step goes through the real code path twice, on a fresh database per series (an SQLite
file in a temporary directory; a new PostgreSQL database, dropped at the end):

- **in-process**: `create_app` and Flask's test client (the upload form, the approve button, the
  download link, the pages, the JSON API), no network;
- **HTTP**: `gunicorn -w 2 app:app` (with gunicorn.conf.py) on 127.0.0.1 and `requests` as the
  client, streaming the upload body from disk: the path every browser and script takes, so the
  one users see. Its peak RSS is that of gunicorn's busiest worker.

The peers run on the same files in the same run: Python's `csv.reader` (the parse floor),
csv-diff, a pandas keyed diff, and PostgreSQL's own COPY of the file into a table with a primary
key. Each measured step runs in a fresh subprocess (and, over HTTP, a fresh gunicorn); its peak
RSS is `ru_maxrss` (os.wait4) in process, the workers' VmHWM over HTTP. Data comes from
bench/generate.py (generated on first use into bench/data/). Results: one table on stdout, and
bench/out/results-N.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CATALOG = ROOT / "examples" / "catalog.schema.json"  # the catalog alone: the table the figures are about
OUT = HERE / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
from client import PAGE_REPEAT, Probe, Web, timed_get  # noqa: E402
from peers import PEERS  # noqa: E402
from serve import DEFAULT_PG, fresh_database, gunicorn, machine  # noqa: E402

MB = 1_000_000
MiB = 1024 * 1024
REPEAT = 1  # runs of each repeatable step (peers, uploads, downloads); the fastest counts
VIAS = {"inproc": "in-process", "http": "HTTP"}
WORKERS = 2
SECRET = "bench-secret"

# Targets: issue 3 (the core), issue 13 (over HTTP), issues 8 and 9 (merge and history).
UPLOAD_VS_PARSE = 2.0
UPLOAD_VS_PEER = 0.5
HTTP_VS_INPROC = 1.15
UPLOAD_RSS = 1024 * MiB
APPROVE_PER_S = 40_000
LOAD_VS_COPY = 4.0
DOWNLOAD_MB_S = 40
PAGE_S = 0.5
KEY_SEARCH_S = 0.1
SQLITE_VS_PG = 2.0
STALE_VS_CURRENT = 1.3
OLD_EXPORT_VS_NOW = 2.0
DIFF_PAGE_S = 0.5
RECORD_S = 0.2
FLAT_RSS = 64 * MiB  # "memory flat": the download may use at most this much above the idle app
AT_SCALE = 1_000_000  # the throughput and ratio targets are for this size; page targets hold at every size


# --- the child side: one measured step per process -------------------------------------------


def _timed_get(web: Web, url: str, repeat: int = PAGE_REPEAT, expect: str | None = None, api: bool = False) -> dict:
    return timed_get(lambda u: web.get(u, api=api), url, repeat, expect)


def _fastest(run, repeat: int) -> tuple[float, list[float], object]:
    """Run `run()` (→ (seconds, result)) `repeat` times: (fastest seconds, all seconds, last result)."""
    times, result = [], None
    for _ in range(repeat):
        seconds, result = run()
        times.append(seconds)
    return min(times), times, result


def make_app(url: str):
    """The app on the benchmark database, as gunicorn makes it from the environment (CSRF off in process)."""
    os.environ.setdefault("SECRET_KEY", SECRET)
    import config
    from app import create_app

    url = config.database_url(url, Path("."))
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "ADMIN_USERS": ["boss"],
            "WTF_CSRF_ENABLED": False,
            "PAGE_SIZE": 50,
            "SCHEMA_PATH": CATALOG,
        }
    )


def _sign_up(app, state: dict) -> None:
    """alice and boss with known passwords, and an API token each kept in `state` (the first step)."""
    import accounts
    from models import db

    with app.app_context():
        for name in ("alice", "boss"):
            if accounts.find_user(name) is None:
                accounts.create_user(name, f"{name}-password")
            else:
                accounts.set_password(name, f"{name}-password")
            state[f"token_{name}"] = accounts.create_token(name)
        db.session.commit()


def child(step: str, url: str, base: str | None, rows: int, state_path: Path) -> dict:
    """Run one step in process (`base` None) or against gunicorn at `base`; return what it measured."""
    manifest = json.loads((generate.DATA / f"manifest-{rows}.json").read_text())
    base_csv, edited = generate.DATA / f"base-{rows}.csv", generate.DATA / f"edited-{rows}.csv"
    if step.startswith("peer_"):
        return PEERS[step](base_csv, edited, url, REPEAT)
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    app = make_app(url)
    if step == "idle":
        _sign_up(app, state)
    target = base or app

    def web(user: str) -> Web:
        return Web(target, user, state.get(f"token_{user}"))

    out: dict = {}
    if step == "idle":
        out["seconds"] = _timed_get(web("alice"), "/")["seconds"]
    elif step == "load_upload":
        alice = web("alice")
        change_id, out["seconds"] = alice.upload(base_csv)
        counts = alice.counts(change_id)
        if counts["added"] != rows:
            raise SystemExit(f"initial load staged {counts}, expected {rows} additions")
        state["load_id"] = change_id
    elif step == "load_approve":
        probe = Probe(web("alice"))
        probe.start()
        out["seconds"] = web("boss").approve(state["load_id"])
        out["probe"] = probe.stop()
    elif step in ("upload", "upload_raw"):
        alice = web("alice")
        want = {k: manifest[k] for k in ("added", "modified", "deleted")}

        def once():
            if step == "upload":
                change_id, seconds = alice.upload(edited)
            else:
                change_id, seconds = alice.upload_raw(edited, filename=edited.name, comment="benchmark")
            cpus.append(alice.last_cpu)
            counts = alice.counts(change_id)
            got = {k: counts[k] for k in want}
            if got != want:
                raise SystemExit(f"the edited upload staged {got}, expected {want}")
            return seconds, change_id

        runs, cpus = [], []
        for attempt in range(REPEAT):  # the fastest of REPEAT uploads; all but the last of `upload` are withdrawn
            seconds, change_id = once()
            runs.append(seconds)
            if step == "upload_raw" or attempt < REPEAT - 1:
                alice.withdraw(change_id)
        out["seconds"], out["times"], out["cpu"] = min(runs), runs, min(cpus)
        out["changes"] = sum(want.values())
        if step == "upload":
            state["edit_id"] = change_id
    elif step == "approve":
        # Worst case: another request was approved after this one was uploaded, so approval
        # merges the staged rows again with the table first (changes._merge_again).
        boss = web("boss")
        other_id, _ = web("alice").upload(_one_row(rows, "BENCH-1"), mode="partial")
        boss.approve(other_id)
        probe = Probe(web("alice"))
        probe.start()
        out["seconds"] = boss.approve(state["edit_id"])
        out["probe"] = probe.stop()
        counts = boss.counts(state["edit_id"])
        out["changes"] = counts["added"] + counts["modified"] + counts["deleted"]
        state["edited_version"] = json.loads(boss.get("/api/v1/versions?limit=1", api=True).content)["items"][0][
            "version"
        ]
    elif step == "download":
        alice = web("alice")

        def once():
            t0 = time.perf_counter()
            status, size, lines = alice.stream("/download")
            seconds = time.perf_counter() - t0
            expected = manifest["edited_rows"] + 1  # and the row of the approve step's other request
            if status != 200 or lines - 1 != expected:
                raise SystemExit(f"download: HTTP {status}, {lines - 1} rows, expected {expected}")
            return seconds, size

        out["seconds"], out["times"], out["bytes"] = _fastest(once, REPEAT)
    elif step == "history":
        out |= _history(web("alice"), state, rows)
    elif step == "stale":
        out |= _stale(web("alice"), web("boss"), rows)
    elif step == "pages":
        out["pages"] = _pages(web("alice"), manifest, state)
    else:
        raise SystemExit(f"unknown step {step}")
    state_path.write_text(json.dumps(state))
    return out


def _one_row(rows: int, key: str) -> Path:
    path = generate.DATA / f"one-row-{key.lower()}-{rows}.csv"
    path.write_text(",".join(generate.HEADER) + f"\r\n{key},Benchmark row,,b@example.com,,,,,,,\r\n")
    return path


def _history(alice: Web, state: dict, rows: int) -> dict:
    """Issue 9 on the table after the big approval (version N): the export of N-1 next to the
    current one, the diff N-1 → N, blame and history of a changed record, and a revert of the
    big approval (staged, then withdrawn)."""
    version = state["edited_version"]
    out: dict = {}

    def export(url):
        def once():
            t0 = time.perf_counter()
            status, size, _ = alice.stream(url, api=True)
            if status != 200:
                raise SystemExit(f"GET {url}: HTTP {status}")
            return time.perf_counter() - t0, size

        return _fastest(once, REPEAT)

    out["export_now"], out["export_now_times"], out["export_bytes"] = export("/api/v1/export.csv")
    out["export_old"], out["export_old_times"], _ = export(f"/api/v1/export.csv?version={version - 1}")
    diff_url = f"/api/v1/diff?from={version - 1}&to={version}&limit=50"
    out["diff"] = _timed_get(alice, diff_url, api=True, expect='"modified"')
    detail = alice.get(f"/api/v1/changes/{state['edit_id']}?limit=1", api=True).json()
    key = detail["modified"][0]["key"]
    out["blame"] = _timed_get(alice, f"/api/v1/records/{key}/blame", api=True, expect=key)
    out["record_history"] = _timed_get(alice, f"/api/v1/records/{key}/history", api=True, expect=key)
    out["key"] = key

    def revert():
        t0 = time.perf_counter()
        r = alice.post(f"/api/v1/changes/{state['edit_id']}/revert", api=True)
        seconds = time.perf_counter() - t0
        if r.status != 201:
            raise SystemExit(f"revert: {r.status} {r.content[:500]!r}")
        body = r.json()
        alice.post(f"/api/v1/changes/{body['id']}/withdraw", api=True)
        return seconds, body["summary"]

    out["revert"], out["revert_times"], summary = _fastest(revert, REPEAT)
    out["revert_changes"] = summary["added"] + summary["modified"] + summary["deleted"]
    return out


def _stale(alice: Web, boss: Web, rows: int) -> dict:
    """Issue 8: the same edits uploaded on top of version 1 (3 versions and ~20,000 changed rows
    behind: merged three ways) and on top of the table now (compared two ways)."""
    other_id, _ = alice.upload(_one_row(rows, "BENCH-2"), mode="partial")
    boss.approve(other_id)
    versions = alice.get("/api/v1/versions?limit=100", api=True).json()["items"]
    now = versions[0]["version"]
    behind = [v for v in versions if v["version"] > 1]
    edits = generate.stale_edits(rows)
    stale = generate.DATA / f"stale-{rows}.csv"
    if not stale.exists():
        generate.apply_edits(generate.DATA / f"base-{rows}.csv", stale, edits)
    downloaded = generate.DATA / f"table-now-{rows}.csv"
    with downloaded.open("wb") as f:
        if alice.http:
            with alice.session.get(alice.base + "/download", stream=True, timeout=600) as r:
                for chunk in r.iter_content(1 << 20):
                    f.write(chunk)
        else:
            r = alice.client.get("/download", buffered=False)
            for chunk in r.response:
                f.write(chunk)
            r.close()
    current = generate.DATA / f"current-{rows}.csv"
    generate.apply_edits(downloaded, current, edits)
    downloaded.unlink()
    out: dict = {
        "base": 1,
        "now": now,
        "changed_since": sum(sum(v["summary"][k] for k in ("added", "modified", "deleted")) for v in behind),
    }
    for name, path, base in (("current", current, now), ("stale", stale, 1)):

        def once(path=path, base=base):
            change_id, seconds = alice.upload(path, base_version=str(base))
            counts = alice.counts(change_id)
            alice.withdraw(change_id)
            return seconds, counts

        out[name], out[f"{name}_times"], out[f"{name}_counts"] = _fastest(once, REPEAT)
    current.unlink()
    return out


def _pages(web: Web, manifest: dict, state: dict) -> dict:
    rows = manifest["rows"]
    deep = max(rows // 50 // 2, 1)
    key = manifest["sample_key"]
    pages = {
        "review page of the initial-load request": (f"/changes/{state['load_id']}?show=added", "DS-0000001"),
        "review page, deep page": (f"/changes/{state['load_id']}?show=added&page={deep}", None),
        "home page": ("/", "DS-0000001"),
        f"home page, deep page ({deep:,})": (f"/?page={deep}", None),
        "search by key": (f"/?q={key}", key),
        "search by key, lower case": (f"/?q={key.lower()}", key),
        "search by key prefix": (f"/?q={key[:-2]}", key[:-2]),
        f"search text, rare ({manifest['rare_word']})": (f"/?q={manifest['rare_word']}", None),
        f"search text, common ({manifest['common_word']})": (f"/?q={manifest['common_word']}", None),
        "search text, no match": (f"/?q={manifest['no_match']}", "No row matches"),
        "versions page": ("/versions", None),
        "audit page": ("/audit", None),
        "audit page, one key": (f"/audit?key={key}", None),
        "record history page": (f"/records/{key}", key),
    }
    return {name: _timed_get(web, url, expect=expect) for name, (url, expect) in pages.items()}


# --- the parent side: run the steps, print the table -----------------------------------------


@dataclass
class Result:
    step: str
    db: str
    rows: int
    seconds: dict[str, float | None] = field(default_factory=dict)  # via → seconds
    rate: float | None = None  # rows (or changes) per second, over HTTP (else in process)
    mb_s: float | None = None
    rss: dict[str, int | None] = field(default_factory=dict)  # via → bytes
    versus: list[str] = field(default_factory=list)
    targets: list[tuple[str, bool]] = field(default_factory=list)
    note: str = ""
    amount: float | None = None  # rows, changes or bytes behind `rate` / `mb_s`
    megabytes: float | None = None

    @property
    def user_seconds(self) -> float | None:
        """The time a user sees: over HTTP when measured, else in process."""
        return self.seconds.get("http", self.seconds.get("inproc"))


def run_step(
    step: str, url: str, rows: int, state: Path, via: str = "inproc", profile: bool = False
) -> tuple[dict, int]:
    """Run one step in a fresh interpreter (over HTTP: against a fresh gunicorn); (its result, peak RSS in bytes)."""
    OUT.mkdir(exist_ok=True)
    log = OUT / "steps.log"
    with log.open("a") as err:
        err.write(f"\n== {step} {via} {rows} {url.split('@')[-1]}\n")
    server_env = {"SECRET_KEY": SECRET, "SCHEMA_PATH": str(CATALOG)}
    with gunicorn(url, log, WORKERS, server_env) if via == "http" else contextlib.nullcontext() as server:
        base, workers = (server.base, server.workers()) if server else (None, [])
        cmd = [sys.executable]
        if profile and via == "inproc":
            cmd += ["-m", "cProfile", "-o", str(OUT / f"profile-{step}-{rows}.prof")]
        cmd += [str(Path(__file__)), "--child", step, "--url", url, "--rows", str(rows), "--state", str(state)]
        cmd += ["--repeat", str(REPEAT)] + (["--base", base] if base else [])
        env = os.environ | {"BENCH_WORKERS": ",".join(map(str, workers))}
        with log.open("a") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env)
            output = proc.stdout.read()
            proc.stdout.close()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        rss = server.peak_rss() if server else usage.ru_maxrss * 1024
    if proc.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit(f"step {step} ({via}) failed (exit {proc.returncode}); end of {log}:\n" + "\n".join(tail))
    result = json.loads(output.decode().strip().splitlines()[-1])
    return result, rss


def run_peers(rows: int, manifest: dict, pg_url: str, skip: set[str]) -> dict[str, Result]:
    both_bytes = manifest["base_bytes"] + manifest["edited_bytes"]
    both_rows = rows + manifest["edited_rows"]
    names = {
        "peer_parse": "peer: csv.reader parse of base + edited",
        "peer_csv_diff": "peer: csv-diff keyed diff",
        "peer_pandas": "peer: pandas keyed diff",
        "peer_pg_copy": "peer: PostgreSQL COPY into a table with a primary key",
    }
    results = {}
    for step, label in names.items():
        if step in skip:
            continue
        with fresh_database("postgres", pg_url) if step == "peer_pg_copy" else contextlib.nullcontext("") as url:
            data, rss = run_step(step, url, rows, Path(os.devnull))
        s = data["seconds"]
        if step == "peer_pg_copy":
            res = Result(
                label, "postgres", rows, {"inproc": s}, rows / s, manifest["base_bytes"] / MB / s, {"inproc": rss}
            )
        else:
            res = Result(label, "-", rows, {"inproc": s}, both_rows / s, both_bytes / MB / s, {"inproc": rss})
        res.note = _runs(data)
        if "counts" in data:
            res.note = ", ".join(f"{k} {v:,}" for k, v in data["counts"].items()) + "; " + res.note
        results[step] = res
        print(_line(res), flush=True)
    return results


APP_STEPS = (
    "idle",
    "load_upload",
    "load_approve",
    "upload",
    "upload_raw",
    "approve",
    "download",
    "history",
    "stale",
    "pages",
)


def run_kind(kind: str, vias: tuple[str, ...], rows: int, profile: set[str], pg_url: str, steps: tuple[str, ...]):
    """Every app step on a fresh database per way (in process, HTTP), the ways taking turns step by
    step so that both meet the same moment of a shared machine: {via: {step: (result, peak RSS)}}."""
    out: dict[str, dict] = {via: {} for via in vias}
    with contextlib.ExitStack() as stack:
        urls = {via: stack.enter_context(fresh_database(kind, pg_url)) for via in vias}
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for step in APP_STEPS:
            if step not in steps:
                continue
            for via in vias:
                out[via][step] = run_step(step, urls[via], rows, tmp / f"state-{via}.json", via, step in profile)
                seconds = out[via][step][0].get("seconds")
                shown = "" if seconds is None else f"{seconds:.3f} s"
                print(f"  {kind} {VIAS[via]:<10} {step:<12} {shown}", flush=True)
    return out


class _Collect:
    """The results of one database, both ways, with the targets checked on what users see (HTTP):
    one method per group of steps."""

    def __init__(self, kind: str, rows: int, manifest: dict, peers: dict[str, Result], runs: dict[str, dict]):
        self.kind, self.rows, self.manifest, self.peers, self.runs = kind, rows, manifest, peers, runs
        self.vias = list(runs)
        self.results: dict[str, Result] = {}

    def result(
        self, key: str, label: str, step: str, pick=lambda d: d["seconds"], amount=None, megabytes=None
    ) -> Result:
        r = Result(label, self.kind, self.rows, amount=amount, megabytes=megabytes)
        for via in self.vias:
            if step in self.runs[via]:
                data, rss = self.runs[via][step]
                r.seconds[via] = pick(data)
                r.rss[via] = rss
        s = r.user_seconds
        if s:
            r.rate = amount / s if amount else None
            r.mb_s = megabytes / s if megabytes else None
        if "inproc" in r.seconds and "http" in r.seconds and r.seconds["inproc"]:
            r.versus.append(f"HTTP {r.seconds['http'] / r.seconds['inproc']:.2f}× in-process")
        self.results[key] = r
        return r

    def user_via(self, step: str) -> str:
        return "http" if step in self.runs.get("http", {}) else "inproc"

    def data(self, step: str) -> dict:
        return self.runs[self.user_via(step)][step][0]

    def initial_load(self) -> None:
        """The initial load: upload, approval, both, and the home page meanwhile."""
        self.result("idle", "idle app, signed in (baseline RSS)", "idle", pick=lambda d: None)
        up = self.result("load_upload", "initial load: upload (all additions staged)", "load_upload", amount=self.rows,
                    megabytes=self.manifest["base_bytes"] / MB)  # fmt: skip
        ap = self.result("load_approve", "initial load: approve", "load_approve", amount=self.rows)
        if up.seconds and ap.seconds:
            load = Result(
                "initial load: upload + approve",
                self.kind,
                self.rows,
                amount=self.rows,
                megabytes=self.manifest["base_bytes"] / MB,
            )
            for via in up.seconds:
                if via in ap.seconds:
                    load.seconds[via] = up.seconds[via] + ap.seconds[via]
                    load.rss[via] = max(up.rss[via], ap.rss[via])
            load.rate, load.mb_s = self.rows / load.user_seconds, self.manifest["base_bytes"] / MB / load.user_seconds
            if "peer_pg_copy" in self.peers:
                ratio = load.user_seconds / self.peers["peer_pg_copy"].user_seconds
                load.versus.append(f"{ratio:.1f}× PG COPY")
                load.targets.append((f"≤{LOAD_VS_COPY:g}× PG COPY", ratio <= LOAD_VS_COPY))
            self.results["load"] = load
            self.results["probe_load"] = _probe_result(
                "home page while the initial load is approved (max)",
                self.kind,
                self.rows,
                self.data("load_approve"),
                self.user_via("load_approve"),
            )

    def uploads(self) -> None:
        """The edited file through the upload form and as the API's body, next to the peers."""
        for step, label in (
            ("upload", "upload edited file, upload form: parse + validate + diff + stage"),
            ("upload_raw", "upload edited file, API with the file as the body"),
        ):
            if not any(step in self.runs[v] for v in self.vias):
                continue
            upload = self.result(
                step, label, step, amount=self.manifest["edited_rows"], megabytes=self.manifest["edited_bytes"] / MB
            )
            d = self.data(step)
            upload.note = f"{d['changes']:,} changes staged; {_runs(d)}"
            cpu = {via: self.runs[via][step][0]["cpu"] for via in self.vias if step in self.runs[via]}
            if cpu:
                upload.note += "; app CPU s: " + ", ".join(f"{VIAS[v]} {c:.2f}" for v, c in cpu.items())
            if "inproc" in cpu and "http" in cpu:
                upload.versus.append(f"app CPU HTTP {cpu['http'] / cpu['inproc']:.2f}× in-process")
            for peer, peer_label, limit in (
                ("peer_parse", "csv.reader parse", UPLOAD_VS_PARSE),
                ("peer_csv_diff", "csv-diff", UPLOAD_VS_PEER),
                ("peer_pandas", "pandas", None),
            ):
                if peer in self.peers:
                    ratio = upload.user_seconds / self.peers[peer].user_seconds
                    upload.versus.append(f"{ratio:.2f}× {peer_label}")
                    if limit is not None:
                        upload.targets.append((f"≤{limit:g}× {peer_label}", ratio <= limit))
            if "inproc" in upload.seconds and "http" in upload.seconds:
                upload.targets.append(
                    (
                        f"HTTP ≤{HTTP_VS_INPROC:g}× in-process",
                        upload.seconds["http"] <= HTTP_VS_INPROC * upload.seconds["inproc"],
                    )
                )
            upload.targets.append(("RSS < 1 GiB", max(v for v in upload.rss.values() if v) < UPLOAD_RSS))

    def approve(self) -> None:
        """The approval of the edit, and the home page meanwhile."""
        if any("approve" in self.runs[v] for v in self.vias):
            d = self.data("approve")
            approve = self.result(
                "approve", f"approve {d['changes']:,} changes, after another approval", "approve", amount=d["changes"]
            )
            approve.note = "peak RSS: the one-row upload approved first reads the whole table"
            if self.kind == "postgres":
                approve.targets.append((f"≥{APPROVE_PER_S:,} changes/s", approve.rate >= APPROVE_PER_S))
            self.results["probe_approve"] = _probe_result(
                "home page while the edit is approved (max)", self.kind, self.rows, d, self.user_via("approve")
            )

    def download(self) -> None:
        """The streamed CSV download and its memory."""
        if any("download" in self.runs[v] for v in self.vias):
            d = self.data("download")
            idle = self.results["idle"].rss
            download = self.result("download", "download CSV (whole table, streamed)", "download", amount=self.manifest["edited_rows"],
                              megabytes=d["bytes"] / MB)  # fmt: skip
            over = {via: download.rss[via] - idle[via] for via in download.rss if idle.get(via)}
            download.note = (
                f"{d['bytes'] / MB:.0f} MB; RSS over idle: "
                + ", ".join(f"{VIAS[v]} {o / MiB:+.0f} MiB" for v, o in over.items())
                + f"; {_runs(d)}"
            )
            download.targets.append((f"≥{DOWNLOAD_MB_S} MB/s", download.mb_s >= DOWNLOAD_MB_S))
            download.targets.append(("memory flat", all(o <= FLAT_RSS for o in over.values())))

    def history(self) -> None:
        """Old versions, the version diff, blame, a record's history and a revert."""
        if any("history" in self.runs[v] for v in self.vias):
            d = self.data("history")
            now = self.result("export_now", "export CSV, current version (API)", "history", pick=lambda d: d["export_now"],
                         amount=self.manifest["edited_rows"], megabytes=d["export_bytes"] / MB)  # fmt: skip
            now.note = _runs({"times": d["export_now_times"]})
            old = self.result("export_old", "export CSV, the version before the edit (API, ?version=N-1)", "history",
                         pick=lambda d: d["export_old"], amount=self.manifest["edited_rows"], megabytes=d["export_bytes"] / MB)  # fmt: skip
            ratio = old.user_seconds / now.user_seconds
            old.versus.append(f"{ratio:.2f}× the current export")
            old.targets.append((f"≤{OLD_EXPORT_VS_NOW:g}× current export", ratio <= OLD_EXPORT_VS_NOW))
            old.note = _runs({"times": d["export_old_times"]})
            for key, label, limit in (
                ("diff", "diff of the edit's version with the one before, first page (API)", DIFF_PAGE_S),
                ("blame", "blame of a record the edit changed (API)", RECORD_S),
                ("record_history", "history of a record the edit changed (API)", RECORD_S),
            ):
                r = self.result(key, label, "history", pick=lambda d, key=key: d[key]["seconds"])
                r.note = f"median of {PAGE_REPEAT}; max {d[key]['max']:.3f} s"
                r.targets.append((f"<{limit} s", r.user_seconds < limit))
            revert = self.result("revert", f"revert of the edit: {d['revert_changes']:,} changes staged (API)", "history",
                            pick=lambda d: d["revert"], amount=d["revert_changes"])  # fmt: skip
            revert.note = _runs({"times": d["revert_times"]})
            if "upload" in self.results:
                ratio = revert.user_seconds / self.results["upload"].user_seconds
                revert.versus.append(f"{ratio:.2f}× the upload of the edit")
                revert.targets.append(("≤ the upload's time", ratio <= 1.0))

    def stale(self) -> None:
        """The same edits on an old version (a three-way merge) and on the table now."""
        if any("stale" in self.runs[v] for v in self.vias):
            d = self.data("stale")
            current = self.result("stale_current", f"upload of 1% edits on the current version ({d['current_counts']['modified']:,} modified)",
                             "stale", pick=lambda d: d["current"], amount=self.manifest["edited_rows"])  # fmt: skip
            current.note = _runs({"times": d["current_times"]})
            stale = self.result("stale", f"the same edits on version 1, {d['now'] - 1} versions ({d['changed_since']:,} changed rows) behind: three-way merge",
                           "stale", pick=lambda d: d["stale"], amount=self.manifest["edited_rows"])  # fmt: skip
            counts = d["stale_counts"]
            stale.note = f"{counts['modified']:,} modified, {counts['conflicts']:,} conflicts; " + _runs(
                {"times": d["stale_times"]}
            )
            ratio = stale.user_seconds / current.user_seconds
            stale.versus.append(f"{ratio:.2f}× on the current version")
            stale.targets.append((f"≤{STALE_VS_CURRENT:g}× current base", ratio <= STALE_VS_CURRENT))

    def pages(self) -> None:
        """Every page, against its time limit."""
        if any("pages" in self.runs[v] for v in self.vias):
            names = self.data("pages")["pages"]
            for name in names:
                r = self.result(
                    f"page:{name}", f"page: {name}", "pages", pick=lambda d, name=name: d["pages"][name]["seconds"]
                )
                r.note = f"median of {PAGE_REPEAT}; max {self.data('pages')['pages'][name]['max']:.3f} s"
                limit = KEY_SEARCH_S if name.startswith("search by key") else PAGE_S
                r.targets.append((f"<{limit} s", r.user_seconds < limit))


def collect(kind: str, rows: int, manifest: dict, peers: dict[str, Result], runs: dict[str, dict]) -> dict[str, Result]:
    """The results of one database, both ways, with the targets checked on what users see (HTTP)."""
    c = _Collect(kind, rows, manifest, peers, runs)
    for section in (c.initial_load, c.uploads, c.approve, c.download, c.history, c.stale, c.pages):
        section()
    return c.results


def _runs(data: dict) -> str:
    times = data.get("times", [data.get("seconds")])
    return f"fastest of {len(times)}: " + ", ".join(f"{t:.2f}" for t in times) if len(times) > 1 else "1 run"


def _probe_result(label: str, kind: str, rows: int, data: dict, via: str) -> Result:
    probe = data["probe"]
    r = Result(label, kind, rows, {via: probe["max"]})
    r.note = f"{probe['requests']} requests, {probe['errors']} errors"
    if probe["max"] is not None:
        r.targets.append((f"<{PAGE_S} s", probe["max"] < PAGE_S and not probe["errors"]))
    return r


def compare_databases(sqlite: dict[str, Result], postgres: dict[str, Result]) -> None:
    """SQLite's figures next to PostgreSQL's: within SQLITE_VS_PG× (lower time is better)."""
    for key, s in sqlite.items():
        p = postgres.get(key)
        if p is None or not s.user_seconds or not p.user_seconds or key.startswith("probe"):
            continue
        ratio = s.user_seconds / p.user_seconds
        s.versus.append(f"{ratio:.2f}× PG")
        if key.startswith("page:") or key in ("diff", "blame", "record_history"):
            continue  # ms-level ratios are noise: the absolute targets are the ones that matter
        s.targets.append((f"≤{SQLITE_VS_PG:g}× PG", ratio <= SQLITE_VS_PG))


# --- output ----------------------------------------------------------------------------------

COLUMNS = (
    "step",
    "db",
    "rows",
    "in-process s",
    "HTTP s",
    "rows/s",
    "MB/s",
    "peak RSS",
    "vs peers",
    "target met (HTTP)",
    "note",
)


def _cells(r: Result) -> list[str]:
    def secs(via: str) -> str:
        s = r.seconds.get(via)
        return f"{s:.3f}" if s is not None else ""

    rss = " / ".join(f"{r.rss[v] / MiB:,.0f}" for v in ("inproc", "http") if r.rss.get(v))
    return [
        r.step,
        r.db,
        f"{r.rows:,}",
        secs("inproc"),
        secs("http"),
        f"{r.rate:,.0f}" if r.rate else "",
        f"{r.mb_s:.1f}" if r.mb_s else "",
        f"{rss} MiB" if rss else "",
        ", ".join(r.versus),
        ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in r.targets),
        r.note,
    ]


def _line(r: Result) -> str:
    c = _cells(r)
    return f"{c[0][:60]:<60} {c[1]:<8} {c[3]:>9} {c[4]:>9} s {c[5]:>10}/s {c[6]:>7} MB/s {c[7]:>14}  {c[8]}  {c[9]}"


def markdown(results: list[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="one size (e.g. 1000000)")
    parser.add_argument("--sizes", default="10000", help="comma-separated sizes (default 10000)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both", "none"), default="both", help="none: peers only")
    parser.add_argument(
        "--via", choices=("inproc", "http", "both"), default="both", help="in process, over HTTP, or both"
    )
    parser.add_argument("--steps", default=",".join(APP_STEPS), help="comma-separated app steps (default: all)")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server to create the fresh databases on")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers (quick runs while optimising)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each repeatable step; the fastest counts")
    parser.add_argument("--profile", default="", help="comma-separated steps to run under cProfile (bench/out/)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    global REPEAT
    REPEAT = args.repeat
    if args.child:
        print(json.dumps(child(args.child, args.url, args.base, args.rows, args.state)))
        return

    sizes = [args.rows] if args.rows else [int(s) for s in args.sizes.split(",")]
    kinds = {"both": ("sqlite", "postgres"), "none": ()}.get(args.db, (args.db,))
    vias = ("inproc", "http") if args.via == "both" else (args.via,)
    steps = tuple(s for s in args.steps.split(",") if s)
    profile = set(filter(None, args.profile.split(",")))
    info = machine(args.pg_url)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    every: list[Result] = []
    for rows in sizes:
        manifest = generate.ensure(rows)
        print(f"\n== {rows:,} rows ({manifest['base_bytes'] / MB:.0f} MB)", flush=True)
        skip = set(PEERS) if args.no_peers else set()
        peers = run_peers(rows, manifest, args.pg_url, skip)
        by_kind = {}
        for kind in kinds:
            runs = run_kind(kind, vias, rows, profile, args.pg_url, steps)
            by_kind[kind] = collect(kind, rows, manifest, peers, runs)
            for r in by_kind[kind].values():
                print(_line(r), flush=True)
        if "sqlite" in by_kind and "postgres" in by_kind:
            compare_databases(by_kind["sqlite"], by_kind["postgres"])
        if rows < AT_SCALE:  # the throughput and ratio targets are stated for a million rows
            for results in by_kind.values():
                for key, r in results.items():
                    if not key.startswith(("page:", "probe")) and key not in ("diff", "blame", "record_history"):
                        r.targets = []
        size_results = list(peers.values())
        for key in dict.fromkeys(k for kind in kinds for k in by_kind[kind]):
            for kind in kinds:
                if key in by_kind[kind]:
                    size_results.append(by_kind[kind][key])
        every.extend(size_results)
        OUT.mkdir(exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        (OUT / f"results-{rows}.json").write_text(
            json.dumps({"when": stamp, "machine": info, "results": [asdict(r) for r in size_results]}, indent=1)
        )
        (OUT / f"results-{rows}.md").write_text(f"{stamp}\n\n{markdown(size_results)}\n")
    print("\n" + markdown(every))
    missed = [(r, name) for r in every for name, ok in r.targets if not ok]
    print(f"\n{len(missed)} target(s) not met" + "".join(f"\n- {r.step} ({r.db}): {name}" for r, name in missed))


if __name__ == "__main__":
    main()
