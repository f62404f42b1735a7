"""Notifications: who hears what, by e-mail (a real SMTP server, aiosmtpd) and signed webhooks (a
real HTTP receiver), delivered from the outbox by the sender, on both databases.

The sender runs as the tests ask (`deliver`), except where the test is about the thread of an app
process or about `flask notify run` as processes of their own.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from conftest import Api, Browser, add_test_users, row, table
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook as StandardWebhook

import config
import messages
import notifications
import sender
from models import OutboxMessage, db

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + base64.b64encode(b"a secret of the receiver, 32 bytes").decode()


# --- a real SMTP server and a real HTTP receiver on loopback ---------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd's handler: keeps every message it receives."""

    def __init__(self):
        self.received: list[tuple[list[str], email.message.Message]] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email.policy.default))
        )
        return "250 OK"

    def take(self) -> list[tuple[str, str]]:
        """(recipient, subject) of every message since the last take, sorted."""
        found = sorted((to, msg["Subject"]) for tos, msg in self.received for to in tos)
        self.received.clear()
        return found


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


class Receiver:
    """A webhook receiver: records each call (headers, body) and answers the next of `statuses`
    (200 when none is left); `hold` makes it wait before answering."""

    def __init__(self):
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.answered: list[str] = []  # webhook-ids answered 2xx
        self.statuses: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.hold.wait(30)
                self.send_response(status)
                self.end_headers()
                if status < 300:
                    with receiver.lock:
                        receiver.answered.append(self.headers["webhook-id"])

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["type"] for _, body in self.calls]

    def close(self):
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def notify_app(make_app, mailbox: Mailbox | None, **settings):
    """An app whose e-mail goes to `mailbox`, delivering only when a test says (`deliver`)."""
    base = {
        "APP_URL": "http://tracker.test",
        "NOTIFY_SENDER": False,
        "NOTIFY_RETRY_SECONDS": 0,
        "MAX_PENDING_PER_USER": 1000,
    }
    if mailbox is not None:
        base["SMTP_URL"] = f"smtp://127.0.0.1:{mailbox.port}"
    app = add_test_users(make_app(**(base | settings)))
    with app.app_context():
        for name in ("alice", "bob", "boss"):
            notifications.set_email(name, f"{name}@example.org")
    return app


def deliver(app) -> sender.Pass:
    with app.app_context():
        return sender.deliver_all()


def subject(change_id: int, happened: str, table_name: str = "datasets") -> str:
    return f"[Dataset Tracker] #{change_id} {table_name}: {messages.HAPPENED[happened]}"


def outbox(app) -> list[OutboxMessage]:
    with app.app_context():
        found = list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        db.session.expunge_all()
        return found


def stage(client: Api, *rows: str, **form) -> int:
    r = client.upload(table(*rows), **({"mode": "partial"} | form))
    assert r.status_code == 201, r.text
    return r.json["id"]


# --- who hears what --------------------------------------------------------------------------


