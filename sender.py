"""The sender: delivers the outbox's messages, by SMTP and by signed HTTP POST, off the request path.

Each app process runs one sender thread, started lazily: when a commit wrote messages (an
`after_commit` hook), or at the first request when messages wait from before. It stops when the
outbox holds nothing more for it, and starts again at the next message. `flask --app app notify
run` runs the same loop as a process of its own (NOTIFY_SENDER=false leaves delivery to it).

Any number of senders share the work: each claims a few due messages at a time (store.outbox.claim,
`FOR UPDATE SKIP LOCKED` on PostgreSQL), for NOTIFY_CLAIM_SECONDS. A sender that dies leaves its
claims to expire; the messages then go out again with the same webhook-id (at least once). A
failed delivery (no answer within TIMEOUT_SECONDS, a non-2xx status, an SMTP error) is retried with
exponential back-off (NOTIFY_RETRY_SECONDS, doubling) for NOTIFY_RETRY_HOURS, then marked failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import config
import messages
import notifications
import store.outbox
from models import db, utcnow

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10  # an SMTP server or webhook receiver that takes longer has failed this attempt
BATCH = 10  # messages one claim takes
IDLE_POLL_SECONDS = 30.0  # while messages wait for a retry (or a digest), look again this often at most
DIGEST_CHECK_SECONDS = 60.0


class DeliveryFailed(Exception):
    """One delivery attempt failed; `permanent` ones are not retried."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


# --- one pass --------------------------------------------------------------------------------


@dataclass
class Pass:
    """What one pass over the outbox did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def claimed(self) -> int:
        return self.sent + self.retrying + self.failed


def deliver_due(limit: int = BATCH, worker: str | None = None) -> Pass:
    """Claim up to `limit` due messages, deliver them, and record each outcome (in the app context)."""
    cfg = current_app.config
    token = f"{worker or _worker_name()}:{uuid.uuid4().hex[:12]}"
    now = utcnow()
    claimed = store.outbox.claim(token, now, now + dt.timedelta(seconds=cfg["NOTIFY_CLAIM_SECONDS"]), limit)
    db.session.commit()
    done = Pass()
    for message in claimed:
        try:
            _deliver(message)
        except DeliveryFailed as exc:
            at = utcnow()
            give_up = exc.permanent or at - message.created_at >= dt.timedelta(hours=cfg["NOTIFY_RETRY_HOURS"])
            delay = messages.retry_delay(message.attempts + 1, cfg["NOTIFY_RETRY_SECONDS"])
            store.outbox.finish(
                message.id,
                token,
                "failed" if give_up else "pending",
                at,
                error=str(exc)[:1000],
                next_attempt_at=at + dt.timedelta(seconds=delay),
            )
            if give_up:
                done.failed += 1
                log.warning("gave up on message %s to %s: %s", message.message_id, message.recipient, exc)
            else:
                done.retrying += 1
        else:
            store.outbox.finish(message.id, token, "sent", utcnow())
            done.sent += 1
        db.session.commit()
    return done


def deliver_all(worker: str | None = None) -> Pass:
    """Deliver every message due now, pass after pass, until none is left."""
    total = Pass()
    while True:
        done = deliver_due(worker=worker)
        total.sent, total.retrying, total.failed = (
            total.sent + done.sent,
            total.retrying + done.retrying,
            total.failed + done.failed,
        )
        if not done.claimed:
            return total


def _worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}"


def _deliver(message: store.outbox.Claimed) -> None:
    if message.channel == "webhook":
        post_webhook(message.recipient, message.secret or "", message.message_id, message.body)
    else:
        send_email(message.recipient, message.subject, message.body, message.message_id)


# --- the two ways out ------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook answering with a redirect has not taken the message (and its body must not be re-sent elsewhere)."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects())


def post_webhook(url: str, secret: str, message_id: str, body: str) -> int:
    """POST a signed message; its HTTP status when 2xx, DeliveryFailed otherwise."""
    timestamp = int(time.time())
    headers = dict(messages.webhook_headers(secret, message_id, timestamp, body))
    request = urllib.request.Request(url, data=body.encode("utf-8"), headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryFailed(f"no answer: {getattr(exc, 'reason', exc)}") from None


def send_email(to: str, subject: str, body: str, message_id: str) -> None:
    """Send one e-mail through SMTP_URL; DeliveryFailed (permanent when the server refuses the address)."""
    server = config.smtp_server(current_app.config["SMTP_URL"])
    mail = EmailMessage()
    mail["From"] = current_app.config["MAIL_FROM"]
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{message_id}@dataset-tracker>"  # the same on a retry, like webhook-id
    mail.set_content(body)
    try:
        if server.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host, server.port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if server.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if server.user:
                smtp.login(server.user, server.password)
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailed(f"the SMTP server refused {to}: {exc.recipients}", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP: {exc}") from None


# --- the thread of each app process ----------------------------------------------------------


class _Thread:
    """This process's sender thread for one app: started on demand, woken by new messages."""

    def __init__(self, app: Flask):
        self.app = app
        self.wake = threading.Event()
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.wake.set()
            if self.pid != os.getpid():  # forked (gunicorn): the parent's thread is not ours
                self.pid, self.thread = os.getpid(), None
            if self.thread is None or not self.thread.is_alive():
                self.stopping = False
                self.thread = threading.Thread(target=self.run, name="notify-sender", daemon=True)
                self.thread.start()

    def run(self) -> None:
        last_digest = 0.0
        while not self.stopping:
            self.wake.clear()
            try:
                with self.app.app_context():
                    if time.monotonic() - last_digest > DIGEST_CHECK_SECONDS:
                        notifications.send_digests()
                        last_digest = time.monotonic()
                    deliver_all()
                    waiting = _next_wake()
                    db.session.remove()
            except SQLAlchemyError:
                log.exception("the notification sender could not reach the database; trying again")
                waiting = utcnow()
            except Exception:  # a bug must not end delivery for the life of the process
                log.exception("the notification sender failed; trying again")
                waiting = utcnow()
            if waiting is None:
                with self.lock:
                    if not self.wake.is_set():  # nothing left, and nothing new arrived meanwhile
                        self.thread = None
                        return
                continue
            pause = min(IDLE_POLL_SECONDS, max(0.05, (waiting - utcnow()).total_seconds()))
            self.wake.wait(pause)

    def stop(self, timeout: float = 15) -> None:
        self.stopping = True
        self.wake.set()
        thread = self.thread
        if thread is not None:
            thread.join(timeout)


