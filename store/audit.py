"""The audit log: the one place audit rows are written (row changes of an approval, decisions), and its reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import DateTime, text

from models import AuditEntry, db, utcnow
from store.base import is_postgres

# --- writing ---------------------------------------------------------------------------------


def write_row_changes(change_id: int, version: int, submitter: str, approver: str, submitted_at: dt.datetime) -> None:
    """One audit entry per staged row of an approved request, copied set-based in staging order."""
    audit = text(
        "INSERT INTO audit_log"
        " (change_id, action, key, before, after, submitter, approver, submitted_at, created_at, version)"
        " SELECT change_id, action, key, before, after, :submitter, :approver, :submitted_at, :now, :v"
        " FROM pending_changes WHERE change_id = :id AND action = :action ORDER BY id"
    )
    params = {
        "id": change_id,
        "v": version,
        "submitter": submitter,
        "approver": approver,
        "submitted_at": submitted_at,
        "now": utcnow(),
    }
    if is_postgres():
        # Read the staged rows in id order from the (change_id, action, id) index. With statistics
        # from before a big upload the planner expects a few rows and sorts instead, which for a
        # million rows spills to disk (2 s).
        db.session.execute(text("SET LOCAL enable_sort = off"))
    for action in ("add", "modify", "delete"):  # the order stage_rows wrote them in: audit ids follow
        db.session.execute(audit, params | {"action": action})
    if is_postgres():
        db.session.execute(text("SET LOCAL enable_sort = on"))


def write_decision(
    change_id: int, action: str, submitter: str, approver: str | None, submitted_at: dt.datetime, note: str | None
) -> None:
    """The audit entry of a request closed without being applied (reject, withdraw)."""
    db.session.add(
        AuditEntry(
            change_id=change_id,
            action=action,
            submitter=submitter,
            approver=approver,
            submitted_at=submitted_at,
            note=note,
            version=None,
        )
    )


# --- reading ---------------------------------------------------------------------------------


@dataclass
class AuditFilter:
    """Which audit entries to read; None means any."""

    key: str | None = None
    user: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    change_id: int | None = None


def audit_page(f: AuditFilter, before_id: int | None, limit: int) -> list:
    """Audit entries newest first, joined with their request's field list; keyset-paged by id."""
    conditions = {  # parameter → (its value, the clause it adds when given)
        "key": (f.key, "a.key = :key"),
        "user": (f.user, "(a.submitter = :user OR a.approver = :user)"),
        "since": (f.since, "a.created_at >= :since"),
        "until": (f.until, "a.created_at < :until"),
        "change_id": (f.change_id, "a.change_id = :change_id"),
        "before_id": (before_id, "a.id < :before_id"),
    }
    clauses = [clause for value, clause in conditions.values() if value]
    params = {name: value for name, (value, _) in conditions.items() if value} | {"limit": limit}
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    # `where` is built from constant clauses only; every value is a bound parameter.
    sql = (
        "SELECT a.id, a.change_id, a.action, a.key, a.before, a.after, a.submitter, a.approver,"  # noqa: S608
        " a.submitted_at, a.created_at, a.version, a.note, c.fields"
        " FROM audit_log a LEFT JOIN change_requests c ON c.id = a.change_id"
        + where
        + " ORDER BY a.id DESC LIMIT :limit"
    )
    typed = text(sql).columns(submitted_at=DateTime, created_at=DateTime)  # SQLite hands back text otherwise
    return list(db.session.execute(typed, params))