def test_every_event_reaches_whom_the_issue_says_once(make_app, mailbox, receiver):
    app = notify_app(make_app, mailbox)
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, [], None)
    alice, bob, boss = Api(app, "alice"), Api(app, "bob"), Api(app, "boss")

    first = stage(alice, row("DS-1", "Sales"), row("DS-2", "HR"))
    deliver(app)
    assert mailbox.take() == [("boss@example.org", subject(first, "request.submitted"))]  # who may decide
    assert boss.post(f"/api/v1/changes/{first}/approve").status_code == 200
    deliver(app)
    assert mailbox.take() == [("alice@example.org", subject(first, "request.approved"))]

    rejected = stage(bob, row("DS-3", "Finance"))
    assert boss.post(f"/api/v1/changes/{rejected}/reject", json={"reason": "Owner is wrong"}).status_code == 200
    deliver(app)
    assert mailbox.take() == [
        ("bob@example.org", subject(rejected, "request.rejected")),
        ("boss@example.org", subject(rejected, "request.submitted")),
    ]

    withdrawn = stage(alice, row("DS-4", "Ops"))
    assert alice.post(f"/api/v1/changes/{withdrawn}/withdraw").status_code == 200
    deliver(app)
    assert mailbox.take() == [
        ("alice@example.org", subject(withdrawn, "request.withdrawn")),
        ("boss@example.org", subject(withdrawn, "request.submitted")),
    ]

    # stale: a later approval changed the same cell; the approval sends the request back
    mine, theirs = stage(alice, row("DS-1", "Sales EMEA")), stage(bob, row("DS-1", "Sales APAC"))
    assert boss.post(f"/api/v1/changes/{mine}/approve").status_code == 200
    assert boss.post(f"/api/v1/changes/{theirs}/approve").status_code == 409
    deliver(app)
    assert mailbox.take() == [
        ("alice@example.org", subject(mine, "request.approved")),
        ("bob@example.org", subject(theirs, "request.stale")),
        ("boss@example.org", subject(mine, "request.submitted")),
        ("boss@example.org", subject(theirs, "request.submitted")),
    ]
    assert bob.post(f"/api/v1/changes/{theirs}/withdraw").status_code == 200
    deliver(app)
    mailbox.take()

    # conflicts found on upload: a file based on version 1 changing what version 2 changed
    conflicted = stage(bob, row("DS-1", "Sales LATAM"), base_version="1")
    deliver(app)
    assert mailbox.take() == [
        ("bob@example.org", subject(conflicted, "request.conflicts")),
        ("boss@example.org", subject(conflicted, "request.submitted")),
    ]
    assert bob.post(f"/api/v1/changes/{conflicted}/withdraw").status_code == 200
    deliver(app)
    mailbox.take()

    # reverted: bob reverts alice's request; approving the revert tells alice hers was reverted
    r = bob.post(f"/api/v1/changes/{mine}/revert")
    assert r.status_code == 201, r.text
    revert = r.json["id"]
    assert boss.post(f"/api/v1/changes/{revert}/approve").status_code == 200
    deliver(app)
    assert mailbox.take() == [
        ("alice@example.org", subject(mine, "request.reverted")),
        ("bob@example.org", subject(revert, "request.approved")),
        ("boss@example.org", subject(revert, "request.submitted")),
    ]

    # the webhook heard every event once, in order
    assert receiver.events() == [
        "request.submitted", "request.approved",
        "request.submitted", "request.rejected",
        "request.submitted", "request.withdrawn",
        "request.submitted", "request.submitted", "request.approved", "request.stale", "request.withdrawn",
        "request.submitted", "request.conflicts", "request.withdrawn",
        "request.submitted", "request.approved", "request.reverted",
    ]  # fmt: skip
    assert len({h["webhook-id"] for h, _ in receiver.calls}) == len(receiver.calls)
    assert {m.status for m in outbox(app)} == {"sent"}


def test_an_e_mail_says_what_happened_counts_reason_and_link(make_app, mailbox):
    app = notify_app(make_app, mailbox)
    alice, boss = Api(app, "alice"), Api(app, "boss")
    first = stage(alice, row("DS-1", "Sales"), row("DS-2", "HR"))
    boss.post(f"/api/v1/changes/{first}/approve")
    change = stage(alice, row("DS-1", "Sales EMEA", team="Ops"), row("DS-2", "HR", team="Ops"), row("DS-3", "New"))
    boss.post(f"/api/v1/changes/{change}/reject", json={"reason": "Ops is no team of ours.\nAsk HR."})
    deliver(app)
    mail = next(m for tos, m in mailbox.received if tos == ["alice@example.org"] and "rejected" in m["Subject"])
    assert mail["From"] == "dataset-tracker@localhost"
    assert mail["Message-ID"].startswith("<msg_")
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert body.splitlines()[0] == (
        f"Change request #{change} to datasets by alice was rejected by boss: 1 added, 2 modified, 0 deleted."
    )
    assert "Reason:\n  Ops is no team of ours.\n  Ask HR." in body
    assert "Modified rows per column:\n          2 team\n          1 name" in body
    assert f"Open it: http://tracker.test/changes/{change}" in body


def test_subscriptions_on_the_account_page_switch_watch_and_digest(make_app, mailbox):
    app = notify_app(make_app, mailbox)
    alice, boss = Api(app, "alice"), Api(app, "boss")
    page = Browser(app, "bob").get("/account")
    assert page.status_code == 200 and 'value="bob@example.org"' in page.text
    # bob watches the table; alice no longer wants to hear of approvals; boss wants a daily digest
    kinds = list(notifications.KINDS)
    assert (
        Browser(app, "bob").post("/account", data={"email": "bob@example.org", "kinds": kinds, "watch": ["datasets"]})
    ).status_code == 302
    off = [k for k in kinds if k != "request.approved"]
    assert Browser(app, "alice").post("/account", data={"email": "alice@example.org", "kinds": off}).status_code == 302
    r = Browser(app, "boss").post("/account", data={"email": "boss@example.org", "kinds": kinds, "digest": "y"})
    assert r.status_code == 302

    change = stage(alice, row("DS-1", "Sales"))
    assert boss.post(f"/api/v1/changes/{change}/approve").status_code == 200
    deliver(app)
    assert mailbox.take() == [("bob@example.org", subject(change, "request.approved"))]  # the watcher only

    # the digest: boss's e-mail waits for DIGEST_HOUR, then goes out as one message
    import datetime as dt

    with app.app_context():
        assert [
            m.status for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.username == "boss"))
        ] == ["held"]
        later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)
        assert notifications.send_digests(later) == 1
        assert notifications.send_digests(later) == 0  # each held message goes out once
    deliver(app)
    (tos, mail), *others = mailbox.received
    assert not others and tos == ["boss@example.org"]
    assert mail["Subject"] == "[Dataset Tracker] Daily digest: 1 notification(s)"
    assert f"#{change} datasets: is waiting for a decision" in mail.get_payload(decode=True).decode()


