"""The outbox and the webhooks: every message to deliver, claimed by senders, and where webhooks go.

Claiming is one conditional UPDATE (with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so senders in
any number of processes and hosts take disjoint messages without waiting for each other); a claim
carries a token and an expiry, and a delivery's outcome is written only while the token still
holds it, so a sender whose claim expired cannot overwrite another's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, select, text

from models import OutboxMessage, User, Webhook, db

# --- writing messages ------------------------------------------------------------------------


def add(
    channel: str,
    event: str,
    recipient: str,
    body: str,
    *,
    change_id: int | None = None,
    username: str | None = None,
    subject: str = "",
    webhook_id: int | None = None,
    status: str = "pending",
    message_id: str | None = None,
    created_at: dt.datetime | None = None,
) -> OutboxMessage:
    """Add a message to the caller's transaction; its `message_id` (the webhook-id) is made here."""
    message = OutboxMessage(
        message_id=message_id or new_message_id(),
        channel=channel,
        event=event,
        change_id=change_id,
        webhook_id=webhook_id,
        recipient=recipient,
        username=username,
        subject=subject,
        body=body,
        status=status,
        attempts=0,
    )
    if created_at is not None:
        message.created_at = message.next_attempt_at = created_at
    db.session.add(message)
    return message


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


# --- claiming and delivering -----------------------------------------------------------------


@dataclass
class Claimed:
    """A message a sender holds: what to deliver, where, and (webhooks) with which secret."""

    id: int
    message_id: str
    channel: str
    recipient: str
    subject: str
    body: str
    attempts: int
    created_at: dt.datetime
    secret: str | None


CLAIM = (
    "UPDATE outbox SET claimed_by = :token, claimed_until = :until WHERE id IN ("
    " SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now"
    " AND (claimed_until IS NULL OR claimed_until < :now) ORDER BY id LIMIT :limit{lock})"
)
# Senders on PostgreSQL skip the rows another sender is claiming instead of waiting for it.
CLAIM_POSTGRESQL = CLAIM.format(lock=" FOR UPDATE SKIP LOCKED")
CLAIM = CLAIM.format(lock="")


def claim(token: str, now: dt.datetime, until: dt.datetime, limit: int) -> list[Claimed]:
    """Claim up to `limit` due messages (pending, due, not held by an unexpired claim) for `token`
    until `until`; the caller commits at once, so other senders see the claim."""
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    db.session.execute(
        text(CLAIM_POSTGRESQL if postgresql else CLAIM), {"token": token, "until": until, "now": now, "limit": limit}
    )
    rows = db.session.execute(
        select(
            OutboxMessage.id,
            OutboxMessage.message_id,
            OutboxMessage.channel,
            OutboxMessage.recipient,
            OutboxMessage.subject,
            OutboxMessage.body,
            OutboxMessage.attempts,
            OutboxMessage.created_at,
            Webhook.secret,
        )
        .outerjoin(Webhook, Webhook.id == OutboxMessage.webhook_id)
        .where(OutboxMessage.claimed_by == token, OutboxMessage.status == "pending")
        .order_by(OutboxMessage.id)
    )
    return [Claimed(*row) for row in rows]


def finish(
    message_id: int,
    token: str,
    status: str,
    now: dt.datetime,
    *,
    error: str | None = None,
    next_attempt_at: dt.datetime | None = None,
) -> bool:
    """Record one delivery attempt of a claimed message: sent, failed for good, or `pending` again
    at `next_attempt_at`. False (nothing written) when the claim is no longer this sender's."""
    result = db.session.execute(
        text(
            "UPDATE outbox SET status = :status, attempts = attempts + 1, last_error = :error,"
            " sent_at = :sent_at, next_attempt_at = :next_at, claimed_by = NULL, claimed_until = NULL"
            " WHERE id = :id AND claimed_by = :token"
        ),
        {
            "status": status,
            "error": error,
            "sent_at": now if status == "sent" else None,
            "next_at": next_attempt_at or now,
            "id": message_id,
            "token": token,
        },
    )
    return result.rowcount == 1


def delete_finished_before(cutoff: dt.datetime) -> int:
    """Forget messages delivered, digested or given up on before `cutoff`; returns how many."""
    result = db.session.execute(
        db.delete(OutboxMessage).where(
            OutboxMessage.status.in_(["sent", "digested", "failed"]), OutboxMessage.created_at < cutoff
        )
    )
    return result.rowcount


def next_due() -> dt.datetime | None:
    """When the next pending message is due, or its claim expires (None: none is pending)."""
    due = case(
        (OutboxMessage.claimed_until > OutboxMessage.next_attempt_at, OutboxMessage.claimed_until),
        else_=OutboxMessage.next_attempt_at,
    )
    query = select(func.min(due)).where(OutboxMessage.status == "pending")
    return db.session.scalar(query)


def has_held() -> bool:
    """Do e-mails wait for a digest?"""
    query = select(OutboxMessage.id).where(OutboxMessage.status == "held").limit(1)
    return db.session.scalar(query) is not None


# --- digests ---------------------------------------------------------------------------------


def held_before(cutoff: dt.datetime) -> list[OutboxMessage]:
    """E-mails held for digests, written before `cutoff`, by recipient then age; locked on PostgreSQL
    so that two senders cannot digest the same ones."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "held", OutboxMessage.created_at < cutoff)
        .order_by(OutboxMessage.recipient, OutboxMessage.id)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(db.session.scalars(query))


def mark_digested(ids: Sequence[int]) -> None:
    if ids:
        db.session.execute(db.update(OutboxMessage).where(OutboxMessage.id.in_(list(ids))).values(status="digested"))


# --- webhooks --------------------------------------------------------------------------------


def add_webhook(url: str, secret: str, events: str, table_name: str | None) -> Webhook:
    hook = Webhook(url=url, secret=secret, events=events, table_name=table_name)
    db.session.add(hook)
    return hook


def webhooks() -> list[Webhook]:
    return list(db.session.scalars(select(Webhook).order_by(Webhook.id)))


def has_webhooks() -> bool:
    return db.session.scalar(select(Webhook.id).limit(1)) is not None


def get_webhook(webhook_id: int) -> Webhook | None:
    return db.session.get(Webhook, webhook_id)


def remove_webhook(webhook_id: int) -> bool:
    """Delete a webhook and its messages (delivered or not); False when there was none."""
    db.session.execute(db.delete(OutboxMessage).where(OutboxMessage.webhook_id == webhook_id))
    return db.session.execute(db.delete(Webhook).where(Webhook.id == webhook_id)).rowcount == 1


def deliveries(webhook_id: int, limit: int) -> list[OutboxMessage]:
    """A webhook's messages, newest first."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.webhook_id == webhook_id)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def messages_of_change(change_id: int) -> list[OutboxMessage]:
    """Every message about a change request, oldest first."""
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.change_id == change_id)))


# --- people ----------------------------------------------------------------------------------


def users_with_email(names: Sequence[str] | None = None) -> list[User]:
    """Active accounts with an e-mail address (of `names`, or all), by name."""
    query = select(User).where(User.email.is_not(None), User.email != "", User.disabled_at.is_(None))
    if names is not None:
        query = query.where(User.username.in_(list(names)))
    return list(db.session.scalars(query.order_by(User.username)))
