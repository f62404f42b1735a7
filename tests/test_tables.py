"""Several tables in one deployment (a Data Package schema.json): per-table pages and API, the old
URLs serving the first table, references checked on upload and on deletion, approvers per table,
one version counter, start-up adding tables and refusing to drop one that holds rows."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from conftest import HEADER, Api, Browser, add_test_users, row, table

import store.changes

PACKAGE = Path(__file__).with_name("data") / "package.json"
TEAMS = "name,lead,cost_centre\nData,Dora,CC-1\nFinance,Fred,CC-2\n"
SYSTEMS = "name,vendor,url\nSAP,SAP SE,https://sap.example.com\nCRM,Acme,https://crm.example.com\n"


@pytest.fixture
def multi(make_app):
    """An app on the three-table package (catalog → teams, catalog → source systems), with users."""
    return add_test_users(make_app(SCHEMA_PATH=PACKAGE))


@pytest.fixture
def filled(multi):
    """Teams and source systems approved (versions 1 and 2); returns (app, alice's and boss's API clients)."""
    alice, boss = Api(multi, "alice"), Api(multi, "boss")
    for name, text in (("teams", TEAMS), ("source_systems", SYSTEMS)):
        r = upload(alice, name, text)
        assert r.status_code == 201, r.text
        assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    return multi, alice, boss


def upload(client: Api, name: str, text: str, **form):
    data = {"file": (io.BytesIO(text.encode()), f"{name}.csv"), **form}
    return client.post(f"/api/v1/tables/{name}/changes", data=data, content_type="multipart/form-data")


def rows_of(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_the_tables_are_listed_with_rows_version_and_pending(filled):
    _, alice, _ = filled
    assert upload(alice, "teams", TEAMS + "Legal,Lee,CC-3\n").status_code == 201
    listed = {t["name"]: t for t in alice.get("/api/v1/tables").json["items"]}
    assert list(listed) == ["datasets", "teams", "source_systems"]  # schema.json's order
    assert listed["teams"] == {"name": "teams", "title": "Teams", "rows": 2, "version": 1, "pending": 1}
    assert listed["source_systems"]["version"] == 2 and listed["source_systems"]["rows"] == 2
    assert listed["datasets"] == {"name": "datasets", "title": "Dataset catalog", "rows": 0, "version": 0, "pending": 0}


def test_each_table_has_its_own_export_and_the_old_url_serves_the_first(filled):
    _, alice, _ = filled
    teams = alice.get("/api/v1/tables/teams/export.csv")
    assert teams.status_code == 200
    assert [r["name"] for r in rows_of(teams)] == ["Data", "Finance"]
    assert "teams-v2.csv" in teams.headers["Content-Disposition"]  # named after the database version
    assert teams.headers["X-Dataset-Version"] == "2"
    first = alice.get("/api/v1/export.csv")
    assert (
        first.data.decode("utf-8-sig").splitlines()[0] == HEADER
        and "datasets-v2.csv" in first.headers["Content-Disposition"]
    )
    assert alice.get("/api/v1/tables/datasets/export.csv").data == first.data
    assert alice.get("/api/v1/tables/nope/export.csv").status_code == 404
    workbook = alice.get("/api/v1/tables/source_systems/export.xlsx")
    assert workbook.status_code == 200 and "source_systems-v2.xlsx" in workbook.headers["Content-Disposition"]


def test_one_version_counter_and_history_per_table(filled):
    _, alice, boss = filled
    r = upload(alice, "teams", "name,lead,cost_centre\nData,Dana,CC-1\nFinance,Fred,CC-2\n")
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").json["version"] == 3
    versions = alice.get("/api/v1/tables/teams/versions").json
    assert [v["version"] for v in versions["items"]] == [3, 1] and versions["total"] == 2
    assert [v["version"] for v in alice.get("/api/v1/tables/source_systems/versions").json["items"]] == [2]
    # The teams as of version 2 (the source systems' approval did not touch them): Dora still leads Data.
    old = rows_of(alice.get("/api/v1/tables/teams/export.csv?version=2"))
    assert old[0]["lead"] == "Dora"
    diff = alice.get("/api/v1/tables/teams/diff?from=1&to=3").json
    assert diff["summary"] == {"added": 0, "modified": 1, "deleted": 0}
    assert diff["modified"][0]["key"] == "Data"
    history = alice.get("/api/v1/tables/teams/records/Data/history").json["items"]
    assert [h["action"] for h in history] == ["modify", "add"]
    assert alice.get("/api/v1/tables/datasets/records/Data/history").json["items"] == []  # not the catalog's


def test_an_upload_pointing_at_a_missing_key_is_refused_with_line_column_and_value(filled):
    _, alice, _ = filled
    text = table(row("DS-1", team="Data"), row("DS-2", team="Finanse"), row("DS-3", team="", source_system="ERP"))
    r = alice.upload(text)  # the old URL: the first table
    assert r.status_code == 422, r.text
    errors = [(e["line"], e["column"], e["message"]) for e in r.json["errors"]]
    assert errors == [
        (3, "team", 'team "Finanse" is not a key of table "teams"'),
        (4, "source_system", 'source_system "ERP" is not a key of table "source_systems"'),
    ]
    assert alice.get("/api/v1/changes?status=pending").json["total"] == 0  # nothing staged
    assert alice.upload(table(row("DS-1", team="Data"), row("DS-2", team="Finance"))).status_code == 201


def test_deleting_a_referenced_row_is_refused_at_approval_with_the_referencing_keys(filled):
    _, alice, boss = filled
    r = alice.upload(table(row("DS-1", team="Data"), row("DS-2", team="Finance")))
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    r = upload(alice, "teams", "name,lead,cost_centre\nData,Dora,CC-1\n", confirm_deletions="1")  # deletes Finance
    assert r.status_code == 201, r.text
    refused = boss.post(f"/api/v1/changes/{r.json['id']}/approve")
    assert refused.status_code == 409
    assert 'datasets "DS-2" (team "Finance")' in refused.json["error"]
    assert rows_of(boss.get("/api/v1/tables/teams/export.csv"))[1]["name"] == "Finance"  # nothing applied
    assert boss.get(f"/api/v1/changes/{r.json['id']}").json["status"] == "pending"
    # Once DS-2 no longer refers to Finance, the same request applies.
    r2 = alice.upload(table(row("DS-1", team="Data"), row("DS-2", team="Data")))
    assert boss.post(f"/api/v1/changes/{r2.json['id']}/approve").status_code == 200
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200


def test_table_approvers_decide_their_table_only(filled):
    app, alice, _ = filled  # teams lists alice as an approver; admins approve everything
    bob = Api(app, "bob")
    team_change = upload(bob, "teams", TEAMS + "Legal,Lee,CC-3\n").json["id"]
    catalog_change = bob.upload(table(row("DS-1"))).json["id"]
    assert bob.post(f"/api/v1/changes/{team_change}/approve").status_code == 403
    assert alice.post(f"/api/v1/changes/{catalog_change}/approve").status_code == 403
    assert alice.post(f"/api/v1/changes/{catalog_change}/reject", json={"reason": "no"}).status_code == 403
    assert alice.post(f"/api/v1/changes/{team_change}/approve").status_code == 200
    # In the pages too: the buttons are shown to those who may decide, and the server checks.
    review = Browser(app, "alice").get(f"/changes/{catalog_change}").text
    assert "Approve and apply" not in review
    assert Browser(app, "alice").post(f"/changes/{catalog_change}/approve").status_code == 403
    assert "Approve and apply" in Browser(app, "boss").get(f"/changes/{catalog_change}").text


def test_pages_of_each_table_and_the_overview(filled):
    app, _, _ = filled
    alice = Browser(app, "alice")
    home = alice.get("/")
    assert home.status_code == 200
    for title in ("Dataset catalog", "Teams", "Source systems"):
        assert title in home.text
    assert 'href="/t/teams/"' in home.text
    teams = alice.get("/t/teams/")
    assert teams.status_code == 200 and "Finance" in teams.text and "<h1>Teams" in teams.text
    assert 'href="/t/teams/download"' in teams.text and 'href="/t/teams/upload"' in teams.text  # links stay in it
    assert "changes approved by the admins and alice" in teams.text  # its approvers, shown
    download = alice.get("/t/teams/download")
    assert "teams-v2.csv" in download.headers["Content-Disposition"]
    assert alice.get("/t/source_systems/records/SAP").status_code == 200
    assert alice.get("/t/teams/records/SAP").status_code == 404
    assert alice.get("/t/nope/").status_code == 404
    form = {"file": (io.BytesIO((TEAMS + "Legal,Lee,CC-3\n").encode()), "teams-v2.csv"), "mode": "full"}
    staged = alice.post("/t/teams/upload", data=form, content_type="multipart/form-data")
    assert staged.status_code == 302
    review = alice.get(staged.headers["Location"]).text
    assert "Legal" in review and '<dd><a href="/t/teams/">Teams</a></dd>' in review  # the request's table
    assert "Legal" not in alice.get("/t/source_systems/changes").text
    every = alice.get("/changes").text  # every table's requests, each with its table
    assert f'href="/changes/{staged.headers["Location"].rsplit("/", 1)[1]}"' in every and "<td>Teams</td>" in every
    assert "datasets-v2.csv" in alice.get("/download").headers["Content-Disposition"]  # the old URL


def test_a_new_resource_is_a_new_empty_table_and_a_dropped_one_is_refused(make_app, tmp_path, capsys):
    first = add_test_users(make_app(SCHEMA_PATH=PACKAGE))
    assert Api(first, "alice").get("/api/v1/tables").json["items"][1]["rows"] == 0
    alice, boss = Api(first, "alice"), Api(first, "boss")
    change = upload(alice, "teams", TEAMS).json["id"]
    assert boss.post(f"/api/v1/changes/{change}/approve").status_code == 200

    package = json.loads(PACKAGE.read_text())
    package["resources"] = [r for r in package["resources"] if r["name"] != "teams"]
    package["resources"][0]["schema"]["foreignKeys"] = package["resources"][0]["schema"]["foreignKeys"][1:]
    without_teams = tmp_path / "without-teams.json"
    without_teams.write_text(json.dumps(package))
    with pytest.raises(SystemExit) as stopped:
        make_app(SCHEMA_PATH=without_teams)
    assert "'teams' (2 rows)" in str(stopped.value) and "DROP_REMOVED_TABLES" in str(stopped.value)

    dropped = make_app(SCHEMA_PATH=without_teams, DROP_REMOVED_TABLES=True)
    names = [t["name"] for t in Api(dropped, "alice").get("/api/v1/tables").json["items"]]
    assert names == ["datasets", "source_systems"]
    again = make_app(SCHEMA_PATH=PACKAGE)  # teams comes back, empty
    assert {t["name"]: t["rows"] for t in Api(again, "alice").get("/api/v1/tables").json["items"]}["teams"] == 0


def test_a_bad_descriptor_stops_start_up_naming_the_resource_and_field(make_app, tmp_path):
    package = json.loads(PACKAGE.read_text())
    package["resources"][0]["schema"]["foreignKeys"][0]["reference"]["resource"] = "team"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(package))
    with pytest.raises(SystemExit) as stopped:
        make_app(SCHEMA_PATH=bad)
    assert "resource 'datasets', field 'team'" in str(stopped.value) and "'team'" in str(stopped.value)


def test_a_single_table_database_becomes_the_first_table_of_a_package(make_app):
    """An existing one-table deployment switching to a Data Package keeps its rows in the first table."""
    single = add_test_users(make_app())
    boss, alice = Api(single, "boss"), Api(single, "alice")
    change = alice.upload(table(row("DS-1", team="Data", source_system="SAP"))).json["id"]
    assert boss.post(f"/api/v1/changes/{change}/approve").status_code == 200
    package = make_app(SCHEMA_PATH=PACKAGE)
    listed = {t["name"]: t["rows"] for t in Api(package, "alice").get("/api/v1/tables").json["items"]}
    assert listed == {"datasets": 1, "teams": 0, "source_systems": 0}
    assert rows_of(Api(package, "alice").get("/api/v1/tables/datasets/export.csv"))[0]["id"] == "DS-1"


# --- one upload for several tables: a workbook with a sheet per table, a zip of CSV files ----------


def workbook(sheets: dict[str, str]) -> bytes:
    """An .xlsx with a sheet per (title, CSV text): every cell as text."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, text in sheets.items():
        sheet = book.create_sheet(title)
        for values in csv.reader(io.StringIO(text)):
            sheet.append(values)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zipped(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return out.getvalue()


def send(client: Api, data: bytes, filename: str, url: str = "/api/v1/changes", **form):
    return client.post(url, data={"file": (io.BytesIO(data), filename), **form}, content_type="multipart/form-data")


def test_a_workbook_of_several_tables_is_one_upload_applied_in_one_version(filled):
    _, alice, boss = filled
    book = workbook(
        {
            "datasets": table(row("DS-1", team="Legal", source_system="SAP")),
            "teams": TEAMS + "Legal,Lee,CC-3\n",
            "source_systems": SYSTEMS,
            "Notes": "just,notes\n",
        }
    )
    r = send(alice, book, "company-data-v2.xlsx")
    assert r.status_code == 201, r.text
    members = {m["table"]: m for m in r.json["requests"]}
    assert set(members) == {"datasets", "teams"}  # source_systems did not change
    assert members["teams"]["summary"]["added"] == 1 and members["datasets"]["summary"]["added"] == 1
    assert r.json["id"] == members["datasets"]["id"]
    assert any('"Notes"' in w for w in r.json["warnings"])  # a sheet named after no table is reported
    detail = alice.get(f"/api/v1/changes/{members['teams']['id']}").json
    assert detail["table"] == "teams" and detail["batch"] == r.json["id"] and len(detail["requests"]) == 2
    # Approving either approves both, in one version.
    approved = boss.post(f"/api/v1/changes/{members['teams']['id']}/approve")
    assert approved.status_code == 200 and approved.json["version"] == 3
    statuses = {m["table"]: m["status"] for m in alice.get(f"/api/v1/changes/{r.json['id']}").json["requests"]}
    assert statuses == {"datasets": "approved", "teams": "approved"}
    listed = {t["name"]: t["version"] for t in alice.get("/api/v1/tables").json["items"]}
    assert listed == {"datasets": 3, "teams": 3, "source_systems": 2}


def test_a_zip_of_csv_files_may_refer_to_rows_it_adds(filled):
    _, alice, boss = filled
    files = {
        "export/datasets.csv": table(row("DS-1", team="Legal", source_system="ERP")),
        "export/teams.csv": TEAMS + "Legal,Lee,CC-3\n",
        "export/source_systems.csv": SYSTEMS + "ERP,Acme,https://erp.example.com\n",
        "__MACOSX/export/._teams.csv": "",
    }
    r = send(alice, zipped(files), "export.zip")
    assert r.status_code == 201, r.text
    assert sorted(m["table"] for m in r.json["requests"]) == ["datasets", "source_systems", "teams"]
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    assert rows_of(alice.get("/api/v1/export.csv"))[0]["team"] == "Legal"


def test_a_problem_in_one_sheet_refuses_the_whole_upload_naming_the_sheet(filled):
    _, alice, _ = filled
    book = workbook({"datasets": table(row("DS-1", team="Nobody")), "teams": TEAMS + ",Lee,CC-3\n"})
    r = send(alice, book, "company.xlsx")
    assert r.status_code == 422, r.text
    messages = [(e["column"], e["message"]) for e in r.json["errors"]]
    assert any(column == "name" and message.startswith('sheet "teams": ') for column, message in messages), messages
    assert alice.get("/api/v1/changes?status=pending").json["total"] == 0  # nothing staged from any sheet


def test_an_upload_of_several_tables_applies_all_or_none(filled, monkeypatch):
    _, alice, boss = filled
    r = send(
        alice, workbook({"datasets": table(row("DS-1", team="Legal")), "teams": TEAMS + "Legal,Lee,CC-3\n"}), "x.xlsx"
    )
    assert r.status_code == 201, r.text
    real_apply, calls = store.changes.apply_pending, []

    def failing_second(tbl, change_id, version):
        calls.append(change_id)
        if len(calls) == 2:
            raise store.changes.MissingRows("simulated failure in the second table")
        return real_apply(tbl, change_id, version)

    monkeypatch.setattr(store.changes, "apply_pending", failing_second)
    failed = boss.post(f"/api/v1/changes/{r.json['id']}/approve")
    assert failed.status_code == 500 and "nothing was applied" in failed.json["error"]
    assert len(calls) == 2
    assert [t["version"] for t in alice.get("/api/v1/tables").json["items"]] == [0, 1, 2]  # nothing applied
    assert [m["status"] for m in alice.get(f"/api/v1/changes/{r.json['id']}").json["requests"]] == ["pending"] * 2
    monkeypatch.setattr(store.changes, "apply_pending", real_apply)
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200


def test_an_upload_of_several_tables_is_decided_by_someone_allowed_on_all(filled):
    app, alice, boss = filled  # alice approves teams only
    bob = Api(app, "bob")
    r = send(bob, workbook({"datasets": table(row("DS-1")), "teams": TEAMS + "Legal,Lee,CC-3\n"}), "x.xlsx")
    team_request = next(m["id"] for m in r.json["requests"] if m["table"] == "teams")
    assert alice.post(f"/api/v1/changes/{team_request}/approve").status_code == 403
    assert boss.post(f"/api/v1/changes/{team_request}/reject", json={"reason": "later"}).status_code == 200
    assert [m["status"] for m in bob.get(f"/api/v1/changes/{r.json['id']}").json["requests"]] == ["rejected"] * 2


def test_the_review_page_of_an_upload_of_several_tables_has_a_tab_per_table(filled):
    app, alice, _ = filled
    r = send(alice, workbook({"datasets": table(row("DS-1")), "teams": TEAMS + "Legal,Lee,CC-3\n"}), "x.xlsx")
    ids = {m["table"]: m["id"] for m in r.json["requests"]}
    page = Browser(app, "boss").get(f"/changes/{ids['teams']}").text
    assert 'aria-label="Tables of this upload"' in page
    assert f'href="/changes/{ids["datasets"]}"' in page and "Approve and apply 2 changes in 2 tables" in page


def test_the_whole_database_workbook_round_trips(filled):
    """Download every table as one workbook, upload it unchanged (nothing to do), then with one
    cell edited in one sheet (a request for that table only)."""
    from openpyxl import load_workbook

    _, alice, boss = filled
    downloaded = alice.get("/api/v1/export.xlsx?all=1")
    assert downloaded.status_code == 200
    name = "company-data-v2.xlsx"
    assert name in downloaded.headers["Content-Disposition"]
    unchanged = send(alice, downloaded.data, name)
    assert unchanged.status_code == 200 and unchanged.json["id"] is None, unchanged.text
    book = load_workbook(io.BytesIO(downloaded.data))
    sheet = book["teams"]
    assert sheet.cell(2, 1).value == "Data"
    sheet.cell(2, 2).value = "Dana"
    out = io.BytesIO()
    book.save(out)
    edited = send(alice, out.getvalue(), name)
    assert edited.status_code == 201, edited.text
    assert "requests" not in edited.json and edited.json["summary"]["modified"] == 1  # one table: one request
    assert alice.get(f"/api/v1/changes/{edited.json['id']}").json["table"] == "teams"
    assert boss.post(f"/api/v1/changes/{edited.json['id']}/approve").json["version"] == 3


def test_reverting_an_upload_of_several_tables_reverts_every_table_together(filled):
    _, alice, boss = filled
    before = {name: alice.get(f"/api/v1/tables/{name}/export.csv").data for name in ("datasets", "teams")}
    r = send(
        alice, workbook({"datasets": table(row("DS-1", team="Legal")), "teams": TEAMS + "Legal,Lee,CC-3\n"}), "x.xlsx"
    )
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").json["version"] == 3
    reverted = alice.post(f"/api/v1/changes/{r.json['id']}/revert")
    assert reverted.status_code == 201, reverted.text
    assert sorted(m["table"] for m in reverted.json["requests"]) == ["datasets", "teams"]
    # Undoing the team alone would leave DS-1 referring to nothing: the reverts go together.
    assert boss.post(f"/api/v1/changes/{reverted.json['id']}/approve").json["version"] == 4
    for name in ("datasets", "teams"):
        now = alice.get(f"/api/v1/tables/{name}/export.csv").data
        assert now.splitlines()[1:] == before[name].splitlines()[1:], name


def test_a_row_referring_to_a_key_deleted_since_its_upload_is_refused_at_approval(filled):
    _, alice, boss = filled
    pending = alice.upload(table(row("DS-1", team="Finance"))).json["id"]  # Finance is a team now
    gone = upload(alice, "teams", "name,lead,cost_centre\nData,Dora,CC-1\n", confirm_deletions="1").json["id"]
    assert boss.post(f"/api/v1/changes/{gone}/approve").status_code == 200  # nothing referred to it yet
    refused = boss.post(f"/api/v1/changes/{pending}/approve")
    assert refused.status_code == 409 and 'team "Finance" is not a key of table "teams"' in refused.json["error"]
    assert rows_of(alice.get("/api/v1/export.csv")) == []  # nothing applied