def test_the_account_page_refuses_a_bad_address_beside_the_field(make_app, mailbox):
    app = notify_app(make_app, mailbox)
    r = Browser(app, "alice").post("/account", data={"email": "not an address", "kinds": list(notifications.KINDS)})
    assert r.status_code == 422
    assert "&#39;not an address&#39; is not an e-mail address" in r.text and 'class="field-error"' in r.text
    r = Browser(app, "alice").post("/account", data={"email": "a@b.org", "watch": ["no-such-table"]})
    assert r.status_code == 422 and "is not a valid choice" in r.text


def test_the_account_page_needs_the_csrf_token(make_app):
    app = add_test_users(make_app(WTF_CSRF_ENABLED=True))
    client = app.test_client()
    page = client.get("/login")
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"username": "alice", "password": "alice-password", "csrf_token": token})
    r = client.post("/account", data={"email": "alice@example.org"})
    assert r.status_code == 400
    with app.app_context():
        assert notifications.accounts.find_user("alice").email is None


def test_without_smtp_url_no_e_mail_is_written(make_app, receiver):
    app = notify_app(make_app, None)
    alice = Api(app, "alice")
    stage(alice, row("DS-1", "Sales"))
    assert outbox(app) == []
    with app.app_context():
        notifications.add_webhook(receiver.url, "plain secret", ["request.withdrawn"], "datasets")
    change = stage(alice, row("DS-2", "HR"))
    alice.post(f"/api/v1/changes/{change}/withdraw")
    assert [(m.channel, m.event) for m in outbox(app)] == [("webhook", "request.withdrawn")]


# --- webhooks --------------------------------------------------------------------------------


def test_the_webhook_body_and_its_signature(make_app, receiver):
    app = notify_app(make_app, None)
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, ["request.submitted"], None)
        notifications.add_webhook(receiver.url, "plain-secret", ["request.submitted"], "datasets")
    alice = Api(app, "alice")
    change = stage(alice, row("DS-1", "Sales"), row("DS-2", "HR"), comment="two new")
    assert deliver(app).sent == 2
    (headers, body), (plain_headers, plain_body) = receiver.calls
    # the Standard Webhooks reference implementation accepts it ...
    payload = StandardWebhook(SECRET).verify(body, headers)
    assert StandardWebhook(b"plain-secret").verify(plain_body, plain_headers) == json.loads(plain_body)
    # ... and so does the algorithm written out: base64 HMAC-SHA256 of "id.timestamp.body"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    with pytest.raises(Exception, match="signature"):
        StandardWebhook(SECRET).verify(body.replace(b"Sales", b"Sal3s"), headers)

    assert list(payload) == ["type", "id", "timestamp", "data", "text"]
    assert payload["type"] == "request.submitted" and payload["id"] == headers["webhook-id"]
    assert list(payload["data"]) == [
        "change_id", "table", "status", "version", "submitter", "decided_by", "reason",
        "summary", "columns", "url", "rows",
    ]  # fmt: skip
    data = payload["data"]
    assert data["change_id"] == change and data["table"] == "datasets" and data["status"] == "pending"
    assert data["submitter"] == "alice" and data["decided_by"] is None and data["reason"] is None
    assert data["summary"] == {"added": 2, "modified": 0, "deleted": 0}
    assert data["url"] == f"http://tracker.test/changes/{change}"
    assert data["rows"][0]["action"] == "add" and data["rows"][0]["before"] is None
    assert data["rows"][0]["after"]["id"] == "DS-1" and data["rows"][0]["after"]["name"] == "Sales"
    assert (
        payload["text"]
        == f"Change request #{change} to datasets by alice is waiting for a decision: 2 added, 0 modified, 0 deleted"
    )


