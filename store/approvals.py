"""Approvals of pending requests (`approvals`), and the change set their signatures digest."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, text, update

from models import Approval, db, utcnow


def add(change_id: int, username: str, **values) -> Approval:
    approval = Approval(change_id=change_id, username=username, **values)
    db.session.add(approval)
    return approval


def of(change_id: int, *, dismissed: bool = False) -> list[Approval]:
    """A request's approvals, oldest first: the counting ones, or (dismissed) every one."""
    query = select(Approval).where(Approval.change_id == change_id).order_by(Approval.id)
    if not dismissed:
        query = query.where(Approval.dismissed_at.is_(None))
    return list(db.session.scalars(query))


def dismiss(change_id: int, why: str) -> int:
    """Stop counting a request's approvals (kept, marked); returns how many."""
    result = db.session.execute(
        update(Approval)
        .where(Approval.change_id == change_id, Approval.dismissed_at.is_(None))
        .values(dismissed_at=utcnow(), dismissed_why=why)
    )
    return result.rowcount or 0


def set_version(change_id: int, version: int) -> None:
    """The version the request became, on its counting approvals (the signature record shows it)."""
    db.session.execute(
        update(Approval).where(Approval.change_id == change_id, Approval.dismissed_at.is_(None)).values(version=version)
    )


def change_set_digest(change_id: int) -> str:
    """SHA-256 of a request's staged rows in key order: action, key, before, after of each, so any
    change to what would be applied changes it."""
    digest = hashlib.sha256()
    result = db.session.execute(
        text(
            "SELECT action, key, before, after FROM pending_changes WHERE change_id = :id ORDER BY key, action"
        ).execution_options(yield_per=5000),  # streamed: a million staged rows are never all in memory
        {"id": change_id},
    )
    for action, key, before, after in result:
        digest.update(f"{action}\x1e{key}\x1e{before or ''}\x1e{after or ''}\n".encode())
    return digest.hexdigest()
