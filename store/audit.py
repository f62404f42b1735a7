"""The audit log's decisions (`audit_log`): the one place they are written, and their filtered reads.

An approval writes one `approve` entry; the row changes it applied are its request's staged rows
(store.history reads them as the log's row entries), so no row is written twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import DateTime, text

from models import AuditEntry, db
from store.base import key_prefix_clause

# --- writing ---------------------------------------------------------------------------------


def write(
    change_id: int,
    action: str,
    submitter: str,
    approver: str | None,
    submitted_at: dt.datetime,
    *,
    version: int | None = None,
    key: str | None = None,
    note: str | None = None,
) -> None:
    """One audit entry: approve (with the version it made), reject, withdraw, or resolve (a key)."""
    db.session.add(
        AuditEntry(
            change_id=change_id,
            action=action,
            submitter=submitter,
            approver=approver,
            submitted_at=submitted_at,
            version=version,
            key=key,
            note=note,
        )
    )


# --- reading ---------------------------------------------------------------------------------


def has_entry(change_id: int, action: str) -> bool:
    """Whether a request has an audit entry of `action` (e.g. `resolve`: its submitter settled a conflict)."""
    query = db.select(AuditEntry.id).where(AuditEntry.change_id == change_id, AuditEntry.action == action).limit(1)
    return db.session.execute(query).first() is not None


ROW_ACTIONS = ("add", "modify", "delete")
EVENT_ACTIONS = ("reject", "withdraw", "resolve", "signature")  # signature: an approval signed electronically


@dataclass
class AuditFilter:
    """Which audit entries to read; None means any. `action` is a row action or a decision."""

    key: str | None = None
    user: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    change_id: int | None = None
    action: str | None = None
    key_prefix: bool = False  # `key` is the beginning of the keys, in any case (the audit page's filter)
    tbl: int | None = None  # entries of the requests of one table
    tbls: tuple[int, ...] | None = None  # entries of the requests of these tables (those a person may view)


def clauses(f: AuditFilter) -> tuple[list[str], dict]:
    """SQL conditions on the audit entry `a` for the filters other than key and action, with their parameters."""
    conditions = {  # parameter → (its value, the clause it adds when given)
        "user": (f.user, "(a.submitter = :user OR a.approver = :user)"),
        "since": (f.since, "a.created_at >= :since"),
        "until": (f.until, "a.created_at < :until"),
        "change_id": (f.change_id, "a.change_id = :change_id"),
        "tbl": (f.tbl, "a.change_id IN (SELECT id FROM change_requests WHERE tbl = :tbl)"),
    }
    where = [clause for value, clause in conditions.values() if value]
    params = {name: value for name, (value, _) in conditions.items() if value}
    if f.tbls is not None:
        marks = ", ".join(f":tbls{i}" for i in range(len(f.tbls))) or "NULL"
        where.append(f"a.change_id IN (SELECT id FROM change_requests WHERE tbl IN ({marks}))")  # noqa: S608 - marks only
        params |= {f"tbls{i}": tbl for i, tbl in enumerate(f.tbls)}
    return where, params


def events(f: AuditFilter, actions: tuple[str, ...], before_id: int | None, limit: int) -> list:
    """Audit entries with one of `actions`, newest first, older than entry `before_id` when given."""
    where, params = clauses(f)
    marks = ", ".join(f":act{i}" for i in range(len(actions)))
    where.append(f"a.action IN ({marks})")
    params |= {f"act{i}": action for i, action in enumerate(actions)}
    if f.key and f.key_prefix:
        clause, found = key_prefix_clause("a.key", f.key, "ak")
        where.append(clause)
        params |= found
    elif f.key:
        where.append("a.key = :key")
        params["key"] = f.key
    if before_id:
        where.append("a.id < :before_id")
        params["before_id"] = before_id
    sql = (
        "SELECT a.id, a.change_id, a.action, a.key, NULL AS before, NULL AS after, a.submitter, a.approver,"  # noqa: S608 - constant clauses
        " a.submitted_at, a.created_at, a.version, a.note, c.fields, a.id AS event_id"
        " FROM audit_log a LEFT JOIN change_requests c ON c.id = a.change_id"
        f" WHERE {' AND '.join(where)} ORDER BY a.id DESC LIMIT :limit"
    )
    typed = text(sql).columns(submitted_at=DateTime, created_at=DateTime)  # SQLite hands back text otherwise
    return list(db.session.execute(typed, params | {"limit": limit}))