def test_a_body_carries_the_first_20_changes_with_before_and_after(make_app, receiver):
    app = notify_app(make_app, None)
    alice, boss = Api(app, "alice"), Api(app, "boss")
    first = stage(alice, *(row(f"DS-{i:02}", "Old") for i in range(30)))
    boss.post(f"/api/v1/changes/{first}/approve")
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, ["request.approved"], None)
    change = stage(alice, *(row(f"DS-{i:02}", "New") for i in range(25)))
    boss.post(f"/api/v1/changes/{change}/approve")
    deliver(app)
    (_, body), *_ = receiver.calls
    data = json.loads(body)["data"]
    assert data["status"] == "approved" and data["decided_by"] == "boss" and data["version"] == 2
    assert data["columns"] == {"name": 25} and len(data["rows"]) == 20
    first_row = data["rows"][0]
    assert (first_row["action"], first_row["key"]) == ("modify", "DS-00")
    assert first_row["before"]["name"] == "Old" and first_row["after"] == first_row["before"] | {"name": "New"}


def test_a_receiver_failing_twice_gets_it_on_the_third_try_with_the_same_id(make_app, receiver):
    app = notify_app(make_app, None, NOTIFY_RETRY_SECONDS=0)
    with app.app_context():
        hook_id = notifications.add_webhook(receiver.url, SECRET, [], None).id
    receiver.statuses = [500, 503]
    stage(Api(app, "alice"), row("DS-1", "Sales"))
    done = deliver(app)
    assert (done.sent, done.retrying, done.failed) == (1, 2, 0)
    assert [h["webhook-id"] for h, _ in receiver.calls] == [receiver.calls[0][0]["webhook-id"]] * 3
    assert receiver.answered == [receiver.calls[0][0]["webhook-id"]]
    for headers, body in receiver.calls:  # each attempt is signed anew, and verifies
        StandardWebhook(SECRET).verify(body, headers)
    (message,) = outbox(app)
    assert (message.status, message.attempts, message.message_id) == ("sent", 3, receiver.answered[0])
    out = app.test_cli_runner().invoke(args=["webhooks", "deliveries", str(hook_id)])
    assert out.exit_code == 0 and f"{message.message_id}\trequest.submitted\t#1\tsent\t3 attempt(s)" in out.output


def test_retries_back_off_exponentially_then_fail(make_app, receiver):
    app = notify_app(make_app, None, NOTIFY_RETRY_SECONDS=30)
    with app.app_context():
        hook_id = notifications.add_webhook(receiver.url, SECRET, [], None).id
    receiver.statuses = [500] * 10
    stage(Api(app, "alice"), row("DS-1", "Sales"))
    assert deliver(app).retrying == 1
    (message,) = outbox(app)
    wait = (message.next_attempt_at - message.created_at).total_seconds()
    assert 29 <= wait <= 40 and message.status == "pending" and message.last_error == "HTTP 500 Internal Server Error"
    assert deliver(app).claimed == 0  # not due yet
    with app.app_context():  # due now: the second failure waits twice as long
        db.session.execute(text("UPDATE outbox SET next_attempt_at = created_at"))
        db.session.commit()
    deliver(app)
    (message,) = outbox(app)
    assert message.attempts == 2 and 59 <= (message.next_attempt_at - message.created_at).total_seconds() <= 70
    # past NOTIFY_RETRY_HOURS: the next failure is the last
    with app.app_context():
        db.session.execute(
            text("UPDATE outbox SET created_at = :t, next_attempt_at = :t"), {"t": "2000-01-01 00:00:00"}
        )
        db.session.commit()
    assert deliver(app).failed == 1
    (message,) = outbox(app)
    assert message.status == "failed" and message.attempts == 3
    out = app.test_cli_runner().invoke(args=["webhooks", "deliveries", str(hook_id)])
    assert "\tfailed\t3 attempt(s)\tfailed\tHTTP 500 Internal Server Error" in out.output
    page = Browser(app, "boss").get("/admin/webhooks")
    assert page.status_code == 200 and message.message_id in page.text and "failed" in page.text
    assert Browser(app, "alice").get("/admin/webhooks").status_code == 403


