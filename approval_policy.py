"""A table's approval policy (`"approval"` in schema.json) and the decision whether one person's
approval counts. Pure Python: no Flask, no database; the domain (approvals.py) asks, and enforces.

>>> policy = Policy.from_dict({"approvals": 2, "self_approval": "never"})
>>> decide(policy, "ann", submitter="ann", others=("bob",), approved_by=()).allowed
False
>>> decision = decide(Policy(), "ann", submitter="ann", others=(), approved_by=())
>>> decision.allowed, decision.rule, decision.applies
(True, 'sole-approver', True)
>>> decide(Policy(approvals=2), "bob", submitter="ann", others=("bob", "cy"), approved_by=()).applies
False
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

SELF_APPROVAL = ("never", "sole-approver", "always")
REASON = ("optional", "required")
MEANINGS = ("reviewed", "approved", "responsible")  # what an electronic signature means (21 CFR 11.50)
MAX_APPROVALS = 10


class PolicyError(ValueError):
    """The `approval` object of a table in schema.json is malformed; the message says how."""


@dataclass(frozen=True)
class Policy:
    """How a table's requests are approved: how many distinct approvals apply one, whether the
    submitter may be one of them, whether a reason or an electronic signature is required."""

    approvals: int = 1
    self_approval: str = "sole-approver"
    reason: str = "optional"
    signature: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        """`{"approvals": N, "self_approval": …, "reason": …, "signature": …}`, each optional.

        >>> Policy.from_dict({"reason": "required", "signature": True})
        Policy(approvals=1, self_approval='sole-approver', reason='required', signature=True)
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PolicyError('"approval" must be an object like {"approvals": 2, "self_approval": "never"}')
        unknown = sorted(set(data) - {"approvals", "self_approval", "reason", "signature"})
        if unknown:
            raise PolicyError(
                f'"approval" has unknown properties {", ".join(unknown)} (known: approvals, self_approval, reason,'
                " signature)"
            )
        approvals = data.get("approvals", 1)
        if isinstance(approvals, bool) or not isinstance(approvals, int) or not 1 <= approvals <= MAX_APPROVALS:
            raise PolicyError(f'"approval": "approvals" must be a whole number from 1 to {MAX_APPROVALS}')
        self_approval = data.get("self_approval", "sole-approver")
        if self_approval not in SELF_APPROVAL:
            raise PolicyError(f'"approval": "self_approval" must be one of {", ".join(SELF_APPROVAL)}')
        reason = data.get("reason", "optional")
        if reason not in REASON:
            raise PolicyError('"approval": "reason" must be "optional" or "required"')
        signature = data.get("signature", False)
        if not isinstance(signature, bool):
            raise PolicyError('"approval": "signature" must be true or false')
        return cls(approvals, self_approval, reason, signature)

    def strictest(self, other: Policy) -> Policy:
        """The policy of a decision over several tables at once (an upload spanning tables): each rule at its strictest."""
        order = SELF_APPROVAL.index
        return Policy(
            max(self.approvals, other.approvals),
            min(self.self_approval, other.self_approval, key=order),
            "required" if "required" in (self.reason, other.reason) else "optional",
            self.signature or other.signature,
        )

    def describe(self) -> str:
        """The policy in words, for the review page."""
        who = {
            "never": "the submitter may never approve their own request",
            "sole-approver": "the submitter may approve their own request only when nobody else may decide it",
            "always": "the submitter may approve their own request",
        }[self.self_approval]
        parts = [f"{self.approvals} approval{'s' if self.approvals > 1 else ''} needed", who]
        if self.reason == "required":
            parts.append("a reason is required")
        if self.signature:
            parts.append("each approval is an electronic signature (password and meaning)")
        return "; ".join(parts) + "."


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Decision:
    """Whether `user` may approve now: `allowed`, and if not the `message` naming the rule; `rule`
    the rule that let a self-approval through (recorded with it); `applies`: this approval is the
    last one the quorum needs."""

    allowed: bool
    message: str = ""
    rule: str = ""
    applies: bool = False


def decide(
    policy: Policy, user: str, *, submitter: str, others: Collection[str], approved_by: Collection[str]
) -> Decision:
    """May `user` (who may decide the table) add an approval to a request of `submitter`?

    `others`: everyone else who may decide it (admins and the table's approvers, the submitter
    excluded); `approved_by`: who approved it already (approvals not dismissed).

    >>> decide(Policy(), "ann", submitter="ann", others=("bob",), approved_by=()).message[:40]
    'You submitted this request: another admi'
    >>> decide(Policy(approvals=2), "bob", submitter="ann", others=("bob",), approved_by=("bob",)).message[:30]
    'You approved this request alre'
    """
    if user in approved_by:
        return Decision(
            False,
            f"You approved this request already; it needs {policy.approvals} approvals by different people"
            " (rule: one approval per person).",
        )
    rule = ""
    if user == submitter:
        if policy.self_approval == "never":
            return Decision(
                False,
                "You submitted this request: another admin or approver of the table must approve it"
                ' (rule: self_approval "never").',
            )
        if policy.self_approval == "sole-approver":
            if others:
                return Decision(
                    False,
                    "You submitted this request: another admin or approver of the table must approve it"
                    f" ({', '.join(sorted(others)[:5])}{' …' if len(others) > 5 else ''}; rule: self_approval"
                    ' "sole-approver", four eyes when someone else may decide).',
                )
            rule = "sole-approver"
        else:
            rule = "always"
    return Decision(True, rule=rule, applies=len(approved_by) + 1 >= policy.approvals)
