"""The conversation on a change request: comments on the request, a row or a cell; a decider
sending it back with "changes requested"; the submitter's corrected files as revisions of the same
request (the staged rows replaced, merged three ways like any upload, the thread kept).

The domain API both front ends call; it owns the transactions it opens. Nothing here knows HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import IO

import approvals
import changes
import events
import history
import notifications
import store.changes
import store.discussion
import tables
import uploads
from errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from files import damage
from files import encoding as encodings
from files.names import clean_filename
from files.problems import FileProblems, TooLarge
from models import ChangeRequest, Comment, RequestWarning, Revision, WarningKind, db, utcnow, warnings_json

OPEN = changes.OPEN_STATUSES  # a request still being discussed: pending, or sent back with changes requested
MAX_COMMENT = 10_000  # characters of one comment


class Closed(Conflict):
    """The request was decided or withdrawn: its comments can no longer be edited or deleted."""


@dataclass
class RevisionResult:
    """The outcome of a corrected file: the request, and whether the file changed its staged rows."""

    change: ChangeRequest
    changed: bool
    summary: dict[str, int]
    encoding: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class RevisionDiff:
    """Staged rows between two revisions of a request: keys staged only in the later (added), only
    in the earlier (removed), or in both with another change (changed: (key, earlier, later), each
    (action, record after or None))."""

    since: int
    until: int
    added: list[tuple[str, tuple[str, str | None]]] = field(default_factory=list)
    removed: list[tuple[str, tuple[str, str | None]]] = field(default_factory=list)
    changed: list[tuple[str, tuple[str, str | None], tuple[str, str | None]]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}


def compare_revisions(
    earlier: Mapping[str, tuple[str, str | None]], later: Mapping[str, tuple[str, str | None]]
) -> tuple[list, list, list]:
    """(added, removed, changed) staged rows between two revisions' {key: (action, after)}, by key.

    >>> compare_revisions({"A": ("modify", "x"), "B": ("add", "y")}, {"A": ("modify", "z"), "C": ("delete", None)})
    ([('C', ('delete', None))], [('B', ('add', 'y'))], [('A', ('modify', 'x'), ('modify', 'z'))])
    """
    added = [(k, later[k]) for k in sorted(later.keys() - earlier.keys())]
    removed = [(k, earlier[k]) for k in sorted(earlier.keys() - later.keys())]
    changed = [(k, earlier[k], later[k]) for k in sorted(earlier.keys() & later.keys()) if earlier[k] != later[k]]
    return added, removed, changed


# --- comments --------------------------------------------------------------------------------


def _clean_text(text: object, what: str = "text") -> str:
    """The text of a comment, checked: a non-empty string without NUL, at most MAX_COMMENT characters."""
    if not isinstance(text, str) or not text.strip():
        raise Unprocessable(f"Write the comment's {what}: it is empty.")
    if "\x00" in text:
        raise Unprocessable(f"The comment's {what} contains a NUL character.")
    if len(text) > MAX_COMMENT:
        raise Unprocessable(f"A comment holds at most {MAX_COMMENT:,} characters; this one has {len(text):,}.")
    return text.strip()


def comments(change_id: int) -> list[Comment]:
    """A request's comments in order (deleted ones are left out)."""
    changes.get_request(change_id)
    return [c for c in store.discussion.comments_of(change_id) if c.deleted_at is None]


def comment_counts(change_id: int) -> dict[str, int]:
    """{key: comments on that row or its cells}, for the count in each row of the review page."""
    return store.discussion.comment_counts(change_id)


def add_comment(change_id: int, user: str, text: object, key: object = None, column: object = None) -> Comment:
    """A comment on a request (no key), on one of its changed rows (key) or on a cell (key and
    column). Anyone who may view the table may comment, on a request open or decided."""
    change = changes.get_request(change_id)
    body = _clean_text(text)
    key, column = _anchor(change, key, column)
    comment = store.discussion.add_comment(
        change_id=change_id, user=user, text=body, key=key, column=column, revision=change.revision
    )
    _event("comment", change, user, {"comment": comment.id, "text": body, "key": key, "column": column})
    notifications.commented(change, user, body, _commenters(change_id))
    db.session.commit()
    return comment


