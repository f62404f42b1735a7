"""The approval policy (issue 22): pure rules as a table, then enforced through the API, the pages
and the console on both databases: four eyes by default, "never", quorum, reasons, electronic
signatures, dismissal when the request changes, the break-glass override."""

from __future__ import annotations

import json

import pytest
from conftest import CATALOG_SCHEMA, add_test_users, row, table

import accounts
import store.approvals
from approval_policy import Policy, PolicyError, decide
from models import db
from package import Package
from schema import SchemaError

# --- the pure rules ----------------------------------------------------------------------------

DECISIONS = [
    # policy, user, submitter, others, approved_by → allowed, applies, words in the message
    (Policy(), "ann", "ann", (), (), True, True, ""),
    (Policy(), "ann", "ann", ("bob",), (), False, False, 'self_approval "sole-approver"'),
    (Policy(), "bob", "ann", ("bob",), (), True, True, ""),
    (Policy(self_approval="never"), "ann", "ann", (), (), False, False, 'self_approval "never"'),
    (Policy(self_approval="always"), "ann", "ann", ("bob",), (), True, True, ""),
    (Policy(approvals=2), "bob", "ann", ("bob", "cy"), (), True, False, ""),
    (Policy(approvals=2), "cy", "ann", ("bob", "cy"), ("bob",), True, True, ""),
    (Policy(approvals=2), "bob", "ann", ("bob", "cy"), ("bob",), False, False, "one approval per person"),
    (Policy(approvals=3, self_approval="always"), "ann", "ann", ("bob",), ("bob", "cy"), True, True, ""),
]


