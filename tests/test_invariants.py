"""Issue 26: version control that a model-based test cannot break, each defect it found kept as a
test of its own, on SQLite and PostgreSQL (tests/test_stateful.py is the model-based test).

- A resolution never hides a later approval: a conflict kept "mine" after someone changed the row
  again comes back as a conflict at approval (409), in the cell and the whole-row forms.
- References hold on every path: a value kept "yours" at a conflict, a revert approved after the
  row it restores a reference to was deleted.
- A change that changes nothing stages nothing and makes no version.
- A tiny upload (one row, a header, an empty table's download) to a deployment of several tables
  is read, not answered with 500.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

import pytest
from conftest import Api, Browser, add_test_users

PACKAGE = Path(__file__).with_name("data") / "tagged.package.json"
DEFAULT_SCHEMA = Path(__file__).resolve().parent.parent / "schema.json"
ITEMS = "id,a,b,tag"
TAGS = "tag,label"


def upload(client: Api, table: str, lines: list[str], filename: str = "", **form):
    text = "\n".join([ITEMS if table == "items" else TAGS, *lines]) + "\n"
    data = {"file": (io.BytesIO(text.encode()), filename or f"{table}.csv"), **form}
    return client.post(f"/api/v1/tables/{table}/changes", data=data, content_type="multipart/form-data")


def staged(client: Api, lines: list[str], base: int, table: str = "items", mode: str = "full") -> int:
    r = upload(client, table, lines, filename=f"{table}-v{base}.csv", mode=mode)
    assert r.status_code == 201, r.text
    return r.json["id"]


def approve(boss: Api, change_id: int) -> int:
    r = boss.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 200, r.text
    return r.json["version"]


def rows(client: Api, table: str = "items", **params) -> dict[str, dict[str, str]]:
    r = client.get(f"/api/v1/tables/{table}/export.csv", query_string=params)
    assert r.status_code == 200, r.text
    return {next(iter(d.values())): d for d in csv.DictReader(io.StringIO(r.data.decode("utf-8-sig")))}


def resolve(client: Api, change_id: int, key: str, column: str | None, take: str = "yours") -> None:
    body = {"resolutions": [{"key": key, "column": column, "take": take}]}
    r = client.post(f"/api/v1/changes/{change_id}/resolve", json=body)
    assert r.status_code == 200 and r.json["conflicts"] == [], r.text


@pytest.fixture
def tagged(make_app):
    """Tags t1, t2 (version 1) and items r1, r2 (version 2): (app, alice, bob, carol, boss)."""
    app = add_test_users(make_app(SCHEMA_PATH=PACKAGE, MASS_DELETE_PERCENT=100))
    with app.app_context():
        import accounts

        accounts.create_user("carol", "carol-password")
    alice, bob, carol, boss = (Api(app, n) for n in ("alice", "bob", "carol", "boss"))
    assert approve(boss, staged(alice, ["t1,one", "t2,two"], 0, "tags")) == 1
    assert approve(boss, staged(alice, ["r1,orig,x,t1", "r2,keep,y,t2"], 1)) == 2
    return app, alice, bob, carol, boss


# --- a resolution never hides a later approval -------------------------------------------------


def test_a_cell_kept_mine_after_the_cell_changed_again_is_a_new_conflict_at_approval(tagged):
    """The issue's story: C sets r1.a = t1; A (from version 2) sets mine; B sets t2; A keeps mine."""
    _, alice, bob, carol, boss = tagged
    assert approve(boss, staged(carol, ["r1,c-val,x,t1", "r2,keep,y,t2"], 2)) == 3
    mine = staged(alice, ["r1,mine,x,t1", "r2,keep,y,t2"], 2)
    conflict = alice.get(f"/api/v1/changes/{mine}").json["conflicts"]
    assert [(c["key"], c["column"]) for c in conflict] == [("r1", "a")]
    assert approve(boss, staged(bob, ["r1,b-val,x,t1", "r2,keep,y,t2"], 3)) == 4
    resolve(alice, mine, "r1", "a")
    r = boss.post(f"/api/v1/changes/{mine}/approve")
    assert r.status_code == 409, r.text  # before the fix: 200, and bob's b-val was overwritten
    assert rows(boss)["r1"]["a"] == "b-val"
    detail = alice.get(f"/api/v1/changes/{mine}").json
    assert detail["status"] == "pending"
    assert [(c["key"], c["column"], c["theirs"], c["yours"]) for c in detail["conflicts"]] == [
        ("r1", "a", "b-val", "mine")
    ]
    resolve(alice, mine, "r1", "a")  # now mine knowingly replaces b-val
    assert approve(boss, mine) == 5
    assert rows(boss)["r1"]["a"] == "mine"


