"""Version history (issue 9): versions, the table as of a version, diffs, revert, blame, the audit CSV.

On SQLite and PostgreSQL. The history is the staged rows of approved requests; every answer here
is checked against what was downloaded or uploaded at the time, not against the code under test.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import CATALOG_SCHEMA, Api, add_test_users, row, table


def approve(boss, change_id: int) -> int:
    r = boss.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 200, r.text
    return r.json["version"]


def stage(client, *rows: str, **form) -> int:
    r = client.upload(table(*rows), **({"mode": "partial"} | form))
    assert r.status_code == 201, r.text
    return r.json["id"]


def rows_of(data: bytes) -> dict[str, dict[str, str]]:
    return {r["id"]: r for r in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))}


@pytest.fixture
def versions(app, api):
    """Three versions and the CSV downloaded when each was current: {1: bytes, 2: bytes, 3: bytes}."""
    alice, bob, boss = api("alice"), api("bob"), api("boss")
    downloads = {}
    approve(boss, stage(alice, row("DS-1", "Sales"), row("DS-2", "HR"), row("DS-3", "Finance")))
    downloads[1] = alice.get("/api/v1/export.csv").data
    # version 2: bob renames DS-2, deletes DS-3, adds DS-4
    approve(
        boss,
        stage(
            bob,
            row("DS-1", "Sales"),
            row("DS-2", "HR Global"),
            row("DS-4", "Legal"),
            mode="full",
            confirm_deletions="1",
        ),
    )
    downloads[2] = alice.get("/api/v1/export.csv").data
    # version 3: alice changes DS-1's owner
    approve(boss, stage(alice, row("DS-1", "Sales", owner="new@example.com")))
    downloads[3] = alice.get("/api/v1/export.csv").data
    return downloads


def test_versions_are_listed_with_their_request(app, api, versions, login):
    r = api("bob").get("/api/v1/versions")
    assert r.status_code == 200 and r.json["total"] == 3
    items = r.json["items"]
    assert [(i["version"], i["change_id"], i["submitter"], i["approver"]) for i in items] == [
        (3, 3, "alice", "boss"), (2, 2, "bob", "boss"), (1, 1, "alice", "boss")
    ]  # fmt: skip
    assert items[1]["summary"] == {"added": 1, "modified": 1, "deleted": 1} and items[0]["approved_at"].endswith("Z")
    assert set(items[0]) == {"version", "change_id", "comment", "submitter", "approver", "approved_at", "summary"}
    assert [i["version"] for i in api("bob").get("/api/v1/versions?limit=1&offset=1").json["items"]] == [2]
    page = login("bob").get("/versions").text
    assert "/?version=2" in page and "/diff?from=1&amp;to=2" in page and "/changes/2" in page


def test_time_travel_is_byte_identical_to_the_download_made_at_the_time(app, api, versions, login):
    alice = api("alice")
    for version, then in versions.items():
        r = alice.get(f"/api/v1/export.csv?version={version}")
        assert r.status_code == 200 and r.headers["X-Dataset-Version"] == str(version)
        assert r.data == then, version
        assert f"datasets-v{version}.csv" in r.headers["Content-Disposition"]
        assert login("alice").get(f"/download?version={version}").data == then
    workbook = alice.get("/api/v1/export.xlsx?version=1")
    assert workbook.status_code == 200 and workbook.headers["X-Dataset-Version"] == "1"
    page = login("alice").get("/?version=2").text
    assert "as of version 2" in page and "HR Global" in page and "new@example.com" not in page


@pytest.mark.parametrize(
    "url", ["/api/v1/export.csv?version=9", "/api/v1/export.xlsx?version=4", "/api/v1/diff?from=0&to=9"]
)
def test_an_unknown_version_is_404(app, api, versions, url):
    r = api("alice").get(url)
    assert r.status_code == 404 and "There is no version" in r.json["error"]


def test_an_unknown_version_page_is_404_and_a_malformed_one_400_in_the_api(app, api, versions, login):
    assert login("alice").get("/?version=9").status_code == 404
    assert login("alice").get("/download?version=x").status_code == 404
    assert api("alice").get("/api/v1/export.csv?version=x").status_code == 400


def test_time_travel_after_a_column_was_added_shows_todays_columns(make_app, tmp_path, monkeypatch):
    schema = json.loads(CATALOG_SCHEMA.read_text())
    app = add_test_users(make_app())
    alice, boss = Api(app, "alice"), Api(app, "boss")
    approve(boss, stage(alice, row("DS-1", "Sales"), row("DS-2", "HR")))
    then = alice.get("/api/v1/export.csv").data
    approve(boss, stage(alice, row("DS-1", "Sales EMEA")))
    schema["fields"].append({"name": "cost_centre", "type": "string"})
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    later = make_app(SCHEMA_PATH=tmp_path / "schema.json")
    alice = Api(later, "alice")
    r = alice.get("/api/v1/export.csv?version=1")
    lines = r.data.decode("utf-8-sig").split("\r\n")
    assert lines[0].endswith(",url,cost_centre")
    assert lines[1:] == [line + "," if line else line for line in then.decode("utf-8-sig").split("\r\n")[1:]]


def test_the_diff_between_versions_both_ways(app, api, versions):
    alice = api("alice")
    r = alice.get("/api/v1/diff?from=1&to=3")
    assert r.status_code == 200
    body = r.json
    assert (body["from"], body["to"], body["summary"]) == (1, 3, {"added": 1, "modified": 2, "deleted": 1})
    assert [a["id"] for a in body["added"]] == ["DS-4"] and [d["id"] for d in body["deleted"]] == ["DS-3"]
    modified = {m["key"]: m for m in body["modified"]}
    assert modified["DS-1"]["changed"] == ["owner"] and modified["DS-2"]["changed"] == ["name"]
    assert modified["DS-2"]["before"]["name"] == "HR" and modified["DS-2"]["after"]["name"] == "HR Global"
    back = alice.get("/api/v1/diff?from=3&to=1").json
    assert [a["id"] for a in back["added"]] == ["DS-3"] and [d["id"] for d in back["deleted"]] == ["DS-4"]
    assert {m["key"]: m["after"]["name"] for m in back["modified"]}["DS-2"] == "HR"
    page = alice.get("/api/v1/diff?from=1&to=3&limit=1&offset=1").json
    assert [m["key"] for m in page["modified"]] == ["DS-2"] and page["added"] == []
    assert alice.get("/api/v1/diff?from=1").status_code == 400


def test_diff_downloads_use_the_tabular_diff_format(app, api, versions, login):
    alice = api("alice")
    text = alice.get("/api/v1/diff.csv?from=1&to=2").data.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0].startswith("@@,id,name,")
    assert "->,DS-2,HR->HR Global," in text and "+++,DS-4,Legal," in text and "---,DS-3,Finance," in text
    assert login("alice").get("/diff.csv?from=1&to=2").data.decode("utf-8-sig") == text
    change = alice.get("/api/v1/changes/2/diff.csv")
    assert change.status_code == 200 and change.data.decode("utf-8-sig") == text  # version 2 is request #2
    assert change.headers["Content-Disposition"] == 'attachment; filename="change-2-diff.csv"'
    page = login("alice").get("/diff?from=1&to=3").text
    assert "What changed from version 1 to version 3" in page and "HR Global" in page


def test_revert_restores_deleted_removes_added_and_keeps_later_edits(app, api, versions, login):
    """Revert #2 (a modification, an addition and a deletion) after #3 changed another cell of DS-1."""
    alice, boss = api("alice"), api("boss")
    later = stage(alice, row("DS-2", "HR Global", team="People"))  # another cell of the row #2 modified
    approve(boss, later)
    r = api("bob").post("/api/v1/changes/2/revert")
    assert r.status_code == 201, r.text
    assert r.json["status"] == "pending" and r.json["base_version"] == 2
    assert r.json["summary"] == {"added": 1, "modified": 1, "deleted": 1, "unchanged": 0, "conflicts": 0}
    detail = alice.get(f"/api/v1/changes/{r.json['id']}").json
    assert detail["comment"].startswith("Revert #2") and detail["reverts"] == 2 and detail["submitter"] == "bob"
    approve(boss, r.json["id"])
    now = rows_of(alice.get("/api/v1/export.csv").data)
    then = rows_of(versions[1])
    assert now["DS-3"] == then["DS-3"]  # the deleted row is back with its values
    assert "DS-4" not in now  # the added one is gone
    assert now["DS-2"]["name"] == "HR" and now["DS-2"]["team"] == "People"  # reverted cell, later edit kept
    assert api("bob").post("/api/v1/changes/2/revert").json["status"] == "unchanged"  # nothing left to undo
    page = login("alice").get("/changes/1").text
    assert "Revert this change" in page


