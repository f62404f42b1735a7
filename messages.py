"""What a notification says: an event of a change request as an e-mail's text, a webhook's JSON
body and its Standard Webhooks signature. Pure: no Flask, no SQL, no network.

An `Event` is made by notifications.py (which knows who hears it); the sender (sender.py)
delivers what this module wrote.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = (
    "request.submitted",
    "request.conflicts",
    "request.stale",
    "request.approved",
    "request.rejected",
    "request.withdrawn",
    "request.reverted",
    "request.comment",  # discussion.py (issue 25)
    "request.changes_requested",
    "request.revised",
)
ROWS_IN_BODY = 20  # the first changes a webhook body carries, with before and after
SECRET_PREFIX = "whsec_"  # a Standard Webhooks secret: the key is the base64 after it

# What happened, in the words of a message: {type: verb phrase}.
HAPPENED = {
    "request.submitted": "is waiting for a decision",
    "request.needs_approval": "needs another approval",  # e-mail only: webhooks get the event types above
    "request.approvals_dismissed": "changed after it was approved: the approvals no longer count",  # e-mail only
    "request.conflicts": "has merge conflicts to resolve",
    "request.stale": "was sent back: a later approval changed the same cells",
    "request.approved": "was approved",
    "request.rejected": "was rejected",
    "request.withdrawn": "was withdrawn",
    "request.reverted": "was reverted",
    "request.comment": "has a new comment",
    "request.changes_requested": "was sent back: changes requested",
    "request.revised": "has a corrected file and is waiting for a decision again",
}


@dataclass
class Event:
    """One thing that happened to a change request, with what a message about it says.

    `rows`: the first ROWS_IN_BODY staged changes as {"action", "key", "before", "after"} (values
    by column name, None for a side that does not exist)."""

    type: str
    change_id: int
    table: str
    status: str
    submitter: str
    url: str
    version: int | None = None
    decided_by: str | None = None
    reason: str | None = None
    comment: str = ""
    summary: dict[str, int] = field(default_factory=dict)
    columns: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0
    reverted_by: int | None = None  # request.reverted: the request that undid this one

    def one_line(self) -> str:
        """What happened, in one line readable in an inbox, Slack or Teams.

        >>> Event("request.approved", 7, "catalog", "approved", "alice", "http://x/changes/7", version=12,
        ...       decided_by="boss", summary={"added": 1, "modified": 2, "deleted": 0}).one_line()
        'Change request #7 to catalog by alice was approved by boss (version 12): 1 added, 2 modified, 0 deleted'
        """
        by = f" by {self.decided_by}" if self.decided_by and self.type != "request.submitted" else ""
        if self.type == "request.needs_approval":
            by = f" (approved by {self.decided_by} so far)" if self.decided_by else ""
        if self.type == "request.reverted" and self.reverted_by is not None:
            by = f" by change request #{self.reverted_by}" + (f" ({self.decided_by})" if self.decided_by else "")
        version = f" (version {self.version})" if self.version is not None and self.type != "request.submitted" else ""
        counts = ", ".join(f"{self.summary.get(k, 0):,} {k}" for k in ("added", "modified", "deleted"))
        text = f"Change request #{self.change_id} to {self.table} by {self.submitter} {HAPPENED[self.type]}{by}{version}: {counts}"
        if self.conflicts:
            text += f", {self.conflicts:,} conflict(s)"
        return text

    def data(self) -> dict[str, Any]:
        """The `data` object of a webhook body (the shape the issue names, in its order)."""
        return {
            "change_id": self.change_id,
            "table": self.table,
            "status": self.status,
            "version": self.version,
            "submitter": self.submitter,
            "decided_by": self.decided_by,
            "reason": self.reason,
            "summary": {k: self.summary.get(k, 0) for k in ("added", "modified", "deleted")},
            "columns": dict(self.columns),
            "url": self.url,
            "rows": self.rows[:ROWS_IN_BODY],
        }


def webhook_body(event: Event, message_id: str, timestamp: dt.datetime) -> str:
    """The JSON a webhook receives: {"type", "id", "timestamp", "data", "text"}.

    >>> e = Event("request.withdrawn", 3, "catalog", "withdrawn", "bob", "http://x/changes/3")
    >>> json.loads(webhook_body(e, "msg_1", dt.datetime(2026, 1, 2, 3, 4, 5)))["timestamp"]
    '2026-01-02T03:04:05Z'
    """
    return json.dumps(
        {
            "type": event.type,
            "id": message_id,
            "timestamp": timestamp.replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
            "data": event.data(),
            "text": event.one_line(),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def email_text(event: Event) -> tuple[str, str]:
    """(subject, body) of the e-mail about an event: the one line, the counts per kind and per
    column, the reason of a decision, the submitter's comment, and the link to the request."""
    lines = [event.one_line() + ".", ""]
    if event.reason:
        lines += ["Reason:", *(f"  {line}" for line in event.reason.splitlines()), ""]
    if event.comment:
        lines += ["The submitter's comment:", *(f"  {line}" for line in event.comment.splitlines()), ""]
    lines.append("Changes:")
    lines += [f"  {event.summary.get(k, 0):>9,} {k}" for k in ("added", "modified", "deleted")]
    if event.conflicts:
        lines.append(f"  {event.conflicts:>9,} conflicts")
    if event.columns:
        lines += ["", "Modified rows per column:"]
        lines += [f"  {count:>9,} {name}" for name, count in sorted(event.columns.items(), key=lambda i: (-i[1], i[0]))]
    lines += ["", f"Open it: {event.url}", ""]
    return f"[Dataset Tracker] #{event.change_id} {event.table}: {HAPPENED[event.type]}", "\n".join(lines)


def digest_text(messages: Sequence[tuple[str, str]], account_url: str) -> tuple[str, str]:
    """(subject, body) of a daily digest: the held messages' (subject, body), oldest first."""
    parts = [f"{len(messages)} notification(s) since the last digest:", ""]
    for subject, body in messages:
        parts += [subject.removeprefix("[Dataset Tracker] "), "-" * 60, body.rstrip(), ""]
    parts += [f"Choose what you receive, and how often: {account_url}", ""]
    return f"[Dataset Tracker] Daily digest: {len(messages)} notification(s)", "\n".join(parts)


def secret_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret: a Standard Webhooks `whsec_…` secret is base64 after its
    prefix; any other secret is used as its UTF-8 bytes.

    >>> secret_key("whsec_c2VjcmV0"), secret_key("secret")
    (b'secret', b'secret')
    """
    if secret.startswith(SECRET_PREFIX):
        raw = secret[len(SECRET_PREFIX) :]
        return base64.b64decode(raw + "=" * (-len(raw) % 4))
    return secret.encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body".

    >>> sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
    ...      '{"test": 2432232314}')
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
    """
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(secret: str, message_id: str, timestamp: int, body: str) -> Mapping[str, str]:
    """The headers of one webhook call (signed at the time of the call: a retry is signed anew,
    with the same id)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "Dataset-Tracker-Webhooks",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def retry_delay(attempts: int, first_seconds: float, most_seconds: float = 3600) -> float:
    """Seconds to wait after the `attempts`-th failed delivery: `first_seconds`, doubling each time,
    at most `most_seconds`.

    >>> [retry_delay(n, 30) for n in (1, 2, 3, 10)]
    [30, 60, 120, 3600]
    """
    return min(most_seconds, first_seconds * 2 ** (attempts - 1))
