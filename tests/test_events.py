"""The event log (issue 22): every event type written once per action (walked from the URL map
and the CLI commands), readable by admins and AUDITORS only, its hash chain verified and broken
by a direct edit, append-only on PostgreSQL, one chain from two processes writing at once."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Api, Browser, row, table

import events
from models import db

ROOT = Path(__file__).resolve().parent.parent

# Every endpoint that changes something or hands out a table, and the event types it writes.
# A new one fails test_every_writing_endpoint_is_listed until it is thought about here.
EVENTS_OF_ENDPOINT = {
    "auth.login": {"sign-in", "sign-in-failed"},
    "auth.logout": {"sign-out"},
    "pages.download": {"download"},
    "pages.download_xlsx": {"download"},
    "api.export": {"export"},
    "api.export_xlsx": {"export"},
    "pages.upload": {"upload-staged", "upload-refused"},
    "api.upload": {"upload-staged", "upload-refused"},
    "pages.resolve": {"resolve"},
    "api.resolve": {"resolve"},
    "pages.approve": {"approve", "signature"},
    "api.approve": {"approve", "signature"},
    "pages.reject": {"reject"},
    "api.reject": {"reject"},
    "pages.withdraw": {"withdraw"},
    "api.withdraw": {"withdraw"},
    "pages.revert": {"revert"},
    "api.revert": {"revert"},
    "pages.tokens": {"token-created", "token-revoked"},
    "account.account": {"account-changed"},
    # the discussion on a request (issue 25)
    "pages.add_comment": {"comment"},
    "api.add_comment": {"comment"},
    "pages.edit_comment": {"comment-edited"},
    "api.edit_comment": {"comment-edited"},
    "pages.delete_comment": {"comment-deleted"},
    "api.delete_comment": {"comment-deleted"},
    "pages.request_changes": {"changes-requested"},
    "api.request_changes": {"changes-requested"},
    "pages.revise": {"revise"},
    "api.revise": {"revise"},
}
EVENTS_OF_COMMAND = {
    ("users", "create"): {"user-created"},
    ("users", "set-password"): {"password-changed"},
    ("users", "disable"): {"user-disabled"},
    ("users", "enable"): {"user-enabled"},
    ("users", "groups"): {"groups-changed"},
    ("tokens", "create"): {"token-created"},
    ("tokens", "revoke"): {"token-revoked"},
    ("changes", "approve"): {"override"},
    ("users", "set-email"): {"account-changed"},
    ("webhooks", "add"): {"webhook-added"},
    ("webhooks", "remove"): {"webhook-removed"},
}
WRITES_NOTHING = {
    "users list",
    "tokens list",
    "cleanup",
    "audit verify",
    "db",
    "webhooks list",
    "webhooks deliveries",
    "notify run",
}  # reads, or Flask-Migrate's


def test_every_writing_endpoint_is_listed(app):
    writing = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.methods - {"GET", "HEAD", "OPTIONS"} or rule.endpoint.split(".")[-1].startswith(("download", "export"))
    }
    assert writing == set(EVENTS_OF_ENDPOINT)
    commands = {
        f"{group} {name}" for group, command in app.cli.commands.items() for name in getattr(command, "commands", {})
    } | {name for name, command in app.cli.commands.items() if not hasattr(command, "commands")}
    listed = {" ".join(key) for key in EVENTS_OF_COMMAND} | WRITES_NOTHING
    assert {c for c in commands if c.split()[0] != "db"} <= listed
    assert set().union(*EVENTS_OF_ENDPOINT.values(), *EVENTS_OF_COMMAND.values(), {"schema-change"}) == set(
        events.TYPES
    )


def last_id(app) -> int:
    with app.app_context():
        found = db.session.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM events")).scalar_one()
        db.session.remove()
        return found


def written(app, since: int) -> list[dict]:
    """The events written after event `since`, oldest first, as the API shows them."""
    with app.app_context():
        found = [
            events.as_dict(e)
            for e in db.session.scalars(
                sa.select(events.Event).where(events.Event.id > since).order_by(events.Event.id)
            )
        ]
        db.session.remove()
        return found


class Step:
    """Run one action and check it wrote exactly the events named, once each."""

    def __init__(self, app):
        self.app = app

    def __call__(self, expected: list[str], action, **fields):
        since = last_id(self.app)
        result = action()
        if hasattr(result, "close"):  # a streamed download holds its snapshot until closed
            result.get_data()
            result.close()
        found = written(self.app, since)
        assert [e["type"] for e in found] == expected, (expected, found)
        for key, value in fields.items():
            assert all(e[key] == value for e in found), (key, value, found)
        return result, found


def test_every_event_type_is_written_once_per_action(app):
    step = Step(app)
    runner = app.test_cli_runner()
    # the console
    step(
        ["user-created"],
        lambda: runner.invoke(args=["users", "create", "carol", "--password", "carol-password-1"]),
        user=None,
    )
    step(
        ["password-changed"],
        lambda: runner.invoke(args=["users", "set-password", "carol", "--password", "carol-password-2"]),
    )
    step(["user-disabled"], lambda: runner.invoke(args=["users", "disable", "carol"]))
    step(["user-enabled"], lambda: runner.invoke(args=["users", "enable", "carol"]))
    _, found = step(["groups-changed"], lambda: runner.invoke(args=["users", "groups", "carol", "--add", "hr"]))
    assert found[0]["details"]["added"] == ["hr"] and found[0]["details"]["removed"] == []
    step(["token-created"], lambda: runner.invoke(args=["tokens", "create", "carol"]))
    _, found = step(["token-revoked"], lambda: runner.invoke(args=["tokens", "revoke", "carol"]))
    assert found[0]["details"]["username"] == "carol" and found[0]["details"]["via"] == "console"
    step(["account-changed"], lambda: runner.invoke(args=["users", "set-email", "carol", "carol@example.org"]))
    step(
        ["webhook-added"],
        lambda: runner.invoke(args=["webhooks", "add", "https://hooks.example.org/x", "--secret", "s3cret"]),
    )
    step(["webhook-removed"], lambda: runner.invoke(args=["webhooks", "remove", "1"]))
    # signing in and out
    client = app.test_client()
    _, found = step(
        ["sign-in-failed"], lambda: client.post("/login", data={"username": "alice", "password": "nope-nope-nope"})
    )
    assert found[0]["user"] == "alice" and found[0]["address"] == "127.0.0.1"
    step(
        ["sign-in"],
        lambda: client.post("/login", data={"username": "alice", "password": "alice-password"}),
        user="alice",
    )
    step(["sign-out"], lambda: client.post("/logout"), user="alice")
    alice, boss, bob = Browser(app, "alice"), Browser(app, "boss"), Browser(app, "bob")
    step(["token-created"], lambda: alice.post("/tokens", data={}), user="alice")
    step(["token-revoked"], lambda: alice.post("/tokens", data={"revoke": "all"}), user="alice")
    step(["account-changed"], lambda: alice.post("/account", data={"email": "alice@example.org"}), user="alice")
    # uploads and decisions, through the pages
    _, found = step(
        ["upload-staged"], lambda: alice.upload(table(row("DS-1", "Sales"), row("DS-2", "HR"))), user="alice"
    )
    first = found[0]["change_id"]
    assert found[0]["table"] == "datasets" and found[0]["details"]["added"] == 2
    step(["upload-refused"], lambda: alice.upload("id,name\nDS-9\n"), user="alice")
    _, found = step(["approve"], lambda: boss.post(f"/changes/{first}/approve"), user="boss", change_id=first)
    assert found[0]["details"]["version"] == 1 and len(found[0]["details"]["change_set"]) == 64
    _, found = step(["download"], lambda: alice.get("/download"), user="alice")
    assert found[0]["details"] == {"version": 1, "format": "csv"}
    step(["download"], lambda: alice.get("/download.xlsx?version=1"), user="alice")
    step(["revert"], lambda: alice.post(f"/changes/{first}/revert"), user="alice")
    step(["withdraw"], lambda: alice.post("/changes/2/withdraw"), user="alice", change_id=2)
    alice.upload(table(row("DS-1", "Sales EMEA"), row("DS-2", "HR")), filename="datasets-v1.csv")
    step(["reject"], lambda: boss.post("/changes/3/reject", data={"reason": "no"}), user="boss", change_id=3)
    # a conflict to resolve: bob changes the row alice changes from the same old version
    bob.upload(table(row("DS-1", "Sales APAC"), row("DS-2", "HR")), filename="datasets-v1.csv")
    boss.post("/changes/4/approve")
    alice.upload(table(row("DS-1", "Sales EMEA"), row("DS-2", "HR")), filename="datasets-v1.csv")
    step(
        ["resolve"],
        lambda: alice.post("/changes/5/resolve", data={"key": "DS-1", "column": "name", "take": "yours"}),
        user="alice",
        change_id=5,
    )
    # the API
    api = Api(app, "boss")
    step(["export"], lambda: api.get("/api/v1/export.csv"), user="boss")
    step(["export"], lambda: api.get("/api/v1/export.xlsx"), user="boss")
    step(["approve"], lambda: api.post("/api/v1/changes/5/approve"), user="boss")
    step(["upload-staged"], lambda: api.upload(table(row("DS-7", "New")), mode="partial"), user="boss")
    # the break-glass override from the console
    step(["override"], lambda: runner.invoke(args=["changes", "approve", "6", "--override", "--reason", "test"]))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "Event log intact" in result.output


def test_start_up_schema_changes_are_events(make_app, tmp_path):
    from conftest import CATALOG_SCHEMA

    schema = json.loads(CATALOG_SCHEMA.read_text())
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    app = make_app(SCHEMA_PATH=path, FIRST_ADMIN_PASSWORD_FILE=tmp_path / "pw")
    since = last_id(app)
    schema["fields"].append({"name": "steward", "type": "string"})
    path.write_text(json.dumps(schema))
    again = make_app(SCHEMA_PATH=path, FIRST_ADMIN_PASSWORD_FILE=tmp_path / "pw")
    found = written(again, since)
    assert [e["type"] for e in found] == ["schema-change"]
    assert found[0]["details"]["added"] == ["steward"] and found[0]["table"] == "datasets"


# --- reading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/events", "/api/v1/events.csv", "/api/v1/events/head"])
def test_only_admins_and_auditors_read_the_event_log(make_app, url):
    from conftest import add_test_users

    app = add_test_users(make_app(AUDITORS=["bob"]))
    assert Api(app, "alice").get(url).status_code == 403
    assert Api(app, "bob").get(url).status_code == 200
    assert Api(app, "boss").get(url).status_code == 200
    assert Browser(app, "alice").get("/events").status_code == 403
    page = Browser(app, "bob").get("/events")
    assert page.status_code == 200 and "sign-in" in page.text
    assert "Event log</a>" in page.text and "Event log</a>" not in Browser(app, "alice").get("/").text
    assert Api(app, "alice").get("/api/v1/audit").status_code == 200  # the row-change audit stays readable


def test_the_events_api_filters_pages_and_anchors(app, seeded):
    boss = seeded
    body = boss.get("/api/v1/events?limit=2").json
    assert set(body) == {"items", "next"} and len(body["items"]) == 2
    item = body["items"][0]
    assert set(item) == {"id", "at", "type", "user", "address", "table", "change_id", "details", "hash"}
    older = boss.get(f"/api/v1/events?limit=2&before={body['next']}").json["items"]
    assert older[0]["id"] < body["items"][-1]["id"]
    approve = boss.get("/api/v1/events?type=approve&user=boss&table=datasets").json["items"]
    assert [e["type"] for e in approve] == ["approve"] and approve[0]["change_id"] == 1
    assert boss.get("/api/v1/events?since=2999-01-01").json["items"] == []
    assert boss.get("/api/v1/events?until=2000-01-01").json == {"items": [], "next": None}
    bad = boss.get("/api/v1/events?type=nonsense")
    assert bad.status_code == 400 and "sign-in" in bad.json["error"]
    assert boss.get("/api/v1/events?since=yesterday").status_code == 400
    head = boss.get("/api/v1/events/head").json
    newest = boss.get("/api/v1/events?limit=1").json["items"][0]
    assert head == {"id": newest["id"], "hash": newest["hash"]}


def test_the_events_csv_is_formula_safe(app):
    app.test_client().post("/login", data={"username": "=HYPERLINK(1)", "password": "x"})
    boss = Api(app, "boss")
    response = boss.get("/api/v1/events.csv?type=sign-in-failed")
    body = response.data
    assert body.startswith(b"\xef\xbb\xbfid,at,type,user,address,table,change_id,details,hash\r\n")
    assert "attachment" in response.headers["Content-Disposition"]
    lines = body.decode("utf-8-sig").split("\r\n")
    assert len(lines) == 3 and ",sign-in-failed,'=HYPERLINK(1),127.0.0.1,,," in lines[1]


# --- the chain ----------------------------------------------------------------------------------


def test_verify_passes_and_then_names_the_event_edited_in_the_database(app, seeded):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    count = last_id(app)
    with app.app_context():
        head = events.head()
    assert f"{count} event(s); head hash {head['hash']}" in result.output
    victim = 3
    with app.app_context():
        if db.engine.dialect.name == "postgresql":  # the trigger refuses the edit and the deletion
            for statement in ("UPDATE events SET details = '{}' WHERE id = 3", "DELETE FROM events WHERE id = 3"):
                with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                    db.session.execute(sa.text(statement))
                db.session.rollback()
            db.session.execute(sa.text("ALTER TABLE events DISABLE TRIGGER events_append_only"))  # the owner can
        db.session.execute(
            sa.text("UPDATE events SET details = :d WHERE id = :id"), {"d": '{"username":"mallory"}', "id": victim}
        )
        db.session.commit()
        db.session.remove()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert f"BROKEN at event {victim}" in result.output and "hash does not match" in result.output


def test_verify_notices_the_newest_events_removed(app, seeded):
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        last = db.session.execute(sa.text("SELECT MAX(id) FROM events")).scalar_one()
        db.session.execute(sa.text("DELETE FROM events WHERE id = :id"), {"id": last})
        db.session.commit()
        db.session.remove()
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code != 0 and f"BROKEN at event {last}" in result.output


WRITER = """
import sys, time
from pathlib import Path
sys.path[:0] = [{root!r}, {tests!r}]
from conftest import build_app
import events
from models import db
app = build_app({url!r}, SKIP_DB_INIT=True)
with app.app_context():
    while not Path({go!r}).exists():
        time.sleep(0.01)
    for n in range({count}):
        events.record("download", user={name!r}, details={{"n": n}})
        db.session.commit()
"""


def test_two_processes_writing_at_once_keep_one_chain(app, tmp_path):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    before, count, go = last_id(app), 150, tmp_path / "go"
    env = os.environ | {"SECRET_KEY": "test-secret"}
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER.format(root=str(ROOT), tests=str(ROOT / "tests"), url=url, go=str(go), count=count, name=name),
            ],
            env=env,
            stderr=subprocess.PIPE,
        )
        for name in ("p1", "p2")
    ]
    go.touch()
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()[-2000:]
    found = written(app, before)
    assert len(found) == 2 * count
    assert [e["id"] for e in found] == list(range(before + 1, before + 2 * count + 1))
    users = [e["user"] for e in found]
    assert users.count("p1") == users.count("p2") == count
    assert any(a != b for a, b in itertools.pairwise(users))  # they did interleave
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
