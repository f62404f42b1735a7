"""Discussion on a request (issue 25), on both databases: comments on the request, a row and a
cell through the API and on the review page; changes requested → a corrected file (revision 2) →
approval, with "changed since revision 1" exact; who may revise and comment; comment text shown
as text."""

from __future__ import annotations

import io
import re

import pytest
from conftest import row, table


def revise(client, change_id: int, text: str, **form):
    """POST a corrected file to a request (multipart, as an upload)."""
    return client.post(
        f"/api/v1/changes/{change_id}/revisions",
        data={"file": (io.BytesIO(text.encode()), "fixed.csv"), **form},
        content_type="multipart/form-data",
    )


@pytest.fixture
def request_id(seeded, api) -> int:
    """alice's pending request: DS-1 renamed, DS-2's owner changed, DS-4 added."""
    rows = [row("DS-1", "Sales EU"), row("DS-2", "HR", owner="hr@example.com"), row("DS-3", "Finance")]
    r = api("alice").upload(table(*rows, row("DS-4", "Legal")))
    assert r.status_code == 201, r.text
    return r.json["id"]


def test_comments_on_request_row_and_cell_round_trip_and_show_on_the_page(request_id, api, login):
    bob = api("bob")
    sent = [
        {"text": "Looks fine overall."},
        {"text": "Why rename DS-1?", "key": "DS-1"},
        {"text": "Is this address right? https://example.com/hr", "key": "DS-2", "column": "owner"},
    ]
    made = []
    for body in sent:
        r = bob.post(f"/api/v1/changes/{request_id}/comments", json=body)
        assert r.status_code == 201, r.text
        assert set(r.json) >= {"id", "user", "at", "text", "key", "column"}
        assert (r.json["user"], r.json["text"], r.json["key"], r.json["column"]) == (
            "bob", body["text"], body.get("key"), body.get("column"))  # fmt: skip
        made.append(r.json)
    r = api("alice").get(f"/api/v1/changes/{request_id}/comments")
    assert r.status_code == 200
    assert r.json["items"] == made  # in order, as answered

    page = login("alice").get(f"/changes/{request_id}").text
    thread = page[page.index('id="discussion"') :]
    assert "Looks fine overall." in thread
    assert "Why rename DS-1?" in page
    # the link made clickable, escaped
    assert '<a href="https://example.com/hr" rel="noopener noreferrer nofollow">https://example.com/hr</a>' in page
    # the row's count, and the cell's box anchored on its column
    assert re.search(
        r'<details class="comment-box has-comments" data-column="owner">\s*<summary><span class="cell-name">Owner:</span> <span class="comment-count">1 comment',
        page,
    )
    # the "rows with comments" filter shows exactly the two commented rows
    commented = login("alice").get(f"/changes/{request_id}?show=commented").text
    table_part = commented[commented.index('class="diff ') :]
    assert "DS-1" in table_part and "DS-2" in table_part and "DS-4" not in table_part


