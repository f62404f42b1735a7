"""The change-request workflow, the domain API both front ends call: a request's life once an
upload (uploads.py) staged it: read it, resolve its conflicts, approve, reject, withdraw, revert.
Owns every transaction it opens.

The pages, the JSON API and the CLI turn its results and exceptions (errors.DomainError, each with
the HTTP status that fits) into pages or JSON; nothing here knows about HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

import access
import accounts
import approvals
import diff
import events
import files.diff_csv
import history
import merge
import notifications
import references
import store.accounts
import store.audit
import store.changes
import store.history
import store.table
import tables
from errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from models import ChangeRequest, MergeConflict, db, utcnow
from records import pack, unpack
from uploads import ERROR_FILE_DAYS, SUMMARY_KEYS, StageResult, check_pending_quota, check_unique, summary_of

log = logging.getLogger(__name__)
OPEN_STATUSES = ("pending", "changes_requested")  # changes_requested: sent back to its submitter, not approvable
CONFIRM_APPROVAL_OVER = 1000  # the review page asks to confirm approving more changes than this


class NotPending(Conflict):
    """The request was already decided (or withdrawn); nothing was done."""


class Stale(Conflict):
    """A later approval changed the same cells or rows as this request: it is sent back with conflicts."""


class Unresolved(Conflict):
    """The request has merge conflicts its submitter has not resolved yet."""


class UniqueClash(Conflict):
    """Applying would give two rows the same value in a `unique` column (a later approval added it)."""


class StillReferenced(Conflict):
    """The request deletes rows that other rows still refer to (foreignKeys in schema.json)."""


class MissingReason(Unprocessable):
    """A rejection needs a reason the submitter can act on."""


class ApplyFailed(DomainError):
    """The database refused the approval; everything was rolled back."""

    status = 500


class ConfirmApproval(Unprocessable):
    """Approving this many changes needs the admin to confirm the exact number first."""


# --- clean-up --------------------------------------------------------------------------------


def expire_kept() -> tuple[int, int]:
    """Delete, in one commit, what is kept only for a while: error files older than ERROR_FILE_DAYS,
    and the staged rows of requests rejected or withdrawn more than KEEP_DECIDED_DAYS ago (the
    requests, their counts and their audit entries stay; the review page and the API say the rows
    were deleted). Staged rows of approved requests are never deleted: they are what was applied.
    Returns (error files deleted, requests whose rows were deleted)."""
    now = utcnow()
    files = store.accounts.delete_error_reports_before(now - dt.timedelta(ERROR_FILE_DAYS))
    purged = store.changes.purge_decided_rows(now - dt.timedelta(current_app.config["KEEP_DECIDED_DAYS"]), now)
    db.session.commit()
    return files, purged


# --- reading requests ------------------------------------------------------------------------


def get_request(change_id: int) -> ChangeRequest:
    """A change request by id (NotFound when there is none)."""
    change = store.changes.get_request(change_id)
    if change is None:
        raise NotFound(f"There is no change request #{change_id}.")
    return change


def list_requests(
    status: str | None, offset: int, limit: int, table: tables.TableRef | None = None
) -> tuple[list[ChangeRequest], int]:
    """(requests newest first, how many there are in all) of one status, or of every status (None);
    of one table, or of every table the person may view (None)."""
    tbl = table.id if table is not None else access.visible_ids()
    return store.changes.list_requests(status, offset, limit, tbl), store.changes.count_requests(status, tbl)


def staged_rows(change_id: int, action: str, offset: int = 0, limit: int | None = None) -> Iterator[tuple]:
    """(key, line, before, after, warning) of one kind of staged change in upload order: a page, or
    all (`limit` None). None at all once the request's rows were purged (`ChangeRequest.rows_purged_at`)."""
    if limit is None:
        return store.changes.pending_all(change_id, action)
    return iter(store.changes.pending_page(change_id, action, offset, limit))


# ?show= → the action it shows (flagged, commented: any)
REVIEW_SHOWS = {**diff.ROW_KINDS, "flagged": None, "commented": None}