def _next_wake() -> dt.datetime | None:
    """When the thread has work again: the next retry, a while from now while e-mails wait for
    a digest, or None (nothing left: the thread ends)."""
    due = store.outbox.next_due()
    if due is None and store.outbox.has_held():
        return utcnow() + dt.timedelta(seconds=IDLE_POLL_SECONDS)
    return due


_threads: dict[int, _Thread] = {}
_threads_lock = threading.Lock()


def _for(app: Flask) -> _Thread:
    with _threads_lock:
        if id(app) not in _threads:
            _threads[id(app)] = _Thread(app)
        return _threads[id(app)]


def wake(app: Flask) -> None:
    """Start (or wake) this process's sender for `app` when the app runs one (NOTIFY_SENDER)."""
    if app.config.get("NOTIFY_SENDER"):
        _for(app).start()


def stop(app: Flask, timeout: float = 15) -> None:
    """Stop this process's sender thread for `app` (tests; the process's end stops it otherwise)."""
    with _threads_lock:
        worker = _threads.pop(id(app), None)
    if worker is not None:
        worker.stop(timeout)


def start_if_waiting() -> None:
    """before_request, once per process: start the sender when messages wait from before (a
    restart after a crash, or messages written by another host)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    key = (id(app), os.getpid())
    if key in _checked or not app.config.get("NOTIFY_SENDER"):
        return
    _checked.add(key)
    if _next_wake() is not None:
        wake(app)


_checked: set[tuple[int, int]] = set()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """A commit that wrote messages wakes this process's sender (never waiting for it)."""
    if notifications.wrote_messages(session):
        try:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        except RuntimeError:  # no app context: a sender of another process will find them
            return
        wake(app)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(notifications.OUTBOX_ADDED, None)


# --- `flask --app app notify run` ------------------------------------------------------------


def run_forever(poll_seconds: float = 5.0, worker: str | None = None) -> None:
    """Deliver messages as they become due, until the process is stopped (the worker command)."""
    last_digest = 0.0
    while True:
        try:
            if time.monotonic() - last_digest > DIGEST_CHECK_SECONDS:
                notifications.send_digests()
                last_digest = time.monotonic()
            done = deliver_all(worker)
            db.session.remove()
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("the notification sender could not reach the database; trying again")
            done = Pass()
        if not done.claimed:
            time.sleep(poll_seconds)
