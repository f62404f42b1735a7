"""Issue 19, numbers through the app (SQLite and PostgreSQL): a number that reads two ways is
decided by the file's evidence, else by the value the table holds for its key (the table's own
download, re-saved by a spreadsheet, reads back unchanged), else refused with both readings."""

from __future__ import annotations

import json

import pytest
from conftest import Api, add_test_users

SCHEMA = {
    "primaryKey": "id",
    "fields": [
        {"name": "id"},
        {"name": "name"},
        {"name": "value", "type": "number"},
        {"name": "count", "type": "integer"},
    ],
}


@pytest.fixture
def numbers_app(make_app, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    app = add_test_users(make_app(SCHEMA_PATH=str(path)))
    r = Api(app, "alice").upload("id,name,value,count\r\nA,alpha,1.25,1000\r\nB,beta,135.45,7\r\nC,gamma,2,3\r\n")
    assert r.status_code == 201, r.text
    assert Api(app, "boss").post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    return app


def values(app, response) -> dict[str, tuple]:
    assert response.status_code == 201, response.text
    detail = Api(app, "boss").get(f"/api/v1/changes/{response.json['id']}").json
    return {m["key"]: m for m in detail["modified"]} | {a["id"]: a for a in detail["added"]}


def test_a_swiss_semicolon_file_reads_back_the_values_the_table_holds(numbers_app):
    """de-CH Excel writes `;` files with decimal points: `1.250` is 1.25 (the table's value), not
    1250 as a `;` file's European guess would have it; the one real edit is the only change."""
    data = "id;name;value;count\r\nA;alpha;1.250;1000\r\nB;beta;135.450;7\r\nC;gamma edited;2;3\r\n"
    r = Api(numbers_app, "alice").upload(data)
    assert r.status_code == 201, r.text
    assert r.json["summary"] == {"added": 0, "modified": 1, "deleted": 0, "unchanged": 2, "conflicts": 0}


def test_a_german_resave_of_the_download_reads_back_unchanged(numbers_app):
    """A de-DE re-save: `1,25` and `135,45`: decimal commas, the file shows it."""
    data = "id;name;value;count\r\nA;alpha;1,25;1.000\r\nB;beta;135,45;7\r\nC;gamma;2;3\r\n"
    r = Api(numbers_app, "alice").upload(data)
    assert r.status_code == 200 and r.json["summary"]["modified"] == 0, r.text


def test_an_ambiguous_number_of_a_new_row_is_refused_with_line_column_and_both_readings(numbers_app):
    """`135,450` in a tab file whose numbers show nothing else (it was 135.45, silently)."""
    r = Api(numbers_app, "alice").upload("id\tname\tvalue\tcount\r\nD\tdelta\t135,450\t1\r\n", mode="partial")
    assert r.status_code == 422, r.text
    (problem,) = r.json["errors"]
    assert (problem["line"], problem["column"]) == (2, "value")
    assert problem["message"].startswith(
        "'135,450' is ambiguous: 135450 with a thousands separator, or 135.45 with a decimal comma?"
    )


def test_the_columns_evidence_decides_a_number_that_reads_two_ways(numbers_app):
    """The same `135,450` in a column that writes `0.5`: a thousands comma."""
    data = "id\tname\tvalue\tcount\r\nD\tdelta\t135,450\t1\r\nE\tepsilon\t0.5\t2\r\n"
    r = Api(numbers_app, "alice").upload(data, mode="partial")
    assert r.status_code == 201, r.text
    detail = Api(numbers_app, "boss").get(f"/api/v1/changes/{r.json['id']}").json
    assert {a["id"]: a["value"] for a in detail["added"]} == {"D": 135450, "E": 0.5}


def test_an_integer_column_never_reads_a_thousands_separator_as_a_decimal_point(numbers_app):
    data = "id,name,value,count\r\nA,alpha,1.25,1.000\r\nB,beta,135.45,7\r\nC,gamma,2,3\r\nD,delta,0.5,2.000\r\n"
    r = Api(numbers_app, "alice").upload(data)
    assert r.status_code == 422, r.text
    (problem,) = r.json["errors"]  # A's 1.000 is 1000 as the table holds it; D's is new: refused
    assert (problem["line"], problem["column"]) == (5, "count")
    assert "'2.000' is ambiguous: 2000 with a thousands separator, or 2 with a decimal point?" in problem["message"]


def test_a_comma_file_with_decimal_commas_is_refused_with_a_hint(numbers_app):
    data = 'id,name,value,count\r\nA,alpha,"1,5",1000\r\n'
    r = Api(numbers_app, "alice").upload(data, mode="partial")
    assert r.status_code == 422, r.text
    (problem,) = r.json["errors"]
    assert (problem["line"], problem["column"]) == (2, "value")
    assert "save the file separated by semicolons or as an Excel workbook" in problem["message"]
