"""The event log: one append-only, hash-chained record of what people did (sign-ins, accounts,
tokens, downloads, uploads, decisions, start-up schema changes), readable by admins and AUDITORS.

Each event's `hash` is SHA-256 over the previous event's hash and the event's canonical JSON
(`canonical`), so editing, removing or reordering any event breaks every hash after it; `verify`
recomputes the chain. Writers take the chain head first (store.events.advance_head), inside the
caller's transaction, so several processes and hosts keep one chain; callers write their event
last, just before their one commit, so the head is held only for a moment.

>>> canonical({"id": 1, "type": "sign-in", "details": {"b": 1, "a": "é"}})
'{"details":{"a":"é","b":1},"id":1,"type":"sign-in"}'
>>> chain_hash("0" * 64, "{}")[:12]
'5508d2b710e6'
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import current_app, has_request_context, request
from flask_login import current_user

import store.events
from errors import Forbidden
from files.csv_write import TextSink
from files.formulas import escape_formula
from models import Event, db, utcnow
from store.events import EventFilter

GENESIS = "0" * 64
TYPES = (
    "sign-in",
    "sign-in-failed",
    "sign-out",
    "user-created",
    "user-disabled",
    "user-enabled",
    "password-changed",
    "groups-changed",
    "account-changed",
    "token-created",
    "token-revoked",
    "webhook-added",
    "webhook-removed",
    "download",
    "export",
    "upload-staged",
    "upload-refused",
    "resolve",
    "approve",
    "reject",
    "withdraw",
    "revert",
    "comment",  # discussion.py: a comment on a request, a row or a cell
    "comment-edited",  # with the text it replaced: the log keeps a comment's history
    "comment-deleted",
    "changes-requested",
    "revise",  # a corrected file replaced a request's staged rows (revision N)
    "override",
    "signature",
    "schema-change",
)
_CONTEXT = object()  # "the signed-in user (or nobody) of the request being served"


def canonical(value: Any) -> str:
    """The one JSON text of a value that the hash covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(previous: str, canonical_json: str) -> str:
    """SHA-256 (hex) of the previous event's hash followed by this event's canonical JSON."""
    return hashlib.sha256((previous + canonical_json).encode()).hexdigest()


def timestamp(at: dt.datetime) -> str:
    """An event's UTC time as the API and the hash write it: `2026-12-06T06:30:00.123456Z`."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_dict(event: Event) -> dict[str, Any]:
    """An event as the API shows it and the hash covers it (`hash` itself aside)."""
    return {
        "id": event.id,
        "at": timestamp(event.at),
        "type": event.type,
        "user": event.username,
        "address": event.address,
        "table": event.table_name,
        "change_id": event.change_id,
        "details": json.loads(event.details),
    }


def record(
    type_: str,
    *,
    user: str | object | None = _CONTEXT,
    table: str | None = None,
    change_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    """Append one event in the caller's transaction (the caller commits, and writes its event last).

    `user` defaults to the signed-in user of the request being served, the address to its client's;
    on the console both are empty and `details` says "console"."""
    if type_ not in TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    address = None
    if has_request_context():
        address = (request.remote_addr or "")[:64] or None
        if user is _CONTEXT:
            user = current_user.username if current_user and current_user.is_authenticated else None
    elif user is _CONTEXT:
        user = None
    details = dict(details or {})
    if not has_request_context():
        details.setdefault("via", "console")
    event_id, previous = store.events.advance_head()
    event = Event(
        id=event_id,
        at=utcnow(),
        type=type_,
        username=user,  # type: ignore[arg-type]
        address=address,
        table_name=table,
        change_id=change_id,
        details=canonical(details),
    )
    event.hash = chain_hash(previous, canonical(as_dict(event)))
    store.events.append(event)
    return event


def record_now(type_: str, **fields: Any) -> Event:
    """`record` in a transaction of its own (reads such as downloads, which commit nothing else)."""
    event = record(type_, **fields)
    db.session.commit()
    return event


# --- reading -----------------------------------------------------------------------------------


def may_read(username: str | None) -> bool:
    """Admins (ADMIN_USER) and the AUDITORS read the event log; nobody else."""
    config = current_app.config
    return bool(username) and (username in config["ADMIN_USERS"] or username in config.get("AUDITORS", ()))


def require_reader(username: str | None) -> None:
    if not may_read(username):
        raise Forbidden("Only admins and auditors (the AUDITORS setting) may read the event log.")


@dataclass(frozen=True)
class Page:
    items: list[Event]
    next: int | None  # the `before` of the next (older) page


def page(username: str | None, where: EventFilter, before: int | None, limit: int) -> Page:
    """Events newest first for an admin or auditor (Forbidden for anyone else)."""
    require_reader(username)
    found = store.events.page(where, before, limit)
    more = len(found) > limit
    items = found[:limit]
    return Page(items, items[-1].id if more and items else None)


def all_matching(username: str | None, where: EventFilter) -> Iterator[list[Event]]:
    """Every matching event newest first, in batches (the CSV export); Forbidden unless admin or auditor."""
    require_reader(username)
    return store.events.all_matching(where)


def head() -> dict[str, Any]:
    """The last event's id and hash, to anchor the chain outside (`{"id": 0, "hash": GENESIS}` when empty)."""
    last_id, last_hash = store.events.head()
    return {"id": last_id, "hash": last_hash}


CSV_COLUMNS = ("id", "at", "type", "user", "address", "table", "change_id", "details", "hash")


def csv_chunks(username: str | None, where: EventFilter) -> Iterator[bytes]:
    """The matching events as CSV (UTF-8 with BOM, CRLF), formula-escaped for spreadsheets,
    a batch at a time; Forbidden unless admin or auditor (checked before the first byte)."""
    batches = all_matching(username, where)

    def chunks() -> Iterator[bytes]:
        sink = TextSink()
        writer = csv.writer(sink, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        yield "\ufeff".encode() + sink.take().encode()
        for batch in batches:
            for event in batch:
                item = as_dict(event)
                cells = [*(item[c] for c in CSV_COLUMNS[:7]), canonical(item["details"]), event.hash]
                writer.writerow(["" if c is None else escape_formula(c) if isinstance(c, str) else c for c in cells])
            yield sink.take().encode()

    return chunks()


@dataclass(frozen=True)
class Verified:
    count: int
    head: str
    broken: int | None = None  # the first event whose hash does not match
    problem: str = ""


def verify() -> Verified:
    """Recompute the chain from the first event: the count and head hash, or the first event
    that does not match (edited, removed, inserted or reordered), with what is wrong."""
    previous, expected_id, count = GENESIS, 1, 0
    for event in store.events.in_order():
        if event.id != expected_id:
            return Verified(count, previous, expected_id, f"event {expected_id} is missing (the next is {event.id})")
        try:
            body = canonical(as_dict(event))
        except (ValueError, TypeError):
            return Verified(count, previous, event.id, f"event {event.id}: its details are not JSON")
        if chain_hash(previous, body) != event.hash:
            return Verified(count, previous, event.id, f"event {event.id}: its hash does not match its contents")
        previous, expected_id, count = event.hash, expected_id + 1, count + 1
    last_id, last_hash = store.events.head()
    if last_id != count or last_hash != previous:
        return Verified(
            count,
            previous,
            count + 1,
            f"the chain head says {last_id} events ending in {last_hash[:12]}…, the log has {count}",
        )
    return Verified(count, previous)