def _commenters(change_id: int) -> list[str]:
    """Who took part in a request's conversation (they hear of what follows)."""
    return sorted({c.user for c in store.discussion.comments_of(change_id) if c.deleted_at is None})


def _event(type_: str, change: ChangeRequest, user: str, details: dict) -> None:
    """One event of the conversation in the event log (events.py), in the caller's transaction."""
    events.record(type_, user=user, table=tables.of_request(change).name, change_id=change.id, details=details)


def _anchor(change: ChangeRequest, key: object, column: object) -> tuple[str | None, str | None]:
    """The row and cell a comment is about, checked: a key the request changes, a column of its table."""
    if key in (None, "") and column in (None, ""):
        return None, None
    if not isinstance(key, str) or key == "":
        raise Unprocessable('A comment on a cell names its row too: give "key" with "column".')
    if not store.discussion.has_staged_key(change.id, key):
        raise Unprocessable(f"Change request #{change.id} does not change a row with key {key!r}.")
    if column in (None, ""):
        return key, None
    if not isinstance(column, str) or column not in change.field_names:
        raise Unprocessable(f"{column!r} is not a column of this table. Columns: {', '.join(change.field_names)}.")
    return key, column


def _own_open_comment(change_id: int, comment_id: int, user: str) -> Comment:
    comment = store.discussion.get_comment(comment_id)
    if comment is None or comment.change_id != change_id or comment.deleted_at is not None:
        raise NotFound(f"Change request #{change_id} has no comment #{comment_id}.")
    if comment.user != user:
        raise Forbidden("Only the person who wrote a comment can edit or delete it.")
    if changes.get_request(change_id).status not in OPEN:
        raise Closed("The request was decided: its comments stay as they are.")
    return comment


def edit_comment(change_id: int, comment_id: int, user: str, text: object) -> Comment:
    """The author changes their comment while the request is open; the replaced text is kept."""
    comment = _own_open_comment(change_id, comment_id, user)
    body = _clean_text(text)
    if body != comment.text:
        previous = json.loads(comment.previous or "[]")
        previous.append({"text": comment.text, "until": utcnow().isoformat(timespec="seconds") + "Z"})
        _event("comment-edited", changes.get_request(change_id), user,
               {"comment": comment.id, "text": body, "replaced": comment.text})  # fmt: skip
        comment.previous, comment.text, comment.edited_at = json.dumps(previous), body, utcnow()
        db.session.commit()
    return comment


def delete_comment(change_id: int, comment_id: int, user: str) -> None:
    """The author deletes their comment while the request is open (the row stays, marked deleted)."""
    comment = _own_open_comment(change_id, comment_id, user)
    comment.deleted_at = utcnow()
    _event("comment-deleted", changes.get_request(change_id), user, {"comment": comment.id, "text": comment.text})
    db.session.commit()


# --- changes requested -----------------------------------------------------------------------


def request_changes(change_id: int, user: str, reason: object) -> Comment:
    """A decider sends a pending request back to its submitter: status `changes_requested` (still
    open and counted against their pending limit, not approvable until a revision), the reason
    (required) a comment of the thread. Every request of its upload goes back together."""
    members = changes.batch_of(changes.get_request(change_id))
    for member in members:
        changes._require_decider(member, user)
    if not isinstance(reason, str) or not reason.strip():
        raise changes.MissingReason("Say what should change, so the submitter knows what to fix.")
    body = _clean_text(reason, "reason")
    for member in members:
        if member.status != "pending":
            raise changes.NotPending(f"Change request #{member.id} is {member.status}, not pending; nothing was done.")
    for member in members:
        if not store.discussion.set_status(member.id, "changes_requested", ("pending",)):
            db.session.rollback()
            raise changes.NotPending(f"Change request #{member.id} was decided by someone else a moment ago.")
    comment = store.discussion.add_comment(
        change_id=change_id, user=user, text=body, kind="changes_requested", revision=members[0].revision
    )
    _event("changes-requested", members[0], user, {"comment": comment.id, "reason": body})
    notifications.changes_requested(members[0], user, body)
    db.session.commit()
    db.session.expire_all()
    return comment