def test_a_comment_is_edited_and_deleted_by_its_author_only_while_open(request_id, api, seeded):
    bob, alice = api("bob"), api("alice")
    r = bob.post(f"/api/v1/changes/{request_id}/comments", json={"text": "first"})
    cid = r.json["id"]
    url = f"/api/v1/changes/{request_id}/comments/{cid}"
    assert alice.client.patch(url, json={"text": "mine now"}, headers=alice.headers).status_code == 403
    r = bob.client.patch(url, json={"text": "second"}, headers=bob.headers)
    assert r.status_code == 200 and r.json["text"] == "second" and r.json["edited_at"]
    assert alice.client.delete(url, headers=alice.headers).status_code == 403
    keep = bob.post(f"/api/v1/changes/{request_id}/comments", json={"text": "kept"}).json["id"]
    assert bob.client.delete(url, headers=bob.headers).status_code == 204
    assert [c["text"] for c in bob.get(f"/api/v1/changes/{request_id}/comments").json["items"]] == ["kept"]
    assert seeded.post(f"/api/v1/changes/{request_id}/approve").status_code == 200
    closed = f"/api/v1/changes/{request_id}/comments/{keep}"
    r = bob.client.patch(closed, json={"text": "too late"}, headers=bob.headers)
    assert r.status_code == 409, r.text
    assert bob.client.delete(closed, headers=bob.headers).status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"text": ""}, 422, "empty"),
        ({"text": "x", "key": "DS-9"}, 422, "does not change a row with key 'DS-9'"),
        ({"text": "x", "key": "DS-1", "column": "nope"}, 422, "'nope' is not a column"),
        ({"text": "x", "column": "name"}, 422, 'give "key"'),
        ({"text": "x" * 10_001}, 422, "at most 10,000"),
        ({"text": ["not", "text"]}, 422, "empty"),
    ],
)
def test_bad_comments_are_refused_with_a_clear_message(request_id, api, body, status, says):
    r = api("bob").post(f"/api/v1/changes/{request_id}/comments", json=body)
    assert r.status_code == status, r.text
    assert says in r.json["error"]


def test_comments_by_someone_who_may_not_view_the_table_are_refused(request_id, app, api):
    anonymous = app.test_client()
    r = anonymous.post(f"/api/v1/changes/{request_id}/comments", json={"text": "hello"})
    assert r.status_code == 401
    assert anonymous.get(f"/api/v1/changes/{request_id}/comments").status_code == 401
    r = api("bob").post("/api/v1/changes/99999/comments", json={"text": "hello"})
    assert r.status_code == 404
    assert api("bob").get(f"/api/v1/changes/{request_id}/comments").json["items"] == []


def test_comment_text_with_html_or_a_formula_shows_as_text(request_id, api, login):
    bob = api("bob")
    for text in ('<script>alert("x")</script><b>bold</b>', '=HYPERLINK("http://evil.example","click")'):
        assert bob.post(f"/api/v1/changes/{request_id}/comments", json={"text": text, "key": "DS-1"}).status_code == 201
    page = login("alice").get(f"/changes/{request_id}").text
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    # the formula is text on the page (its URL a plain link that ends at the quote), never evaluated
    assert (
        '=HYPERLINK(&#34;<a href="http://evil.example" rel="noopener noreferrer nofollow">http://evil.example</a>'
        "&#34;,&#34;click&#34;)" in page
    )
    items = bob.get(f"/api/v1/changes/{request_id}/comments").json["items"]
    assert items[1]["text"] == '=HYPERLINK("http://evil.example","click")'


