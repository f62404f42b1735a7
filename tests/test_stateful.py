"""A stateful, model-based test of version control (issue 26), on SQLite and PostgreSQL.

Hypothesis drives the app through the Flask test client as three users and an admin, on a package
of two tables with a foreign key (items.tag → tags.tag, tests/data/tagged.package.json): uploads
(full and partial; the base in the file name, in `base_version`, or none; a table alone or a zip of
both, made from a download of the table now or as of an older version), resolutions either way,
approvals in any order, rejections, withdrawals, reverts (of reverts too). A plain reference model
(`Model`: the tables as dicts of tuples, each request's staged rows and conflicts) predicts every
answer, and after every step the invariants are checked:

- the tables equal the model (no lost update) and no row points at a missing key;
- every pending request's counts, staged rows and conflicts equal the model's;
- `export.csv?version=N` equals the export made right after N; the version diff A → B applied to
  A gives B; blame names, per cell, the last approved request that changed it;
- the requests of a batch are approved together in one version, or none of them.

CI runs a fixed seed and a small budget (about half a minute per database). A longer run, e.g.
nightly: `STATEFUL_EXAMPLES=500 STATEFUL_STEPS=60 STATEFUL_RANDOM=1 pytest tests/test_stateful.py`
(STATEFUL_RANDOM=1: a new seed each run; hypothesis prints how to reproduce a failure). Every
failure it finds is kept as an explicit test in tests/test_invariants.py.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import Api, add_test_users, build_app, close_app, fresh_database
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import accounts

PACKAGE = Path(__file__).with_name("data") / "tagged.package.json"
NAMES = {"items": ("id", "a", "b", "tag"), "tags": ("tag", "label")}
KEYS = {"items": ["i1", "i2", "i3", "i4", "i5"], "tags": ["t1", "t2", "t3"]}
VALUES = ["", "x", "y", "z"]
TAGS = ["", "t1", "t2", "t3", "ghost"]  # "ghost" never exists
USERS = ("alice", "bob", "carol")
TABLES = ("items", "tags")

SETTINGS = settings(
    max_examples=int(os.environ.get("STATEFUL_EXAMPLES", "8")),
    stateful_step_count=int(os.environ.get("STATEFUL_STEPS", "30")),
    derandomize=os.environ.get("STATEFUL_RANDOM") != "1",
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=list(HealthCheck),
)

OUTCOMES: Counter[str] = Counter()  # what the runs did, printed with -s (STATEFUL_VERBOSE=1)


def event(what: str) -> None:
    OUTCOMES[what] += 1


Row = tuple[str, ...]
Table = dict[str, Row]


# --- the reference model --------------------------------------------------------------------


def merge_row(base: Row | None, theirs: Row | None, yours: Row | None, names: tuple[str, ...]):
    """The three-way merge of one row, written out plainly: (staged (action, before, after) or
    None, conflicts [(column or None, base, theirs, yours)])."""
    if yours in (theirs, base):
        return None, []
    if theirs == base:
        action = "add" if theirs is None else "delete" if yours is None else "modify"
        return (action, theirs, yours), []
    if base is None or theirs is None or yours is None:
        return None, [(None, base, theirs, yours)]
    merged, conflicts = [], []
    for name, b, t, y in zip(names, base, theirs, yours, strict=True):
        if y in (b, t):
            merged.append(t)
        elif t == b:
            merged.append(y)
        else:
            merged.append(t)
            conflicts.append((name, b, t, y))
    after = tuple(merged)
    return (None if after == theirs else ("modify", theirs, after)), conflicts


@dataclass
class Request:
    id: int
    table: str
    submitter: str
    staged: dict[str, tuple] = field(default_factory=dict)  # key → (action, before, after)
    conflicts: dict[tuple, tuple] = field(default_factory=dict)  # (key, column) → (base, theirs, yours)
    merged_version: int = 0
    status: str = "pending"
    applied_version: int | None = None
    batch: list[int] = field(default_factory=list)  # every member's id (itself alone: [id])


class Model:
    """The tables and requests as they should be."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {t: {} for t in TABLES}
        self.version = 0
        self.snapshots: dict[int, dict[str, Table]] = {0: {t: {} for t in TABLES}}
        self.requests: dict[int, Request] = {}
        self.blame: dict[tuple[str, str], dict[str, int]] = {}

    def merge_file(self, table: str, rows: Table, mode: str, base: int | None):
        """What an upload of `rows` stages: (staged, conflicts, unchanged rows of the file)."""
        now = self.tables[table]
        at_base = self.snapshots[base][table] if base is not None else now
        keys = set(rows) | (set(at_base) | set(now) if mode == "full" else set())
        staged, conflicts, unchanged = {}, {}, 0
        for key in sorted(keys):
            change, found = merge_row(at_base.get(key), now.get(key), rows.get(key), NAMES[table])
            if change:
                staged[key] = change
            for column, b, t, y in found:
                conflicts[(key, column)] = (b, t, y)
            if key in rows and not change and not found:
                unchanged += 1
        return staged, conflicts, unchanged

    def dangling_on_upload(self, parts: dict[str, dict]) -> bool:
        """Whether an added or changed tag of the items part is no key of tags after the upload."""
        if "items" not in parts:
            return False
        tags = set(self.tables["tags"])
        if "tags" in parts:
            for key, (action, _, _) in parts["tags"]["staged"].items():
                (tags.add if action == "add" else tags.discard if action == "delete" else (lambda k: None))(key)
        for action, before, after in parts["items"]["staged"].values():
            if action == "add" and after[3] and after[3] not in tags:
                return True
            if action == "modify" and after[3] != before[3] and after[3] and after[3] not in tags:
                return True
        return False

    def applied(self, members: list[Request]) -> dict[str, Table]:
        tables = {t: dict(rows) for t, rows in self.tables.items()}
        for m in members:
            for key, (action, _, after) in m.staged.items():
                if action == "delete":
                    del tables[m.table][key]
                else:
                    tables[m.table][key] = after
        return tables

    def remerge(self, m: Request) -> tuple[dict, dict]:
        """A request's staged rows merged again with its table now: (staged, conflicts)."""
        now, staged, conflicts = self.tables[m.table], {}, {}
        for key, (action, before, after) in m.staged.items():
            if now.get(key) == before:
                staged[key] = (action, before, after)
                continue
            change, found = merge_row(before, now.get(key), after, NAMES[m.table])
            if change:
                staged[key] = change
            for column, b, t, y in found:
                conflicts[(key, column)] = (b, t, y)
        return staged, conflicts


