"""Tables. The records table is schema-agnostic (one canonical text per row) so that adding a
column to schema.json needs no database migration; see schema.py for the record format."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The largest id an INTEGER column holds on both databases (PostgreSQL's int4): ids from requests
# are checked against it (web.params), so a 20-digit id is "not found", not a database error.
DB_INT_MAX = 2**31 - 1

# Keys sort bytewise on both databases (and PostgreSQL's index stays usable for prefix search).
KeyText = Text().with_variant(Text(collation="C"), "postgresql")


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Record(db.Model):
    """One row of a shared table (`tbl`, the table_state row of its table): its key and its canonical record text."""

    __tablename__ = "datasets"
    tbl: Mapped[int] = mapped_column(Integer, primary_key=True, default=1, server_default=text("1"))
    key: Mapped[str] = mapped_column(KeyText, primary_key=True)
    record: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)  # table version that last wrote this row


class DatabaseState(db.Model):
    """The one row of the whole database's version: every approval, whatever tables it touches,
    makes the next version, so "the database as of version N" is consistent across tables."""

    __tablename__ = "database_state"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    # The oldest version the history can still rebuild (HISTORY_KEEP_VERSIONS prunes older ones).
    history_from: Mapped[int] = mapped_column(default=0)


class TableState(db.Model):
    """A row per table of schema.json (by `name`): the version that last changed it, its row count,
    and the fields its records use. Row 1 is the table a database made before several tables had."""

    __tablename__ = "table_state"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(63), unique=True)
    version: Mapped[int] = mapped_column(default=0)
    row_count: Mapped[int] = mapped_column(default=0)
    fields: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of field names, in record order
    history_from: Mapped[int] = mapped_column(default=0)  # unused since migration 0006 (see DatabaseState)

    @property
    def field_names(self) -> list[str]:
        return json.loads(self.fields)


class WarningKind(enum.StrEnum):
    """What a request's warning is about; the review page shows each kind under its own heading."""

    FILE = "file"  # the file: sheets or files not read, a doubtful encoding, cells a spreadsheet damaged
    UNDO = "undo"  # a staged change that would undo a later approval (history.undo_warnings)


@dataclass(frozen=True)
class RequestWarning:
    """One warning of a change request, kept with it (`ChangeRequest.warnings`)."""

    kind: WarningKind
    message: str


def warnings_json(warnings: Iterable[RequestWarning]) -> str:
    """Warnings as `ChangeRequest.warnings` keeps them."""
    return json.dumps([{"kind": w.kind.value, "message": w.message} for w in warnings])


def _warning(item: str | dict) -> RequestWarning:
    """A stored warning. A plain string was stored before warnings had a kind: its kind is read from
    the one phrase every undo warning of that time had (requests staged since carry their kind)."""
    if isinstance(item, str):
        return RequestWarning(WarningKind.UNDO if " undoing " in item else WarningKind.FILE, item)
    return RequestWarning(WarningKind(item["kind"]), item["message"])


class ChangeRequest(db.Model):
    """An upload's staged changes awaiting a decision, and what became of them."""

    __tablename__ = "change_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    tbl: Mapped[int] = mapped_column(default=1, server_default=text("1"))  # the table_state row of its table
    # An upload spanning tables is a request per table, decided together: each holds the id of the first.
    batch: Mapped[int | None] = mapped_column(index=True)
    # pending | changes_requested (still open, not approvable) | approved | rejected | withdrawn
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    mode: Mapped[str] = mapped_column(String(16), default="full")
    submitter: Mapped[str] = mapped_column(String(150), index=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str] = mapped_column(String(255), default="")
    encoding: Mapped[str] = mapped_column(String(32), default="")
    delimiter: Mapped[str] = mapped_column(String(4), default=",")
    base_version: Mapped[int]  # the version the uploaded file was downloaded at (else the version it was diffed with)
    base_source: Mapped[str] = mapped_column(
        String(16), default=""
    )  # field | filename | "" (unknown: the current version)
    merged_version: Mapped[int | None]  # the table version its staged rows' `before` were read at
    fields: Mapped[str] = mapped_column(Text)  # JSON list of the field names its records use
    added: Mapped[int] = mapped_column(default=0)
    modified: Mapped[int] = mapped_column(default=0)
    deleted: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    conflicts: Mapped[int] = mapped_column(default=0)  # unresolved merge conflicts
    warnings: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {kind, message} (warnings_json)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(150))
    decided_at: Mapped[dt.datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    applied_version: Mapped[int | None] = mapped_column(index=True)
    reverts: Mapped[int | None]  # the approved request this one undoes
    # When the staged rows of this rejected or withdrawn request were deleted (KEEP_DECIDED_DAYS);
    # the request, its counts and its audit entries stay.
    rows_purged_at: Mapped[dt.datetime | None]
    # {field: number of modified rows that change it}, kept by store.changes whenever staged rows change
    column_counts: Mapped[str] = mapped_column(Text, default="{}")
    revision: Mapped[int] = mapped_column(default=1, server_default=text("1"))  # corrected files make 2, 3, …

    @property
    def field_names(self) -> list[str]:
        return json.loads(self.fields)

    @property
    def column_count_map(self) -> dict[str, int]:
        return json.loads(self.column_counts or "{}")

    @property
    def warning_items(self) -> list[RequestWarning]:
        """The request's warnings, each with its kind."""
        return [_warning(item) for item in json.loads(self.warnings or "[]")]

    @property
    def warning_list(self) -> list[str]:
        """The messages of the request's warnings, as the API has always given them."""
        return [w.message for w in self.warning_items]

    @property
    def summary(self) -> dict[str, int]:
        return {
            "added": self.added,
            "modified": self.modified,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "conflicts": self.conflicts,
        }


class PendingChange(db.Model):
    """One staged row change of a change request: before and after are record texts (None when absent).

    Once the request is approved, its staged rows are the table's history: version
    `applied_version` of the table is the version before it with these rows applied.
    """

    __tablename__ = "pending_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8))  # add | modify | delete
    key: Mapped[str] = mapped_column(KeyText)
    line: Mapped[int | None]
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    warning: Mapped[str | None] = mapped_column(Text)  # why a reviewer should look twice at this row
    # A modification's changed field names, each between CHANGED_SEP (`\x1fowner\x1fname\x1f`): filtered with LIKE
    changed: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_pending_changes_change_action", "change_id", "action", "id"),
        Index("ix_pending_changes_key_change", "key", "change_id"),
    )


