"""Who may approve a request, how many must, and with what: the table's approval policy
(approval_policy.py) enforced for every front end, each approval recorded (with its reason and
electronic signature), counted towards the quorum, and dismissed when the request changes.

changes.approve calls `approve` before it applies anything (False: recorded, more approvals
needed) and `applied` just before its commit; changes calls `dismiss` whenever it rewrites a
request's staged rows. Approvals of an upload spanning tables are kept on its first request.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter

from flask import current_app

import accounts
import diff
import events
import notifications
import store.approvals
import store.audit
import store.changes
import tables
from approval_policy import MEANINGS, Decision, Policy, decide
from errors import DomainError, Forbidden, Unprocessable
from models import Approval, ChangeRequest, db

OVERRIDE_RULE = "override"


class Unauthorized(DomainError):
    """An electronic signature without the signer's password (or with a wrong one)."""

    status = 401


@dataclass(frozen=True)
class Signoff:
    """What an approver sends with an approval: a reason; under a signature policy their password
    and the signature's meaning. `override`: the console's break-glass approval (cli.py only)."""

    reason: str = ""
    password: str | None = None
    meaning: str | None = None
    override: bool = False


@dataclass
class Pending:
    """Where a request's quorum stands: its counting approvals and how many it needs."""

    approvals: list[Approval]
    needed: int


@dataclass
class View:
    """What the review page shows about approving: the policy, who approved (and whose approvals
    were dismissed), who may still approve, and why the current user may not (empty: they may)."""

    policy: Policy
    approvals: list[Approval]
    dismissed: list[Approval]
    may_still: list[str]
    why_not: str
    signature: bool = False
    meanings: tuple[str, ...] = field(default=MEANINGS)


NO_SIGNOFF = Signoff()


def anchor(change: ChangeRequest) -> int:
    """The request whose approvals count for this one: the first of its upload."""
    return change.batch if change.batch is not None else change.id


def policy_of(members: Sequence[ChangeRequest]) -> Policy:
    """The policy of deciding these requests together: each rule at its strictest over their tables."""
    policy = tables.of_request(members[0]).spec.approval
    for member in members[1:]:
        policy = policy.strictest(tables.of_request(member).spec.approval)
    return policy


def deciders(members: Sequence[ChangeRequest]) -> list[str]:
    """Everyone with an active account who may decide all these requests (admins, the tables' approvers)."""
    specs = [tables.of_request(m).spec for m in members]
    names = set(current_app.config["ADMIN_USERS"]) | {a for spec in specs for a in spec.approvers}
    found = []
    for name in sorted(names):
        user = accounts.find_user(name)
        if user is not None and user.is_active and all(accounts.may_decide(name, s.approvers) for s in specs):
            found.append(name)
    return found


def _decision(members: Sequence[ChangeRequest], user: str, counting: Sequence[Approval]) -> Decision:
    submitter = members[0].submitter
    others = [name for name in deciders(members) if name != submitter]
    return decide(
        policy_of(members), user, submitter=submitter, others=others, approved_by=[a.username for a in counting]
    )


@dataclass
class Go:
    """An approval that completes the quorum, kept until the requests are applied (`applied`): it
    is written after the request is claimed, so nothing is written before that (two approvers at
    once: one wins, on SQLite's one writer too)."""

    members: Sequence[ChangeRequest]
    user: str
    signoff: Signoff
    rule: str
    reason: str | None = None
    meaning: str | None = None
    digest: str | None = None
    stale: set[int] = field(default_factory=set)  # requests merged again as they are applied


def approve(members: Sequence[ChangeRequest], user: str, signoff: Signoff) -> Go | None:
    """Check `user`'s approval of these requests (decided together) against the policy: a `Go`
    when it is the last approval the quorum needs (the caller applies, then calls `applied`);
    None when more are needed (the approval recorded, its event written, committed).

    Forbidden (403) names the rule a self-approval or a second approval breaks; Unprocessable (422)
    a missing reason or meaning; Unauthorized (401) a signature without the right password."""
    if signoff.override:
        return Go(members, user, signoff, OVERRIDE_RULE, signoff.reason, stale=_stale(members))
    policy = policy_of(members)
    decision = _decision(members, user, store.approvals.of(anchor(members[0])))
    if not decision.allowed:
        raise Forbidden(decision.message)
    reason = (signoff.reason or "").strip()
    if policy.reason == "required" and not reason:
        raise Unprocessable("This table's approval policy requires a reason: say why you approve (reason).")
    meaning, digest = None, None
    if policy.signature:
        if not signoff.password:
            raise Unauthorized(
                "Approving this table's requests is an electronic signature: give your password again (password)"
                " and what your signature means (meaning); a token alone cannot sign."
            )
        if not accounts.check_password(user, signoff.password):
            raise Unauthorized("Wrong password: the signature was not made and nothing was approved.")
        if signoff.meaning not in MEANINGS:
            raise Unprocessable(f"Say what your signature means: meaning must be one of {', '.join(MEANINGS)}.")
        meaning, digest = signoff.meaning, change_set_digest(members)
    go = Go(members, user, signoff, decision.rule, reason or None, meaning, digest, _stale(members))
    if decision.applies:
        return go
    _record(go)
    db.session.flush()
    _events(members, user, go.reason, go.rule, meaning, digest, applied=False, needed=policy.approvals)
    approved_by = [a.username for a in store.approvals.of(anchor(members[0]))]
    notifications.needs_another_approval(members[0], user, approved_by=approved_by)
    db.session.commit()
    return None


def _record(go: Go) -> None:
    store.approvals.add(
        anchor(go.members[0]), go.user, reason=go.reason, meaning=go.meaning, digest=go.digest, rule=go.rule
    )


