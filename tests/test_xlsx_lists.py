"""The Excel download prevents mistakes (issue 21, part 5): a bold frozen header, an autofilter,
column widths, and drop-down lists for enum and reference columns, read back with openpyxl."""

from __future__ import annotations

import io

import openpyxl
import pytest
from conftest import Api, add_test_users, row, table
from test_tables import PACKAGE, SYSTEMS, TEAMS, upload

import history
from files import xlsx_write
from records import SEP
from schema import Schema


@pytest.fixture
def loaded(make_app):
    app = add_test_users(make_app(SCHEMA_PATH=PACKAGE))
    alice, boss = Api(app, "alice"), Api(app, "boss")
    for name, text in (("teams", TEAMS), ("source_systems", SYSTEMS), ("datasets", table(row("DS-1", team="Data")))):
        r = upload(alice, name, text)
        assert r.status_code == 201, r.text
        assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    return app, alice


def validations(sheet) -> dict[str, str]:
    """{column letter: the list formula} of a sheet's data validations."""
    return {
        str(dv.sqref).split(":")[0].rstrip("0123456789"): dv.formula1 for dv in sheet.data_validations.dataValidation
    }


def test_the_table_workbook_has_a_bold_frozen_filtered_header_and_drop_down_lists(loaded):
    _, alice = loaded
    r = alice.get("/api/v1/export.xlsx")
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    sheet = book["datasets"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:K2"
    assert all(c.font.b for c in sheet[1])
    assert sheet.column_dimensions["C"].width >= 30  # the description is wide, the id is not
    header = [c.value for c in sheet[1]]
    lists = validations(sheet)
    letter = {name: openpyxl.utils.get_column_letter(i + 1) for i, name in enumerate(header)}
    assert lists[letter["update_frequency"]].startswith('"realtime,hourly,daily')
    assert lists[letter["team"]] == '"Data,Finance"'  # the teams' keys, sorted
    assert lists[letter["source_system"]] == '"CRM,SAP"'
    assert letter["owner"] not in lists


def test_the_whole_database_workbook_has_the_lists_too(loaded):
    _, alice = loaded
    r = alice.get("/api/v1/export.xlsx?all=1")
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.data))
    assert book.sheetnames[:3] == ["datasets", "teams", "source_systems"]
    lists = set(validations(book["datasets"]).values())
    assert '"Data,Finance"' in lists and '"CRM,SAP"' in lists
    assert all(c.font.b for c in book["teams"][1]) and book["teams"].auto_filter.ref == "A1:C3"


def test_long_lists_go_to_a_hidden_sheet():
    schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "team"}]})
    keys = [f"Team number {i:03}" for i in range(300)]
    out = io.BytesIO()
    xlsx_write.write_xlsx([f"1{SEP}Team number 007"], schema, out, {"team": keys})
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    hidden = book[xlsx_write.CHOICES_SHEET]
    assert hidden.sheet_state == "hidden" and [c.value for c in hidden["A"]] == keys
    assert validations(book.worksheets[0]) == {"B": f"'{xlsx_write.CHOICES_SHEET}'!$A$1:$A$300"}


def test_a_reference_to_a_table_of_many_keys_gets_no_list(loaded, monkeypatch):
    app, _ = loaded
    monkeypatch.setattr(history, "MAX_LIST_KEYS", 1)
    import tables

    with app.app_context():
        assert history.reference_choices(tables.get("datasets")) == {}