@dataclass
class ReviewPage:
    """One page of a request's staged rows as the review page filters them, and how many match in all.

    rows: (key, line, before, after, warning, action)."""

    rows: list[tuple]
    total: int


def review_rows(
    change: ChangeRequest, show: str, offset: int, limit: int, column: str | None = None, q: str | None = None
) -> ReviewPage:
    """Staged rows of one kind (`show`: modified, added, deleted, flagged: those with a warning, or
    commented: those with comments),
    those changing `column` (modifications), whose key contains `q` (any case), in upload order.

    The total comes from the request's stored counts where they answer it (column_counts, kept
    when the rows change), else from a count of the request's rows.
    """
    action = REVIEW_SHOWS[show]
    flagged, commented = show == "flagged", show == "commented"
    column = column if action == "modify" else None
    rows = store.changes.pending_page(
        change.id, action, offset, limit, column=column, q=q, flagged=flagged, commented=commented
    )
    if commented:  # rows with comments (discussion.py): counted among the request's rows
        total = store.changes.pending_count(change.id, None, q=q, commented=True)
    elif not q and not flagged and column is None:
        total = getattr(change, show)  # the request counts each kind of row change
    elif not q and not flagged:
        total = change.column_count_map.get(column or "", 0)
    else:
        total = store.changes.pending_count(change.id, action, column=column, q=q, flagged=flagged)
    return ReviewPage(rows, total)


def flagged_count(change_id: int) -> int:
    """How many staged rows carry a warning (an undo of a later approval)."""
    return store.changes.pending_count(change_id, None, flagged=True)


def diff_csv(change_id: int) -> tuple[str, Iterator[bytes]]:
    """(file name, chunks) of a request's staged changes in the tabular diff format (files/diff_csv.py)."""
    change = get_request(change_id)
    names = change.field_names

    def rows() -> Iterator[tuple[str, list[str] | None, list[str] | None]]:
        for action in [diff.ROW_KINDS[kind] for kind in diff.DIFF_CSV_ORDER]:
            for _, _, before, after, _ in store.changes.pending_all(change_id, action):
                yield (
                    action,
                    unpack(before) if before is not None else None,
                    unpack(after) if after is not None else None,
                )

    return f"change-{change_id}-diff.csv", files.diff_csv.diff_csv(names, rows())


def conflicts(change_id: int, offset: int = 0, limit: int | None = None) -> list[MergeConflict]:
    """A request's open merge conflicts, in key order."""
    return store.changes.conflicts_of(change_id, offset, limit)


def theirs_made_by(change: ChangeRequest, conflicts: Sequence[MergeConflict]) -> dict[str, ChangeRequest]:
    """{key: the approved request that made "theirs"} for conflicts of `change` (the last one to
    change each key after the version the request was based on)."""
    return store.history.last_changes_of(change.tbl, sorted({c.key for c in conflicts}), change.base_version)


def resolved_conflicts(change_id: int) -> list:
    """The conflicts resolved in a request (key, what was kept, by whom, when), from its audit entries."""
    return store.history.resolutions_of(change_id)


# --- resolving conflicts ---------------------------------------------------------------------

TAKES = ("yours", "theirs")


