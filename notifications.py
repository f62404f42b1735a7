"""Who hears what: an event of a change request turned into outbox messages (e-mails to people,
calls to webhooks), written in the caller's transaction, so that a rolled-back decision sends
nothing and a committed one is never lost. The sender (sender.py) delivers them.

The workflow (changes.py) calls one function per event, before its commit:
`submitted` (a new request, and its conflicts), `sent_back` (stale at approval), `approved`
(and `reverted` for the request a revert undid), `closed` (rejected or withdrawn).

Who hears it, by default (each person switches kinds off, watches tables, or asks for a daily
digest on /account; see `Preferences`):

| event | who |
|---|---|
| request.submitted | the people who may decide the request's table (admins, its approvers) |
| (needs another approval: e-mail only) | the others who may decide it |
| request.conflicts, .stale, .approved, .rejected, .withdrawn, .reverted | the request's submitter |
| request.approved, .rejected, .withdrawn, .reverted | the people watching the table |

Each person hears of an event once (a submitter watching the table too gets one e-mail). Without
SMTP_URL no e-mail is written; webhooks get every event they subscribed to, of their table or all.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy.orm import Session

import accounts
import events as event_log
import messages
import store.changes
import store.outbox
import tables
from errors import NotFound, Unprocessable
from models import ChangeRequest, OutboxMessage, User, Webhook, db, utcnow
from records import unpack

# What a person can switch off on /account, in the words of that page.
KINDS = {
    "request.submitted": "A new request, or one that needs another approval, on a table I may decide",
    "request.conflicts": "My upload has merge conflicts to resolve",
    "request.stale": "My request was sent back at approval (a later approval changed the same cells)",
    "request.approved": "My request was approved",
    "request.rejected": "My request was rejected (with the reason)",
    "request.withdrawn": "My request was withdrawn",
    "request.reverted": "My request was reverted",
    "request.comment": "A comment on my request, or on one I commented on or may decide",
    "request.changes_requested": "Changes were requested on my request (with what to fix)",
    "request.revised": "A corrected file was uploaded to a request I may decide or commented on",
}
WATCHED = ("request.approved", "request.rejected", "request.withdrawn", "request.reverted")  # decisions
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
OUTBOX_ADDED = "outbox_added"  # Session.info flag: this transaction wrote messages (sender.py wakes up)


class BadWebhook(Unprocessable):
    """A webhook's URL, events or table is not one the app can use."""


@dataclass
class Preferences:
    """What one person hears: kinds switched `off`, tables they `watch`, and whether e-mails wait
    for a daily `digest` instead of going out one per event."""

    off: set[str] = field(default_factory=set)
    watch: list[str] = field(default_factory=list)
    digest: bool = False

    @classmethod
    def of(cls, user: User) -> Preferences:
        """A person's preferences (the defaults for anything not stored).

        >>> Preferences.of(User(notify='{"off": ["request.withdrawn"], "digest": true}'))
        Preferences(off={'request.withdrawn'}, watch=[], digest=True)
        """
        raw = json.loads(user.notify or "{}")
        return cls(set(raw.get("off", [])) & set(KINDS), list(raw.get("watch", [])), bool(raw.get("digest", False)))

    def to_json(self) -> str:
        return json.dumps({"off": sorted(self.off), "watch": self.watch, "digest": self.digest})

    def wants(self, kind: str) -> bool:
        return kind not in self.off


# --- people's settings -----------------------------------------------------------------------


def check_email(address: str) -> str:
    """The address trimmed, or "" to have none; Unprocessable when it is no e-mail address.

    >>> check_email("  ann@example.org "), check_email("")
    ('ann@example.org', '')
    """
    address = address.strip()
    if address and (len(address) > 320 or not EMAIL.fullmatch(address)):
        raise Unprocessable(f"{address[:80]!r} is not an e-mail address (write it like ann@example.org).")
    return address


def set_email(username: str, address: str) -> User:
    """Set (or, with "", remove) a person's e-mail address."""
    user = accounts.find_user(username)
    if user is None:
        raise NotFound(f"There is no user {username!r} (use `users create` first).")
    user.email = check_email(address) or None
    event_log.record("account-changed", details={"username": username, "email": user.email})
    db.session.commit()
    return user


