"""Issue 19, workbooks (SQLite and PostgreSQL): merged cells refused naming the range (the rows
under a merge read empty), a formula without a saved result refused naming the cell (a script's
workbook: it read as an empty cell), and every number of the xlsx download a number cell, exactly."""

from __future__ import annotations

import io
import json
import random
import zipfile
from decimal import Decimal

import pytest
from conftest import Api, add_test_users
from openpyxl import Workbook, load_workbook

SCHEMA = {
    "primaryKey": "id",
    "fields": [
        {"name": "id"},
        {"name": "team"},
        {"name": "value", "type": "number"},
        {"name": "count", "type": "integer"},
    ],
}


@pytest.fixture
def book_app(make_app, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return add_test_users(make_app(SCHEMA_PATH=str(path)))


def workbook(rows: list[list], edit=None) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if edit:
        edit(sheet)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


ROWS = [["id", "team", "value", "count"], ["A", "north", 1.5, 1], ["B", "north", 2.5, 2], ["C", "south", 3, 3]]


def test_merged_cells_are_refused_naming_the_range(book_app):
    """A person merges B2:B3 ("north" once, centred): B3 would read as empty, a value deleted."""
    data = workbook(ROWS, lambda sheet: sheet.merge_cells("B2:B3"))
    r = Api(book_app, "alice").upload(data, filename="teams.xlsx")
    assert r.status_code == 422, r.text
    (problem,) = r.json["errors"]
    assert problem["line"] == 2
    assert problem["message"].startswith("cells B2:B3 are merged: only the first holds the value")


def test_a_formula_without_a_saved_result_is_refused_naming_the_cell(book_app):
    """openpyxl (like most scripts) writes formulas without calculating them."""

    def formulas(sheet):
        sheet["C3"] = "=C2*2"
        sheet["D4"] = "=D2+D3"

    r = Api(book_app, "alice").upload(workbook(ROWS, formulas), filename="script.xlsx")
    assert r.status_code == 422, r.text
    problems = [(p["line"], p["column"], p["message"][:60]) for p in r.json["errors"]]
    assert problems == [
        (3, "value", "cell C3 holds a formula with no saved result (a program wrot"),
        (4, "count", "cell D4 holds a formula with no saved result (a program wrot"),
    ]
    assert "open it in Excel or LibreOffice, save it, and upload that" in r.json["errors"][0]["message"]


def test_a_formula_with_its_saved_result_is_read_as_that_value(book_app):
    """What Excel saves: the formula and its result (<f>C2*2</f><v>3</v>)."""
    data = workbook(ROWS, lambda sheet: sheet.__setitem__("C3", "=C2*2"))
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        parts = {item.filename: source.read(item) for item in source.infolist()}
    parts["xl/worksheets/sheet1.xml"] = parts["xl/worksheets/sheet1.xml"].replace(b"<v />", b"<v>3</v>", 1)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name, content in parts.items():
            target.writestr(name, content)
    r = Api(book_app, "alice").upload(out.getvalue(), filename="excel.xlsx")
    assert r.status_code == 201, r.text
    detail = Api(book_app, "boss").get(f"/api/v1/changes/{r.json['id']}").json
    assert {row["id"]: row["value"] for row in detail["added"]} == {"A": 1.5, "B": 3, "C": 3}


def test_every_number_of_the_xlsx_download_is_a_number_cell_exactly(book_app):
    """About 9% of decimal numbers (0.07, 8.2) went out as text cells, which Excel's SUM skips."""
    rng = random.Random(19)
    values = ["0.07", "8.2", "0.1", "123456789012345", "0.000001", "-5.5", "1234.5678"]
    values += [f"{rng.randint(0, 10 ** rng.randint(1, 9))}.{rng.randint(1, 99999):05d}".rstrip("0") for _ in range(300)]
    rows = "".join(f"K{i},t,{value},{i}\r\n" for i, value in enumerate(values))
    r = Api(book_app, "alice").upload("id,team,value,count\r\n" + rows)
    assert Api(book_app, "boss").post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    download = Api(book_app, "alice").get("/api/v1/export.xlsx")
    sheet = load_workbook(io.BytesIO(download.data)).active
    cells = {row[0].value: row[2].value for row in sheet.iter_rows(min_row=2)}
    text_cells = [key for key, value in cells.items() if isinstance(value, str)]
    assert text_cells == []
    assert all(Decimal(repr(cells[f"K{i}"])).normalize() == Decimal(v).normalize() for i, v in enumerate(values))
