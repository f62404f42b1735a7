"""Stale uploads merge instead of reverting colleagues' work (issue 8), on SQLite and PostgreSQL.

The story: alice downloads version 1; bob renames DS-05, adds DS-11 and deletes DS-07 (approved:
version 2); alice edits her version-1 file and uploads it.
"""

from __future__ import annotations

import csv
import html
import io

import pytest
from conftest import row, table

import changes

KEYS = [f"DS-{i:02d}" for i in range(1, 11)]


def edit(exported: bytes, changes: dict[str, dict[str, str]], drop: tuple[str, ...] = (), add: tuple[str, ...] = ()):
    """The exported CSV with some cells changed ({key: {column: value}}), rows dropped and lines added."""
    rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    for r in rows:
        if r["id"] not in drop:
            writer.writerow(r | changes.get(r["id"], {}))
    return (out.getvalue() + "".join(line + "\r\n" for line in add)).encode("utf-8")


def export(client, **params) -> bytes:
    r = client.get("/api/v1/export.csv", query_string=params)
    assert r.status_code == 200, r.text
    return r.data


def values(client) -> dict[str, dict[str, str]]:
    return {r["id"]: r for r in csv.DictReader(io.StringIO(export(client).decode("utf-8-sig")))}


def approve(boss, change_id: int) -> None:
    r = boss.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 200, r.text


@pytest.fixture
def story(app, api):
    """(alice, bob, boss, alice's version-1 download) after bob's change is approved as version 2."""
    alice, bob, boss = api("alice"), api("bob"), api("boss")
    r = alice.upload(table(*(row(k, f"Name {k}") for k in KEYS)))
    approve(boss, r.json["id"])
    v1 = export(alice)
    bobs = edit(v1, {"DS-05": {"name": "Renamed by Bob"}}, drop=("DS-07",), add=(row("DS-11", "Added by Bob"),))
    r = bob.upload(bobs, filename="datasets-v1.csv")
    assert r.status_code == 201 and r.json["summary"]["deleted"] == 1, r.text
    approve(boss, r.json["id"])
    return alice, bob, boss, v1


def test_the_stale_file_stages_only_its_own_edits(story):
    alice, _, boss, v1 = story
    mine = edit(v1, {"DS-05": {"description": "Alice's notes"}, "DS-10": {"name": "Renamed by Alice"}})
    r = alice.upload(mine, filename="datasets-v1.csv")
    assert r.status_code == 201, r.text
    assert r.json["base_version"] == 1
    assert r.json["summary"] == {"added": 0, "modified": 2, "deleted": 0, "unchanged": 8, "conflicts": 0}
    detail = alice.get(f"/api/v1/changes/{r.json['id']}").json
    assert detail["base_version"] == 1 and detail["base_source"] == "filename" and detail["merged_version"] == 2
    assert detail["added"] == [] and detail["deleted"] == [] and detail["conflicts"] == []
    modified = {m["key"]: m for m in detail["modified"]}
    assert modified["DS-05"]["changed"] == ["description"]
    assert modified["DS-05"]["before"]["name"] == "Renamed by Bob"  # `before` is the row as it is now
    assert modified["DS-05"]["after"] == modified["DS-05"]["before"] | {"description": "Alice's notes"}
    assert modified["DS-10"]["changed"] == ["name"]
    approve(boss, r.json["id"])
    now = values(alice)
    assert now["DS-05"]["name"] == "Renamed by Bob" and now["DS-05"]["description"] == "Alice's notes"
    assert now["DS-10"]["name"] == "Renamed by Alice"
    assert "DS-07" not in now and now["DS-11"]["name"] == "Added by Bob"  # bob's work stays