def test_a_decision_rolled_back_sends_nothing(make_app, mailbox, receiver, tmp_path):
    """Approving a deletion of a row others still refer to is refused after the request was
    applied (and its messages written) in the transaction: all of it is rolled back."""
    package = {
        "resources": [
            {
                "name": "teams",
                "schema": {"primaryKey": "name", "fields": [{"name": "name"}, {"name": "team_lead_full_name"}]},
            },
            {
                "name": "datasets",
                "schema": {
                    "primaryKey": "id",
                    "fields": [{"name": "id"}, {"name": "title"}, {"name": "team"}],
                    "foreignKeys": [{"fields": "team", "reference": {"resource": "teams", "fields": "name"}}],
                },
            },
        ]
    }
    path = tmp_path / "package.json"
    path.write_text(json.dumps(package))
    app = notify_app(make_app, mailbox, SCHEMA_PATH=path)
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, [], None)
    alice, boss = Api(app, "alice"), Api(app, "boss")

    def upload(name: str, csv: str, **form: str) -> int:
        r = alice.post(
            f"/api/v1/tables/{name}/changes",
            data={"file": (io.BytesIO(csv.encode()), f"{name}.csv"), **form},
            content_type="multipart/form-data",
        )
        assert r.status_code == 201, r.text
        return r.json["id"]

    teams = upload("teams", "name,team_lead_full_name\nSales,ann\n")
    assert boss.post(f"/api/v1/changes/{teams}/approve").status_code == 200
    deletion = upload("teams", "name,team_lead_full_name\n", confirm_deletions="1")  # the whole table, without Sales
    datasets = upload("datasets", "id,title,team\nD1,Orders,Sales\n")
    assert boss.post(f"/api/v1/changes/{datasets}/approve").status_code == 200
    deliver(app)
    before = len(outbox(app))
    mailbox.take(), receiver.calls.clear()

    r = boss.post(f"/api/v1/changes/{deletion}/approve")
    assert r.status_code == 409 and "refer" in r.json["error"]
    assert len(outbox(app)) == before
    deliver(app)
    assert mailbox.take() == [] and receiver.calls == []


# --- the sender never slows the workflow -----------------------------------------------------


class DeadServer:
    """A server that accepts connections and never says a word (SMTP or HTTP alike)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                self.accepted.append(self.sock.accept()[0])
            except TimeoutError:
                continue

    def close(self):
        self.closed.set()
        self.thread.join()
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def test_a_dead_smtp_server_or_receiver_slows_nothing(make_app):
    dead = DeadServer()
    app = notify_app(make_app, None, SMTP_URL=f"smtp://127.0.0.1:{dead.port}", NOTIFY_SENDER=True)
    try:
        with app.app_context():
            notifications.add_webhook(f"http://127.0.0.1:{dead.port}/hook", SECRET, [], None)
        alice, boss = Api(app, "alice"), Api(app, "boss")
        started = time.monotonic()
        for i in range(3):
            change = stage(alice, row(f"DS-{i}", "Sales"))
            assert boss.post(f"/api/v1/changes/{change}/approve").status_code == 200
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 5
        while not dead.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dead.accepted, "the sender thread never tried"
        # 6 decisions, each e-mail or call would take 10 s to time out: none of it on the request path
        assert elapsed < 5, elapsed
        assert {m.status for m in outbox(app)} == {"pending"}  # kept for later, not lost
    finally:
        dead.close()
        sender.stop(app)


def test_the_thread_of_an_app_process_delivers_by_itself(make_app, mailbox, receiver):
    app = notify_app(make_app, mailbox, NOTIFY_SENDER=True)
    try:
        with app.app_context():
            notifications.add_webhook(receiver.url, SECRET, [], None)
        change = stage(Api(app, "alice"), row("DS-1", "Sales"))
        deadline = time.monotonic() + 10
        while (len(receiver.answered) < 1 or not mailbox.received) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.events() == ["request.submitted"]
        assert mailbox.take() == [("boss@example.org", subject(change, "request.submitted"))]
    finally:
        sender.stop(app)


# --- several senders, and a sender that dies -------------------------------------------------


def sender_process(app, *args: str, **env: str) -> subprocess.Popen:
    """`flask --app app notify run` as a process of its own, on the test app's database."""
    environment = (
        os.environ
        | {
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SCHEMA_PATH": str(app.config["SCHEMA_PATH"]),
            "ADMIN_USER": "boss",
            "SECRET_KEY": "test-secret",
            "APP_URL": "http://tracker.test",
            "NOTIFY_SENDER": "false",
            "NOTIFY_RETRY_SECONDS": "0",
        }
        | env
    )
    flask = Path(sys.executable).with_name("flask")
    return subprocess.Popen(
        [str(flask), "--app", "app", "notify", "run", "--poll", "0.2", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen, kill: bool = False) -> None:
    process.kill() if kill else process.send_signal(signal.SIGTERM)
    process.wait(10)
    process.stderr.close()


def wait_for(condition, seconds: float, processes=()) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        for p in processes:
            if p.poll() is not None:
                raise AssertionError(f"sender exited: {p.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_two_processes_deliver_each_of_200_messages_exactly_once(make_app, receiver):
    app = notify_app(make_app, None)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("several hosts share PostgreSQL; SQLite is one host's (see the killed-sender test)")
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, [], None)
    alice = Api(app, "alice")
    for i in range(100):  # 200 events: a request submitted, then withdrawn
        change = stage(alice, row(f"DS-{i}", "Sales"))
        assert alice.post(f"/api/v1/changes/{change}/withdraw").status_code == 200
    assert len(outbox(app)) == 200
    processes = [sender_process(app), sender_process(app)]
    try:
        wait_for(lambda: len(set(receiver.answered)) >= 200, 120, processes)
        wait_for(lambda: {m.status for m in outbox(app)} == {"sent"}, 30, processes)
        time.sleep(1)  # a duplicate would arrive meanwhile
    finally:
        for p in processes:
            stop(p)
    counts = Counter(receiver.answered)
    assert len(counts) == 200 and set(counts.values()) == {1}
    assert {m.message_id for m in outbox(app)} == set(counts)
    assert {m.status for m in outbox(app)} == {"sent"}


def test_concurrent_claims_skip_the_rows_another_sender_is_claiming(make_app, receiver):
    """Two senders claiming at the same moment on PostgreSQL: the second neither waits for the
    first's uncommitted claim nor takes its messages (FOR UPDATE SKIP LOCKED)."""
    import datetime as dt

    import store.outbox

    app = notify_app(make_app, None)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: a second claim waits for the first's commit")
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, [], None)
    alice = Api(app, "alice")
    for i in range(10):
        stage(alice, row(f"DS-{i}", "Sales"))
    first_claimed, release, claims = threading.Event(), threading.Event(), {}

    def claim(name: str, hold: bool) -> None:
        with app.app_context():
            db.session.execute(text("SET LOCAL lock_timeout = '3s'"))
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            claims[name] = {c.message_id for c in store.outbox.claim(name, now, now + dt.timedelta(minutes=1), 5)}
            if hold:
                first_claimed.set()
                release.wait(10)
            db.session.commit()

    holder = threading.Thread(target=claim, args=("first", True))
    holder.start()
    assert first_claimed.wait(10)
    started = time.monotonic()
    claim("second", False)  # while the first claim is not committed yet
    waited = time.monotonic() - started
    release.set()
    holder.join()
    assert waited < 2, waited
    assert len(claims["first"]) == len(claims["second"]) == 5 and not claims["first"] & claims["second"]