class MergeConflict(db.Model):
    """A cell (or a whole row, `column` None) that both the uploader and a later approval changed
    differently: base, theirs and yours are cell values (records for a row), None where absent."""

    __tablename__ = "merge_conflicts"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(KeyText)
    column: Mapped[str | None] = mapped_column(String(200))
    base: Mapped[str | None] = mapped_column(Text)
    theirs: Mapped[str | None] = mapped_column(Text)
    yours: Mapped[str | None] = mapped_column(Text)
    line: Mapped[int | None]

    __table_args__ = (Index("ix_merge_conflicts_change_key", "change_id", "key"),)


class AuditEntry(db.Model):
    """A decision on a change request, by whom: approve (→ `version`), reject, withdraw, or the
    resolution of one merge conflict (`key`, and the choice in `note`).

    The row changes an approval applied are not copied here: they are its request's staged rows
    (PendingChange), which the audit log and the history read (store.history). Migration 0003
    folded the per-row entries older databases have into one approve entry per approval.
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int | None] = mapped_column(ForeignKey("change_requests.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # approve | reject | withdraw | resolve
    key: Mapped[str | None] = mapped_column(KeyText)
    before: Mapped[str | None] = mapped_column(Text)  # unused since migration 0003
    after: Mapped[str | None] = mapped_column(Text)  # unused since migration 0003
    submitter: Mapped[str | None] = mapped_column(String(150), index=True)
    approver: Mapped[str | None] = mapped_column(String(150), index=True)
    submitted_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    version: Mapped[int | None]
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_audit_log_key_id", "key", "id"),)


class Comment(db.Model):
    """A comment on a change request: on the whole request, on one row (`key`) or one cell (`key`
    and `column`). `kind` "changes_requested" is a decider's reason for sending the request back.
    An edit keeps the text it replaced in `previous` (a JSON list), a deletion keeps the row."""

    __tablename__ = "request_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(20), default="comment")  # comment | changes_requested
    text: Mapped[str] = mapped_column(Text)
    key: Mapped[str | None] = mapped_column(KeyText)
    column: Mapped[str | None] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(default=1)  # the request's revision when it was written
    edited_at: Mapped[dt.datetime | None]
    deleted_at: Mapped[dt.datetime | None]
    previous: Mapped[str] = mapped_column(Text, default="[]")

    __table_args__ = (Index("ix_request_comments_change_key", "change_id", "key"),)


class Revision(db.Model):
    """A corrected file uploaded to a change request (revision 2, 3, …; revision 1 is the request
    as first uploaded): who, when, the file, its base version and counts."""

    __tablename__ = "request_revisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    user: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    filename: Mapped[str] = mapped_column(String(255), default="")
    base_version: Mapped[int]
    summary: Mapped[str] = mapped_column(Text, default="{}")  # JSON: added, modified, deleted, unchanged, conflicts


class RevisionRow(db.Model):
    """A staged row of a revision a later one replaced (what "changed since revision N" compares)."""

    __tablename__ = "revision_rows"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    revision: Mapped[int]
    action: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(KeyText)
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_revision_rows_change_revision", "change_id", "revision"),)


class HeldUpload(db.Model):
    """An upload waiting for its owner to confirm a mass deletion, kept an hour so that confirming
    needs no second upload. In the database, like ErrorReport: the confirmation may reach another worker."""

    __tablename__ = "held_uploads"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(150), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    content: Mapped[bytes] = mapped_column(LargeBinary)


class User(UserMixin, db.Model):
    """A built-in account; passwords are stored as salted hashes (werkzeug).

    Its sessions carry `session_generation` (in the id Flask-Login keeps in the cookie): signing
    out, a new password or disabling the account bumps it, which ends every session of the
    account on every worker at its next request.
    """

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    session_generation: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    disabled_at: Mapped[dt.datetime | None]
    created_by_proxy: Mapped[bool] = mapped_column(default=False, server_default=false())  # by AUTH_HEADER
    email: Mapped[str | None] = mapped_column(String(320))
    # The identity provider's `sub` (OIDC_ISSUER): the account it signs in, whatever its name becomes.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    # What the person hears about, as JSON (notifications.Preferences): kinds switched off, tables
    # watched, daily digest. Empty: the defaults.
    notify: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")

    def get_id(self) -> str:
        """What the session cookie holds: the account and its session generation."""
        return f"{self.id}:{self.session_generation}"

    @property
    def is_active(self) -> bool:
        """A disabled account cannot sign in (Flask-Login's login_user refuses it)."""
        return self.disabled_at is None


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # first characters, to tell tokens apart in lists
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    # read < submit < decide; tokens made before scopes existed keep full rights ("decide").
    scope: Mapped[str] = mapped_column(String(10), default="decide", server_default=text("'decide'"))
    expires_at: Mapped[dt.datetime | None]


class UserGroup(db.Model):
    """A group a person belongs to (roles name `group:NAME`): from the identity provider's claim
    (`source` "oidc", replaced at every sign-in) or added by an admin (`source` "local")."""

    __tablename__ = "user_groups"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    name: Mapped[str] = mapped_column(String(150), primary_key=True)
    source: Mapped[str] = mapped_column(String(10), primary_key=True)


class LoginFailure(db.Model):
    """A failed sign-in, kept briefly so every worker can throttle guessing."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class ErrorReport(db.Model):
    """A refused upload with an `errors` column added, for its owner to download; kept for a day.

    Kept in the database, not in a worker's memory or temporary files: the download may reach
    another worker than the upload did.
    """

    __tablename__ = "error_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(150), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Approval(db.Model):
    """One person's approval of a pending request (a quorum needs several), with its reason and,
    under a signature policy, the electronic signature: its meaning and the SHA-256 of the change
    set signed. Dismissed (kept, no longer counted) when the request's staged rows change."""

    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(150))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    meaning: Mapped[str | None] = mapped_column(String(16))  # reviewed | approved | responsible (signatures)
    digest: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the change set it signed
    rule: Mapped[str] = mapped_column(String(16), default="")  # sole-approver | always: a self-approval, and why
    version: Mapped[int | None]  # the version the approval that applied the request made
    dismissed_at: Mapped[dt.datetime | None]
    dismissed_why: Mapped[str | None] = mapped_column(Text)