def test_revert_conflicts_when_a_cell_changed_again(app, api, versions):
    alice, boss = api("alice"), api("boss")
    approve(boss, stage(alice, row("DS-2", "Human Resources")))  # the cell #2 changed, changed again
    r = alice.post("/api/v1/changes/2/revert")
    assert r.status_code == 201 and r.json["summary"]["conflicts"] == 1
    conflicts = alice.get(f"/api/v1/changes/{r.json['id']}").json["conflicts"]
    assert conflicts == [
        {"key": "DS-2", "column": "name", "base": "HR Global", "theirs": "Human Resources", "yours": "HR"}
    ]
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 409


def test_only_approved_requests_can_be_reverted(app, api, versions):
    alice = api("alice")
    pending = stage(alice, row("DS-1", "X"))
    r = alice.post(f"/api/v1/changes/{pending}/revert")
    assert r.status_code == 409 and "only an approved request can be reverted" in r.json["error"]
    assert alice.post("/api/v1/changes/99/revert").status_code == 404


def test_blame_names_the_last_change_of_each_cell_also_after_a_revert(app, api, versions, login):
    alice, boss = api("alice"), api("boss")
    blame = alice.get("/api/v1/records/DS-1/blame").json
    assert blame["key"] == "DS-1"
    assert blame["fields"]["owner"]["version"] == 3 and blame["fields"]["owner"]["submitter"] == "alice"
    assert blame["fields"]["name"]["version"] == 1 and blame["fields"]["name"]["approver"] == "boss"
    revert = alice.post("/api/v1/changes/3/revert").json["id"]
    version = approve(boss, revert)
    blame = alice.get("/api/v1/records/DS-1/blame").json["fields"]
    assert blame["owner"]["version"] == version and blame["owner"]["change_id"] == revert
    assert blame["name"]["version"] == 1
    deleted = alice.get("/api/v1/records/DS-3/blame").json["fields"]  # a deleted record: its last values
    assert deleted["name"]["version"] == 1
    assert alice.get("/api/v1/records/NOPE/blame").status_code == 404