def test_a_warning_keeps_its_kind_and_is_not_found_again_by_its_text():
    """The review page groups warnings by the kind stored with them: a file warning that happens to
    say " undoing " stays a file warning; a plain string (stored before kinds) is read as it was."""
    from models import ChangeRequest, RequestWarning, WarningKind, warnings_json
    from web.present import warning_groups

    stored = [
        RequestWarning(WarningKind.FILE, 'Not read: the sheet "undoing notes", which is named after no table.'),
        RequestWarning(WarningKind.UNDO, "row DS-7 would come back, after its deletion by change request #2"),
    ]
    cr = ChangeRequest(warnings=warnings_json(stored))
    assert cr.warning_items == stored
    assert cr.warning_list == [w.message for w in stored]  # the API's `warnings` stays a list of strings
    # what was not read is a neutral notice, not a warning (issue 21)
    assert warning_groups(cr) == {"undo": [stored[1].message], "damage": [], "notices": [stored[0].message]}
    legacy = ChangeRequest(warnings='["row DS-7 would come back, undoing its deletion by change request #2", "x"]')
    assert [w.kind for w in legacy.warning_items] == [WarningKind.UNDO, WarningKind.FILE]


def test_without_a_known_base_the_same_file_is_warned_about(app, story, login):
    """Unknown base: compared with the table now, and every change that undoes bob's approval is warned."""
    alice, _, _, v1 = story
    mine = edit(v1, {"DS-05": {"description": "Alice's notes"}})
    r = alice.upload(mine, filename="my-table.csv", confirm_deletions="1")
    assert r.status_code == 201, r.text
    assert r.json["base_version"] == 2  # the version it was compared with
    assert r.json["summary"]["added"] == 1 and r.json["summary"]["deleted"] == 1
    warnings = r.json["warnings"]
    assert any(
        w.startswith("row DS-05: Name would go back to 'Name DS-05', undoing change request #2 by bob, approved ")
        for w in warnings
    ), warnings
    assert any(
        w.startswith("row DS-07 would come back, undoing its deletion by change request #2 by bob") for w in warnings
    )
    assert any(
        w.startswith("row DS-11 would be deleted, undoing its addition by change request #2 by bob") for w in warnings
    )
    with app.app_context():
        kinds = [w.kind.value for w in changes.get_request(r.json["id"]).warning_items]
    assert kinds.count("undo") == 3 and set(kinds) <= {"undo", "file"}
    page = html.unescape(login("boss").get(f"/changes/{r.json['id']}").text)
    assert "they would undo changes approved after the file could have been downloaded" in page
    assert page.count('flagged-row"') == 1  # DS-05 on the modified tab; the others on theirs
    deleted_tab = html.unescape(login("boss").get(f"/changes/{r.json['id']}?show=deleted").text)
    assert 'flagged-row"' in deleted_tab and "⚠ row DS-11 would be deleted" in deleted_tab


def test_an_intentional_deletion_of_an_old_row_is_not_warned(story):
    """A deletion of a row the file's version already had (added by a request the file has seen) is plain."""
    alice, _, _, _ = story
    r = alice.upload(edit(export(alice), {}, drop=("DS-03",)), filename="edited.csv")
    assert r.status_code == 201 and r.json["summary"]["deleted"] == 1
    assert r.json["warnings"] == []