def resolve(change_id: int, user: str, resolutions: Sequence[Mapping[str, Any]]) -> list[MergeConflict]:
    """Settle conflicts of one's own pending request, each by taking "yours" (the file's) or
    "theirs" (the table's: that cell or row leaves the request). Returns the conflicts left.

    All or nothing: a resolution naming no open conflict refuses the whole call (Unprocessable).
    """
    change = get_request(change_id)
    if change.submitter != user:
        raise Forbidden("Only the person who uploaded a change request can resolve its conflicts.")
    _require_pending(change)
    open_ = {(c.key, c.column): c for c in store.changes.conflicts_of(change_id)}
    chosen = []
    for r in resolutions:
        where = (r.get("key"), r.get("column"))
        if r.get("take") not in TAKES:
            raise Unprocessable(f"take must be 'yours' or 'theirs' (key {where[0]!r}, column {where[1]!r}).")
        if where not in open_:
            what = f"column {where[1]!r} of row {where[0]!r}" if where[1] else f"row {where[0]!r}"
            raise Unprocessable(f"{what} is not an open conflict of change request #{change_id}.", [str(where[0])])
        chosen.append((open_.pop(where), r["take"]))
    for conflict, take in chosen:
        _settle(change, conflict, take)
        store.audit.write(
            change_id,
            "resolve",
            change.submitter,
            user,
            change.created_at,
            key=conflict.key,
            note=f"{conflict.column or 'whole row'}: kept {'mine' if take == 'yours' else 'theirs'}",
        )
        store.changes.delete_conflict(conflict)
    db.session.flush()
    store.changes.recount(change_id)
    approvals.dismiss(change, "its conflicts were resolved")
    events.record(
        "resolve",
        table=tables.of_request(change).name,
        change_id=change_id,
        details={"resolutions": [{"key": c.key, "column": c.column, "take": t} for c, t in chosen]},
    )
    db.session.commit()
    return store.changes.conflicts_of(change_id)


def _settle(change: ChangeRequest, conflict: MergeConflict, take: str) -> None:
    """Stage what one resolution asks for: the file's value, or nothing (the table's stays).

    What is staged starts from the row the conflict was computed against (its `before`), never
    from the row now: a later approval of the same row then makes it stale, and approval merges it
    again and sends it back with the new conflict instead of overwriting that approval. A change
    that the table already holds (the row now is what would be staged) stages nothing."""
    names, key = change.field_names, conflict.key
    row = store.changes.staged_row(change.id, key)
    if take == "theirs" and row is None:
        return  # the table's value stands and nothing of this row is staged
    if conflict.column is not None:  # a cell: the staged row keeps theirs in it until yours is taken
        before = row.before if row is not None else _record_merged_against(change, key)
        after = unpack(row.after if row is not None else before)
        if take == "yours":
            after[names.index(conflict.column)] = conflict.yours or ""
        _stage_resolved(change, key, "modify", before, pack(after), conflict.line)
    elif take == "theirs":
        store.changes.put_staged_row(change.id, key, None, None, None, names=names)
    elif conflict.yours is None:  # you deleted a row others changed: theirs is the row it was computed against
        _stage_resolved(change, key, "delete", conflict.theirs, None, conflict.line)
    elif conflict.theirs is None:  # you changed a row others deleted: it comes back as yours
        _stage_resolved(change, key, "add", None, conflict.yours, conflict.line)
    else:  # both added the key
        _stage_resolved(change, key, "modify", conflict.theirs, conflict.yours, conflict.line)


def _stage_resolved(
    change: ChangeRequest, key: str, action: str, before: str | None, after: str | None, line: int | None
) -> None:
    """Stage a resolved row (`before`: the row its conflict was computed against), or nothing when
    it changes nothing: `after` is `before`, or the table holds `after` already (issue 26)."""
    now = store.table.record(change.tbl, key)
    if after == before or after == (now[0] if now is not None else None):
        action = None
    store.changes.put_staged_row(change.id, key, action, before, after, line, names=change.field_names)


def _record_merged_against(change: ChangeRequest, key: str) -> str:
    """The key's row at the version the request was merged with (`merged_version`): the row its
    conflicts were computed against, whatever was approved since."""
    at = _merged_at(change)
    for past in store.history.key_rows(change.tbl, key):  # oldest first
        if past.version > at:
            found = history.current_form(past.before, past.fields, change.field_names)
            break
    else:
        now = store.table.record(change.tbl, key)
        found = now[0] if now is not None else None
    if found is None:  # a cell conflict is about a row that existed when it was found
        raise Conflict(f"Row {key!r} of this conflict is not in the history any more; withdraw the request.", [key])
    return found


# --- deciding --------------------------------------------------------------------------------