def dangling(tables: dict[str, Table]) -> list[str]:
    return sorted(k for k, r in tables["items"].items() if r[3] and r[3] not in tables["tags"])


# --- talking to the app ----------------------------------------------------------------------


def csv_text(table: str, rows: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NAMES[table])
    writer.writerows(rows[k] for k in sorted(rows))
    return out.getvalue()


def parse_export(data: bytes) -> Table:
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    next(reader)
    return {r[0]: tuple(r) for r in reader}


def as_row(values: dict | None, table: str) -> Row | None:
    if values is None:
        return None
    return tuple("" if values.get(n) is None else str(values[n]) for n in NAMES[table])


def cell(value) -> str:
    return "" if value is None else str(value)


class VersionControl(RuleBasedStateMachine):
    """The app and the model side by side; see the module's docstring."""

    kind = "sqlite"
    directory: Path = Path(".")
    pg_database: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.stack = contextlib.ExitStack()
        self.directory.mkdir(parents=True, exist_ok=True)
        url = self.stack.enter_context(fresh_database(self.kind, self.directory, self.pg_database))
        if self.kind == "sqlite":  # a new file for each example
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.directory / "test.db") + suffix).unlink(missing_ok=True)
        self.app = add_test_users(
            build_app(url, SCHEMA_PATH=PACKAGE, MASS_DELETE_PERCENT=100, MAX_PENDING_PER_USER=1000)
        )
        with self.app.app_context():
            accounts.create_user("carol", "carol-password")
        self.clients = {u: Api(self.app, u) for u in (*USERS, "boss")}
        self.boss = self.clients["boss"]
        self.model = Model()
        self.exports: dict[int, dict[str, bytes]] = {0: {t: self.export(t) for t in TABLES}}
        self.checks = 0

    def teardown(self) -> None:
        close_app(self.app)
        self.stack.close()

    def export(self, table: str, version: int | None = None) -> bytes:
        query = {} if version is None else {"version": version}
        r = self.boss.get(f"/api/v1/tables/{table}/export.csv", query_string=query)
        assert r.status_code == 200, r.text
        return r.data

    # --- uploads ---

    def edited(self, data, table: str, base: int | None, mode: str) -> Table:
        """The table downloaded as of `base` (None: now), as a user edits it: cells changed, rows dropped or
        added (`full`), or only the rows the user changes or adds (`partial`)."""
        start = parse_export(self.export(table, base))  # the user's download, now or as of `base`
        assert start == (self.model.snapshots[base][table] if base is not None else self.model.tables[table])
        out: Table = {}
        for key, row in sorted(start.items()):
            what = data.draw(st.sampled_from(["keep", "keep", "edit", "drop"]), label=f"{table} {key}")
            if what == "edit":
                row = self.changed_row(data, table, row)
            if what != "drop" and (mode == "full" or what == "edit"):
                out[key] = row
        for key in data.draw(st.lists(st.sampled_from(KEYS[table]), max_size=2, unique=True), label="added"):
            out[key] = self.changed_row(data, table, (key, *[""] * (len(NAMES[table]) - 1)))
        return out

    def changed_row(self, data, table: str, row: Row) -> Row:
        index = data.draw(st.integers(1, len(row) - 1), label="column")
        pool = TAGS if NAMES[table][index] == "tag" else VALUES
        return (*row[:index], data.draw(st.sampled_from(pool), label="value"), *row[index + 1 :])

    def base_choice(self, data) -> tuple[int | None, str]:
        how = data.draw(st.sampled_from(["filename", "field", "none"]), label="base in")
        base = data.draw(st.integers(0, self.model.version), label="base") if how != "none" else None
        return base, how

    def send(self, user: str, parts: dict[str, Table], mode: str, base: int | None, how: str, zipped: bool):
        suffix = f"-v{base}" if how == "filename" else ""
        if zipped:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as z:
                for table, rows in parts.items():
                    z.writestr(f"{table}.csv", csv_text(table, rows))
            data, filename, url_table = buffer.getvalue(), f"both{suffix}.zip", "items"
        else:
            ((table, rows),) = parts.items()
            data, filename, url_table = csv_text(table, rows).encode(), f"{table}{suffix}.csv", table
        form = {"file": (io.BytesIO(data), filename), "mode": mode}
        if how == "field":
            form["base_version"] = str(base)
        return self.clients[user].post(
            f"/api/v1/tables/{url_table}/changes", data=form, content_type="multipart/form-data"
        )

    def upload(self, data, zipped: bool) -> None:
        user = data.draw(st.sampled_from(USERS), label="user")
        mode = data.draw(st.sampled_from(["full", "partial"]), label="mode")
        base, how = self.base_choice(data)
        chosen = TABLES if zipped else (data.draw(st.sampled_from(TABLES), label="table"),)
        files = {t: self.edited(data, t, base, mode) for t in chosen}
        r = self.send(user, files, mode, base, how, zipped)
        parts = {}
        for table, rows in files.items():
            staged, conflicts, unchanged = self.model.merge_file(table, rows, mode, base)
            parts[table] = {"staged": staged, "conflicts": conflicts, "unchanged": unchanged, "rows": rows}
        changing = [t for t in chosen if parts[t]["staged"] or parts[t]["conflicts"]]
        event(
            f"upload: {r.status_code}{' zip' if zipped else ''}{' conflicts' if any(p['conflicts'] for p in parts.values()) else ''}"
        )
        if self.model.dangling_on_upload(parts):
            assert r.status_code == 422 and "is not a key of table" in r.text, r.text
            return
        if not changing:
            assert r.status_code == 200 and r.json["id"] is None, r.text
            return
        for t in changing:
            header_only = mode == "full" and not parts[t]["unchanged"]
            header_only = header_only and not any(a in ("add", "modify") for a, _, _ in parts[t]["staged"].values())
            if header_only and any(a == "delete" for a, _, _ in parts[t]["staged"].values()):
                assert r.status_code == 422 and "deletions" in r.json, r.text
                return
        assert r.status_code == 201, r.text
        ids = [m["id"] for m in r.json["requests"]] if "requests" in r.json else [r.json["id"]]
        tables_of = [m["table"] for m in r.json["requests"]] if "requests" in r.json else changing
        assert sorted(tables_of) == sorted(changing), (tables_of, changing)
        for change_id, table in zip(ids, tables_of, strict=True):
            self.model.requests[change_id] = Request(
                change_id,
                table,
                user,
                parts[table]["staged"],
                parts[table]["conflicts"],
                self.model.version,
                batch=ids,
            )

    @rule(data=st.data())
    def upload_one_table(self, data) -> None:
        self.upload(data, zipped=False)

    @rule(data=st.data())
    def upload_a_zip_of_both_tables(self, data) -> None:
        self.upload(data, zipped=True)

    # --- decisions ---

    def pending(self) -> list[Request]:
        return [r for r in self.model.requests.values() if r.status == "pending"]

    def members(self, request: Request) -> list[Request]:
        return [self.model.requests[i] for i in request.batch]

    @precondition(lambda self: any(r.conflicts for r in self.pending()))
    @rule(data=st.data())
    def resolve(self, data) -> None:
        open_ = [r for r in self.pending() if r.conflicts]
        if not open_:
            return
        request = data.draw(st.sampled_from(open_), label="request")
        key, column = data.draw(st.sampled_from(sorted(request.conflicts, key=str)), label="conflict")
        take = data.draw(st.sampled_from(["yours", "theirs"]), label="take")
        body = {"resolutions": [{"key": key, "column": column, "take": take}]}
        r = self.clients[request.submitter].post(f"/api/v1/changes/{request.id}/resolve", json=body)
        assert r.status_code == 200, r.text
        event(f"resolve: {'cell' if column else 'row'} {take}")
        self.settle(request, key, column, take)

    @precondition(lambda self: any(r.conflicts for r in self.pending()))
    @rule(data=st.data())
    def resolve_every_conflict_of_a_request(self, data) -> None:
        open_ = [r for r in self.pending() if r.conflicts]
        if not open_:
            return
        request = data.draw(st.sampled_from(open_), label="request")
        chosen = [(key, column, data.draw(st.sampled_from(["yours", "theirs"]))) for key, column in request.conflicts]
        body = {"resolutions": [{"key": k, "column": c, "take": t} for k, c, t in chosen]}
        r = self.clients[request.submitter].post(f"/api/v1/changes/{request.id}/resolve", json=body)
        assert r.status_code == 200 and r.json["conflicts"] == [], r.text
        event(f"resolve all: {len(chosen)}")
        for key, column, take in chosen:  # in the order the app settles them
            self.settle(request, key, column, take)

    def settle(self, request: Request, key: str, column: str | None, take: str) -> None:
        """The model of a resolution: stage from the row the conflict was computed against."""
        _, theirs, yours = request.conflicts.pop((key, column))
        names = NAMES[request.table]
        staged = request.staged.get(key)
        if take == "theirs" and staged is None:
            return
        if column is not None:
            before = staged[1] if staged else self.model.snapshots[request.merged_version][request.table][key]
            after = list(staged[2] if staged else before)
            if take == "yours":
                after[names.index(column)] = yours
            change = ("modify", before, tuple(after))
        elif take == "theirs":
            request.staged.pop(key, None)
            return
        elif yours is None:
            change = ("delete", theirs, None)
        elif theirs is None:
            change = ("add", None, yours)
        else:
            change = ("modify", theirs, yours)
        if change[2] in (change[1], self.model.tables[request.table].get(key)):
            request.staged.pop(key, None)
        else:
            request.staged[key] = change

    @initialize()
    def two_tags_and_two_items(self) -> None:
        """Version 1: tags t1, t2 and items i1 (→ t1), i2, one upload of both tables."""
        files = {
            "items": {"i1": ("i1", "x", "", "t1"), "i2": ("i2", "y", "z", "")},
            "tags": {"t1": ("t1", "x"), "t2": ("t2", "")},
        }
        r = self.send("alice", files, "full", None, "none", zipped=True)
        assert r.status_code == 201, r.text
        ids = [m["id"] for m in r.json["requests"]]
        for change_id, table in zip(ids, TABLES, strict=True):
            staged = {k: ("add", None, row) for k, row in files[table].items()}
            self.model.requests[change_id] = Request(change_id, table, "alice", staged, batch=ids)
        self.approve_request(self.model.requests[ids[0]])
        assert self.model.version == 1

    @precondition(lambda self: bool(self.pending()))
    @rule(data=st.data())
    def approve(self, data) -> None:
        if self.pending():
            self.approve_request(data.draw(st.sampled_from(self.pending()), label="request"))

    @precondition(lambda self: bool(self.pending()))
    @rule(data=st.data())
    def approve_the_oldest(self, data) -> None:
        if self.pending():
            self.approve_request(self.pending()[0])

    def approve_request(self, request: Request) -> None:
        r = self.boss.post(f"/api/v1/changes/{request.id}/approve")
        event(f"approve: {r.status_code} {r.json.get('error', '')[:30]}")
        model, members = self.model, self.members(request)
        if any(m.conflicts for m in members):
            assert r.status_code == 409 and "unresolved" in r.json["error"], r.text
            return
        if not any(m.staged for m in members):
            return self.approved_empty(r, members)
        merged = {}
        for m in members:
            if model.version + 1 == m.merged_version + 1:
                merged[m.id] = (m.staged, {})
                continue
            staged, conflicts = model.remerge(m)
            if conflicts:  # sent back with the new conflicts; the others stay as they were
                m.staged, m.conflicts, m.merged_version = staged, conflicts, model.version
                assert r.status_code == 409 and "later approval" in r.json["error"], r.text
                return
            merged[m.id] = (staged, {})
        if not any(s for s, _ in merged.values()):
            for m in members:
                m.staged, m.merged_version = merged[m.id][0], model.version
            return self.approved_empty(r, members)
        after = model.applied([Request(m.id, m.table, m.submitter, merged[m.id][0]) for m in members])
        if dangling(after):
            assert r.status_code == 409, (r.text, dangling(after))
            return
        assert r.status_code == 200, r.text
        model.version += 1
        assert r.json["version"] == model.version
        for m in members:
            m.staged, m.status, m.applied_version = merged[m.id][0], "approved", model.version
            for key, (action, before, row) in m.staged.items():
                blame = model.blame.setdefault((m.table, key), {})
                if action == "add":
                    blame.clear()
                    blame.update(dict.fromkeys(NAMES[m.table], m.id))
                elif action == "modify":
                    blame.update({n: m.id for n, b, a in zip(NAMES[m.table], before, row, strict=True) if a != b})
        model.tables = after
        model.snapshots[model.version] = {t: dict(rows) for t, rows in after.items()}
        self.exports[model.version] = {t: self.export(t) for t in TABLES}

    def approved_empty(self, r, members: list[Request]) -> None:
        """A batch that changes nothing is approved without a version."""
        assert r.status_code == 200 and r.json["version"] == self.model.version, r.text
        for m in members:
            m.status = "approved"

    @precondition(lambda self: bool(self.pending()))
    @rule(data=st.data(), reject=st.booleans())
    def reject_or_withdraw(self, data, reject: bool) -> None:
        if not self.pending():
            return
        request = data.draw(st.sampled_from(self.pending()), label="request")
        if reject:
            r = self.boss.post(f"/api/v1/changes/{request.id}/reject", json={"reason": "no"})
        else:
            r = self.clients[request.submitter].post(f"/api/v1/changes/{request.id}/withdraw")
        assert r.status_code == 200, r.text
        for m in self.members(request):
            m.status = "rejected" if reject else "withdrawn"

    @precondition(lambda self: any(r.applied_version is not None for r in self.model.requests.values()))
    @rule(data=st.data())
    def revert(self, data) -> None:
        done = [r for r in self.model.requests.values() if r.applied_version is not None]
        if not done:
            return
        undone = data.draw(st.sampled_from(done), label="request")
        user = data.draw(st.sampled_from(USERS), label="user")
        r = self.clients[user].post(f"/api/v1/changes/{undone.id}/revert")
        event(f"revert: {r.status_code}")
        inverses = []
        for m in self.members(undone):
            staged, conflicts = {}, {}
            for key, (_, before, after) in m.staged.items():
                change, found = merge_row(after, self.model.tables[m.table].get(key), before, NAMES[m.table])
                if change:
                    staged[key] = change
                for column, b, t, y in found:
                    conflicts[(key, column)] = (b, t, y)
            if staged or conflicts:
                inverses.append((m, staged, conflicts))
        if not inverses:
            assert r.status_code == 200 and r.json["id"] is None, r.text
            return
        assert r.status_code == 201, r.text
        ids = [m["id"] for m in r.json["requests"]] if "requests" in r.json else [r.json["id"]]
        for change_id, (m, staged, conflicts) in zip(ids, inverses, strict=True):
            self.model.requests[change_id] = Request(
                change_id, m.table, user, staged, conflicts, self.model.version, batch=ids
            )

    # --- invariants ---

    @invariant()
    def tables_equal_the_model_and_no_row_points_at_a_missing_key(self) -> None:
        now = {t: parse_export(self.export(t)) for t in TABLES}
        assert now == self.model.tables
        assert dangling(now) == []

    @invariant()
    def every_request_matches_the_model(self) -> None:
        for request in self.model.requests.values():
            if request.status != "pending" and request.id < max(self.model.requests) - 3:
                continue  # decided long ago: checked when it was decided
            detail = self.boss.get(f"/api/v1/changes/{request.id}").json
            assert detail["status"] == request.status, (request.id, detail["status"], request.status)
            if request.status != "pending":
                if request.applied_version is not None:
                    assert detail["applied_version"] == request.applied_version
                continue
            table = request.table
            staged = {}
            for row in detail["added"]:
                staged[row[NAMES[table][0]]] = ("add", None, as_row(row, table))
            for row in detail["deleted"]:
                staged[row[NAMES[table][0]]] = ("delete", as_row(row, table), None)
            for m in detail["modified"]:
                staged[m["key"]] = ("modify", as_row(m["before"], table), as_row(m["after"], table))
            assert staged == request.staged, (request.id, staged, request.staged)
            conflicts = {}
            for c in detail["conflicts"]:
                if c["column"] is None:
                    conflicts[(c["key"], None)] = tuple(as_row(c[w], table) for w in ("base", "theirs", "yours"))
                else:
                    conflicts[(c["key"], c["column"])] = tuple(cell(c[w]) for w in ("base", "theirs", "yours"))
            assert conflicts == request.conflicts, (request.id, conflicts, request.conflicts)
            counts = {k: detail["summary"][k] for k in ("added", "modified", "deleted", "conflicts")}
            actions = [a for a, _, _ in request.staged.values()]
            assert counts == {
                "added": actions.count("add"),
                "modified": actions.count("modify"),
                "deleted": actions.count("delete"),
                "conflicts": len(request.conflicts),
            }, request.id

    @invariant()
    def batches_are_all_or_nothing_in_one_version(self) -> None:
        for request in self.model.requests.values():
            versions = {m.applied_version for m in self.members(request)}
            statuses = {m.status for m in self.members(request)}
            assert len(versions) == 1 and len(statuses) == 1, request.batch

    @invariant()
    def the_past_is_as_it_was(self) -> None:
        """One version's export (round robin), one version diff and the blame of every key now."""
        self.checks += 1
        version = self.checks % (self.model.version + 1)
        for table in TABLES:
            assert self.export(table, version) == self.exports[version][table], (table, version)
            assert parse_export(self.exports[version][table]) == self.model.snapshots[version][table]
        low, high = (version, self.model.version) if self.checks % 2 else (self.model.version, version)
        for table in TABLES:
            r = self.boss.get(f"/api/v1/tables/{table}/diff", query_string={"from": low, "to": high})
            assert r.status_code == 200, r.text
            rows = dict(self.model.snapshots[low][table])
            for added in r.json["added"]:
                rows[added[NAMES[table][0]]] = as_row(added, table)
            for deleted in r.json["deleted"]:
                del rows[deleted[NAMES[table][0]]]
            for m in r.json["modified"]:
                assert rows[m["key"]] == as_row(m["before"], table)
                rows[m["key"]] = as_row(m["after"], table)
            assert rows == self.model.snapshots[high][table], (table, low, high)
        for table in TABLES:
            for key in self.model.tables[table]:
                r = self.boss.get(f"/api/v1/tables/{table}/records/{key}/blame")
                assert r.status_code == 200, r.text
                found = {n: v["change_id"] if v else None for n, v in r.json["fields"].items()}
                expected = self.model.blame.get((table, key), {})
                assert found == {n: expected.get(n) for n in NAMES[table]}, (table, key, found, expected)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_version_control_keeps_its_invariants(kind, tmp_path, pg_database, monkeypatch):
    if kind == "postgres" and pg_database is None:
        pytest.skip("PostgreSQL not configured (set TEST_DATABASE_URL)")
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    VersionControl.kind, VersionControl.directory, VersionControl.pg_database = kind, tmp_path, pg_database
    OUTCOMES.clear()
    run_state_machine_as_test(VersionControl, settings=SETTINGS)
    if os.environ.get("STATEFUL_VERBOSE") == "1":
        print(kind, sorted(OUTCOMES.items()))
