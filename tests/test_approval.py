"""Approval: stale requests merged again or sent back with conflicts, one transaction (all or
nothing), audit entries, races."""

from __future__ import annotations

import threading

import pytest
from conftest import Api, row, table
from sqlalchemy import text

import changes
import store.changes
from models import db


def version(client) -> int:
    return int(client.get("/api/v1/export.csv").headers["X-Dataset-Version"])


def status(client, change_id: int) -> str:
    return client.get(f"/api/v1/changes/{change_id}").json["status"]


def stage(client, *rows: str, **form) -> int:
    r = client.upload(table(*rows), **({"mode": "partial"} | form))
    assert r.status_code == 201, r.text
    return r.json["id"]


# --- stale requests --------------------------------------------------------------------------


def test_a_request_whose_rows_changed_meanwhile_is_refused(app, seeded, api):
    alice, bob = api("alice"), api("bob")
    a = stage(alice, row("DS-1", "Sales EMEA"))
    b = stage(bob, row("DS-1", "Sales APAC"), row("DS-4", "New"))
    c = stage(bob, row("DS-2", "HR Global"))  # touches a row A does not
    assert seeded.post(f"/api/v1/changes/{a}/approve").json["version"] == 2

    r = seeded.post(f"/api/v1/changes/{b}/approve")
    assert r.status_code == 409
    assert r.json["keys"] == ["DS-1"]
    assert "DS-1" in r.json["error"] and "pending" in r.json["error"]
    assert status(alice, b) == "pending"
    assert version(alice) == 2
    exported = alice.get("/api/v1/export.csv").data.decode("utf-8-sig")
    assert "Sales EMEA" in exported and "Sales APAC" not in exported and "DS-4" not in exported

    r = seeded.post(f"/api/v1/changes/{c}/approve")
    assert r.status_code == 200 and r.json["version"] == 3
    assert "HR Global" in alice.get("/api/v1/export.csv").data.decode("utf-8-sig")
    # the stale one can still be withdrawn by its submitter, and re-uploaded from a fresh download
    assert bob.post(f"/api/v1/changes/{b}/withdraw").status_code == 200


def test_stale_cases(app, seeded, api):
    """Both added the same key with different values: sent back with a whole-row conflict."""
    alice, bob = api("alice"), api("bob")
    a, b = stage(alice, row("DS-9", "Added by A")), stage(bob, row("DS-9", "Added by B"))
    assert seeded.post(f"/api/v1/changes/{a}/approve").status_code == 200
    r = seeded.post(f"/api/v1/changes/{b}/approve")
    assert r.status_code == 409 and r.json["keys"] == ["DS-9"]
    assert status(bob, b) == "pending"
    conflicts = bob.get(f"/api/v1/changes/{b}").json["conflicts"]
    assert [(c["key"], c["column"], c["base"]) for c in conflicts] == [("DS-9", None, None)]
    assert conflicts[0]["theirs"]["name"] == "Added by A" and conflicts[0]["yours"]["name"] == "Added by B"


def test_a_stale_request_touching_other_cells_is_merged_at_approval(app, seeded, api):
    """Rebase at approval: two people editing different cells of one row no longer block each other."""
    alice, bob = api("alice"), api("bob")
    a = stage(alice, row("DS-2", "HR Global"))
    b = stage(bob, row("DS-2", "HR", row_count="11"))
    assert seeded.post(f"/api/v1/changes/{a}/approve").status_code == 200
    r = seeded.post(f"/api/v1/changes/{b}/approve")
    assert r.status_code == 200 and r.json["version"] == 3
    exported = alice.get("/api/v1/export.csv").data.decode("utf-8-sig")
    assert row("DS-2", "HR Global", row_count="11") in exported  # the newer name stays, B's count applies
    history = alice.get("/api/v1/records/DS-2/history").json["items"]
    assert history[0]["before"]["name"] == "HR Global" and history[0]["after"]["row_count"] == 11