def _stale(members: Sequence[ChangeRequest]) -> set[int]:
    """The requests merged with an older version than the database's: merged again as they are
    applied, so their digest is computed afresh from the rows then applied."""
    now = tables.database().version
    return {m.id for m in members if (m.merged_version if m.merged_version is not None else m.base_version) != now}


def applied(go: Go, version: int) -> None:
    """Before the commit of the approval that applied the requests: the approval itself, the
    version on the request's approvals, the signature entries of the audit log, and the approve
    (or override) event with the SHA-256 of the change set applied."""
    members, user = go.members, go.user
    first = anchor(members[0])
    _record(go)
    db.session.flush()
    store.approvals.set_version(first, version)
    for member_id in go.stale:
        store.approvals.forget_digest(member_id)
    for signed in store.approvals.of(first):
        if signed.meaning:  # the signature record goes with the audit log and every export of it
            store.audit.write(
                members[0].id,
                "signature",
                members[0].submitter,
                signed.username,
                members[0].created_at,
                version=version,
                note=signature_note(signed, version),
            )
    digest = change_set_digest(members)
    if go.signoff.override:
        events.record(
            "override",
            user=user,
            table=tables.of_request(members[0]).name,
            change_id=members[0].id,
            details={"version": version, "reason": go.reason, "change_set": digest, "requests": _ids(members)},
        )
        return
    _events(
        members,
        user,
        go.reason,
        go.rule,
        go.meaning,
        go.digest,
        applied=True,
        needed=policy_of(members).approvals,
        version=version,
        change_set=digest,
    )


def _events(
    members: Sequence[ChangeRequest],
    user: str,
    reason: str | None,
    rule: str,
    meaning: str | None,
    signed: str | None,
    *,
    applied: bool,
    needed: int,
    version: int | None = None,
    change_set: str | None = None,
) -> None:
    table, change_id = tables.of_request(members[0]).name, members[0].id
    if meaning is not None:
        events.record(
            "signature",
            user=user,
            table=table,
            change_id=change_id,
            details={"meaning": meaning, "reason": reason, "change_set": signed},
        )
    details = {
        "applied": applied,
        "approvals": len(store.approvals.of(anchor(members[0]))),
        "needed": needed,
        "reason": reason,
        "requests": _ids(members),
    }
    if rule:
        details["self_approval"] = rule
    if applied:
        details |= {"version": version, "change_set": change_set}
    events.record("approve", user=user, table=table, change_id=change_id, details=details)


def signature_note(approval: Approval, version: int | None) -> str:
    """An electronic signature in words: who, when (UTC), what it means, why, what it signed, the version it made."""
    parts = [
        f"signed by {approval.username}",
        f"at {events.timestamp(approval.at)}",
        f"meaning: {approval.meaning}",
        f"reason: {approval.reason or '-'}",
        f"change set SHA-256 {approval.digest}",
    ]
    if version is not None:
        parts.append(f"version {version}")
    return "; ".join(parts)


def _ids(members: Sequence[ChangeRequest]) -> list[int]:
    return [m.id for m in members]


def change_set_digest(members: Sequence[ChangeRequest]) -> str:
    """SHA-256 of what the requests change (their staged rows); one request's own digest when alone."""
    if len(members) == 1:
        return store.approvals.change_set_digest(members[0].id)
    combined = hashlib.sha256()
    for member in members:
        combined.update(f"{member.id}:{store.approvals.change_set_digest(member.id)}\n".encode())
    return combined.hexdigest()


def staged(change_id: int, result: diff.Diff) -> None:
    """Keep the digest of rows just staged (store.changes.stage_rows writes additions,
    modifications, deletions in the diff's order), computed from the diff in memory."""
    added, modified, deleted = result.added, result.modified, result.deleted
    rows = itertools.chain(  # zip over the diff's own lists, as store.changes stages them
        zip(repeat("add"), map(itemgetter(1), added), repeat(""), map(itemgetter(2), added)),
        zip(repeat("modify"), map(itemgetter(1), modified), map(itemgetter(2), modified), map(itemgetter(3), modified)),
        zip(repeat("delete"), map(itemgetter(0), deleted), map(itemgetter(1), deleted), repeat("")),
    )
    store.approvals.keep_digest(change_id, store.approvals.rows_digest(rows))


def dismiss(change: ChangeRequest, why: str) -> int:
    """The request's staged rows changed: its approvals (and signatures) no longer count, its
    digest is computed again; returns how many approvals were dismissed."""
    store.approvals.forget_digest(change.id)
    approvers = [a.username for a in store.approvals.of(anchor(change))]
    dismissed = store.approvals.dismiss(anchor(change), why)
    notifications.approvals_dismissed(change, approvers)
    return dismissed


def _members(change: ChangeRequest) -> list[ChangeRequest]:
    return [change] if change.batch is None else store.changes.batch_members(change.batch)


def pending(change: ChangeRequest) -> Pending:
    """The counting approvals of a request and how many its policy needs."""
    return Pending(store.approvals.of(anchor(change)), policy_of(_members(change)).approvals)


def view(change: ChangeRequest, user: str) -> View:
    """What the review page shows `user` about approving `change`."""
    members = _members(change)
    policy = policy_of(members)
    every = store.approvals.of(anchor(change), dismissed=True)
    counting = [a for a in every if a.dismissed_at is None]
    dismissed = [a for a in every if a.dismissed_at is not None]
    may_still, why_not = [], ""
    if change.status == "pending":
        may_still = [name for name in deciders(members) if _decision(members, name, counting).allowed]
        if not all(accounts.may_decide(user, tables.of_request(m).spec.approvers) for m in members):
            why_not = "Only admins and the approvers of this table may approve it."
        else:
            why_not = _decision(members, user, counting).message
    return View(policy, counting, dismissed, may_still, why_not, policy.signature)
