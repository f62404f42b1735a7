"""What happened to the table: the audit log and the history of one record."""

from __future__ import annotations

import store.audit
from store.audit import AuditFilter

__all__ = ["AuditFilter", "audit", "record_history"]

RECORD_HISTORY_LIMIT = 100_000


def audit(filters: AuditFilter, before: int | None, limit: int) -> list:
    """Audit entries newest first matching `filters`, older than entry `before` when given."""
    return store.audit.audit_page(filters, before, limit)


def record_history(key: str, limit: int = RECORD_HISTORY_LIMIT) -> list:
    """Every audit entry of one record, newest first."""
    return store.audit.audit_page(AuditFilter(key=key), None, limit)