def test_a_stale_addition_made_identically_meanwhile_applies_nothing(app, seeded, api):
    alice, bob = api("alice"), api("bob")
    a, b = stage(alice, row("DS-9", "Same")), stage(bob, row("DS-9", "Same"))
    assert seeded.post(f"/api/v1/changes/{a}/approve").status_code == 200
    r = seeded.post(f"/api/v1/changes/{b}/approve")
    assert r.status_code == 200
    assert bob.get(f"/api/v1/changes/{b}").json["summary"]["added"] == 0
    assert alice.get("/api/v1/export.csv").data.decode("utf-8-sig").count("DS-9") == 1


def test_deleting_a_row_that_was_modified_meanwhile_is_stale(app, seeded, api):
    alice, bob = api("alice"), api("bob")
    delete = stage(alice, row("DS-1", "Sales"), row("DS-2", "HR"), mode="full", confirm_deletions="1")
    modify = stage(bob, row("DS-3", "Finance EMEA"))
    assert seeded.post(f"/api/v1/changes/{modify}/approve").status_code == 200
    r = seeded.post(f"/api/v1/changes/{delete}/approve")
    assert r.status_code == 409 and r.json["keys"] == ["DS-3"]
    assert "Finance EMEA" in alice.get("/api/v1/export.csv").data.decode("utf-8-sig")


def test_modifying_a_row_deleted_meanwhile_is_stale(app, seeded, api):
    alice, bob = api("alice"), api("bob")
    delete = stage(alice, row("DS-1", "Sales"), row("DS-2", "HR"), mode="full", confirm_deletions="1")
    modify = stage(bob, row("DS-3", "Finance EMEA"))
    assert seeded.post(f"/api/v1/changes/{delete}/approve").status_code == 200
    r = seeded.post(f"/api/v1/changes/{modify}/approve")
    assert r.status_code == 409 and r.json["keys"] == ["DS-3"]
    assert "DS-3" not in alice.get("/api/v1/export.csv").data.decode("utf-8-sig")


def test_stale_approval_in_the_page_explains_and_keeps_it_pending(app, seeded, api, login):
    alice = api("alice")
    a = stage(alice, row("DS-1", "Sales EMEA"))
    b = stage(api("bob"), row("DS-1", "Sales APAC"))
    boss = login("boss")
    assert boss.post(f"/changes/{a}/approve").status_code == 302
    r = boss.post(f"/changes/{b}/approve", follow_redirects=True)
    assert r.status_code == 200
    assert "DS-1" in r.text and "a later approval changed the same cells or rows" in r.text
    assert status(alice, b) == "pending"


# --- one transaction -------------------------------------------------------------------------


def _failing_after(monkeypatch, how: str) -> list[int]:
    """Make store.changes.apply_pending fail with a real database error (a primary-key violation,
    raised by the database itself) after its first statement (the deletions) or after all of them.

    It wraps the real function whatever its arguments, and cuts it short by failing in place of its
    second statement, so the statements before the failure are the real ones. Returns the number of
    rows each real statement changed, filled as the approval runs: the test checks that the rows
    before the failure really changed, so that the rollback has something to undo."""
    original, execute = store.changes.apply_pending, db.session.execute
    changed: list[int] = []

    def fail() -> None:
        execute(text("INSERT INTO datasets (tbl, key, record, version) SELECT tbl, key, record, version FROM datasets"))

    def apply_then_fail(*args, **kwargs):
        if how == "after all statements":

            def counted(statement, *a, **k):
                result = execute(statement, *a, **k)
                changed.append(result.rowcount)
                return result

            with monkeypatch.context() as m:
                m.setattr(db.session, "execute", counted)
                original(*args, **kwargs)
            fail()
            return

        def first_only(statement, *a, **k):
            if changed:  # the second statement: the database refuses it
                fail()
            result = execute(statement, *a, **k)
            changed.append(result.rowcount)
            return result

        with monkeypatch.context() as m:
            m.setattr(db.session, "execute", first_only)
            original(*args, **kwargs)

    monkeypatch.setattr(store.changes, "apply_pending", apply_then_fail)
    return changed