# --- revisions -------------------------------------------------------------------------------


def revise(change_id: int, stream: IO[bytes], options: uploads.UploadOptions) -> RevisionResult:
    """The submitter's corrected file for their open request: read and merged three ways like any
    upload (the one pipeline of uploads.py, `options` as an upload's), it replaces the staged rows
    (those replaced are kept as the earlier revision), keeps the thread, and puts the request back
    to pending as revision N + 1. A file that stages exactly what the request stages already (or
    nothing at all) changes nothing. Refused files, mass deletions and bad options are answered as
    for an upload; a revision takes no place of its own in the pending limit."""
    change = check_reviser(change_id, options.submitter)
    if options.encoding is not None and encodings.codec_name(options.encoding) is None:
        raise Unprocessable(encodings.unknown_encoding(options.encoding))
    ref = tables.of_request(change)
    options = replace(options, filename=clean_filename(options.filename))
    base, source = options.base_version, "field" if options.base_version is not None else ""
    if base is None and (base := uploads.base_from_filename(options.filename)) is not None:
        source = "filename"
    try:
        return _revise(change, ref, stream, options, base, source)
    except TooLarge as exc:
        db.session.rollback()
        raise uploads.Refused(exc, None) from None
    except FileProblems as exc:
        db.session.rollback()
        raise uploads.Refused(exc, uploads._keep_error_file(ref, stream, exc, options)) from None
    except DomainError:
        db.session.rollback()
        raise


def check_reviser(change_id: int, user: str) -> ChangeRequest:
    """The request, when `user` may upload a corrected file to it: its submitter, while it is open,
    and not one of several tables' requests of one upload. Checked before the file is read."""
    change = changes.get_request(change_id)
    if change.submitter != user:
        raise Forbidden("Only the person who uploaded a change request can upload a corrected file to it.")
    if change.status not in OPEN:
        raise changes.NotPending(
            f"Change request #{change_id} is {change.status}: only an open request can be revised."
        )
    if change.batch is not None:
        raise Unprocessable(
            f"Change request #{change_id} is one of several tables' requests of one upload: withdraw it and upload"
            " the corrected file as a new request."
        )
    return change


