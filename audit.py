"""The audit log: who uploaded, resolved and decided what, and every row an approval changed,
newest first, paged by a cursor, filtered, and downloaded as CSV.

The decisions are the entries of `audit_log` (store/audit.py, the one place they are written);
an approval's row entries are its request's staged rows, read where they are (store/history.py),
not copied into the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

import access
import store.audit
import store.history
import tables
from errors import Unprocessable
from files.csv_write import FormulaSafeWriter, TextSink
from store.audit import EVENT_ACTIONS, ROW_ACTIONS, AuditFilter

__all__ = ["AuditFilter"]

RECORD_HISTORY_LIMIT = 100_000
ACTIONS = ROW_ACTIONS + EVENT_ACTIONS
Cursor = tuple[int, int]  # (audit entry id, staged row id; 0 when the entry itself is the item)


@dataclass
class AuditPage:
    """Audit entries newest first, and the cursor of the next page (None: this is the last)."""

    items: list
    next: Cursor | None


def page(filters: AuditFilter, before: Cursor | None, limit: int) -> AuditPage:
    """Row changes (from the approvals' staged rows) and decisions, newest first, after cursor `before`."""
    filters = visible(filters)
    if filters.action and filters.action not in ROW_ACTIONS + EVENT_ACTIONS:
        raise Unprocessable(f"action must be one of {', '.join(ROW_ACTIONS + EVENT_ACTIONS)}, not {filters.action!r}")
    row_actions = ROW_ACTIONS if not filters.action else tuple(a for a in ROW_ACTIONS if a == filters.action)
    event_actions = EVENT_ACTIONS if not filters.action else tuple(a for a in EVENT_ACTIONS if a == filters.action)
    items = (
        _key_entries(filters, row_actions, event_actions, before, limit + 1)
        if filters.key
        else _entries(filters, row_actions, event_actions, before, limit + 1)
    )
    more = len(items) > limit
    items = items[:limit]
    return AuditPage(items, _cursor_of(items[-1]) if more and items else None)


def _cursor_of(item) -> Cursor:
    return (item.event_id, item.id if item.action in ROW_ACTIONS else 0)


def _older(cursor: Cursor | None, item) -> bool:
    return cursor is None or (item.event_id, item.id if item.action in ROW_ACTIONS else 0) < cursor


def _entries(f: AuditFilter, row_actions: tuple, event_actions: tuple, before: Cursor | None, limit: int) -> list:
    """Walk the decisions newest first; an approval stands for its row changes."""
    actions = (("approve",) if row_actions else ()) + event_actions
    out: list = []
    before_event = before[0] + (1 if before and before[1] else 0) if before else None
    while len(out) < limit:
        batch = store.audit.events(f, actions, before_event, 100)
        for event in batch:
            if event.action != "approve":
                if _older(before, event):
                    out.append(event)
            else:
                before_row = before[1] if before and before[0] == event.id and before[1] else None
                out.extend(
                    store.history.approval_rows(event.id, event.change_id, row_actions, before_row, limit - len(out))
                )
            if len(out) >= limit:
                break
        if len(batch) < 100:
            break
        before_event = batch[-1].id
    return out[:limit]


def _key_entries(f: AuditFilter, row_actions: tuple, event_actions: tuple, before: Cursor | None, limit: int) -> list:
    """The entries of one key: its row changes and the resolutions of its conflicts."""
    where, params = store.audit.clauses(f)
    rows = []
    if row_actions:
        marks = ", ".join(f":act{i}" for i in range(len(row_actions)))
        clauses = [*where, f"p.action IN ({marks})"]
        params = params | {f"act{i}": a for i, a in enumerate(row_actions)}
        if before:
            clauses.append("(a.id < :be OR (a.id = :be AND p.id < :br))")
            params |= {"be": before[0], "br": before[1] or 0}
        rows = store.history.key_entries(f.key or "", clauses, params, limit, prefix=f.key_prefix)
    events = store.audit.events(f, event_actions, before[0] if before else None, limit) if event_actions else []
    merged = sorted(rows + events, key=lambda i: (i.event_id, i.id if i.action in ROW_ACTIONS else 0), reverse=True)
    return merged[:limit]


def record_history(table: tables.TableRef, key: str, limit: int = RECORD_HISTORY_LIMIT) -> list:
    """Every audit entry of one record of a table, newest first."""
    return page(AuditFilter(key=key, tbl=table.id), None, limit).items


AUDIT_CSV_COLUMNS = ("id", "created_at", "action", "key", "change_id", "version", "submitter", "approver",
                     "changed", "before", "after", "note")  # fmt: skip


def visible(filters: AuditFilter) -> AuditFilter:
    """The filters of a log across tables (no `tbl`) narrowed to the tables the person may view."""
    if filters.tbl is not None or filters.tbls is not None:
        return filters
    ids = access.visible_ids()
    return filters if ids is None else replace(filters, tbls=tuple(ids))


def csv_chunks(filters: AuditFilter, as_dicts) -> Iterator[bytes]:
    """The audit entries matching `filters` as CSV, streamed a page at a time; `as_dicts` turns
    entries into API objects (web.present.audit_dicts). Whose tables is decided now, while the
    request is being served, not when the stream is read."""
    return _csv_chunks(visible(filters), as_dicts)


def _csv_chunks(filters: AuditFilter, as_dicts) -> Iterator[bytes]:
    sink = TextSink()
    writer = FormulaSafeWriter(sink)  # keys, reasons and user names are anyone's text
    writer.writerow(AUDIT_CSV_COLUMNS)
    yield "\ufeff".encode() + sink.take().encode()
    cursor: Cursor | None = None
    while True:
        found = page(filters, cursor, 2000)
        for item in as_dicts(found.items):
            before, after = item["before"] or {}, item["after"] or {}
            changed = (
                [n for n in (after or before) if before.get(n) != after.get(n)] if item["action"] == "modify" else []
            )
            writer.writerow(
                [
                    item["id"],
                    item["created_at"],
                    item["action"],
                    item["key"],
                    item["change_id"],
                    item["version"],
                    item["submitter"],
                    item["approver"],
                    " ".join(changed),
                    json.dumps(item["before"], ensure_ascii=False) if item["before"] is not None else "",
                    json.dumps(item["after"], ensure_ascii=False) if item["after"] is not None else "",
                    item["note"] or "",
                ]
            )
        yield sink.take().encode()
        if found.next is None:
            return
        cursor = found.next