def test_request_changes_then_revision_then_approve(request_id, seeded, api, login, app):
    alice, boss = api("alice"), seeded
    assert api("bob").post(f"/api/v1/changes/{request_id}/request-changes", json={"reason": "x"}).status_code == 403
    r = boss.post(f"/api/v1/changes/{request_id}/request-changes", json={})
    assert r.status_code == 422 and "what should change" in r.json["error"].lower()
    r = boss.post(
        f"/api/v1/changes/{request_id}/request-changes", json={"reason": "DS-4 is not ours; keep DS-1's name"}
    )
    assert r.status_code == 200, r.text
    assert r.json["status"] == "changes_requested"
    assert alice.get(f"/api/v1/changes/{request_id}").json["status"] == "changes_requested"
    # not approvable while changes are requested
    r = boss.post(f"/api/v1/changes/{request_id}/approve")
    assert r.status_code == 409 and "changes requested" in r.json["error"]
    # the reason is a comment of the thread
    items = alice.get(f"/api/v1/changes/{request_id}/comments").json["items"]
    assert [(c["user"], c["text"], c["kind"]) for c in items] == [
        ("boss", "DS-4 is not ours; keep DS-1's name", "changes_requested")]  # fmt: skip
    assert (
        alice.post(f"/api/v1/changes/{request_id}/comments", json={"text": "Will fix", "key": "DS-4"}).status_code
        == 201
    )

    # a revision by someone other than the submitter: 403, before the file is read
    assert revise(api("bob"), request_id, table(row("DS-1", "Sales"))).status_code == 403
    # the corrected file: DS-1 keeps its name, DS-4 dropped, DS-3's row_count changed instead
    fixed = table(
        row("DS-1", "Sales"), row("DS-2", "HR", owner="hr@example.com"), row("DS-3", "Finance", row_count="99")
    )
    r = revise(alice, request_id, fixed, comment="Dropped DS-4 as asked")
    assert r.status_code == 201, r.text
    assert r.json["id"] == request_id and r.json["revision"] == 2 and r.json["status"] == "pending"
    assert r.json["summary"] == {"added": 0, "modified": 2, "deleted": 0, "unchanged": 1, "conflicts": 0}
    assert "base_version" in r.json

    # the same file again changes nothing: 200, still revision 2
    r = revise(alice, request_id, fixed)
    assert r.status_code == 200 and r.json["revision"] == 2 and r.json["changed"] is False

    # changed since revision 1: exact
    r = alice.get(f"/api/v1/changes/{request_id}/revisions/diff?since=1")
    assert r.status_code == 200, r.text
    diff = r.json
    assert diff["summary"] == {"added": 1, "removed": 2, "changed": 0}
    assert [a["key"] for a in diff["added"]] == ["DS-3"]
    assert diff["added"][0]["now"]["action"] == "modify" and diff["added"][0]["now"]["after"]["row_count"] == "99"
    assert sorted((x["key"], x["was"]["action"]) for x in diff["removed"]) == [("DS-1", "modify"), ("DS-4", "add")]
    revs = alice.get(f"/api/v1/changes/{request_id}/revisions").json
    assert revs["revision"] == 2 and [i["revision"] for i in revs["items"]] == [1, 2]

    # the thread is kept; the page lists the revisions and what changed since revision 1
    texts = [c["text"] for c in alice.get(f"/api/v1/changes/{request_id}/comments").json["items"]]
    assert texts == ["DS-4 is not ours; keep DS-1's name", "Will fix", "Dropped DS-4 as asked"]
    page = login("boss").get(f"/changes/{request_id}").text
    assert "Changed since revision 1" in page and "Revision 2: fixed.csv, by alice" in page
    assert "requested changes" in page and "uploaded a corrected file: revision 2" in page

    r = boss.post(f"/api/v1/changes/{request_id}/approve")
    assert r.status_code == 200, r.text
    export = alice.get("/api/v1/export.csv").text
    assert "DS-4" not in export and "Sales EU" not in export and ",99," in export
    # a decided request takes no revision
    assert revise(alice, request_id, fixed).status_code == 409


def test_a_request_sent_back_counts_against_the_pending_limit(app, api):
    app.config["MAX_PENDING_PER_USER"] = 1
    alice, boss = api("alice"), api("boss")
    first = alice.upload(table(row("DS-1")))
    assert first.status_code == 201
    r = boss.post(f"/api/v1/changes/{first.json['id']}/request-changes", json={"reason": "fix it"})
    assert r.status_code == 200
    assert alice.upload(table(row("DS-2"))).status_code == 429
    # withdrawing it is still possible
    assert alice.post(f"/api/v1/changes/{first.json['id']}/withdraw").status_code == 200