def _revise(
    change: ChangeRequest,
    ref: tables.TableRef,
    stream: IO[bytes],
    options: uploads.UploadOptions,
    base: int | None,
    base_source: str,
) -> RevisionResult:
    if options.mode not in uploads.MODES:
        raise DomainError(f"mode must be 'full' or 'partial', not {options.mode!r}")
    if base is not None:
        uploads._check_base(base)
    # the request's own table only: a workbook's sheet of another table is not part of this request
    staging = uploads._prepare_one(
        uploads._whole_file(ref, stream, options.sheet, options.encoding), options.mode, base
    )
    uploads._raise_problems([staging])
    result, upload = staging.result, staging.upload
    staged = {r.key: ("add", r.record) for r in result.added}
    staged |= {m.key: ("modify", m.after) for m in result.modified}
    staged |= {key: ("delete", None) for key, _ in result.deleted}
    same = staged == store.discussion.staged_map(change.id) and not staging.merged.conflicts and not change.conflicts
    if same or not staging.changes_something:
        return RevisionResult(change, False, change.summary, upload.encoding, change.warning_list)
    uploads._guard(staging, options.mode, options.confirm_deletions)
    schema, version = ref.schema, staging.version
    store.discussion.keep_staged_rows(change.id, change.revision)
    column_counts = store.changes.stage_rows(change.id, result, schema.names)
    store.changes.add_conflicts(change.id, staging.merged.conflicts, staging.merged.lines)
    warnings = [RequestWarning(WarningKind.FILE, m) for m in upload.warnings + damage.warnings(result, schema)]
    if base is None and version > 0:  # version 0 has no approvals to undo
        undone = history.undo_warnings(ref, change.id, result, staging.current)
        if undone:
            store.changes.set_row_warnings(change.id, undone)
            warnings += [RequestWarning(WarningKind.UNDO, m) for m in list(undone.values())[: damage.MAX_WARNINGS]]
    summary = staging.summary
    number = change.revision + 1
    for name, value in summary.items():
        setattr(change, name, value)
    change.column_counts = json.dumps(column_counts)
    change.mode, change.filename, change.encoding = options.mode, options.filename, upload.encoding
    change.delimiter = upload.delimiter
    change.base_version = version if base is None else base
    change.base_source, change.merged_version = base_source, version
    change.fields, change.warnings = json.dumps(list(schema.names)), warnings_json(warnings)
    change.status, change.revision = "pending", number
    store.discussion.add_revision(
        change_id=change.id,
        number=number,
        user=options.submitter,
        filename=options.filename,
        base_version=change.base_version,
        summary=json.dumps(summary),
    )
    if options.comment.strip():
        store.discussion.add_comment(
            change_id=change.id, user=options.submitter, text=_clean_text(options.comment), revision=number
        )
    dismissed = approvals.dismiss(change, f"a corrected file (revision {number}) replaced its changes")
    _event("revise", change, options.submitter,
           {"revision": number, "filename": options.filename, "summary": summary, "approvals_dismissed": dismissed})  # fmt: skip
    notifications.revised(change, _commenters(change.id))
    db.session.commit()
    return RevisionResult(change, True, summary, upload.encoding, [w.message for w in warnings])


def revisions(change_id: int) -> list[Revision]:
    """The corrected files of a request (revision 2 on), in order."""
    return store.discussion.revisions_of(change_id)


def revision_diff(change: ChangeRequest, since: int, until: int | None = None) -> RevisionDiff:
    """What changed in the staged rows between revision `since` and `until` (None: the request now)."""
    until = change.revision if until is None else until
    if not 1 <= since < until <= change.revision:
        raise Unprocessable(
            f"Compare two revisions of #{change.id} between 1 and {change.revision}, the earlier first"
            f" (asked: {since} and {until})."
        )
    earlier = store.discussion.revision_map(change.id, since)
    later = (
        store.discussion.staged_map(change.id)
        if until == change.revision
        else store.discussion.revision_map(change.id, until)
    )
    return RevisionDiff(since, until, *compare_revisions(earlier, later))


# --- the request's history -------------------------------------------------------------------


@dataclass
class Event:
    """One line of a request's history on its page."""

    at: object
    user: str
    kind: str  # uploaded | revised | comment | changes_requested | approved | rejected | withdrawn
    text: str = ""
    revision: int = 1
    comment: Comment | None = None


def timeline(change: ChangeRequest) -> list[Event]:
    """The request's history, oldest first: uploaded, comments, changes requested, revisions, decided."""
    events = [Event(change.created_at, change.submitter, "uploaded", change.comment, 1)]
    events += [Event(r.created_at, r.user, "revised", r.filename, r.number) for r in revisions(change.id)]
    for c in store.discussion.comments_of(change.id):
        if c.deleted_at is None:
            events.append(Event(c.created_at, c.user, c.kind, c.text, c.revision, c))
    if change.decided_at is not None and change.decided_by:
        events.append(Event(change.decided_at, change.decided_by, change.status, change.reason or "", change.revision))
    return sorted(events, key=lambda e: (e.at, 0 if e.kind == "uploaded" else 1))
