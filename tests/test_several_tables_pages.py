"""Several tables seen whole (issue 21, part 4): headings that name their table, the whole
database's versions and audit log (pages and `?all=1` in the API, a `table` per item), a batch
as one line of the request list, the approval flash naming each table."""

from __future__ import annotations

import html
import re

import pytest
from conftest import Api, Browser, add_test_users, row, table
from test_tables import PACKAGE, SYSTEMS, TEAMS, send, upload, workbook


@pytest.fixture
def batch(make_app):
    """Teams and systems approved (versions 1, 2), then one workbook adding a team and a dataset
    approved as version 3; (app, alice, boss, the batch's request ids by table)."""
    app = add_test_users(make_app(SCHEMA_PATH=PACKAGE))
    alice, boss = Api(app, "alice"), Api(app, "boss")
    for name, text in (("teams", TEAMS), ("source_systems", SYSTEMS)):
        r = upload(alice, name, text)
        assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    book = workbook({"datasets": table(row("DS-1", team="Legal")), "teams": TEAMS + "Legal,Lee,CC-3\n"})
    r = send(alice, book, "company-v2.xlsx")
    assert r.status_code == 201, r.text
    ids = {m["table"]: m["id"] for m in r.json["requests"]}
    return app, alice, boss, ids


def test_the_api_lists_every_tables_versions_and_audit_with_a_table_field(batch):
    _, alice, boss, ids = batch
    assert boss.post(f"/api/v1/changes/{ids['teams']}/approve").status_code == 200
    versions = alice.get("/api/v1/versions?all=1").json
    assert versions["total"] == 4  # teams, systems, and the batch (two requests, one version)
    assert sorted((v["version"], v["table"]) for v in versions["items"]) == [
        (1, "teams"),
        (2, "source_systems"),
        (3, "datasets"),
        (3, "teams"),
    ]
    assert "table" not in alice.get("/api/v1/versions").json["items"][0]  # the shape without all=1 is as it was
    audit = alice.get("/api/v1/audit?all=1&action=add").json["items"]
    batch_rows = {(a["table"], a["key"]) for a in audit if a["version"] == 3}
    assert batch_rows == {("teams", "Legal"), ("datasets", "DS-1")}
    assert {a["table"] for a in alice.get("/api/v1/audit").json["items"]} == {"datasets"}
    assert alice.get("/api/v1/audit?all=maybe").status_code == 400


def test_the_whole_database_pages_have_a_table_column_and_the_overview_links_them(batch):
    app, _, boss, ids = batch
    assert boss.post(f"/api/v1/changes/{ids['teams']}/approve").status_code == 200
    browser = Browser(app, "alice")
    overview = browser.get("/").text
    assert 'href="/versions?all=1"' in overview and 'href="/audit?all=1"' in overview
    audit = html.unescape(browser.get("/audit?all=1").text)
    assert "<h1>Audit log of every table</h1>" in audit and '<th scope="col">Table</th>' in audit
    assert 'href="/t/teams/records/Legal"' in audit and 'href="/t/datasets/records/DS-1"' in audit
    versions = html.unescape(browser.get("/versions?all=1").text)
    assert "<h1>Versions of every table</h1>" in versions and ">Teams</a>" in versions
    assert "<h1>Versions of Teams</h1>" in html.unescape(browser.get("/t/teams/versions").text)
    assert "<h1>Audit log of Teams</h1>" in html.unescape(browser.get("/t/teams/audit").text)


def test_a_batch_is_one_line_of_the_request_list_and_its_approval_names_each_table(batch):
    app, _, _, ids = batch
    listed = Browser(app, "alice").get("/changes").text
    rows = re.findall(r"<tr(?: class=\"batch\")?>\s*<td><a href=\"/changes/(\d+)\">", listed)
    assert len(rows) == 1 and int(rows[0]) in ids.values(), rows
    assert "<summary>2 tables</summary>" in listed
    boss = Browser(app, "boss")
    page = boss.post(f"/changes/{ids['teams']}/approve", data={"csrf_token": ""}, follow_redirects=True)
    text = html.unescape(page.text)
    assert "Approved and applied to 2 tables" in text and "Teams (#" in text and "Dataset catalog (#" in text
    assert "1 change)" in text


def test_a_sheet_not_read_gets_a_neutral_notice_and_decision_warnings_go_once_decided(make_app):
    app = add_test_users(make_app(SCHEMA_PATH=PACKAGE))
    alice, boss = Api(app, "alice"), Api(app, "boss")
    r = upload(alice, "teams", TEAMS)
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    book = workbook({"teams": TEAMS + "Legal,Lee,CC-3\n", "Notes": "just,notes\n"})
    r = send(alice, book, "company.xlsx")
    assert r.status_code == 201, r.text
    page = html.unescape(Browser(app, "alice").get(f"/changes/{r.json['id']}").text)
    notice = re.search(r'<div class="notice-neutral" role="note">(.*?)</div>', page, re.S)
    assert notice and '"Notes"' in notice.group(1)
    assert "look like spreadsheet damage" not in page
    # a change of invisible characters only is warned about, until the request is decided
    stale = upload(alice, "teams", TEAMS.replace("Dora", "Dora\u00a0"))
    assert stale.status_code == 201, stale.text
    before = Browser(app, "boss").get(f"/changes/{stale.json['id']}").text
    assert "Check these before approving" in before
    assert boss.post(f"/api/v1/changes/{stale.json['id']}/reject", json={"reason": "no"}).status_code == 200
    assert "Check these before approving" not in Browser(app, "boss").get(f"/changes/{stale.json['id']}").text