def test_a_killed_senders_claimed_messages_are_delivered_after_restart(make_app, receiver):
    app = notify_app(make_app, None)
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, [], None)
    alice = Api(app, "alice")
    for i in range(3):
        stage(alice, row(f"DS-{i}", "Sales"))
    receiver.hold.clear()  # the first call hangs: the sender dies in the middle of it
    first = sender_process(app, NOTIFY_CLAIM_SECONDS="3")
    try:
        wait_for(lambda: receiver.calls, 30, [first])
        in_flight = receiver.calls[0][0]["webhook-id"]
    finally:
        stop(first, kill=True)
    claimed = [m for m in outbox(app) if m.claimed_until is not None]
    assert len(claimed) == 3 and {m.status for m in claimed} == {"pending"}
    receiver.hold.set()  # the hung call is answered now, to a sender that is gone
    before_restart = len(receiver.calls)
    second = sender_process(app, NOTIFY_CLAIM_SECONDS="3")
    try:
        wait_for(lambda: {m.status for m in outbox(app)} == {"sent"}, 60, [second])
    finally:
        stop(second)
    after_restart = [headers["webhook-id"] for headers, _ in receiver.calls[before_restart:]]
    assert in_flight in after_restart  # the message in flight went out again, with the same webhook-id
    assert set(after_restart) == {m.message_id for m in outbox(app)}


# --- settings and commands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org", config.SmtpServer("plain", "mail.example.org", 25, "", "")),
        ("smtp+starttls://u%40x.org:p%3Ass@mail:2587", config.SmtpServer("starttls", "mail", 2587, "u@x.org", "p:ss")),
        ("smtps://me:pw@mail.example.org", config.SmtpServer("tls", "mail.example.org", 465, "me", "pw")),
    ],
)
def test_smtp_url_schemes(url, expected):
    assert config.smtp_server(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail", "SMTP_URL must start with smtp://, smtp+starttls:// or smtps://"),
        ("smtp://", "SMTP_URL names no host"),
        ("smtp://mail:port", "the port of 'mail:port' is not a number"),
    ],
)
def test_a_bad_smtp_url_stops_start_up_with_a_message(make_app, url, message, capsys):
    with pytest.raises(SystemExit):
        make_app(SMTP_URL=url)
    assert message in capsys.readouterr().err


