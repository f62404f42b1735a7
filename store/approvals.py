"""Approvals of pending requests (`approvals`), and the change set their signatures digest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from itertools import islice

from sqlalchemy import delete, select, text, update

from models import Approval, ChangeRequest, ChangeSet, db, utcnow

SEP = "\x1e"  # between the fields of a staged row in the digest


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


def rows_digest(rows: Iterable[tuple[str, str, str, str]]) -> str:
    """SHA-256 of staged rows (action, key, before, after; an absent side as "") in the order
    given, each written as `action␞key␞before␞after` and a newline. Taken and joined 10,000 rows
    at a time in C (islice, str.join): no Python code runs per row."""
    digest, rows = hashlib.sha256(), iter(rows)
    while batch := list(islice(rows, 10_000)):
        digest.update(("\n".join(map(SEP.join, batch)) + "\n").encode())
    return digest.hexdigest()


def change_set_digest(change_id: int) -> str:
    """The digest of a request's staged rows in the order they were staged (id): the one kept at
    staging, else computed from the database (streamed; only read, so approving writes nothing
    before the request is claimed)."""
    stored = db.session.get(ChangeSet, change_id)
    if stored is not None:
        return stored.digest
    result = db.session.execute(
        text(
            "SELECT action, key, before, after FROM pending_changes WHERE change_id = :id ORDER BY id"
        ).execution_options(yield_per=5000),  # streamed: a million staged rows are never all in memory
        {"id": change_id},
    )
    return rows_digest((action, key, before or "", after or "") for action, key, before, after in result)


def keep_digest(change_id: int, digest: str) -> None:
    db.session.merge(ChangeSet(change_id=change_id, digest=digest))


def forget_digest(change_id: int) -> None:
    """The staged rows changed: the next digest is computed from them again."""
    db.session.execute(delete(ChangeSet).where(ChangeSet.change_id == change_id))


def forget_pending_digests(tbl: int) -> None:
    """Start-up rewrote the staged rows of a table's pending requests (columns changed)."""
    pending = select(ChangeRequest.id).where(ChangeRequest.tbl == tbl, ChangeRequest.status == "pending")
    db.session.execute(delete(ChangeSet).where(ChangeSet.change_id.in_(pending)))