def save_settings(user: User, address: str, wanted: set[str], watch: list[str], digest: bool) -> None:
    """A person's e-mail address and subscriptions, as the account page sends them."""
    names = [t.name for t in tables.every()]
    unknown = [name for name in watch if name not in names]
    if unknown:
        raise Unprocessable(f"There is no table {unknown[0]!r}. Tables: {', '.join(names)}.")
    user.email = check_email(address) or None
    user.notify = Preferences(set(KINDS) - wanted, [n for n in names if n in watch], digest).to_json()
    event_log.record("account-changed", details={"username": user.username, "email": user.email, "notify": user.notify})
    db.session.commit()


def email_enabled() -> bool:
    """Is e-mail configured (SMTP_URL)? Without it nobody gets e-mail, whatever they chose."""
    return bool(current_app.config.get("SMTP_URL"))


# --- the events ------------------------------------------------------------------------------


def submitted(change: ChangeRequest) -> None:
    """A new request (an upload, or a revert staged): its deciders hear of it; its submitter
    hears of the conflicts the merge found, if any."""
    if not _anyone_listens():
        return
    event = _event("request.submitted", change)
    _emit(event, _deciders(change, event.table), change)
    if event.conflicts:
        conflicts = _event("request.conflicts", change)
        _emit(conflicts, _people([change.submitter], conflicts.type), change)


def needs_another_approval(change: ChangeRequest, by: str, approved_by: Sequence[str] = ()) -> None:
    """`by` approved, but the table's policy needs more approvals: the others who may decide hear
    (by e-mail; webhooks hear of the request when it is decided)."""
    if not email_enabled():
        return
    event = _event("request.needs_approval", change, decided_by=by)
    deciders = _deciders(change, event.table)
    _emit(event, {name: user for name, user in deciders.items() if name != by and name not in approved_by}, change)


def approvals_dismissed(change: ChangeRequest, approvers: Sequence[str]) -> None:
    """The request's staged rows changed after some people approved it: their approvals no longer
    count, and they hear (by e-mail) that it needs their approval again."""
    if not approvers or not email_enabled():
        return
    event = _event("request.approvals_dismissed", change)
    _emit(event, _people(list(approvers), "request.needs_approval"), change)


def sent_back(change: ChangeRequest) -> None:
    """An approval found the request stale and sent it back with new conflicts: its submitter hears."""
    if not _anyone_listens():
        return
    event = _event("request.stale", change)
    _emit(event, _people([change.submitter], event.type), change)


def approved(change: ChangeRequest, by: str, version: int) -> None:
    """A request was applied as `version`: its submitter and the table's watchers hear; when it
    reverts another request, that request's submitter and watchers hear it was reverted."""
    if not _anyone_listens():
        return
    event = _event("request.approved", change, status="approved", decided_by=by, version=version)
    _emit(event, _people([change.submitter], event.type) | _watchers(event.table), change)
    if change.reverts is not None and (undone := store.changes.get_request(change.reverts)) is not None:
        reverted = _event(
            "request.reverted", undone, status="reverted", decided_by=by, version=version, reverted_by=change.id
        )
        _emit(reverted, _people([undone.submitter], reverted.type) | _watchers(reverted.table), undone)


def closed(change: ChangeRequest, status: str, by: str, reason: str | None) -> None:
    """A request was rejected (with the reason) or withdrawn: its submitter and the table's watchers hear."""
    if not _anyone_listens():
        return
    event = _event(f"request.{status}", change, status=status, decided_by=by, reason=reason)
    _emit(event, _people([change.submitter], event.type) | _watchers(event.table), change)


def commented(change: ChangeRequest, author: str, text: str, others: Sequence[str]) -> None:
    """A comment on a request (discussion.py): its submitter, the people who may decide it and
    those who commented before hear (not the author), by e-mail and webhook."""
    if not _anyone_listens():
        return
    event = _event("request.comment", change, decided_by=author, reason=text)
    people = _people([change.submitter, *others], event.type) | _deciders_wanting(change, event.table, event.type)
    _emit(event, {name: user for name, user in people.items() if name != author}, change)


def changes_requested(change: ChangeRequest, by: str, reason: str) -> None:
    """A decider sent the request back with what to fix: its submitter hears."""
    if not _anyone_listens():
        return
    event = _event("request.changes_requested", change, decided_by=by, reason=reason)
    _emit(event, _people([change.submitter], event.type), change)