@pytest.mark.parametrize("how", ["after the first statement", "after all statements"])
def test_a_failing_approval_applies_nothing(app, seeded, api, login, monkeypatch, how):
    alice = api("alice")
    before = alice.get("/api/v1/export.csv").data
    audit_before = alice.get("/api/v1/audit").json["items"]
    change_id = stage(alice, row("DS-1", "Sales EMEA"), row("DS-4", "New"), mode="full", confirm_deletions="2")
    changed = _failing_after(monkeypatch, how)

    r = seeded.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 500
    assert "nothing was applied" in r.json["error"] and "pending" in r.json["error"]
    assert "Traceback" not in r.text
    assert changed[0] == 2  # the two staged deletions were really made before the failure
    if how == "after all statements":
        assert len(changed) >= 4  # the deletions, the modification, the addition, the row count all ran

    r = login("boss").post(f"/changes/{change_id}/approve", follow_redirects=True)
    assert "nothing was applied" in r.text  # the admin sees why, on the review page

    with app.app_context():  # the domain call leaves its session rolled back, not only the request's end
        changed.clear()
        with pytest.raises(changes.ApplyFailed):
            changes.approve(change_id, "boss")
        assert changed[0] == 2
        assert db.session.execute(text("SELECT count(*) FROM datasets WHERE key IN ('DS-2', 'DS-3')")).scalar() == 2
        assert db.session.execute(text("SELECT status FROM change_requests WHERE id = :id"),
                                  {"id": change_id}).scalar() == "pending"  # fmt: skip

    assert status(alice, change_id) == "pending"
    assert alice.get("/api/v1/export.csv").data == before
    assert version(alice) == 1
    assert alice.get("/api/v1/audit").json["items"] == audit_before
    with app.app_context():
        detail = db.session.execute(text("SELECT decided_by, applied_version FROM change_requests WHERE id = :id"),
                                    {"id": change_id}).one()  # fmt: skip
    assert tuple(detail) == (None, None)

    monkeypatch.undo()
    r = seeded.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 200 and r.json["version"] == 2
    assert alice.get(f"/api/v1/changes/{change_id}").json["applied_version"] == 2


def test_a_claimed_request_is_not_applied_again(app, seeded, api, monkeypatch):
    """When another approver won between our read and our claim, nothing is applied and we get 409."""
    alice = api("alice")
    change_id = stage(alice, row("DS-1", "Sales EMEA"))
    monkeypatch.setattr(store.changes, "claim_pending", lambda *a, **k: False)
    r = seeded.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 409 and "someone else" in r.json["error"]
    assert version(alice) == 1
    assert "Sales EMEA" not in alice.get("/api/v1/export.csv").data.decode("utf-8-sig")


# --- audit -----------------------------------------------------------------------------------


def test_one_audit_entry_per_changed_row(app, seeded, api):
    alice = api("alice")
    change_id = stage(
        alice,
        row("DS-1", "Sales EMEA"),
        row("DS-2", "HR"),
        row("DS-4", "New", row_count="5"),
        mode="full",
        confirm_deletions="1",
    )
    assert seeded.post(f"/api/v1/changes/{change_id}/approve").status_code == 200
    entries = alice.get("/api/v1/audit?user=alice&since=2000-01-01").json["items"]
    mine = sorted((e for e in entries if e["change_id"] == change_id), key=lambda e: e["key"])
    assert [(e["action"], e["key"]) for e in mine] == [("modify", "DS-1"), ("delete", "DS-3"), ("add", "DS-4")]
    modify, delete, add = mine
    assert modify["before"]["name"] == "Sales" and modify["after"]["name"] == "Sales EMEA"
    assert delete["before"]["name"] == "Finance" and delete["after"] is None
    assert add["before"] is None and add["after"]["row_count"] == 5
    for e in mine:
        assert e["submitter"] == "alice" and e["approver"] == "boss" and e["version"] == 2
        assert e["submitted_at"] and e["created_at"] and e["submitted_at"] <= e["created_at"]