class ChangeSet(db.Model):
    """The SHA-256 of a pending request's staged rows (approvals.change_set_digest), computed while
    they are staged, when they pass through Python anyway; forgotten whenever they change."""

    __tablename__ = "change_sets"
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))


class Event(db.Model):
    """One entry of the append-only event log: what happened, when (UTC), who, from where, to which
    table and request. `hash` chains it to the previous event (events.py); the app never updates
    or deletes an event, and on PostgreSQL a trigger of migration 0007 refuses to."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # the chain's position, from event_chain
    at: Mapped[dt.datetime] = mapped_column(index=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    username: Mapped[str | None] = mapped_column(String(150), index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    table_name: Mapped[str | None] = mapped_column(String(63))
    change_id: Mapped[int | None]
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    hash: Mapped[str] = mapped_column(String(64))


class EventChain(db.Model):
    """The one row at the head of the event chain: the last event's id and hash. Writers update it
    first, so its row lock (PostgreSQL) or the write lock (SQLite) makes one chain of many processes."""

    __tablename__ = "event_chain"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64))


class Webhook(db.Model):
    """A receiver of signed event messages (`flask --app app webhooks add`): its URL, its secret,
    the event types it wants (empty: all) and the table it is limited to (None: every table)."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    events: Mapped[str] = mapped_column(Text, default="")  # comma-separated event types; "" = all
    table_name: Mapped[str | None] = mapped_column(String(63))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMessage(db.Model):
    """One message to deliver (an e-mail or a webhook call), written in the same transaction as the
    change it reports, so a rolled-back decision sends nothing and a committed one is never lost.

    A sender claims it (`claimed_until`: a claim expires, so a crashed sender's messages go out
    after it), delivers, and marks it `sent`, or sets `next_attempt_at` (back-off) until it is
    `failed`. `held`: kept for its recipient's daily digest; `digested` once that went out.
    `message_id` is the webhook-id, the same on every attempt, so receivers can drop duplicates.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    event: Mapped[str] = mapped_column(String(32))  # request.approved, …, or digest
    change_id: Mapped[int | None] = mapped_column(index=True)
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(Text)  # an e-mail address, or the webhook's URL
    username: Mapped[str | None] = mapped_column(String(150))
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)  # the e-mail's text, or the webhook's JSON
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed|held|digested
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
