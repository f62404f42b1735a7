"""One workbook for the whole database: `/download.xlsx` (several tables) and
`GET /api/v1/export.xlsx?all=1` give every table as a sheet named after it, in schema.json's
order, all as of one database version; one table keeps today's one-sheet workbook."""

from __future__ import annotations

import io
import threading

import pytest
from conftest import HEADER, Api, Browser, row, table
from openpyxl import load_workbook
from openpyxl.worksheet._writer import ALL_TEMP_FILES
from test_tables import filled, multi, upload  # noqa: F401 - fixtures and helpers of the three-table package

import store.table
import tables
from files import xlsx, xlsx_write
from schema import Schema

SHEETS = ["datasets", "teams", "source_systems"]
TEAMS_HEADER = ["name", "lead", "cost_centre"]


def sheets_of(response) -> dict[str, list[list]]:
    """{sheet title: rows of cell values (header first)}, in the workbook's order."""
    book = load_workbook(io.BytesIO(response.data))
    return {ws.title: [[c.value for c in r] for r in ws.iter_rows()] for ws in book.worksheets}


def filename(response) -> str:
    return response.headers["Content-Disposition"].removeprefix("attachment; filename=")


@pytest.fixture
def catalog(filled):  # noqa: F811 - the fixture of test_tables
    """`filled` plus two approved catalog rows (version 3); returns (app, alice's and boss's API clients)."""
    app, alice, boss = filled
    r = alice.upload(table(row("DS-1", "Sales", team="Data"), row("DS-2", "HR", team="Finance", source_system="CRM")))
    assert r.status_code == 201, r.text
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").json["version"] == 3
    return app, alice, boss


def test_the_whole_database_is_one_workbook_with_a_sheet_per_table(catalog):
    app, alice, _ = catalog
    for response in (Browser(app, "alice").get("/download.xlsx"), alice.get("/api/v1/export.xlsx?all=1")):
        assert response.status_code == 200, response.text
        assert response.mimetype == xlsx.MIMETYPE
        assert filename(response) == "company-data-v3.xlsx"  # the package's name and the database version
        assert response.headers["X-Dataset-Version"] == "3"
        sheets = sheets_of(response)
        assert list(sheets) == SHEETS  # schema.json's order
        assert sheets["datasets"][0] == HEADER.split(",")
        assert [r[0] for r in sheets["datasets"][1:]] == ["DS-1", "DS-2"]
        assert sheets["teams"] == [TEAMS_HEADER, ["Data", "Dora", "CC-1"], ["Finance", "Fred", "CC-2"]]
        assert [r[:2] for r in sheets["source_systems"]] == [["name", "vendor"], ["CRM", "Acme"], ["SAP", "SAP SE"]]


def test_one_table_urls_still_give_one_table_when_there_are_several(catalog):
    app, alice, _ = catalog
    browser = Browser(app, "alice")
    for response, name, sheet in (
        (alice.get("/api/v1/export.xlsx"), "datasets-v3.xlsx", "datasets"),  # old scripts: the first table
        (alice.get("/api/v1/tables/teams/export.xlsx"), "teams-v3.xlsx", "teams"),
        (browser.get("/t/teams/download.xlsx"), "teams-v3.xlsx", "teams"),
        (browser.get("/t/datasets/download.xlsx"), "datasets-v3.xlsx", "datasets"),
    ):
        assert response.status_code == 200, response.text
        assert filename(response) == name and list(sheets_of(response)) == [sheet]
    refused = alice.get("/api/v1/tables/teams/export.xlsx?all=1")
    assert refused.status_code == 400 and "/api/v1/export.xlsx?all=1" in refused.json["error"]
    assert alice.get("/api/v1/export.xlsx?all=2").status_code == 400


def test_the_pages_link_to_the_whole_database(catalog):
    app, _, _ = catalog
    browser = Browser(app, "alice")
    link = '<a class="button" href="/download.xlsx">Download the whole database (Excel)</a>'
    assert link in browser.get("/").text  # the tables overview
    page = browser.get("/t/teams/").text
    assert link in page and 'href="/t/teams/download.xlsx">Download Excel</a>' in page
    past = browser.get("/t/teams/?version=1").text
    assert 'href="/download.xlsx?version=1">Download the whole database (Excel)</a>' in past


def test_version_n_gives_the_whole_database_as_of_n(catalog):
    app, alice, boss = catalog
    r = upload(alice, "teams", "name,lead,cost_centre\nData,Dana,CC-1\nFinance,Fred,CC-2\n")
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").json["version"] == 4
    first = alice.get("/api/v1/export.xlsx?all=1&version=1")
    assert first.status_code == 200 and first.headers["X-Dataset-Version"] == "1"
    assert filename(first) == "company-data-v1.xlsx"
    sheets = sheets_of(first)
    assert list(sheets) == SHEETS
    assert sheets["datasets"] == [HEADER.split(",")]  # no rows yet at version 1
    assert sheets["teams"][1] == ["Data", "Dora", "CC-1"]
    assert sheets["source_systems"] == [["name", "vendor", "url"]]  # approved in version 2
    third = sheets_of(Browser(app, "alice").get("/download.xlsx?version=3"))
    assert len(third["datasets"]) == 3 and third["teams"][1][1] == "Dora" and len(third["source_systems"]) == 3
    now = sheets_of(alice.get("/api/v1/export.xlsx?all=1&version=4"))
    assert now["teams"][1][1] == "Dana"
    assert alice.get("/api/v1/export.xlsx?all=1&version=5").status_code == 404
    assert Browser(app, "alice").get("/download.xlsx?version=9").status_code == 404


