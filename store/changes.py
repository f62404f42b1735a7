"""Change requests and their staged rows (`change_requests`, `pending_changes`).

Staging writes a diff with COPY (PostgreSQL) or executemany (SQLite); approval applies the staged
rows to the table with a few set-based statements.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from diff import ROW_KINDS, Diff
from models import ChangeRequest, MergeConflict, PendingChange, db, utcnow
from records import SEP, changed_marker, marker_names
from store.base import COPY_BATCH, is_postgres, like_pattern, raw_cursor

# --- requests --------------------------------------------------------------------------------


def add_request(**values) -> ChangeRequest:
    """A new pending change request (its id assigned); the caller stages its rows and commits."""
    change = ChangeRequest(**values)
    db.session.add(change)
    db.session.flush()
    return change


def get_request(change_id: int) -> ChangeRequest | None:
    return db.session.get(ChangeRequest, change_id)


def list_requests(
    status: str | None, offset: int, limit: int, tbl: int | Sequence[int] | None = None
) -> list[ChangeRequest]:
    """Requests newest first, of one status (None: all), of one table or several (None: every table)."""
    query = select(ChangeRequest).order_by(ChangeRequest.id.desc())
    if status:
        query = query.where(ChangeRequest.status == status)
    query = _of_tables(query, tbl)
    return list(db.session.scalars(query.offset(offset).limit(limit)))


def _of_tables(query, tbl: int | Sequence[int] | None):
    if tbl is None:
        return query
    return query.where(ChangeRequest.tbl == tbl if isinstance(tbl, int) else ChangeRequest.tbl.in_(list(tbl)))


def batch_members(batch: int) -> list[ChangeRequest]:
    """The requests of one upload spanning tables, in the order they were staged."""
    return list(
        db.session.scalars(select(ChangeRequest).where(ChangeRequest.batch == batch).order_by(ChangeRequest.id))
    )


def pending_ids(submitter: str, limit: int) -> list[int]:
    """Ids of one person's open requests (pending or changes requested), oldest first (at most `limit`)."""
    query = (
        select(ChangeRequest.id)
        # a request sent back with changes requested is still open: it counts too
        .where(ChangeRequest.submitter == submitter, ChangeRequest.status.in_(("pending", "changes_requested")))
        .order_by(ChangeRequest.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def purge_decided_rows(decided_before: dt.datetime, now: dt.datetime) -> int:
    """Delete the staged rows of requests rejected or withdrawn before `decided_before`, and mark
    those requests (`rows_purged_at`); returns how many requests. The caller commits.

    Never the rows of approved requests (they are what was applied) nor of pending ones."""
    old = (
        "SELECT id FROM change_requests WHERE status IN ('rejected', 'withdrawn')"
        " AND decided_at < :before AND rows_purged_at IS NULL"
    )
    params = {"before": decided_before}
    db.session.execute(text(f"DELETE FROM pending_changes WHERE change_id IN ({old})"), params)  # noqa: S608 - constant
    # and the staged rows of their earlier revisions (discussion.py), kept no longer than the rows
    db.session.execute(text(f"DELETE FROM revision_rows WHERE change_id IN ({old})"), params)  # noqa: S608 - constant
    result = db.session.execute(
        text(f"UPDATE change_requests SET rows_purged_at = :now WHERE id IN ({old})"),  # noqa: S608 - constant
        params | {"now": now},
    )
    return result.rowcount


def pending_per_table() -> dict[int, int]:
    """{tbl: its pending requests}, for the tables overview (one query for every table)."""
    query = select(ChangeRequest.tbl, func.count()).where(ChangeRequest.status == "pending").group_by(ChangeRequest.tbl)
    return dict(db.session.execute(query).all())


def tables_of(change_ids: Sequence[int]) -> dict[int, int]:
    """{change id: its table's id} for the given requests (an audit page of every table)."""
    if not change_ids:
        return {}
    rows = db.session.execute(
        db.select(ChangeRequest.id, ChangeRequest.tbl).where(ChangeRequest.id.in_(set(change_ids)))
    )
    return dict(rows.all())


def count_requests(status: str | None, tbl: int | Sequence[int] | None = None) -> int:
    query = select(func.count()).select_from(ChangeRequest)
    if status:
        query = query.where(ChangeRequest.status == status)
    return db.session.scalar(_of_tables(query, tbl)) or 0


# --- staging ---------------------------------------------------------------------------------


def _copy_text(value: str | int | None) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, int):
        return str(value)
    return _copy_escape(value)


def _copy_escape(text: str) -> str:
    """Backslash-escape text for COPY's text format."""
    if "\\" in text or "\n" in text or "\r" in text or "\t" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text


# Stand-ins while COPY data is built a batch at a time: control characters that no stored value
# can contain (values._check_text refuses them), turned into tab, newline and \N at the end.
_FS, _RS, _NULL = "\x1e", "\x1d", "\x1c"


def _staged(
    change_id: int, action: str, rows: list, null: object, markers: Sequence[str] = (), as_text: bool = False
) -> Iterator[tuple]:
    """Staged rows of one action as (change_id, action, key, line, before, after, changed), `null`
    for NULL (`as_text`: the numbers as text too).

    map/zip over the diff's own lists (Row, Modified, (key, record)): no Python code runs per row.
    `markers` are the modifications' changed field names (records.changed_marker), one per row.
    """
    cid, act = repeat(str(change_id) if as_text else change_id), repeat(action)
    lines = map(itemgetter(0), rows)
    if as_text:
        lines = map(str, lines)
    if action == "add":  # Row(line, key, record)
        return zip(cid, act, map(itemgetter(1), rows), lines, repeat(null), map(itemgetter(2), rows), repeat(null))
    if action == "modify":  # Modified(line, key, before, after)
        before, after = map(itemgetter(2), rows), map(itemgetter(3), rows)
        return zip(
            cid, act, map(itemgetter(1), rows), lines, before, after, markers, strict=False
        )  # repeat() is endless
    return zip(cid, act, map(itemgetter(0), rows), repeat(null), map(itemgetter(1), rows), repeat(null), repeat(null))


def _copy_data(change_id: int, action: str, rows: list, markers: Sequence[str]) -> str:
    """COPY text-format data for staged rows of one action, joined and escaped a batch at a time."""
    data = _RS.join(map(_FS.join, _staged(change_id, action, rows, _NULL, markers, as_text=True)))
    n, nulls = len(rows), {"add": 2, "modify": 0, "delete": 3}[action]
    if data.count(_FS) != 6 * n or data.count(_RS) != n - 1 or data.count(_NULL) != nulls * n:
        # a stand-in inside a value after all: escape value by value
        staged = _staged(change_id, action, rows, None, markers)
        return "".join("\t".join(map(_copy_text, row)) + "\n" for row in staged)
    return _copy_escape(data).replace(_FS, "\t").replace(_RS, "\n").replace(_NULL, "\\N") + "\n"


def stage_rows(change_id: int, result: Diff, names: Sequence[str]) -> dict[str, int]:
    """Write a diff's row changes as pending_changes of one change request, in bulk (COPY on
    PostgreSQL), each modification with its changed field names; return {field: modified rows
    changing it} for the request's column_counts."""
    columns = "change_id, action, key, line, before, after, changed"
    markers = [changed_marker(m.before, m.after, names) for m in result.modified]  # modifications only: cheap
    cur = raw_cursor()
    for kind, action in ROW_KINDS.items():
        rows = getattr(result, kind)
        for start in range(0, len(rows), COPY_BATCH):
            batch = rows[start : start + COPY_BATCH]
            marked = markers[start : start + COPY_BATCH] if action == "modify" else ()
            if is_postgres():
                data = io.BytesIO(
                    _copy_data(change_id, action, batch, marked).encode("utf-8")
                )  # StringIO: 4 bytes a character
                cur.copy_expert(f"COPY pending_changes ({columns}) FROM STDIN", data, size=1 << 20)
            else:
                cur.executemany(
                    f"INSERT INTO pending_changes ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
                    _staged(change_id, action, batch, None, marked),
                )
    if is_postgres():
        # A big upload makes the table's statistics stale until autovacuum catches up (a minute or
        # so); meanwhile the planner sorts a million rows to show the review page's first 50
        # (0.3 s instead of 3 ms). Refresh them when this upload grew the table by over 10%.
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = 'pending_changes'::regclass")
        if result.changed > 0.1 * max(cur.fetchone()[0], 0) + 10_000:
            cur.execute("ANALYZE pending_changes")
    cur.close()
    counts: Counter[str] = Counter()
    for marker in markers:
        counts.update(marker_names(marker))
    return dict(counts)


def repack_pending(tbl: int, rewrite: Callable[[str, Sequence[str]], str], new_fields: Sequence[str]) -> None:
    """Rewrite before/after of the staged rows of a table's pending requests with `rewrite(text, old_fields)`.

    The request's field list becomes `new_fields`, so its rows are read back under the right names.
    """
    requests = db.session.execute(
        text("SELECT id, fields FROM change_requests WHERE status = 'pending' AND tbl = :tbl"), {"tbl": tbl}
    ).all()
    for change_id, fields in requests:
        old = json.loads(fields)
        db.session.execute(
            text("UPDATE change_requests SET fields = :fields WHERE id = :id"),
            {"fields": json.dumps(list(new_fields)), "id": change_id},
        )
        rows = db.session.execute(
            text("SELECT id, before, after FROM pending_changes WHERE change_id = :id"), {"id": change_id}
        ).all()
        updates = [
            {
                "id": i,
                "before": rewrite(b, old) if b is not None else None,
                "after": rewrite(a, old) if a is not None else None,
            }
            for i, b, a in rows
        ]
        if updates:
            db.session.execute(
                text("UPDATE pending_changes SET before = :before, after = :after WHERE id = :id"), updates
            )


# --- approval --------------------------------------------------------------------------------


def claim_pending(
    change_id: int, status: str, user: str, reason: str | None = None, open_statuses: Sequence[str] = ("pending",)
) -> bool:
    """Move a pending request (or one of `open_statuses`) to `status`; False when it was no longer
    in one of them (someone was first)."""
    result = db.session.execute(
        db.update(ChangeRequest)
        .where(ChangeRequest.id == change_id, ChangeRequest.status.in_(open_statuses))
        .values(status=status, decided_by=user, decided_at=utcnow(), reason=reason)
    )
    return result.rowcount == 1


def apply_pending(tbl: int, change_id: int, version: int) -> None:
    """Apply every staged row change of a request to its table, set-based (they stay as its history)."""
    params = {"tbl": tbl, "id": change_id, "v": version}
    db.session.execute(
        text(
            "DELETE FROM datasets WHERE tbl = :tbl AND key IN"
            " (SELECT key FROM pending_changes WHERE change_id = :id AND action = 'delete')"
        ),
        params,
    )
    _apply_modifications(params)
    # Additions are new keys (merging again after a later approval, or the unchanged version,
    # guarantees it): a plain INSERT, twice as fast as ON CONFLICT for a million rows, and an
    # error if that were ever wrong.
    db.session.execute(
        text(
            "INSERT INTO datasets (tbl, key, record, version)"
            " SELECT :tbl, key, after, :v FROM pending_changes WHERE change_id = :id AND action = 'add'"
        ),
        params,
    )
    db.session.execute(
        text(
            "UPDATE table_state SET row_count = row_count"
            " + (SELECT count(*) FROM pending_changes WHERE change_id = :id AND action = 'add')"
            " - (SELECT count(*) FROM pending_changes WHERE change_id = :id AND action = 'delete')"
            " WHERE id = :tbl"
        ),
        params,
    )


def _apply_modifications(params: dict) -> None:
    """Write the staged modifications (keys in the table: merging again at approval ensures it).

    PostgreSQL: a plain UPDATE … FROM, twice as fast as INSERT … ON CONFLICT for 10,000 rows (no
    speculative insertion); a key that was missing after all raises, and the approval rolls back.
    """
    if not is_postgres():
        db.session.execute(
            text(
                "INSERT INTO datasets (tbl, key, record, version)"
                " SELECT :tbl, key, after, :v FROM pending_changes WHERE change_id = :id AND action = 'modify'"
                " ON CONFLICT (tbl, key) DO UPDATE SET record = excluded.record, version = excluded.version"
            ),
            params,
        )
        return
    updated = db.session.execute(
        text(
            "UPDATE datasets d SET record = p.after, version = :v FROM pending_changes p"
            " WHERE p.change_id = :id AND p.action = 'modify' AND d.tbl = :tbl AND d.key = p.key"
        ),
        params,
    ).rowcount
    staged = db.session.execute(
        text("SELECT count(*) FROM pending_changes WHERE change_id = :id AND action = 'modify'"), params
    ).scalar_one()
    if updated != staged:
        raise MissingRows(f"{staged - updated} modified row(s) are no longer in the table")


class MissingRows(DBAPIError):
    """Staged modifications of rows the table no longer has: the approval is rolled back."""

    def __init__(self, message: str):
        super().__init__(message, None, Exception(message))


def set_applied_version(change_id: int, version: int) -> None:
    db.session.execute(db.update(ChangeRequest).where(ChangeRequest.id == change_id).values(applied_version=version))


def oldest_pending_base() -> int | None:
    """The oldest version a pending request still merges against (the lower of its base and merged version)."""
    return db.session.execute(
        text(
            "SELECT min(CASE WHEN merged_version < base_version THEN merged_version ELSE base_version END)"
            " FROM change_requests WHERE status = 'pending'"
        )
    ).scalar()


def stale_rows(tbl: int, change_id: int, since: int) -> list[tuple]:
    """(id, key, action, line, before, after, current record) of the staged rows whose `before` is
    no longer the row in the table because an approval after version `since` changed their key:
    they must be merged again.

    Only the keys those approvals staged are looked up (through `pending_changes (key, change_id)`),
    so the cost grows with what was approved since, not with the size of this request: comparing
    each of 20,000 staged rows with the table cost 0.7 s of a 1.8 s approval (docs/PERFORMANCE.md).
    """
    rows = db.session.execute(
        text(
            "SELECT p.id, p.key, p.action, p.line, p.before, p.after, d.record"
            " FROM pending_changes p LEFT JOIN datasets d ON d.tbl = :tbl AND d.key = p.key"
            " WHERE p.change_id = :id AND p.key IN ("
            "SELECT h.key FROM change_requests c JOIN pending_changes h ON h.change_id = c.id"
            " WHERE c.status = 'approved' AND c.tbl = :tbl AND c.applied_version > :since)"
            " AND d.record IS DISTINCT FROM p.before ORDER BY p.id"
        ),
        {"tbl": tbl, "id": change_id, "since": since},
    )
    return [tuple(r) for r in rows]


def staged_count(change_id: int) -> int:
    """How many rows a request stages (after merging or resolving: its counts may not be written yet)."""
    return db.session.execute(
        text("SELECT count(*) FROM pending_changes WHERE change_id = :id"), {"id": change_id}
    ).scalar_one()


def current_records_of(tbl: int, change_id: int) -> dict[str, str]:
    """{key: record now} for the keys a request staged (those still in its table)."""
    rows = db.session.execute(
        text(
            "SELECT d.key, d.record FROM pending_changes p JOIN datasets d ON d.tbl = :tbl AND d.key = p.key"
            " WHERE p.change_id = :id"
        ),
        {"tbl": tbl, "id": change_id},
    )
    return dict(rows.all())


# --- conflicts and single staged rows (merging, resolving) -----------------------------------


def add_conflicts(change_id: int, conflicts: Sequence, lines: dict[str, int]) -> None:
    """Keep a request's merge conflicts (merge.Conflict: key, column, base, theirs, yours)."""
    if conflicts:
        db.session.execute(
            db.insert(MergeConflict),
            [
                {
                    "change_id": change_id,
                    "key": c.key,
                    "column": c.column,
                    "base": c.base,
                    "theirs": c.theirs,
                    "yours": c.yours,
                    "line": lines.get(c.key),
                }
                for c in conflicts
            ],
        )


def conflicts_of(change_id: int, offset: int = 0, limit: int | None = None) -> list[MergeConflict]:
    """A request's open conflicts, in key order."""
    query = (
        db.select(MergeConflict)
        .where(MergeConflict.change_id == change_id)
        .order_by(MergeConflict.key, MergeConflict.id)
        .offset(offset)
    )
    return list(db.session.scalars(query.limit(limit) if limit is not None else query))


def delete_conflict(conflict: MergeConflict) -> None:
    db.session.delete(conflict)


def staged_row(change_id: int, key: str) -> PendingChange | None:
    return db.session.scalar(
        db.select(PendingChange).where(PendingChange.change_id == change_id, PendingChange.key == key)
    )


def put_staged_row(
    change_id: int,
    key: str,
    action: str | None,
    before: str | None,
    after: str | None,
    line: int | None = None,
    *,
    names: Sequence[str],
) -> None:
    """Set the staged change of one key (action None: stage nothing for it); `names` are the
    request's fields, for a modification's changed columns (recount then counts them)."""
    row = staged_row(change_id, key)
    if action == "modify" and before == after:
        action = None  # a modification that changes no cell is no change (issue 26)
    if action is None:
        if row is not None:
            db.session.delete(row)
        return
    changed = changed_marker(before, after, names) if action == "modify" and before and after else None
    if row is None:
        db.session.add(
            PendingChange(
                change_id=change_id, key=key, action=action, before=before, after=after, line=line, changed=changed
            )
        )
    else:
        row.action, row.before, row.after, row.changed = action, before, after, changed


def set_row_warnings(change_id: int, warnings: dict[str, str]) -> None:
    """Note why a reviewer should look twice at some staged rows, by key."""
    if warnings:
        db.session.execute(
            text("UPDATE pending_changes SET warning = :w WHERE change_id = :id AND key = :k"),
            [{"w": w, "id": change_id, "k": k} for k, w in warnings.items()],
        )


def recount(change_id: int, merged_version: int | None = None) -> None:
    """The request's counts from its staged rows and open conflicts (after merging or resolving),
    the changed columns' counts too: counted here, once, not on every view of the review page."""
    counts = dict(
        db.session.execute(
            text("SELECT action, count(*) FROM pending_changes WHERE change_id = :id GROUP BY action"),
            {"id": change_id},
        ).all()
    )
    conflicts = db.session.scalar(
        db.select(func.count()).select_from(MergeConflict).where(MergeConflict.change_id == change_id)
    )
    columns: Counter[str] = Counter()
    for (marker,) in db.session.execute(
        text("SELECT changed FROM pending_changes WHERE change_id = :id AND action = 'modify'"), {"id": change_id}
    ):
        columns.update(marker_names(marker))
    values = {kind: counts.get(action, 0) for kind, action in ROW_KINDS.items()} | {
        "conflicts": conflicts or 0,
        "column_counts": json.dumps(dict(columns)),
    }
    if merged_version is not None:
        values["merged_version"] = merged_version
    db.session.execute(db.update(ChangeRequest).where(ChangeRequest.id == change_id).values(**values))


# --- reading staged rows ---------------------------------------------------------------------


def _filtered(
    change_id: int, action: str | None, column: str | None, q: str | None, flagged: bool, commented: bool = False
) -> tuple[str, dict]:
    """WHERE clause and parameters for the review page's filters, within one request's rows."""
    where, params = ["change_id = :id"], {"id": change_id}
    if action:
        where.append("action = :action")
        params["action"] = action
    if column:
        where.append("changed LIKE :column ESCAPE '\\'")
        params["column"] = "%" + like_pattern(SEP + column + SEP) + "%"
    if q:
        where.append(("key ILIKE :q" if is_postgres() else "key LIKE :q") + " ESCAPE '\\'")
        params["q"] = "%" + like_pattern(q) + "%"
    if flagged:
        where.append("warning IS NOT NULL")
    if commented:  # rows with comments on them or their cells (request_comments, discussion.py)
        where.append(
            "key IN (SELECT key FROM request_comments c WHERE c.change_id = :id AND c.key IS NOT NULL"
            " AND c.deleted_at IS NULL)"
        )
    return " AND ".join(where), params


def pending_page(
    change_id: int,
    action: str | None,
    offset: int,
    limit: int,
    *,
    column: str | None = None,
    q: str | None = None,
    flagged: bool = False,
    commented: bool = False,
) -> list[tuple]:
    """(key, line, before, after, warning, action) of the staged changes in upload order, of one
    action (None: any), those changing `column`, whose key contains `q` (any case), `flagged`, or
    `commented` (with comments)."""
    where, params = _filtered(change_id, action, column, q, flagged, commented)
    rows = db.session.execute(
        text(
            f"SELECT key, line, before, after, warning, action FROM pending_changes WHERE {where}"  # noqa: S608 - constant clauses
            " ORDER BY id LIMIT :limit OFFSET :offset"
        ),
        params | {"limit": limit, "offset": offset},
    )
    return [tuple(r) for r in rows]


def pending_count(
    change_id: int,
    action: str | None,
    *,
    column: str | None = None,
    q: str | None = None,
    flagged: bool = False,
    commented: bool = False,
) -> int:
    """How many staged changes pending_page's filters match (a scan of the request's rows)."""
    where, params = _filtered(change_id, action, column, q, flagged, commented)
    sql = f"SELECT count(*) FROM pending_changes WHERE {where}"  # noqa: S608 - constant clauses
    return db.session.execute(text(sql), params).scalar_one()


def pending_all(change_id: int, action: str) -> Iterator[tuple]:
    """Every staged change of one kind (key, line, before, after, warning), streamed."""
    result = db.session.execute(
        text(
            "SELECT key, line, before, after, warning FROM pending_changes"
            " WHERE change_id = :id AND action = :action ORDER BY id"
        ),
        {"id": change_id, "action": action},
    )
    for row in result:
        yield tuple(row)