def test_users_and_webhooks_commands(make_app, receiver):
    app = notify_app(make_app, None)
    cli = app.test_cli_runner()
    out = cli.invoke(args=["users", "create", "carol", "--password", "carol-password", "--email", "carol@example.org"])
    assert out.exit_code == 0 and "with e-mail carol@example.org" in out.output
    out = cli.invoke(args=["users", "create", "dave", "--password", "dave-password", "--email", "nope"])
    assert out.exit_code != 0 and "'nope' is not an e-mail address" in out.output
    assert "dave" not in cli.invoke(args=["users", "list"]).output  # refused before the account was made
    out = cli.invoke(args=["users", "set-email", "carol", "c@example.org"])
    assert out.exit_code == 0 and "E-mail of 'carol': c@example.org." in out.output
    out = cli.invoke(args=["users", "set-email", "nobody", "c@example.org"])
    assert out.exit_code != 0 and "There is no user 'nobody'" in out.output

    out = cli.invoke(args=["webhooks", "add", receiver.url, "--secret", SECRET, "--events", "request.approved,request.rejected", "--table", "datasets"])  # fmt: skip
    assert out.exit_code == 0 and out.output.startswith("Added webhook 1:")
    for args, message in [
        (["webhooks", "add", "ftp://x", "--secret", "s"], "is not an http:// or https:// URL"),
        (["webhooks", "add", receiver.url, "--secret", "s", "--events", "request.eaten"], "Unknown event type 'request.eaten'"),
        (["webhooks", "add", receiver.url, "--secret", "s", "--table", "nope"], "There is no table 'nope'"),
        (["webhooks", "add", receiver.url], "Missing option '--secret'"),
        (["webhooks", "remove", "99"], "There is no webhook 99"),
        (["webhooks", "deliveries", "99"], "There is no webhook 99"),
    ]:  # fmt: skip
        out = cli.invoke(args=args)
        assert out.exit_code != 0 and message in out.output, out.output
    out = cli.invoke(args=["webhooks", "list"])
    assert out.output == f"1\t{receiver.url}\trequest.approved,request.rejected\tdatasets\n"
    out = cli.invoke(args=["webhooks", "remove", "1"])
    assert out.exit_code == 0 and cli.invoke(args=["webhooks", "list"]).output == ""
    out = cli.invoke(args=["notify", "run", "--once"])
    assert out.exit_code == 0 and "Sent 0, retrying 0, failed 0; 0 digest(s) written." in out.output
    for group in ("webhooks", "notify"):
        assert cli.invoke(args=[group, "--help"]).exit_code == 0