def revised(change: ChangeRequest, others: Sequence[str]) -> None:
    """A corrected file replaced the request's changes: the people who may decide it and those who
    commented hear (not its submitter)."""
    if not _anyone_listens():
        return
    event = _event("request.revised", change)
    people = _people(list(others), event.type) | _deciders_wanting(change, event.table, event.type)
    _emit(event, {name: user for name, user in people.items() if name != change.submitter}, change)


def _deciders_wanting(change: ChangeRequest, table: str, kind: str) -> dict[str, User]:
    """The people who may decide the request's table and did not switch `kind` off."""
    return {name: user for name, user in _deciders(change, table).items() if Preferences.of(user).wants(kind)}


def _anyone_listens() -> bool:
    """Is there anyone to tell (e-mail configured, or a webhook)? Else an event costs nothing."""
    return email_enabled() or store.outbox.has_webhooks()


def _event(kind: str, change: ChangeRequest, **given) -> messages.Event:
    """The event about a request as it is in this transaction (counts re-read: the workflow
    rewrites them with SQL)."""
    db.session.flush()
    db.session.refresh(change)
    names = change.field_names
    rows = []
    for action in ("modify", "add", "delete"):
        for key, _, before, after, _, _ in store.changes.pending_page(
            change.id, action, 0, messages.ROWS_IN_BODY - len(rows)
        ):
            rows.append(
                {
                    "action": action,
                    "key": key,
                    "before": dict(zip(names, unpack(before), strict=False)) if before is not None else None,
                    "after": dict(zip(names, unpack(after), strict=False)) if after is not None else None,
                }
            )
        if len(rows) >= messages.ROWS_IN_BODY:
            break
    values = {
        "status": change.status,
        "version": change.applied_version,
        "decided_by": change.decided_by,
        "reason": change.reason,
    } | given
    return messages.Event(
        type=kind,
        change_id=change.id,
        table=tables.of_request(change).name,
        submitter=change.submitter,
        url=f"{current_app.config['APP_URL']}/changes/{change.id}",
        comment=change.comment or "",
        summary={"added": change.added, "modified": change.modified, "deleted": change.deleted},
        columns=change.column_count_map,
        rows=rows,
        conflicts=change.conflicts,
        **values,
    )


def _people(names: list[str], kind: str) -> dict[str, User]:
    """{name: user} of those of `names` with an e-mail address who did not switch `kind` off."""
    return {u.username: u for u in store.outbox.users_with_email(names) if Preferences.of(u).wants(kind)}


def _deciders(change: ChangeRequest, table: str) -> dict[str, User]:
    approvers = tables.get(table).spec.approvers
    candidates = [u.username for u in store.outbox.users_with_email() if accounts.may_decide(u.username, approvers)]
    return _people(candidates, "request.submitted")


def _watchers(table: str) -> dict[str, User]:
    return {u.username: u for u in store.outbox.users_with_email() if table in Preferences.of(u).watch}


def _emit(event: messages.Event, people: dict[str, User], change: ChangeRequest) -> None:
    """Write the messages of one event: an e-mail per person (held for those who chose the
    digest), a call per webhook that wants it."""
    now = utcnow()
    wrote = False
    if current_app.config.get("SMTP_URL"):
        subject, body = messages.email_text(event)
        for name, user in sorted(people.items()):
            held = Preferences.of(user).digest
            store.outbox.add(
                "email",
                event.type,
                user.email or "",
                body,
                change_id=change.id,
                username=name,
                subject=subject,
                status="held" if held else "pending",
            )
            wrote = wrote or not held
    for hook in store.outbox.webhooks() if event.type in messages.EVENT_TYPES else []:
        if _wants(hook, event):
            message_id = store.outbox.new_message_id()
            body = messages.webhook_body(event, message_id, now)
            store.outbox.add(
                "webhook", event.type, hook.url, body, change_id=change.id, webhook_id=hook.id, message_id=message_id
            )
            wrote = True
    if wrote:
        db.session.info[OUTBOX_ADDED] = True


def _wants(hook: Webhook, event: messages.Event) -> bool:
    events = [e for e in hook.events.split(",") if e]
    return (not events or event.type in events) and hook.table_name in (None, event.table)