def test_conflicts_are_shown_and_block_approval_until_resolved(story, login):
    alice, bob, boss, v1 = story
    mine = edit(v1, {"DS-05": {"name": "Renamed by Alice", "team": "Ops"}})
    r = alice.upload(mine, filename="datasets-v1.csv")
    assert r.status_code == 201 and r.json["summary"]["conflicts"] == 1, r.text
    change_id = r.json["id"]
    detail = alice.get(f"/api/v1/changes/{change_id}").json
    assert detail["conflicts"] == [
        {
            "key": "DS-05",
            "column": "name",
            "base": "Name DS-05",
            "theirs": "Renamed by Bob",
            "yours": "Renamed by Alice",
        }
    ]
    assert [m["changed"] for m in detail["modified"]] == [["team"]]  # the cell nobody else changed is staged
    r = boss.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 409 and r.json["keys"] == ["DS-05"] and "unresolved" in r.json["error"]
    page = html.unescape(login("alice").get(f"/changes/{change_id}").text)
    assert "1 conflict: you and a later approval changed the same thing" in page and "Keep mine" in page
    # only the submitter resolves, and only open conflicts
    assert bob.post(f"/api/v1/changes/{change_id}/resolve", json={"resolutions": []}).status_code == 403
    bad = {"resolutions": [{"key": "DS-05", "column": "team", "take": "yours"}]}
    assert alice.post(f"/api/v1/changes/{change_id}/resolve", json=bad).status_code == 422
    ok = {"resolutions": [{"key": "DS-05", "column": "name", "take": "yours"}]}
    r = alice.post(f"/api/v1/changes/{change_id}/resolve", json=ok)
    assert r.status_code == 200 and r.json == {"conflicts": []}
    modified = alice.get(f"/api/v1/changes/{change_id}").json["modified"]
    assert modified[0]["changed"] == ["name", "team"] and modified[0]["after"]["name"] == "Renamed by Alice"
    audit = alice.get("/api/v1/audit", query_string={"action": "resolve"}).json["items"]
    assert [(a["key"], a["note"], a["change_id"]) for a in audit] == [("DS-05", "name: kept mine", change_id)]
    approve(boss, change_id)
    assert values(alice)["DS-05"]["name"] == "Renamed by Alice" and values(alice)["DS-05"]["team"] == "Ops"
    assert alice.post(f"/api/v1/changes/{change_id}/resolve", json=ok).status_code == 409  # not pending


def test_keeping_theirs_drops_the_cell_and_a_request_left_empty_stages_nothing(story, login):
    alice, _, boss, v1 = story
    r = alice.upload(edit(v1, {"DS-05": {"name": "Renamed by Alice"}}), filename="datasets-v1.csv")
    change_id = r.json["id"]
    page = login("alice").post(
        f"/changes/{change_id}/resolve",
        data={"key": "DS-05", "column": "name", "take": "theirs"},
        follow_redirects=True,
    )
    assert page.status_code == 200 and "0 conflicts left" in html.unescape(page.text)
    detail = alice.get(f"/api/v1/changes/{change_id}").json
    assert detail["summary"] == {"added": 0, "modified": 0, "deleted": 0, "unchanged": 9, "conflicts": 0}
    approve(boss, change_id)
    assert values(alice)["DS-05"]["name"] == "Renamed by Bob"


def test_row_conflicts_resolved_with_yours(story):
    """You changed a row others deleted; you deleted a row others changed; both added a key differently."""
    alice, _, boss, v1 = story
    mine = edit(v1, {"DS-07": {"name": "Kept by Alice"}}, drop=("DS-05",), add=(row("DS-11", "Added by Alice"),))
    r = alice.upload(mine, filename="datasets-v1.csv")
    assert r.status_code == 201, r.text
    change_id = r.json["id"]
    conflicts = {c["key"]: c for c in alice.get(f"/api/v1/changes/{change_id}").json["conflicts"]}
    assert set(conflicts) == {"DS-05", "DS-07", "DS-11"} and all(c["column"] is None for c in conflicts.values())
    assert conflicts["DS-05"]["yours"] is None and conflicts["DS-05"]["theirs"]["name"] == "Renamed by Bob"
    assert conflicts["DS-07"]["theirs"] is None and conflicts["DS-07"]["yours"]["name"] == "Kept by Alice"
    assert conflicts["DS-11"]["base"] is None and conflicts["DS-11"]["theirs"]["name"] == "Added by Bob"
    resolutions = [{"key": k, "column": None, "take": "yours"} for k in conflicts]
    assert alice.post(f"/api/v1/changes/{change_id}/resolve", json={"resolutions": resolutions}).json == {
        "conflicts": []
    }
    summary = alice.get(f"/api/v1/changes/{change_id}").json["summary"]
    assert (summary["added"], summary["modified"], summary["deleted"]) == (1, 1, 1)
    approve(boss, change_id)
    now = values(alice)
    assert "DS-05" not in now and now["DS-07"]["name"] == "Kept by Alice" and now["DS-11"]["name"] == "Added by Alice"