def approve(
    change_id: int,
    admin: str,
    *,
    confirmed: int | None = None,
    ask_over: int | None = None,
    signoff: approvals.Signoff = approvals.NO_SIGNOFF,
) -> int | None:
    """Apply every staged change in one transaction; return the new database version. None: the
    approval is recorded but the table's policy needs more (approvals.approve: quorum, self-approval,
    reason, signature; `signoff.override` is the console's break-glass approval).

    A request of an upload spanning tables is applied with the others of that upload (`batch`),
    all in the one transaction and version: all tables or none.

    With `ask_over` (the review page: CONFIRM_APPROVAL_OVER), a request of more changes than that
    is applied only when `confirmed` is its exact number of changes (ConfirmApproval otherwise).

    Exactly one of several concurrent approvals wins (the status update is conditional). A request
    that a later approval made stale is merged again with the table as it is now: cells nobody else
    touched apply, the newer cells stay; when both changed the same thing, it is sent back with the
    new conflicts (Stale, nothing applied, still pending). References to rows that are not there
    once everything is applied (foreignKeys) refuse it too (StillReferenced).
    """
    members = batch_of(get_request(change_id))
    for member in members:
        if not signoff.override:
            _require_decider(member, admin)
        _require_pending(member)
    total = sum(m.added + m.modified + m.deleted for m in members)
    if ask_over is not None and total > ask_over and confirmed != total:
        added, modified, deleted = (sum(getattr(m, k) for m in members) for k in ("added", "modified", "deleted"))
        raise ConfirmApproval(
            f"Confirm that you want to apply all {total:,} changes ({added:,} added, {modified:,}"
            f" modified, {deleted:,} deleted): tick the box next to the Approve button. Nothing was applied."
        )
    for member in members:
        if member.conflicts:
            keys = sorted({c.key for c in store.changes.conflicts_of(member.id)})
            raise Unresolved(
                f"Change request #{member.id} has {member.conflicts} unresolved conflict(s) (keys: {_listed(keys)});"
                " its submitter resolves them first (keep mine / keep theirs), or withdraws it.",
                keys,
            )
    go = approvals.approve(members, admin, signoff)
    if go is None:
        return None
    if not any(store.changes.staged_count(m.id) for m in members):
        return _approve_empty(members, admin, go)
    # The one place an approval's outcomes are decided, each in one transaction: applied (one
    # commit); refused (StillReferenced, UniqueClash, NotPending: rolled back); stale (rolled back,
    # then the new conflicts kept in a transaction of their own, `_send_back`); nothing left to
    # apply once merged again (rolled back, merged again on its own, approved without a version);
    # a database error (rolled back, ApplyFailed). The helpers below only raise.
    try:
        version = _apply_batch(members, admin)
        approvals.applied(go, version)
        db.session.commit()
    except _MergeConflicts as stale:
        db.session.rollback()
        raise _send_back(stale.change_id) from None
    except _NothingLeft:
        db.session.rollback()
        for member in members:
            _send_back(member.id)  # merged again with no conflicts: only its rows and counts are kept
        return _approve_empty(batch_of(get_request(change_id)), admin, go)
    except DomainError:
        db.session.rollback()
        raise
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.exception("approval of change request %s failed", change_id)
        raise _apply_failed(exc) from exc
    db.session.expire_all()
    return version


def _approve_empty(members: Sequence[ChangeRequest], admin: str, go: approvals.Go) -> int:
    """Approve requests that stage nothing (every conflict settled with the table's value, or the
    table holds their values already): closed as approved, with an audit entry each, but no
    version, since a version that changes nothing would be an empty entry in the history. Returns
    the database version, unchanged."""
    for member in members:
        if not store.changes.claim_pending(member.id, "approved", admin):
            db.session.rollback()
            raise NotPending(f"Change request #{member.id} was decided by someone else a moment ago.")
        store.audit.write(member.id, "approve", member.submitter, admin, member.created_at)
    version = tables.database().version
    approvals.applied(go, version)
    db.session.commit()
    db.session.expire_all()
    return version