def test_revision_and_comment_forms_on_the_review_page(request_id, login, app):
    alice = login("alice")
    page = alice.get(f"/changes/{request_id}").text
    assert "Upload a corrected file" in page
    assert "Upload a corrected file" not in login("bob").get(f"/changes/{request_id}").text
    r = alice.post(f"/changes/{request_id}/comments", data={"text": "about the name", "key": "DS-1", "column": "name"})
    assert r.status_code == 302
    fixed = table(row("DS-1", "Sales"), row("DS-2", "HR", owner="hr@example.com"), row("DS-3", "Finance"))
    r = alice.post(
        f"/changes/{request_id}/revisions",
        data={"file": (io.BytesIO(fixed.encode()), "fixed.csv"), "mode": "full"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302, r.text
    page = alice.get(f"/changes/{request_id}").text
    assert "Revision 2: fixed.csv" in page and "about the name" in page
    r = login("bob").post(
        f"/changes/{request_id}/revisions",
        data={"file": (io.BytesIO(fixed.encode()), "fixed.csv"), "mode": "full"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 403


def test_the_guide_shows_the_discussion_screenshots():
    """USER_GUIDE.md shows the pictures tests/test_discussion_browser.py takes, each small."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    guide = (root / "USER_GUIDE.md").read_text()
    for name in ("discussion", "discussion-rows"):
        assert f"docs/screenshots/{name}.png" in guide, name
        assert (root / "docs" / "screenshots" / f"{name}.png").stat().st_size < 250_000, name


def test_a_request_sent_back_shows_no_approve_button_and_may_be_withdrawn_or_rejected(request_id, seeded, login):
    boss_page = login("boss")
    r = boss_page.post(f"/changes/{request_id}/request-changes", data={"changes_reason": "Fix DS-4"})
    assert r.status_code == 302
    page = boss_page.get(f"/changes/{request_id}").text
    assert 'class="status status-changes_requested"' in page
    assert "Approve and apply" not in page and "Reject</button>" in page
    listed = boss_page.get("/changes?status=changes_requested").text
    assert f"/changes/{request_id}" in listed
    alice = login("alice")
    assert "Withdraw</button>" in alice.get(f"/changes/{request_id}").text
    assert alice.post(f"/changes/{request_id}/withdraw").status_code == 302
    assert seeded.get(f"/api/v1/changes/{request_id}").json["status"] == "withdrawn"


def test_a_revision_sent_as_the_body_and_refused_files(request_id, api):
    alice = api("alice")
    fixed = table(row("DS-1", "Sales"), row("DS-2", "HR", owner="hr@example.com"), row("DS-3", "Finance"))
    r = alice.post(
        f"/api/v1/changes/{request_id}/revisions?filename=fixed.csv&mode=full",
        data=fixed.encode(),
        content_type="text/csv",
    )
    assert r.status_code == 201, r.text
    assert r.json["revision"] == 2
    assert alice.get(f"/api/v1/changes/{request_id}").json["revision"] == 2
    # a file with a bad cell is refused like an upload, with line and column; the request is unchanged
    bad = table(row("DS-1", "Sales", row_count="many"), row("DS-2", "HR"), row("DS-3", "Finance"))
    r = revise(alice, request_id, bad)
    assert r.status_code == 422, r.text
    assert r.json["errors"][0]["line"] == 2 and r.json["errors"][0]["column"] == "row_count"
    detail = alice.get(f"/api/v1/changes/{request_id}").json
    assert detail["revision"] == 2 and detail["summary"]["modified"] == 1
    # 400 without a file
    r = alice.post(f"/api/v1/changes/{request_id}/revisions", data={}, content_type="multipart/form-data")
    assert r.status_code == 400


def test_the_clean_up_deletes_the_earlier_revisions_rows_of_an_old_withdrawn_request(request_id, app, api, runner):
    import datetime as dt

    from sqlalchemy import func, select

    from models import ChangeRequest, RevisionRow, db

    alice = api("alice")
    fixed = table(row("DS-1", "Sales"), row("DS-2", "HR", owner="hr@example.com"), row("DS-3", "Finance"))
    assert revise(alice, request_id, fixed).status_code == 201
    assert alice.post(f"/api/v1/changes/{request_id}/withdraw").status_code == 200

    def kept() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).where(RevisionRow.change_id == request_id))

    assert kept() == 3  # revision 1's three staged rows
    assert runner.invoke(args=["cleanup"]).exit_code == 0
    assert kept() == 3  # not yet: decided today
    with app.app_context():
        change = db.session.get(ChangeRequest, request_id)
        change.decided_at -= dt.timedelta(days=app.config["KEEP_DECIDED_DAYS"] + 1)
        db.session.commit()
    assert runner.invoke(args=["cleanup"]).exit_code == 0
    assert kept() == 0


def test_a_revision_dismisses_the_approvals_given_and_the_event_log_keeps_the_conversation(make_app, tmp_path):
    """With a quorum of two: boss's approval of revision 1 is dismissed by revision 2; chief's
    alone then applies nothing; the event log has every step, an edited comment with its old text."""
    import json

    import sqlalchemy as sa
    from conftest import CATALOG_SCHEMA, Api, add_test_users

    import accounts
    from models import db

    schema = json.loads(CATALOG_SCHEMA.read_text()) | {"approval": {"approvals": 2}}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    app = add_test_users(
        make_app(SCHEMA_PATH=path, ADMIN_USERS=["boss", "chief"], FIRST_ADMIN_PASSWORD_FILE=tmp_path / "pw")
    )
    with app.app_context():
        accounts.set_password("chief", "chief-password")
    alice, boss, chief = Api(app, "alice"), Api(app, "boss"), Api(app, "chief")
    first = alice.upload(table(row("DS-1", "Sales"), row("DS-2", "HR"))).json["id"]
    assert boss.post(f"/api/v1/changes/{first}/approve").status_code == 202
    assert chief.post(f"/api/v1/changes/{first}/approve").status_code == 200
    change = alice.upload(table(row("DS-1", "Sales EU"), row("DS-2", "HR"), row("DS-3", "Legal"))).json["id"]
    r = boss.post(f"/api/v1/changes/{change}/approve")
    assert r.status_code == 202 and [a["user"] for a in r.json["approvals"]] == ["boss"]
    cid = chief.post(f"/api/v1/changes/{change}/comments", json={"text": "DS-3?", "key": "DS-3"}).json["id"]
    r = chief.client.patch(
        f"/api/v1/changes/{change}/comments/{cid}", json={"text": "Why DS-3?"}, headers=chief.headers
    )
    assert r.status_code == 200
    assert chief.post(f"/api/v1/changes/{change}/request-changes", json={"reason": "Leave DS-3 out"}).status_code == 200
    r = revise(alice, change, table(row("DS-1", "Sales EU"), row("DS-2", "HR")))
    assert r.status_code == 201 and r.json["revision"] == 2
    # boss's approval was of revision 1: dismissed, so chief's is the first of two again
    r = chief.post(f"/api/v1/changes/{change}/approve")
    assert r.status_code == 202, r.text
    assert [a["user"] for a in r.json["approvals"]] == ["chief"]
    page = Api(app, "boss").get(f"/api/v1/changes/{change}").json
    assert page["status"] == "pending"
    assert boss.post(f"/api/v1/changes/{change}/approve").status_code == 200
    assert "DS-3" not in alice.get("/api/v1/export.csv").data.decode("utf-8-sig")
    with app.app_context():
        found = db.session.execute(
            sa.text("SELECT type, username, details FROM events WHERE change_id = :id ORDER BY id"), {"id": change}
        ).all()
        db.session.remove()
    kinds = [(t, u) for t, u, _ in found]
    assert ("comment", "chief") in kinds and ("comment-edited", "chief") in kinds
    assert ("changes-requested", "chief") in kinds and ("revise", "alice") in kinds
    edited = next(json.loads(d) for t, _, d in found if t == "comment-edited")
    assert edited["replaced"] == "DS-3?" and edited["text"] == "Why DS-3?"
    revised = next(json.loads(d) for t, _, d in found if t == "revise")
    assert revised["revision"] == 2 and revised["approvals_dismissed"] == 1