def test_new_conflicts_at_approval_send_the_request_back(story):
    """Rebase at approval: a request merged cleanly at upload meets a later approval on the same cell."""
    alice, bob, boss, _ = story
    v2 = export(alice)
    mine = alice.upload(edit(v2, {"DS-01": {"name": "Alice's"}, "DS-02": {"team": "Ops"}}), filename="datasets-v2.csv")
    theirs = bob.upload(edit(v2, {"DS-01": {"name": "Bob's"}, "DS-02": {"owner": "o@x"}}), filename="datasets-v2.csv")
    approve(boss, theirs.json["id"])
    r = boss.post(f"/api/v1/changes/{mine.json['id']}/approve")
    assert r.status_code == 409 and r.json["keys"] == ["DS-01"]
    detail = alice.get(f"/api/v1/changes/{mine.json['id']}").json
    assert detail["status"] == "pending" and detail["summary"]["conflicts"] == 1 and detail["merged_version"] == 3
    assert [(c["key"], c["column"], c["theirs"], c["yours"]) for c in detail["conflicts"]] == [
        ("DS-01", "name", "Bob's", "Alice's")
    ]
    assert values(alice)["DS-01"]["name"] == "Bob's"  # nothing of alice's was applied
    ok = {"resolutions": [{"key": "DS-01", "column": "name", "take": "theirs"}]}
    assert alice.post(f"/api/v1/changes/{mine.json['id']}/resolve", json=ok).status_code == 200
    approve(boss, mine.json["id"])
    now = values(alice)
    assert now["DS-01"]["name"] == "Bob's" and now["DS-02"]["team"] == "Ops" and now["DS-02"]["owner"] == "o@x"


@pytest.mark.parametrize(
    "filename", ["datasets-v1.csv", "datasets-v1 (1).csv", "datasets-v1-edited.xlsx", "Copy of datasets-v1.csv"]
)
def test_the_base_version_is_read_from_the_file_name(story, filename):
    alice, _, _, v1 = story
    r = alice.upload(edit(v1, {"DS-10": {"name": "x"}}), filename=filename)
    assert r.status_code == 201 and r.json["base_version"] == 1 and r.json["summary"]["modified"] == 1, r.text


def test_the_base_version_field_wins_over_the_file_name(story):
    alice, _, _, v1 = story
    r = alice.upload(edit(v1, {"DS-10": {"name": "x"}}), filename="datasets-v2.csv", base_version="1")
    assert r.status_code == 201 and r.json["base_version"] == 1 and r.json["summary"]["modified"] == 1
    assert alice.get(f"/api/v1/changes/{r.json['id']}").json["base_source"] == "field"


@pytest.mark.parametrize(
    ("value", "status", "words"),
    [("abc", 400, "whole number"), ("1.5", 400, "whole number"), ("99", 422, "newer than the table")],
)
def test_a_bad_base_version_is_refused(story, value, status, words):
    alice, _, _, v1 = story
    r = alice.upload(v1, base_version=value)
    assert r.status_code == status and words in r.json["error"], r.text


def test_a_base_older_than_the_kept_history_is_refused_naming_the_oldest(make_app):
    from conftest import Api, add_test_users

    app = add_test_users(make_app(HISTORY_KEEP_VERSIONS=1))
    alice, boss = Api(app, "alice"), Api(app, "boss")
    for name in ("one", "two", "three"):
        approve(boss, alice.upload(table(row("DS-01", name)), mode="partial").json["id"])
    r = alice.upload(table(row("DS-01", "x")), base_version="1")
    assert r.status_code == 422 and "oldest version the history keeps (2)" in r.json["error"]
    assert alice.get("/api/v1/export.csv?version=1").status_code == 404
    assert alice.get("/api/v1/export.csv?version=2").status_code == 200


def test_the_upload_page_takes_and_shows_the_base_version(story, login):
    alice_page = login("alice")
    _, _, _, v1 = story
    form = alice_page.get("/upload").text
    assert 'name="base_version"' in form and "Based on version" in form
    r = alice_page.upload(edit(v1, {"DS-10": {"name": "x"}}), filename="whatever.csv", base_version="1")
    assert r.status_code == 302
    review = html.unescape(alice_page.get(r.headers["Location"]).text)
    assert "version 1 (as given at upload); merged with version 2" in review