class _MergeConflicts(Exception):
    """Merging a stale request again at approval met conflicts: the approval is rolled back and the
    request sent back (raised inside the approval's transaction, handled once it is rolled back)."""

    def __init__(self, change_id: int):
        super().__init__(change_id)
        self.change_id = change_id


class _NothingLeft(Exception):
    """Merged again at approval, the batch stages nothing any more (later approvals made the same
    changes): rolled back, then approved without a version (`_approve_empty`)."""


def _apply_batch(members: Sequence[ChangeRequest], admin: str) -> int:
    """Claim, apply and check every request of a batch in the open transaction; the new version.
    Raises (NotPending, _MergeConflicts, UniqueClash, StillReferenced, a database error); the
    caller rolls back."""
    merged_at = {m.id: _merged_at(m) for m in members}  # before merging again at approval moves it
    for member in members:
        if not store.changes.claim_pending(member.id, "approved", admin):
            raise NotPending(f"Change request #{member.id} was decided by someone else a moment ago.")
    version = store.table.bump_version(sorted({m.tbl for m in members}))
    for member in members:
        _apply(member, admin, version)
    if not any(store.changes.staged_count(m.id) for m in members):  # merged again: the table holds it all
        raise _NothingLeft()
    _refuse_dangling_references(members, merged_at)
    _prune_history(version)
    return version


def _apply_failed(exc: SQLAlchemyError) -> ApplyFailed:
    return ApplyFailed(
        f"Approval failed and nothing was applied; the request is still pending. Database said: {_short(exc)}"
    )


def batch_of(change: ChangeRequest) -> list[ChangeRequest]:
    """The requests of the upload a request belongs to (itself alone, unless the upload spanned tables)."""
    if change.batch is None:
        return [change]
    return store.changes.batch_members(change.batch)


def _apply(change: ChangeRequest, admin: str, version: int) -> None:
    """Write one request's staged rows as part of approval `version` (merged again when stale)."""
    merged_version = change.merged_version if change.merged_version is not None else change.base_version
    # Staged rows can only be stale if another request was approved since they were merged.
    if version != merged_version + 1:
        if _merge_again(change):
            raise _MergeConflicts(change.id)
        db.session.flush()
        store.changes.recount(change.id, merged_version=version - 1)
        _refuse_unique_clashes(change)
    store.changes.apply_pending(change.tbl, change.id, version)
    store.audit.write(change.id, "approve", change.submitter, admin, change.created_at, version=version)
    store.changes.set_applied_version(change.id, version)
    notifications.approved(change, admin, version)


def _refuse_dangling_references(members: Sequence[ChangeRequest], merged_at: Mapping[int, int]) -> None:
    """StillReferenced (the approval rolls back) when, with the requests applied, a row refers to a key its
    referenced table no longer has: a deleted row other rows still refer to, or a row added or
    changed to refer to a key deleted since the upload, by an approval or by another request of
    the batch (foreignKeys in schema.json). Read after applying, so every table is as the approval
    leaves it. The upload checked the added and changed rows already: they are checked again only
    when a referenced table lost rows since (`merged_at`: the version each request was merged with),
    which a million additions would otherwise pay for with a second pass (docs/PERFORMANCE.md)."""
    package = tables.package()
    deleting = {m.tbl for m in members if m.deleted}
    for change in members:
        ref = tables.of_request(change)
        referred_by = package.references_to(ref.name) if change.deleted else []
        deleted = {key for key, *_ in store.changes.pending_all(change.id, "delete")} if referred_by else set()
        referring = [
            references.Referring(
                t.name, fk.field, t.schema.names.index(fk.field), store.table.rows(tables.get(t.name).id)
            )
            for t, fk in referred_by
        ]
        found = references.referencing_rows(deleted, referring)
        if found.total:
            raise StillReferenced(
                f"Not applied: {found.message(ref.name)}. Change or delete those rows first, or keep these;"
                " the request stays pending.",
                sorted({r.value for r in found.rows}),
            )
        if _references_unchecked(change, ref, deleting, merged_at[change.id]):
            staged = _staged_diff(change.id)
            dangling = references.check_references(ref.spec, staged, lambda name: store.table.keys(tables.get(name).id))
            if dangling:
                shown = "; ".join(f"{d.key}: {d.message}" for d in dangling[:5])
                raise StillReferenced(
                    f"Not applied: rows of change request #{change.id} would refer to rows that are not there"
                    f" ({shown}). The request stays pending; its submitter can withdraw it and upload again"
                    " from a fresh download.",
                    sorted({d.key for d in dangling}),
                )