def test_a_cell_kept_theirs_stages_nothing_and_the_later_approval_stands(tagged):
    _, alice, bob, carol, boss = tagged
    approve(boss, staged(carol, ["r1,c-val,x,t1", "r2,keep,y,t2"], 2))
    mine = staged(alice, ["r1,mine,x,t1", "r2,keep,y,t2"], 2)
    approve(boss, staged(bob, ["r1,b-val,x,t1", "r2,keep,y,t2"], 3))
    resolve(alice, mine, "r1", "a", "theirs")
    assert alice.get(f"/api/v1/changes/{mine}").json["summary"]["modified"] == 0
    assert approve(boss, mine) == 4  # nothing to apply: approved, but no new version
    assert rows(boss)["r1"]["a"] == "b-val"


@pytest.mark.parametrize(
    ("theirs", "yours", "later"),
    [
        # you deleted a row others changed, and it changed again before approval
        (["r1,c-val,x,t1", "r2,keep,y,t2"], ["r2,keep,y,t2"], ["r1,c-val,b-val,t1", "r2,keep,y,t2"]),
        # both added r3 differently, and theirs changed again
        (
            ["r1,orig,x,t1", "r2,keep,y,t2", "r3,theirs,,t1"],
            ["r1,orig,x,t1", "r2,keep,y,t2", "r3,mine,,t2"],
            ["r1,orig,x,t1", "r2,keep,y,t2", "r3,later,,t1"],
        ),
        # both added r3 differently, and theirs was deleted since
        (
            ["r1,orig,x,t1", "r2,keep,y,t2", "r3,theirs,,t1"],
            ["r1,orig,x,t1", "r2,keep,y,t2", "r3,mine,,t2"],
            ["r1,orig,x,t1", "r2,keep,y,t2"],
        ),
        # you changed a row others deleted, and someone added it again
        (["r2,keep,y,t2"], ["r1,mine,x,t1", "r2,keep,y,t2"], ["r1,again,x,t1", "r2,keep,y,t2"]),
    ],
    ids=["deleted-by-you", "both-added-changed-again", "both-added-deleted-since", "changed-by-you-readded"],
)
def test_a_row_kept_mine_after_it_changed_again_is_a_new_conflict_at_approval(tagged, theirs, yours, later):
    _, alice, bob, carol, boss = tagged
    assert approve(boss, staged(carol, theirs, 2)) == 3
    mine = staged(alice, yours, 2)
    found = alice.get(f"/api/v1/changes/{mine}").json["conflicts"]
    assert len(found) == 1 and found[0]["column"] is None, found
    key = found[0]["key"]
    assert approve(boss, staged(bob, later, 3)) == 4
    before = rows(boss)
    resolve(alice, mine, key, None)
    r = boss.post(f"/api/v1/changes/{mine}/approve")
    assert r.status_code == 409, r.text
    assert rows(boss) == before  # bob's later change stands
    detail = alice.get(f"/api/v1/changes/{mine}").json
    assert detail["status"] == "pending" and [c["key"] for c in detail["conflicts"]] == [key]


# --- a change that changes nothing ------------------------------------------------------------


def test_both_added_the_key_kept_mine_when_the_table_holds_that_row_stages_nothing(tagged):
    _, alice, bob, carol, boss = tagged
    base = ["r1,orig,x,t1", "r2,keep,y,t2"]
    theirs = staged(carol, [*base, "r3,theirs,,t1"], 2)
    approve(boss, theirs)
    mine = staged(alice, [*base, "r3,mine,,t2"], 2)
    same = staged(bob, [*base, "r3,mine,,t2"], 3)
    assert approve(boss, same) == 4  # bob makes the table hold alice's row
    resolve(alice, mine, "r3", None)
    detail = alice.get(f"/api/v1/changes/{mine}").json
    assert detail["summary"]["modified"] == 0 and detail["modified"] == []  # before the fix: 1, changing nothing
    assert approve(boss, mine) == 4  # no version for a change that changes nothing
    assert boss.get("/api/v1/tables/items/versions").json["total"] == 3  # versions 2, 3, 4
    history = boss.get("/api/v1/tables/items/records/r3/history").json["items"]
    changed = [(h["change_id"], h["action"]) for h in history if h["action"] != "resolve"]
    assert changed == [(same, "modify"), (theirs, "add")]  # not alice's: it changed nothing
    assert rows(boss)["r3"] == {"id": "r3", "a": "mine", "b": "", "tag": "t2"}


def test_a_request_whose_changes_a_later_approval_made_too_is_approved_without_a_version(tagged):
    _, alice, bob, _, boss = tagged
    mine = staged(alice, ["r1,same,x,t1"], 2, mode="partial")
    assert approve(boss, staged(bob, ["r1,same,x,t1"], 2, mode="partial")) == 3
    assert approve(boss, mine) == 3  # merged again: nothing left to apply, so no version 4
    detail = alice.get(f"/api/v1/changes/{mine}").json
    assert detail["status"] == "approved" and detail["applied_version"] is None
    assert detail["summary"]["modified"] == 0 and detail["modified"] == []
    assert boss.get("/api/v1/tables/items/versions").json["total"] == 2
    r = alice.post(f"/api/v1/changes/{mine}/revert")
    assert r.status_code == 409 and "nothing to revert" in r.json["error"], r.text