def test_reject_and_withdraw_are_audited(app, seeded, api):
    alice = api("alice")
    rejected = stage(alice, row("DS-1", "Nope"))
    withdrawn = stage(alice, row("DS-2", "Oops"))
    assert seeded.post(f"/api/v1/changes/{rejected}/reject", json={"reason": "typo in the name"}).status_code == 200
    assert alice.post(f"/api/v1/changes/{withdrawn}/withdraw").status_code == 200
    entries = {e["change_id"]: e for e in alice.get("/api/v1/audit?user=alice").json["items"]}
    reject, withdraw = entries[rejected], entries[withdrawn]
    assert reject["action"] == "reject" and reject["note"] == "typo in the name"
    assert reject["submitter"] == "alice" and reject["approver"] == "boss" and reject["created_at"]
    assert withdraw["action"] == "withdraw" and withdraw["submitter"] == "alice" and withdraw["created_at"]
    assert [e["action"] for e in alice.get("/api/v1/audit?user=boss").json["items"][:1]] == ["reject"]
    assert version(alice) == 1


# --- two admins at the same moment -----------------------------------------------------------


def _at_once(monkeypatch, calls):
    """Run calls in threads that all reach store.changes.claim_pending before any of them claims."""
    barrier = threading.Barrier(len(calls), timeout=30)
    original = store.changes.claim_pending

    def claim_together(*args, **kwargs):
        barrier.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(store.changes, "claim_pending", claim_together)
    results: list = [None] * len(calls)

    def run(i):
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_admins_approving_the_same_request_at_once(make_app, monkeypatch):
    app = make_app(ADMIN_USERS=["boss", "chief"])
    with app.app_context():
        import accounts

        accounts.create_user("alice", "alice-password")  # the admins were created at first start
        db.session.commit()

    alice, boss, chief = Api(app, "alice"), Api(app, "boss"), Api(app, "chief")
    change_id = stage(alice, row("DS-1", "Sales"), row("DS-2", "HR"))
    responses = _at_once(
        monkeypatch,
        [
            lambda: boss.post(f"/api/v1/changes/{change_id}/approve"),
            lambda: chief.post(f"/api/v1/changes/{change_id}/approve"),
        ],
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    monkeypatch.undo()
    assert version(alice) == 1
    assert len(alice.get("/api/v1/audit").json["items"]) == 2  # applied once
    winner = next(r for r in responses if r.status_code == 200)
    assert alice.get(f"/api/v1/changes/{change_id}").json["decided_by"] in ("boss", "chief")
    assert winner.json["version"] == 1


def test_two_requests_on_the_same_row_approved_at_once(app, seeded, api, monkeypatch):
    alice, bob = api("alice"), api("bob")
    a = stage(alice, row("DS-1", "Sales EMEA"))
    b = stage(bob, row("DS-1", "Sales APAC"))
    boss_a, boss_b = api("boss"), api("boss")
    responses = _at_once(
        monkeypatch,
        [lambda: boss_a.post(f"/api/v1/changes/{a}/approve"), lambda: boss_b.post(f"/api/v1/changes/{b}/approve")],
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    monkeypatch.undo()
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json["keys"] == ["DS-1"]
    assert version(alice) == 2
    assert sorted([status(alice, a), status(alice, b)]) == ["approved", "pending"]
    names = [e["after"]["name"] for e in alice.get("/api/v1/audit?key=DS-1").json["items"]]
    assert len(names) == 2 and names[0] in ("Sales EMEA", "Sales APAC")  # one modification on top of the seed