def _references_unchecked(change: ChangeRequest, ref: tables.TableRef, deleting: set[int], merged_at: int) -> bool:
    """Whether a request's staged values may refer to keys that are not there: the upload checked
    them against the referenced tables then, which stays exact unless a referenced table lost rows
    since (an approval, or a request of the same batch), or values entered the request that no
    upload check saw: a revert (staged without one) or a resolved conflict (the file's value)."""
    targets = {tables.get(fk.resource).id for fk in ref.spec.foreign_keys}
    if not targets:
        return False
    return bool(
        targets & deleting
        or change.reverts is not None
        or any(store.history.deleted_since(t, merged_at) for t in targets)
        or store.audit.has_entry(change.id, "resolve")
    )


def _staged_diff(change_id: int) -> diff.Diff:
    """A request's staged additions, modifications and deletions as a diff.Diff."""
    return diff.Diff(
        added=[diff.Row(line, key, after) for key, line, _, after, _ in store.changes.pending_all(change_id, "add")],
        modified=[
            diff.Modified(line, key, b, a) for key, line, b, a, _ in store.changes.pending_all(change_id, "modify")
        ],
        deleted=[(key, before) for key, _, before, _, _ in store.changes.pending_all(change_id, "delete")],
    )


def _prune_history(version: int) -> None:
    """Keep only the last HISTORY_KEEP_VERSIONS versions' row changes (when set), never past the base
    of a pending request: they are what the pending requests merge against."""
    keep = current_app.config.get("HISTORY_KEEP_VERSIONS")
    if not keep:
        return
    oldest = version - keep
    pending_base = store.changes.oldest_pending_base()
    if pending_base is not None:
        oldest = min(oldest, pending_base)
    if oldest > tables.database().history_from:
        store.history.prune(oldest)


def _merge_again(change: ChangeRequest) -> list[merge.Conflict]:
    """Merge the staged rows a later approval made stale with the table now (base: the row they
    were staged against); the clean merges are written, the conflicts returned."""
    names, found = change.field_names, []
    for _, key, _, line, before, after, current in store.changes.stale_rows(change.tbl, change.id, _merged_at(change)):
        merged = merge.merge_row(key, before, current, after, names)
        found.extend(merged.conflicts)
        store.changes.put_staged_row(change.id, key, merged.action, merged.before, merged.after, line, names=names)
    return found


def _merged_at(change: ChangeRequest) -> int:
    """The table version a request's staged rows were merged with (their `before`)."""
    return change.merged_version if change.merged_version is not None else change.base_version


def _send_back(change_id: int) -> Stale:
    """After an approval rolled back for conflicts: merge the request again and keep its conflicts,
    in a transaction of their own (the request stays pending); the Stale error naming their keys."""
    try:
        change = get_request(change_id)
        since = _merged_at(change)
        lines = {key: line for _, key, _, line, *_ in store.changes.stale_rows(change.tbl, change_id, since)}
        found = _merge_again(change)
        store.changes.add_conflicts(change_id, found, lines)
        db.session.flush()
        store.changes.recount(change_id, merged_version=tables.database().version)
        approvals.dismiss(change, "merged again at approval: a later approval changed the same rows")
        notifications.sent_back(change)
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.exception("sending back change request %s failed", change_id)
        raise _apply_failed(exc) from exc
    keys = sorted({c.key for c in found})
    return Stale(
        f"Not applied: a later approval changed the same cells or rows as change request #{change_id} "
        f"(keys: {_listed(keys)}). It stays pending with these conflicts: its submitter "
        "keeps their values or the newer ones, then it can be approved.",
        keys,
    )