def test_the_smtp_schemes_with_tls_and_a_password(make_app, tmp_path, monkeypatch):
    """smtp+starttls:// and smtps:// against aiosmtpd with a certificate the test trusts."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=auth_data.login == b"mailer" and auth_data.password == b"s3cret")

    for scheme, options in (
        ("smtp+starttls", {"tls_context": context, "require_starttls": True}),
        ("smtps", {"ssl_context": context}),
    ):
        box = Mailbox()
        port = free_port()
        # aiosmtpd tells implicit TLS (smtps) from none only after STARTTLS: AUTH is allowed there anyway
        smtp_options = {"authenticator": authenticate, "auth_require_tls": "tls_context" in options}
        if "tls_context" in options:
            smtp_options |= options
            controller = Controller(box, hostname="localhost", port=port, **smtp_options)
        else:
            controller = Controller(box, hostname="localhost", port=port, **smtp_options, **options)
        controller.start()
        try:
            app = make_app(SMTP_URL=f"{scheme}://mailer:s3cret@localhost:{port}", NOTIFY_SENDER=False)
            with app.app_context():
                try:
                    sender.send_email("ann@example.org", "Hello", "Body", "msg_1")
                except sender.DeliveryFailed as exc:
                    raise AssertionError(scheme) from exc
            assert [tos for tos, _ in box.received] == [["ann@example.org"]], scheme
            with app.app_context(), pytest.raises(sender.DeliveryFailed):
                app.config["SMTP_URL"] = f"{scheme}://mailer:wrong@localhost:{port}"
                sender.send_email("ann@example.org", "Hello", "Body", "msg_2")
        finally:
            controller.stop()


def test_the_signature_matches_the_standard_webhooks_test_vector():
    """The example of the Standard Webhooks specification."""
    body = '{"test": 2432232314}'
    assert (
        messages.sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_missing_sender_leaves_no_trace_on_apps_without_notifications(make_app):
    """Apps with neither SMTP_URL nor webhooks write nothing and start no thread."""
    app = add_test_users(make_app())
    alice = Api(app, "alice")
    stage(alice, row("DS-1", "Sales"))
    assert outbox(app) == []
    assert id(app) not in sender._threads


def test_the_clean_up_forgets_finished_messages_after_keep_decided_days(make_app, receiver):
    import housekeeping

    app = notify_app(make_app, None, KEEP_DECIDED_DAYS=30)
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, [], None)
    alice = Api(app, "alice")
    stage(alice, row("DS-1", "Sales"))
    deliver(app)
    stage(alice, row("DS-2", "HR"))  # pending: kept whatever its age
    with app.app_context():
        db.session.execute(text("UPDATE outbox SET created_at = :t"), {"t": "2000-01-01 00:00:00"})
        db.session.commit()
        housekeeping.clean_up()
    assert [m.status for m in outbox(app)] == ["pending"]


def quorum_app(make_app, mailbox, tmp_path):
    """A notify app whose catalog needs two approvals, with boss, chief and dora deciding."""
    from conftest import CATALOG_SCHEMA

    schema = tmp_path / "quorum.schema.json"
    schema.write_text(json.dumps(json.loads(CATALOG_SCHEMA.read_text()) | {"approval": {"approvals": 2}}))
    app = notify_app(make_app, mailbox, SCHEMA_PATH=schema, ADMIN_USERS=["boss", "chief", "dora"])
    with app.app_context():
        for name in ("chief", "dora"):
            notifications.set_email(name, f"{name}@example.org")
    return app


def test_needs_another_approval_tells_the_other_deciders_by_e_mail_only(make_app, mailbox, receiver, tmp_path):
    """The first of two approvals (API, 202): the deciders who have not approved yet hear, by
    e-mail only; the approver and the submitter do not."""
    app = quorum_app(make_app, mailbox, tmp_path)
    with app.app_context():
        notifications.add_webhook(receiver.url, SECRET, [], None)
    change = stage(Api(app, "alice"), row("DS-1", "Sales"))
    deliver(app)
    mailbox.take(), receiver.calls.clear()
    assert Api(app, "boss").post(f"/api/v1/changes/{change}/approve").status_code == 202
    deliver(app)
    wanted = subject(change, "request.needs_approval")
    assert mailbox.take() == [("chief@example.org", wanted), ("dora@example.org", wanted)]
    assert receiver.calls == []


def test_approvers_hear_when_their_approval_is_dismissed(make_app, mailbox, tmp_path):
    """A later approval changed the same cells: the request is sent back, and whoever approved it
    before hears that their approval no longer counts."""
    app = quorum_app(make_app, mailbox, tmp_path)
    seed = stage(Api(app, "alice"), row("DS-1", "Sales"))
    assert Api(app, "boss").post(f"/api/v1/changes/{seed}/approve").status_code == 202
    assert Api(app, "chief").post(f"/api/v1/changes/{seed}/approve").status_code == 200
    mine = stage(Api(app, "alice"), row("DS-1", "Sales EMEA"))
    theirs = stage(Api(app, "bob"), row("DS-1", "Sales APAC"))
    assert Api(app, "boss").post(f"/api/v1/changes/{theirs}/approve").status_code == 202
    assert Api(app, "chief").post(f"/api/v1/changes/{theirs}/approve").status_code == 200
    assert Api(app, "boss").post(f"/api/v1/changes/{mine}/approve").status_code == 202
    deliver(app)
    mailbox.take()
    assert Api(app, "chief").post(f"/api/v1/changes/{mine}/approve").status_code == 409  # stale: sent back
    deliver(app)
    assert ("boss@example.org", subject(mine, "request.approvals_dismissed")) in mailbox.take()


def test_the_discussion_is_heard_by_the_submitter_deciders_and_commenters(make_app, mailbox):
    """Issue 25: request.comment, request.changes_requested and request.revised, each to whom it concerns."""
    app = notify_app(make_app, mailbox)
    alice, bob, boss = Api(app, "alice"), Api(app, "bob"), Api(app, "boss")
    change = stage(alice, row("DS-1", "Sales"), row("DS-2", "HR"))
    deliver(app)
    mailbox.take()
    assert bob.post(f"/api/v1/changes/{change}/comments", json={"text": "Why HR?", "key": "DS-2"}).status_code == 201
    deliver(app)
    assert mailbox.take() == [
        ("alice@example.org", subject(change, "request.comment")),
        ("boss@example.org", subject(change, "request.comment")),
    ]
    assert boss.post(f"/api/v1/changes/{change}/request-changes", json={"reason": "Drop DS-2"}).status_code == 200
    deliver(app)
    assert mailbox.take() == [("alice@example.org", subject(change, "request.changes_requested"))]
    r = alice.post(
        f"/api/v1/changes/{change}/revisions",
        data={"file": (io.BytesIO(table(row("DS-1", "Sales")).encode()), "t.csv"), "mode": "partial"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.text
    deliver(app)
    assert mailbox.take() == [
        ("bob@example.org", subject(change, "request.revised")),
        ("boss@example.org", subject(change, "request.revised")),
    ]