# --- digests ---------------------------------------------------------------------------------


def digest_cutoff(now: dt.datetime, hour: int) -> dt.datetime:
    """The last time the digests were due (today's DIGEST_HOUR, or yesterday's before it).

    >>> digest_cutoff(dt.datetime(2026, 1, 2, 6, 59), 7), digest_cutoff(dt.datetime(2026, 1, 2, 7, 0), 7)
    (datetime.datetime(2026, 1, 1, 7, 0), datetime.datetime(2026, 1, 2, 7, 0))
    """
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return today if now >= today else today - dt.timedelta(days=1)


def send_digests(now: dt.datetime | None = None) -> int:
    """Turn the e-mails held before the last DIGEST_HOUR into one digest per person (in one
    commit); returns how many digests were written."""
    now = now or utcnow()
    held = store.outbox.held_before(digest_cutoff(now, current_app.config["DIGEST_HOUR"]))
    by_recipient: dict[str, list[OutboxMessage]] = {}
    for message in held:
        by_recipient.setdefault(message.recipient, []).append(message)
    for recipient, items in by_recipient.items():
        subject, body = messages.digest_text(
            [(m.subject, m.body) for m in items], f"{current_app.config['APP_URL']}/account"
        )
        store.outbox.add("email", "digest", recipient, body, username=items[0].username, subject=subject)
        store.outbox.mark_digested([m.id for m in items])
    if by_recipient:
        db.session.info[OUTBOX_ADDED] = True
    db.session.commit()
    return len(by_recipient)


def expire_finished() -> int:
    """Delete the messages finished (sent, digested, failed) more than KEEP_DECIDED_DAYS ago (clean-up)."""
    cutoff = utcnow() - dt.timedelta(days=current_app.config["KEEP_DECIDED_DAYS"])
    count = store.outbox.delete_finished_before(cutoff)
    db.session.commit()
    return count


# --- webhooks --------------------------------------------------------------------------------


def add_webhook(url: str, secret: str, events: list[str], table: str | None) -> Webhook:
    """Register a webhook (BadWebhook for a URL that is not http(s), unknown events or table)."""
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url):
        raise BadWebhook(f"{url!r} is not an http:// or https:// URL.")
    if not secret:
        raise BadWebhook("A webhook needs a secret (receivers check the signature with it).")
    if secret.startswith(messages.SECRET_PREFIX):
        try:
            messages.secret_key(secret)
        except ValueError:
            raise BadWebhook("A whsec_ secret must be base64 after the prefix.") from None
    unknown = [e for e in events if e not in messages.EVENT_TYPES]
    if unknown:
        raise BadWebhook(f"Unknown event type {unknown[0]!r}; the types are: {', '.join(messages.EVENT_TYPES)}.")
    if table is not None:
        try:
            tables.get(table)
        except NotFound as exc:
            raise BadWebhook(str(exc)) from None
    hook = store.outbox.add_webhook(url, secret, ",".join(events), table)
    db.session.flush()
    event_log.record("webhook-added", table=table, details={"webhook": hook.id, "url": url, "events": events})
    db.session.commit()
    return hook


def webhooks() -> list[Webhook]:
    return store.outbox.webhooks()


def remove_webhook(webhook_id: int) -> None:
    """Delete a webhook and its deliveries (NotFound when there is none)."""
    if not store.outbox.remove_webhook(webhook_id):
        db.session.rollback()
        raise NotFound(f"There is no webhook {webhook_id}.")
    event_log.record("webhook-removed", details={"webhook": webhook_id})
    db.session.commit()


def deliveries(webhook_id: int, limit: int = 50) -> list[OutboxMessage]:
    """A webhook's messages, newest first, with their status, attempts and last error."""
    if store.outbox.get_webhook(webhook_id) is None:
        raise NotFound(f"There is no webhook {webhook_id}.")
    return store.outbox.deliveries(webhook_id, limit)


def messages_about(change_id: int) -> list[OutboxMessage]:
    """Every message written about a change request, oldest first."""
    return store.outbox.messages_of_change(change_id)


def wrote_messages(session: Session) -> bool:
    """Did the transaction just committed write messages to deliver? (and forget it)"""
    return bool(session.info.pop(OUTBOX_ADDED, False))