def _listed(keys: Sequence[str], most: int = 20) -> str:
    return ", ".join(keys[:most]) + (" …" if len(keys) > most else "")


def _refuse_unique_clashes(change: ChangeRequest) -> None:
    """UniqueClash (the approval rolls back) when the staged rows repeat a `unique` value that a later approval added."""
    change_id, ref = change.id, tables.of_request(change)
    schema = ref.schema
    if not schema.unique_indexes:
        return
    _, current, _ = store.table.read_current(ref.id)
    staged = _staged_diff(change_id)
    clashes = check_unique(schema, current, staged)
    if clashes:
        shown = "; ".join(f"line {line}, {column}: {message}" for line, column, message, _ in clashes[:5])
        raise UniqueClash(
            f"Not applied: a later approval gave other rows values this request also uses in unique columns ({shown}). "
            "The request stays pending; the submitter can withdraw it and upload again from a fresh download.",
        )


def reject(change_id: int, admin: str, reason: str) -> None:
    """Close a pending request (with the others of its upload) without applying it; the reason
    (required) is kept and audited."""
    for member in batch_of(get_request(change_id)):
        _require_decider(member, admin)
    if not reason.strip():
        raise MissingReason("Say why the request is rejected, so the submitter knows what to fix.")
    _close(change_id, "rejected", admin, reason.strip(), "reject")


def withdraw(change_id: int, user: str) -> None:
    """The submitter takes back their own pending request (with the others of its upload)."""
    change = get_request(change_id)
    if change.submitter != user:
        raise Forbidden("Only the person who uploaded a change request can withdraw it.")
    _close(change_id, "withdrawn", user, None, "withdraw")


def _close(change_id: int, status: str, user: str, reason: str | None, action: str) -> None:
    """Decide a pending request (and the others of its upload) without applying it, with an audit
    entry each, in one commit."""
    members = batch_of(get_request(change_id))
    for member in members:
        if member.status != "changes_requested":  # sent back: still open, so it may be rejected or withdrawn
            _require_pending(member)
    for member in members:
        if not store.changes.claim_pending(member.id, status, user, reason, OPEN_STATUSES):
            db.session.rollback()
            raise NotPending(f"Change request #{member.id} was decided by someone else a moment ago.")
        approver = user if action == "reject" else None
        store.audit.write(member.id, action, member.submitter, approver, member.created_at, note=reason)
        notifications.closed(member, status, user, reason)
    events.record(
        action,
        user=user,
        table=tables.of_request(members[0]).name,
        change_id=members[0].id,
        details={"reason": reason, "requests": [m.id for m in members]},
    )
    db.session.commit()
    db.session.expire_all()


def _require_decider(change: ChangeRequest, user: str) -> None:
    """Forbidden unless `user` is an admin or an approver of the request's table (schema.json)."""
    table = tables.of_request(change)
    if not accounts.may_decide(user, table.spec.approvers):
        allowed = ", ".join(table.spec.approvers)
        raise Forbidden(
            f"Only admins{' and the approvers of ' + repr(table.name) + ' (' + allowed + ')' if allowed else ''}"
            " can approve or reject changes to this table."
        )


def _require_pending(change: ChangeRequest) -> None:
    if change.status == "changes_requested":
        raise NotPending(
            f"Change request #{change.id} has changes requested: its submitter uploads a corrected file (a revision)"
            " first, or withdraws it; nothing was done."
        )
    if change.status != "pending":
        raise NotPending(f"Change request #{change.id} is {change.status}, not pending; nothing was done.")


def _short(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]


# --- reverting an approved request -----------------------------------------------------------