def test_an_approval_landing_between_the_reads_changes_no_sheet(catalog, monkeypatch):
    """The version is read once; a table read after an approval is still read as of that version."""
    app, alice, boss = catalog
    with app.app_context():
        systems = tables.get("source_systems").id
    staged = upload(alice, "source_systems", "name,vendor,url\nCRM,Acme,https://crm.example.com\nSAP,SAP AG,\n")
    assert staged.status_code == 201, staged.text
    open_export, landed = store.table.open_export, []

    def approve_first(tbl):  # just before the last table is read, another worker approves
        if tbl == systems and not landed:
            worker = threading.Thread(
                target=lambda: landed.append(boss.post(f"/api/v1/changes/{staged.json['id']}/approve"))
            )
            worker.start()
            worker.join()
        return open_export(tbl)

    monkeypatch.setattr(store.table, "open_export", approve_first)
    response = alice.get("/api/v1/export.xlsx?all=1")
    assert landed[0].status_code == 200 and landed[0].json["version"] == 4  # it did land
    assert response.status_code == 200 and response.headers["X-Dataset-Version"] == "3"
    sheets = sheets_of(response)
    assert sheets["source_systems"][2] == ["SAP", "SAP SE", "https://sap.example.com"]  # as of version 3
    assert [r[0] for r in sheets["datasets"][1:]] == ["DS-1", "DS-2"]
    after = sheets_of(alice.get("/api/v1/export.xlsx?all=1"))
    assert after["source_systems"][2] == ["SAP", "SAP AG", None]


def test_a_table_too_big_for_a_sheet_is_named_and_csv_suggested(catalog, monkeypatch):
    app, alice, _ = catalog
    monkeypatch.setattr(xlsx_write, "EXCEL_MAX_ROWS", 3)  # datasets and teams have 2 rows, source_systems 2
    assert alice.get("/api/v1/export.xlsx?all=1").status_code == 200
    monkeypatch.setattr(xlsx_write, "EXCEL_MAX_ROWS", 2)
    for response in (alice.get("/api/v1/export.xlsx?all=1"), Browser(app, "alice").get("/download.xlsx")):
        assert response.status_code == 422
        text = response.json["error"] if response.is_json else response.text
        assert "The table &#39;datasets&#39; has 2 rows" in text or "The table 'datasets' has 2 rows" in text
        assert "as CSV" in text


def test_one_table_answers_as_before_and_all_gives_its_one_sheet(app, seeded):
    alice = Api(app, "alice")
    page = Browser(app, "alice").get("/download.xlsx")
    for response in (page, alice.get("/api/v1/export.xlsx"), alice.get("/api/v1/export.xlsx?all=1")):
        assert response.status_code == 200, response.text
        assert filename(response) == "datasets-v1.xlsx" and response.headers["X-Dataset-Version"] == "1"
        sheets = sheets_of(response)
        assert list(sheets) == ["datasets"] and [r[0] for r in sheets["datasets"]] == ["id", "DS-1", "DS-2", "DS-3"]
        assert sheets == sheets_of(page)
    assert "whole database" not in Browser(app, "alice").get("/").text
    assert alice.get("/api/v1/export.xlsx?all=1&version=7").status_code == 404


# --- the writer ------------------------------------------------------------------------------


def schema(name: str) -> Schema:
    return Schema.from_dict({"name": name, "primaryKey": "id", "fields": [{"name": "id"}, {"name": "n"}]})


def test_long_table_names_make_unique_sheet_titles():
    names = ["a" * 40, "a" * 35, "a" * 31, "teams"]
    titles = xlsx_write.sheet_titles(names)
    assert titles == ["a" * 29 + "~2", "a" * 29 + "~3", "a" * 31, "teams"]  # a name that fits keeps its title
    out = io.BytesIO()
    assert xlsx_write.write_workbook(
        [schema(n) for n in names], [["k1\x1f1"], [], ["k2\x1f2", "k3\x1f3"], []], out
    ) == [
        1,
        0,
        2,
        0,
    ]
    book = load_workbook(out)
    assert book.sheetnames == titles
    assert [c.value for c in book[titles[2]]["A"]] == ["id", "k2", "k3"]


def test_a_failing_sheet_names_its_table_and_leaves_no_temporary_files(monkeypatch):
    monkeypatch.setattr(xlsx_write, "EXCEL_MAX_ROWS", 3)
    before = list(ALL_TEMP_FILES)
    tables = [["k1\x1f1"], ["k1\x1f1", "k2\x1f2", "k3\x1f3"]]
    with pytest.raises(xlsx_write.NotForExcel, match=r"^Table 'second': The table has more rows than an Excel sheet"):
        xlsx_write.write_workbook([schema("first"), schema("second")], tables, io.BytesIO())
    assert before == ALL_TEMP_FILES  # the first sheet, already complete, is deleted too