@pytest.mark.parametrize(
    ("policy", "user", "submitter", "others", "approved", "allowed", "applies", "words"), DECISIONS
)
def test_decide(policy, user, submitter, others, approved, allowed, applies, words):
    decision = decide(policy, user, submitter=submitter, others=others, approved_by=approved)
    assert (decision.allowed, decision.applies) == (allowed, applies)
    assert words in decision.message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"approvals": 0}, "from 1 to"),
        ({"approvals": "2"}, "whole number"),
        ({"self_approval": "sometimes"}, "never, sole-approver, always"),
        ({"reason": "yes"}, '"optional" or "required"'),
        ({"signature": "yes"}, "true or false"),
        ({"quorum": 2}, "unknown properties quorum"),
        ([], "must be an object"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(data, words):
    with pytest.raises(PolicyError, match=words):
        Policy.from_dict(data)


def test_the_package_reads_a_policy_per_resource_and_names_a_bad_one():
    schema = json.loads(CATALOG_SCHEMA.read_text())
    package = Package.from_dict(schema | {"approval": {"approvals": 2, "reason": "required"}})
    assert package.first.approval == Policy(approvals=2, reason="required")
    assert Package.from_dict(schema).first.approval == Policy()  # the default: one approval, sole-approver
    many = {
        "resources": [{"name": "a", "schema": schema, "approval": {"signature": True}}, {"name": "b", "schema": schema}]
    }
    assert [t.approval.signature for t in Package.from_dict(many).tables] == [True, False]
    with pytest.raises(SchemaError, match='resource \'a\': "approval": "approvals"'):
        Package.from_dict({"resources": [{"name": "a", "schema": schema, "approval": {"approvals": 99}}]})


# --- enforced through the API, the pages and the console ----------------------------------------


@pytest.fixture
def policy_app(make_app, tmp_path):
    """policy_app(policy, admins) → an app whose catalog has that `approval`, admins boss (and chief…),
    users alice and bob; every admin's password is NAME-password."""

    def factory(policy: dict | None = None, admins: tuple[str, ...] = ("boss", "chief"), **config):
        schema = json.loads(CATALOG_SCHEMA.read_text()) | ({"approval": policy} if policy is not None else {})
        path = tmp_path / f"schema-{len(list(tmp_path.glob('schema-*')))}.json"
        path.write_text(json.dumps(schema))
        config.setdefault("FIRST_ADMIN_PASSWORD_FILE", tmp_path / "first-admin-password")
        instance = add_test_users(make_app(SCHEMA_PATH=path, ADMIN_USERS=list(admins), **config))
        with instance.app_context():
            for name in admins[1:]:
                accounts.set_password(name, f"{name}-password")
        return instance

    return factory


def client(app, name: str):
    from conftest import Api

    return Api(app, name)


def staged(app, submitter: str = "alice", *rows: str) -> int:
    r = client(app, submitter).upload(table(*(rows or (row("DS-1", "Sales"),))), mode="partial")
    assert r.status_code == 201, r.text
    return r.json["id"]


def approvals_of(app, change_id: int):
    with app.app_context():
        found = [(a.username, a.rule, a.reason, a.meaning, a.dismissed_at is not None)
                 for a in store.approvals.of(change_id, dismissed=True)]  # fmt: skip
        db.session.remove()
        return found


def test_self_approval_is_refused_by_default_when_another_admin_may_decide(policy_app):
    app = policy_app()
    change = staged(app, "boss")
    r = client(app, "boss").post(f"/api/v1/changes/{change}/approve")
    assert r.status_code == 403
    assert 'self_approval "sole-approver"' in r.json["error"] and "chief" in r.json["error"]
    assert approvals_of(app, change) == []
    r = client(app, "chief").post(f"/api/v1/changes/{change}/approve")
    assert r.status_code == 200 and r.json == {"id": change, "status": "approved", "version": 1}


def test_a_sole_decider_may_approve_their_own_request_and_it_is_recorded(policy_app):
    app = policy_app(admins=("boss",))
    change = staged(app, "boss")
    r = client(app, "boss").post(f"/api/v1/changes/{change}/approve")
    assert r.status_code == 200, r.text
    assert approvals_of(app, change) == [("boss", "sole-approver", None, None, False)]
    boss = client(app, "boss")
    event = boss.get("/api/v1/events?type=approve").json["items"][0]
    assert event["details"]["self_approval"] == "sole-approver" and event["details"]["applied"] is True


def test_never_refuses_even_a_sole_decider(policy_app):
    app = policy_app({"self_approval": "never"}, admins=("boss",))
    change = staged(app, "boss")
    r = client(app, "boss").post(f"/api/v1/changes/{change}/approve")
    assert r.status_code == 403 and 'self_approval "never"' in r.json["error"]


def test_a_quorum_of_two_applies_at_the_second_distinct_approver(policy_app):
    app = policy_app({"approvals": 2})
    change = staged(app)
    boss, chief = client(app, "boss"), client(app, "chief")
    r = boss.post(f"/api/v1/changes/{change}/approve", json={"reason": "looks right"})
    assert r.status_code == 202, r.text
    assert r.json["status"] == "pending" and r.json["approvals_needed"] == 2
    assert [(a["user"], a["reason"]) for a in r.json["approvals"]] == [("boss", "looks right")]
    assert r.json["approvals"][0]["at"].endswith("Z")
    assert boss.get(f"/api/v1/changes/{change}").json["status"] == "pending"
    assert boss.get("/api/v1/export.csv").headers["X-Dataset-Version"] == "0"
    again = boss.post(f"/api/v1/changes/{change}/approve")
    assert again.status_code == 403 and "one approval per person" in again.json["error"]
    r = chief.post(f"/api/v1/changes/{change}/approve")
    assert r.status_code == 200 and r.json["version"] == 1
    assert "Sales" in boss.get("/api/v1/export.csv").data.decode("utf-8-sig")


def test_the_review_page_shows_who_approved_who_may_still_and_why_not(policy_app):
    app = policy_app({"approvals": 2})
    change = staged(app, "boss")
    from conftest import Browser

    chief = Browser(app, "chief")
    assert chief.post(f"/changes/{change}/approve", data={"approve_reason": "fine"}).status_code == 302
    page = Browser(app, "boss").get(f"/changes/{change}").text
    assert "chief, " in page and ": fine" in page
    assert "1 of 2 approvals" in page
    assert "May still approve: " not in page or "boss" not in page.split("May still approve: ")[1].split(".")[0]
    assert "You cannot approve it: You submitted this request" in page
    page = chief.get(f"/changes/{change}").text
    assert "You cannot approve it: You approved this request already" in page


def test_a_required_reason(policy_app):
    app = policy_app({"reason": "required"})
    change = staged(app)
    boss = client(app, "boss")
    r = boss.post(f"/api/v1/changes/{change}/approve")
    assert r.status_code == 422 and "requires a reason" in r.json["error"]
    r = boss.post(f"/api/v1/changes/{change}/approve", json={"reason": "   "})
    assert r.status_code == 422
    r = boss.post(f"/api/v1/changes/{change}/approve", json={"reason": "checked against the source"})
    assert r.status_code == 200
    assert approvals_of(app, change) == [("boss", "", "checked against the source", None, False)]


def test_a_bad_approval_body_is_a_clear_400(policy_app):
    app = policy_app()
    change = staged(app)
    boss = client(app, "boss")
    assert (
        boss.post(f"/api/v1/changes/{change}/approve", data="[1]", content_type="application/json").status_code == 400
    )
    r = boss.post(f"/api/v1/changes/{change}/approve", json={"reason": 5})
    assert r.status_code == 400 and "reason must be a string" in r.json["error"]


def test_a_signature_needs_the_password_and_a_meaning(policy_app):
    app = policy_app({"signature": True})
    change = staged(app)
    boss = client(app, "boss")
    r = boss.post(f"/api/v1/changes/{change}/approve")  # a token alone
    assert r.status_code == 401 and "password" in r.json["error"]
    r = boss.post(f"/api/v1/changes/{change}/approve", json={"password": "wrong-password", "meaning": "approved"})
    assert r.status_code == 401 and "Wrong password" in r.json["error"]
    r = boss.post(f"/api/v1/changes/{change}/approve", json={"password": "boss-password", "meaning": "liked"})
    assert r.status_code == 422 and "reviewed, approved, responsible" in r.json["error"]
    assert approvals_of(app, change) == []
    r = boss.post(
        f"/api/v1/changes/{change}/approve",
        json={"password": "boss-password", "meaning": "responsible", "reason": "owner of the data"},
    )
    assert r.status_code == 200, r.text
    # the signature record: in the audit log and its export, on the request's page
    audit = boss.get("/api/v1/audit?action=signature").json["items"]
    assert len(audit) == 1 and audit[0]["approver"] == "boss"
    note = audit[0]["note"]
    assert "meaning: responsible" in note and "reason: owner of the data" in note and "version 1" in note
    with app.app_context():
        digest = store.approvals.of(change)[0].digest
    assert len(digest) == 64 and digest in note
    assert digest in boss.get("/api/v1/audit.csv").data.decode("utf-8-sig")
    from conftest import Browser

    assert digest in Browser(app, "alice").get(f"/changes/{change}").text
    kinds = [e["type"] for e in boss.get("/api/v1/events?table=datasets").json["items"] if e["change_id"] == change]
    assert kinds == ["approve", "signature", "upload-staged"]


def test_the_page_signs_with_the_password_field(policy_app):
    app = policy_app({"signature": True})
    change = staged(app)
    from conftest import Browser

    boss = Browser(app, "boss")
    assert 'name="password"' in boss.get(f"/changes/{change}").text
    boss.post(f"/changes/{change}/approve", data={"meaning": "approved"})
    assert client(app, "boss").get(f"/api/v1/changes/{change}").json["status"] == "pending"
    boss.post(f"/changes/{change}/approve", data={"meaning": "approved", "password": "boss-password"})
    assert client(app, "boss").get(f"/api/v1/changes/{change}").json["status"] == "approved"


def test_approvals_and_signatures_are_dismissed_when_the_request_changes(policy_app):
    """Merged again at approval (a later approval touched its rows) and resolved: the approvals
    given before no longer count, and the quorum starts again."""
    app = policy_app({"approvals": 2, "signature": True}, admins=("boss", "chief", "dora"))
    seed = staged(app, "alice", row("DS-1", "Sales"))
    sign = {"password": "boss-password", "meaning": "approved"}
    boss, chief, dora = client(app, "boss"), client(app, "chief"), client(app, "dora")
    assert boss.post(f"/api/v1/changes/{seed}/approve", json=sign).status_code == 202
    assert chief.post(f"/api/v1/changes/{seed}/approve", json=sign | {"password": "chief-password"}).status_code == 200
    mine = staged(app, "alice", row("DS-1", "Sales EMEA"))
    theirs = staged(app, "bob", row("DS-1", "Sales APAC"))
    assert boss.post(f"/api/v1/changes/{mine}/approve", json=sign).status_code == 202  # boss signs alice's
    assert (
        chief.post(f"/api/v1/changes/{theirs}/approve", json=sign | {"password": "chief-password"}).status_code == 202
    )
    assert dora.post(f"/api/v1/changes/{theirs}/approve", json=sign | {"password": "dora-password"}).status_code == 200
    # dora's approval would complete alice's request, but it is stale: sent back, boss's signature void
    r = dora.post(f"/api/v1/changes/{mine}/approve", json=sign | {"password": "dora-password"})
    assert r.status_code == 409
    assert approvals_of(app, mine) == [("boss", "", None, "approved", True)]
    alice = client(app, "alice")
    r = alice.post(
        f"/api/v1/changes/{mine}/resolve", json={"resolutions": [{"key": "DS-1", "column": "name", "take": "yours"}]}
    )
    assert r.status_code == 200 and r.json["conflicts"] == []
    r = dora.post(f"/api/v1/changes/{mine}/approve", json=sign | {"password": "dora-password"})
    assert r.status_code == 202 and [a["user"] for a in r.json["approvals"]] == ["dora"]
    assert boss.post(f"/api/v1/changes/{mine}/approve", json=sign).status_code == 200
    page = client(app, "alice").client.get(f"/changes/{mine}")  # not signed in: no page
    assert page.status_code == 302


def test_resolving_dismisses_the_approvals_left(policy_app):
    """A resolve rewrites staged rows: whatever approvals the request still holds stop counting."""
    app = policy_app({"approvals": 2})
    staged(app, "alice", row("DS-1", "Sales"))
    boss, chief = client(app, "boss"), client(app, "chief")
    assert boss.post("/api/v1/changes/1/approve").status_code == 202
    assert chief.post("/api/v1/changes/1/approve").status_code == 200
    mine = staged(app, "alice", row("DS-1", "Sales EMEA"))
    theirs = staged(app, "bob", row("DS-1", "Sales APAC"))
    assert boss.post(f"/api/v1/changes/{theirs}/approve").status_code == 202
    assert chief.post(f"/api/v1/changes/{theirs}/approve").status_code == 200
    assert boss.post(f"/api/v1/changes/{mine}/approve").status_code == 202
    assert chief.post(f"/api/v1/changes/{mine}/approve").status_code == 409  # sent back with a conflict
    assert approvals_of(app, mine) == [("boss", "", None, None, True)]
    with app.app_context():  # an approval still counting when the conflict is resolved
        store.approvals.add(mine, "chief", rule="")
        db.session.commit()
    assert [a[4] for a in approvals_of(app, mine)] == [True, False]
    r = client(app, "alice").post(
        f"/api/v1/changes/{mine}/resolve", json={"resolutions": [{"key": "DS-1", "column": "name", "take": "theirs"}]}
    )
    assert r.status_code == 200
    assert [a[4] for a in approvals_of(app, mine)] == [True, True]


def test_the_override_works_only_from_the_console_and_is_recorded(policy_app):
    app = policy_app({"self_approval": "never", "approvals": 3})
    change = staged(app, "boss")
    boss = client(app, "boss")
    r = boss.post(f"/api/v1/changes/{change}/approve", json={"override": True, "reason": "urgent"})
    assert r.status_code == 403  # no URL overrides the policy
    runner = app.test_cli_runner()
    result = runner.invoke(args=["changes", "approve", str(change)])
    assert result.exit_code != 0 and "--override" in result.output
    result = runner.invoke(args=["changes", "approve", str(change), "--override"])
    assert result.exit_code != 0 and "--reason is required" in result.output
    result = runner.invoke(args=["changes", "approve", str(change), "--override", "--reason", "payroll run blocked"])
    assert result.exit_code == 0, result.output
    assert "applied as version 1" in result.output
    assert boss.get(f"/api/v1/changes/{change}").json["status"] == "approved"
    events = boss.get("/api/v1/events?type=override").json["items"]
    assert len(events) == 1
    assert events[0]["details"]["reason"] == "payroll run blocked" and events[0]["details"]["version"] == 1
    assert events[0]["user"].startswith("console:") and events[0]["details"]["via"] == "console"
    assert [a[1] for a in approvals_of(app, change)] == ["override"]
    again = runner.invoke(args=["changes", "approve", str(change), "--override", "--reason", "x"])
    assert again.exit_code != 0 and "not pending" in again.output


def test_the_digest_kept_at_staging_is_the_digest_of_the_rows_staged(app, seeded, api):
    """The change set's SHA-256 is computed from the diff while it is staged (no second read of a
    million rows at approval); read back from the database in staging order it is the same."""
    alice = api("alice")
    r = alice.upload(table(row("DS-1", "Sales, EMEA"), row("DS-2", "HR"), row("DS-9", "New")), confirm_deletions="1")
    assert r.status_code == 201, r.text
    change = r.json["id"]
    with app.app_context():
        kept = store.approvals.change_set_digest(change)
        store.approvals.forget_digest(change)
        again = store.approvals.change_set_digest(change)
        db.session.commit()
    assert kept == again and len(kept) == 64
    r = seeded.post(f"/api/v1/changes/{change}/approve")
    event = seeded.get("/api/v1/events?type=approve").json["items"][0]
    assert event["change_id"] == change and event["details"]["change_set"] == kept


def test_approving_without_a_body_or_with_a_form_body_works_as_before(policy_app):
    app = policy_app({"reason": "required"})
    first, second = staged(app), staged(app, "bob", row("DS-2", "HR"))
    boss = client(app, "boss")
    assert boss.post(f"/api/v1/changes/{first}/approve", data={"reason": "from a form"}).status_code == 200
    r = boss.post(f"/api/v1/changes/{second}/approve", data=b"", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 422  # the policy asks for a reason; the body itself was fine