def revert(change_id: int, user: str) -> StageResult:
    """Stage the inverse of an approved request as a new pending request, merged with the table now
    (of an upload spanning tables: the inverse of each of its requests, decided together).

    For each row it changed: base = the row right after it, yours = the row before it, theirs =
    the row now. Cells changed again since are conflicts, never silently overwritten; untouched
    cells of the same rows revert cleanly.
    """
    check_pending_quota(user)  # a revert is a pending request like an upload's (and copies rows)
    undone = get_request(change_id)
    access.require_edit_all((tables.of_request(m).name for m in batch_of(undone)), access.person(user))
    if undone.status == "approved" and undone.applied_version is None:
        raise Conflict(f"Change request #{change_id} changed nothing when it was approved: there is nothing to revert.")
    if undone.status != "approved" or undone.applied_version is None:
        raise NotPending(f"Change request #{change_id} is {undone.status}: only an approved request can be reverted.")
    state = tables.database()
    if undone.applied_version <= state.history_from:
        raise Conflict(
            f"The history of change request #{change_id} (version {undone.applied_version}) was pruned"
            f" (HISTORY_KEEP_VERSIONS keeps versions from {state.history_from}); it cannot be reverted."
        )
    inverses = [(member, *_inverse(member)) for member in batch_of(undone)]
    changing = [(member, result, found, lines) for member, result, found, lines in inverses if result.changed or found]
    summary = {k: sum(summary_of(r, len(f))[k] for _, r, f, _ in inverses) for k in SUMMARY_KEYS}
    if not changing:
        return StageResult(None, undone.applied_version, summary, "")
    members: list[ChangeRequest] = []
    for member, result, found, lines in changing:
        ref = tables.of_request(member)
        change = store.changes.add_request(
            tbl=ref.id,
            batch=members[0].id if members else None,
            submitter=user,
            mode="partial",
            comment=f"Revert #{member.id}: {member.comment}".strip()[:2000],
            filename="",
            encoding="",
            delimiter="",
            base_version=member.applied_version,
            base_source="revert",
            merged_version=state.version,
            fields=json.dumps(list(ref.schema.names)),
            warnings="[]",
            reverts=member.id,
            **summary_of(result, len(found)),
        )
        change.column_counts = json.dumps(store.changes.stage_rows(change.id, result, ref.schema.names))
        store.changes.add_conflicts(change.id, found, lines)
        notifications.submitted(change)
        members.append(change)
    if len(members) > 1:
        members[0].batch = members[0].id
    db.session.flush()
    events.record(
        "revert",
        user=user,
        table=tables.of_request(members[0]).name,
        change_id=members[0].id,
        details={"reverts": change_id, "requests": [m.id for m in members]},
    )
    db.session.commit()
    first = members[0]
    return StageResult(first, first.base_version, summary, "", [], members if len(members) > 1 else [])


def _inverse(undone: ChangeRequest) -> tuple[diff.Diff, list[merge.Conflict], dict[str, int]]:
    """The rows that undo an approved request, merged with its table now: (changes, conflicts,
    their lines); UniqueClash when undoing would repeat a `unique` value the table has now."""
    ref = tables.of_request(undone)
    schema = ref.schema
    names = schema.names
    current = store.changes.current_records_of(ref.id, undone.id)
    result, found, lines = diff.Diff(), [], {}
    for action in diff.ROW_KINDS.values():
        for key, line, before, after, _ in store.changes.pending_all(undone.id, action):
            after_it = history.current_form(after, undone.fields, names)
            before_it = history.current_form(before, undone.fields, names)
            merged = merge.merge_row(key, after_it, current.get(key), before_it, names)
            found.extend(merged.conflicts)
            if merged.conflicts:
                lines[key] = line
            if merged.action == "add":
                result.added.append(diff.Row(line or 0, key, merged.after))  # type: ignore[arg-type]
            elif merged.action == "modify":
                result.modified.append(diff.Modified(line or 0, key, merged.before, merged.after))  # type: ignore[arg-type]
            elif merged.action == "delete":
                result.deleted.append((key, merged.before))  # type: ignore[arg-type]
    if schema.unique_indexes and result.changed:
        _, table_now, _ = store.table.read_current(ref.id)
        clashes = check_unique(schema, table_now, result)
        if clashes:
            raise UniqueClash(
                "Cannot revert: " + "; ".join(f"{column}: {message}" for _, column, message, _ in clashes[:5]),
            )
    return result, found, lines