# --- references on every path -------------------------------------------------------------------


def test_a_cell_kept_yours_with_a_tag_that_never_existed_is_refused_at_approval(tagged, app_browser):
    app, alice, _, carol, boss = tagged
    approve(boss, staged(carol, ["r1,orig,x,t2", "r2,keep,y,t2"], 2))
    mine = staged(alice, ["r1,orig,x,ghost", "r2,keep,y,t2"], 2)  # a conflict: not checked on upload
    resolve(alice, mine, "r1", "tag")
    r = boss.post(f"/api/v1/changes/{mine}/approve")
    assert r.status_code == 409, r.text  # before the fix: 200, and r1 pointed at a missing tag
    assert "r1" in r.json["error"] and "ghost" in r.json["error"]
    assert rows(boss)["r1"]["tag"] == "t2"
    assert alice.get(f"/api/v1/changes/{mine}").json["status"] == "pending"
    page = app_browser(app, "boss").post(f"/changes/{mine}/approve", follow_redirects=True)
    assert page.status_code == 200 and 'tag "ghost" is not a key of table "tags"' in html.unescape(page.text)


def test_a_whole_row_kept_yours_with_a_missing_tag_is_refused_at_approval(tagged):
    _, alice, _, carol, boss = tagged
    base = ["r1,orig,x,t1", "r2,keep,y,t2"]
    approve(boss, staged(carol, [*base, "r3,theirs,,t1"], 2))
    mine = staged(alice, [*base, "r3,mine,,ghost"], 2)
    resolve(alice, mine, "r3", None)
    r = boss.post(f"/api/v1/changes/{mine}/approve")
    assert r.status_code == 409 and "r3" in r.json["error"], r.text
    assert rows(boss)["r3"]["tag"] == "t1"


def test_a_revert_approved_after_the_tag_it_restores_was_deleted_is_refused(tagged):
    _, alice, bob, _, boss = tagged
    retag = staged(bob, ["r1,orig,x,t2", "r2,keep,y,t2"], 2)
    assert approve(boss, retag) == 3  # nothing refers to t1 any more
    assert approve(boss, staged(bob, ["t2,two"], 3, "tags")) == 4  # t1 deleted
    r = alice.post(f"/api/v1/changes/{retag}/revert")
    assert r.status_code == 201, r.text
    revert = r.json["id"]
    r = boss.post(f"/api/v1/changes/{revert}/approve")
    assert r.status_code == 409 and "r1" in r.json["error"], r.text  # before the fix: 200, r1 → t1, gone
    assert rows(boss)["r1"]["tag"] == "t2"
    assert alice.get(f"/api/v1/changes/{revert}").json["status"] == "pending"


# --- tiny uploads to several tables -------------------------------------------------------------


@pytest.fixture
def app_browser():
    return lambda app, name: Browser(app, name)


@pytest.fixture
def three_tables(make_app):
    return add_test_users(make_app(SCHEMA_PATH=DEFAULT_SCHEMA))


@pytest.mark.parametrize("via", ["api", "page"])
def test_tiny_uploads_to_the_default_three_tables_are_read_not_answered_with_500(three_tables, via):
    alice = Api(three_tables, "alice")
    download = alice.get("/api/v1/tables/teams/export.csv")
    assert download.status_code == 200
    files = {
        "empty download": (download.data, "teams-v0.csv", 200, None),
        "header only": (b"name,lead,cost_centre\n", "teams.csv", 200, None),
        "one row": (b"name,lead,cost_centre\nData,Dora,CC-1\n", "teams.csv", 201, 1),
        # shorter than a zip's end record (22 bytes): a clear problem, not a 500
        "under 22 bytes": (b"name,lead\nOps,Olga\n", "teams.csv", 422, None),
    }
    browser = Browser(three_tables, "bob")
    for what, (data, name, status, added) in files.items():
        form = {"file": (io.BytesIO(data), name), "mode": "partial"}
        if via == "api":
            r = alice.post("/api/v1/tables/teams/changes", data=form, content_type="multipart/form-data")
            assert r.status_code == status, (what, r.text)
            if status == 422:
                assert "column 'cost_centre' is missing from the header" in r.json["errors"][0]["message"]
            if added:
                assert r.json["summary"]["added"] == added
                assert alice.post(f"/api/v1/changes/{r.json['id']}/withdraw").status_code == 200
        else:
            r = browser.post("/t/teams/upload", data=form, content_type="multipart/form-data")
            assert r.status_code == (422 if status == 422 else 302), (what, r.status_code, r.text[:500])