def test_the_audit_log_as_csv_with_filters(app, api, versions, login):
    alice = api("alice")
    r = alice.get("/api/v1/audit.csv?user=bob")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert lines[0][:4] == ["id", "created_at", "action", "key"]
    assert sorted((line[2], line[3]) for line in lines[1:]) == [("add", "DS-4"), ("delete", "DS-3"), ("modify", "DS-2")]
    modify = next(line for line in lines if line[2] == "modify")
    assert (
        modify[8] == "name" and json.loads(modify[9])["name"] == "HR" and json.loads(modify[10])["name"] == "HR Global"
    )
    deletes = list(csv.reader(io.StringIO(alice.get("/api/v1/audit.csv?action=delete").data.decode("utf-8-sig"))))
    assert [(line[2], line[3]) for line in deletes[1:]] == [("delete", "DS-3")]
    by_change = list(csv.reader(io.StringIO(alice.get("/api/v1/audit.csv?change=3").data.decode("utf-8-sig"))))
    assert [(line[2], line[3]) for line in by_change[1:]] == [("modify", "DS-1")]
    page = login("alice").get("/audit?action=add").text
    assert "/audit.csv?action=add" in page


def test_audit_pages_follow_the_next_cursor(app, api, versions):
    alice = api("alice")
    seen, cursor = [], None
    while True:
        r = alice.get("/api/v1/audit", query_string={"limit": 2} | ({"before": cursor} if cursor else {}))
        seen += [(i["action"], i["key"]) for i in r.json["items"]]
        cursor = r.json["next"]
        if cursor is None:
            break
    # newest first: within one approval, the reverse of the order its rows were staged in (add, modify, delete)
    assert seen == [("modify", "DS-1"), ("delete", "DS-3"), ("modify", "DS-2"), ("add", "DS-4"),
                    ("add", "DS-3"), ("add", "DS-2"), ("add", "DS-1")]  # fmt: skip
    assert alice.get("/api/v1/audit?before=x").status_code == 400
