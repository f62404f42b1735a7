"""The eight kinds of real spreadsheet file issue 10 found read wrong, each through the upload API
on SQLite and PostgreSQL, with the example file generated here.

1. legacy code pages (Windows-1250/1251/1253, ISO-8859-7) read right, or warned about, never mojibake;
2. a German thousands dot (`135.450`) read with the rest of its file;
3. the CSV download re-saved as .xlsx: the formula-escape apostrophes are taken off;
4. short dates with two-digit years, and `4/2/12` "ambiguous" unless its column settles it;
5. decimal commas in UTF-16 tab-separated "Unicode Text";
6. dates with a midnight time, and an ambiguous date-time said to be ambiguous;
7. every lossy rewrite warned, and a mass deletion caused by damaged keys said to be one;
8. control characters other than NUL: not a "binary file".
"""

from __future__ import annotations

import csv
import html
import io
import json

import pytest
from conftest import Api, Browser, add_test_users
from openpyxl import Workbook

NAMES_SCHEMA = {
    "primaryKey": "id",
    "fields": [{"name": "id"}, {"name": "name", "title": "Name of the place"}],
}
SHEET_SCHEMA = {
    "primaryKey": "id",
    "fields": [
        {"name": "id"},
        {"name": "name"},
        {"name": "phone"},
        {"name": "value", "type": "number"},
        {"name": "count", "type": "integer"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "datetime"},
        {"name": "flag"},
    ],
}
SHEET_HEADER = [f["name"] for f in SHEET_SCHEMA["fields"]]


def app_with(make_app, tmp_path, schema: dict):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return add_test_users(make_app(SCHEMA_PATH=str(path)))


@pytest.fixture
def names_app(make_app, tmp_path):
    """An app whose table has two text columns, id and name (titled "Name of the place")."""
    return app_with(make_app, tmp_path, NAMES_SCHEMA)


@pytest.fixture
def sheet_app(make_app, tmp_path):
    """An app whose table has a column of every type (SHEET_SCHEMA)."""
    return app_with(make_app, tmp_path, SHEET_SCHEMA)


def sheet(rows: list[dict[str, str]], delimiter: str = ",", newline: str = "\r\n") -> str:
    """A file of SHEET_SCHEMA's columns; cells not given are empty."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(SHEET_HEADER)
    writer.writerows([[r.get(name, "") for name in SHEET_HEADER] for r in rows])
    return out.getvalue()


def staged(app, response) -> dict:
    """The change request a 201 answer staged, as the API shows it."""
    assert response.status_code == 201, response.text
    return Api(app, "boss").get(f"/api/v1/changes/{response.json['id']}").json


def approved(app, data: str | bytes, **form) -> None:
    """Upload and approve, so that the table holds the file's rows."""
    r = Api(app, "alice").upload(data, **form)
    assert r.status_code == 201, r.text
    assert Api(app, "boss").post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200


# --- 1. legacy code pages ------------------------------------------------------------------------

LEGACY = [
    # the issue's example: Moscow from Russian Windows' "CSV (Comma delimited)"
    ("russian", b"id,name\r\nRU-1,\xcc\xee\xf1\xea\xe2\xe0\r\n", "cp1251", ["Москва"]),
    ("polish", "id,name\r\nPL-1,Łódź\r\nPL-2,Wrocław\r\n".encode("cp1250"), "cp1250", ["Łódź", "Wrocław"]),
    ("greek", "id,name\r\nGR-1,Αθήνα\r\nGR-2,Θεσσαλονίκη\r\n".encode("cp1253"), "cp1253", ["Αθήνα", "Θεσσαλονίκη"]),
    ("greek-iso", "id,name\r\nGR-1,Άρτα\r\nGR-2,Πάτρα\r\n".encode("iso8859_7"), "iso8859_7", ["Άρτα", "Πάτρα"]),
    ("ukrainian", "id,name\r\nUA-1,Київ\r\nUA-2,Львів\r\n".encode("cp1251"), "cp1251", ["Київ", "Львів"]),
    ("western", "id,name\r\nDE-1,Café Müller\r\n".encode("cp1252"), "cp1252", ["Café Müller"]),
    ("utf-32", "id,name\r\nX-1,Zoë\r\n".encode("utf-32"), "utf-32", ["Zoë"]),
    ("utf-32-le", "id,name\r\nX-1,Zoë\r\n".encode("utf-32-le"), "utf-32-le", ["Zoë"]),
]


@pytest.mark.parametrize(("data", "encoding", "names"), [c[1:] for c in LEGACY], ids=[c[0] for c in LEGACY])
def test_legacy_code_pages_are_read_as_their_letters(names_app, data, encoding, names):
    r = Api(names_app, "alice").upload(data)
    detail = staged(names_app, r)
    assert (r.json["encoding"], r.json["warnings"]) == (encoding, [])
    assert [row["name"] for row in detail["added"]] == names


def test_a_guessed_code_page_is_warned_about_with_the_cells_to_check(names_app):
    """`Gdańsk` in Windows-1250 is `Gdañsk` in Windows-1252: both real letters. Read the likelier
    way, and say so, showing the other reading."""
    r = Api(names_app, "alice").upload("id,name\r\nPL-1,Gdańsk\r\nPL-2,Sopot\r\n".encode("cp1250"))
    assert r.status_code == 201 and r.json["encoding"] == "cp1252"
    (warning,) = r.json["warnings"]
    assert warning.startswith("The file was read as Windows-1252, which is a guess")
    assert "line 2, name: 'Gdañsk' (as Windows-1250: 'Gdańsk')" in warning
    assert "upload the file again with its encoding chosen (e.g. Windows-1250)" in warning
    review = html.unescape(Browser(names_app, "boss").get(f"/changes/{r.json['id']}").text)
    assert "(read as Windows-1252" in review and warning in review


def test_text_that_no_code_page_reads_is_refused_with_a_request_for_utf8(names_app):
    r = Api(names_app, "alice").upload(b"id,name\r\nX-1,plain\r\nX-2,\x81\x8d\x90\xad\xff\xfe\r\n")
    assert r.status_code == 422
    (problem,) = r.json["errors"]
    assert problem["line"] == 3
    assert problem["message"].startswith("is neither UTF-8 nor Windows-1252 text from this line on")
    assert "save the table as CSV UTF-8" in problem["message"]


# --- 2. a German thousands dot ---------------------------------------------------------------------


def german(value: str) -> str:
    """A number as de-DE Excel writes it with the format #,##0.0##: thousands dots, a decimal comma."""
    whole, _, fraction = value.partition(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    return f"{grouped},{fraction}" if fraction else grouped


def test_a_german_resave_of_the_table_is_no_change(sheet_app):
    """120 rows; the de-DE re-save writes 135450 as `135.450` next to `5.840,4`: nothing changes."""
    rows = [
        {"id": f"R{i:03}", "value": str(135450 + i) if i % 2 else f"{5840 + i}.4", "count": str(1200 + i)}
        for i in range(120)
    ]
    approved(sheet_app, sheet(rows))
    resaved = [r | {"value": german(r["value"]), "count": german(r["count"])} for r in rows]
    assert resaved[1]["value"] == "135.451" and resaved[0]["value"] == "5.840,4"
    r = Api(sheet_app, "alice").upload(sheet(resaved, ";").encode("cp1252"))
    assert r.status_code == 200 and r.json["status"] == "unchanged", r.text
    assert r.json["summary"]["unchanged"] == 120


def test_a_thousands_dot_means_a_change_where_the_stored_number_has_a_decimal_point(sheet_app):
    """Stored 1.234; the `;` file with decimal commas says `1.234`, i.e. 1234: a change, though the text is equal."""
    approved(sheet_app, sheet([{"id": "A", "value": "1.234"}, {"id": "B", "value": "2.5"}]))
    r = Api(sheet_app, "alice").upload(sheet([{"id": "A", "value": "1.234"}, {"id": "B", "value": "2,5"}], ";"))
    detail = staged(sheet_app, r)
    assert [(m["key"], m["after"]["value"]) for m in detail["modified"]] == [("A", 1234)]


def test_a_column_mixing_decimal_commas_and_points_is_refused_with_line_and_column(sheet_app):
    data = sheet([{"id": "A", "value": "1,5"}, {"id": "B", "value": "2,25"}, {"id": "C", "value": "2.5"}], ";")
    r = Api(sheet_app, "alice").upload(data)
    assert r.status_code == 422
    assert r.json["errors"] == [
        {
            "line": 4,
            "row": 4,
            "key": None,
            "column": "value",
            "message": "'2.5' has a decimal point, but this column writes decimal commas (line 2: '1,5');"
            " write every number of a column the same way",
        }
    ]


def test_a_number_no_other_cell_explains_is_refused_as_ambiguous(sheet_app):
    r = Api(sheet_app, "alice").upload(sheet([{"id": "A", "value": "135.450"}], "\t"))
    assert r.status_code == 422
    assert r.json["errors"][0]["message"] == (
        "'135.450' is ambiguous: 135450 with a thousands separator, or 135.45 with a decimal point?"
        " Nothing else in its column says which; write it as 135450 or 135.45"
    )


# --- 3. the CSV download re-saved as a workbook -------------------------------------------------

FORMULA_LIKE = ["+49 30 1234567", "-5 dB", "@team-data", "=SUM(A1)", "''=already quoted"]  # the last is '=…


def test_the_csv_download_saved_as_a_workbook_uploads_as_no_change(sheet_app):
    approved(sheet_app, sheet([{"id": f"P{i}", "phone": text} for i, text in enumerate(FORMULA_LIKE)]))
    download = Api(sheet_app, "alice").get("/api/v1/export.csv").data.decode("utf-8-sig")
    cells = list(csv.reader(io.StringIO(download)))
    assert [c[2] for c in cells[1:]] == ["'+49 30 1234567", "'-5 dB", "'@team-data", "'=SUM(A1)", "''=already quoted"]
    book = Workbook()  # Excel's "Save as .xlsx" keeps each CSV cell as text, apostrophes included
    for row in cells:
        book.active.append(row)
        for cell in book.active[book.active.max_row]:
            cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    r = Api(sheet_app, "alice").upload(out.getvalue(), filename="resaved.xlsx")
    assert (r.status_code, r.json["status"]) == (200, "unchanged"), r.text


def test_the_workbook_download_keeps_a_text_that_starts_with_an_apostrophe(sheet_app):
    approved(sheet_app, sheet([{"id": "Q", "phone": "''=already quoted", "name": "''+1"}]))  # '=… and '+1
    workbook = Api(sheet_app, "alice").get("/api/v1/export.xlsx").data
    r = Api(sheet_app, "alice").upload(workbook, filename="datasets.xlsx")
    assert (r.status_code, r.json["status"]) == (200, "unchanged"), r.text


# --- 4. short dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "dates"),
    [
        (["03/31/19", "3/30/12"], ["2019-03-31", "2012-03-30"]),  # LibreOffice en-US
        (["31.03.19", "01.02.24"], ["2019-03-31", "2024-02-01"]),  # LibreOffice de-DE: always day first
        (["3/30/12", "4/2/12"], ["2012-03-30", "2012-04-02"]),  # the column is month first
        (["31/03/19", "04/02/12"], ["2019-03-31", "2012-02-04"]),  # the column is day first
    ],
)
@pytest.mark.parametrize("delimiter", [",", ";"])
def test_short_dates_are_read_and_their_column_settles_the_order(sheet_app, cells, dates, delimiter):
    data = sheet([{"id": f"D{i}", "day": cell} for i, cell in enumerate(cells)], delimiter)
    detail = staged(sheet_app, Api(sheet_app, "alice").upload(data))
    assert [row["day"] for row in detail["added"]] == dates


def test_a_date_nothing_settles_is_refused_as_ambiguous_with_both_readings(sheet_app):
    r = Api(sheet_app, "alice").upload(sheet([{"id": "D", "day": "4/2/12"}, {"id": "E", "day": "2012-05-01"}]))
    assert r.status_code == 422
    assert r.json["errors"] == [
        {
            "line": 2,
            "row": 2,
            "key": "D",
            "column": "day",
            "message": "'4/2/12' is ambiguous: 4 February or April 2? Write dates as YYYY-MM-DD, e.g. 2024-03-31",
        }
    ]


# --- 5. decimal commas in UTF-16 "Unicode Text" ----------------------------------------------------


def test_unicode_text_with_decimal_commas(sheet_app):
    data = sheet([{"id": "U1", "value": "5840,4", "count": "3"}, {"id": "U2", "value": "-0,25"}], "\t")
    r = Api(sheet_app, "alice").upload(data.encode("utf-16"), filename="table.txt")
    detail = staged(sheet_app, r)
    assert r.json["encoding"] == "utf-16"
    assert [row["value"] for row in detail["added"]] == [5840.4, -0.25]


# --- 6. midnight times -----------------------------------------------------------------------------


def test_a_us_date_with_a_midnight_time_is_a_date(sheet_app):
    data = sheet([{"id": "M", "day": "5/19/2006 0:00:00", "at": "5/19/2006 3:15:00 PM"}])
    detail = staged(sheet_app, Api(sheet_app, "alice").upload(data))
    assert (detail["added"][0]["day"], detail["added"][0]["at"]) == ("2006-05-19", "2006-05-19T15:15:00")


def test_an_ambiguous_date_and_time_says_it_is_ambiguous(sheet_app):
    r = Api(sheet_app, "alice").upload(sheet([{"id": "M", "at": "2/4/2012 0:00:00"}]))
    assert r.status_code == 422
    assert r.json["errors"][0] == {
        "line": 2,
        "row": 2,
        "key": "M",
        "column": "at",
        "message": "'2/4/2012 0:00:00' is ambiguous: 2 April or February 4? Write dates and times as"
        " YYYY-MM-DDTHH:MM:SS, e.g. 2024-03-31T17:30:00",
    }


# --- 7. spreadsheet damage -------------------------------------------------------------------------


def test_every_lossy_rewrite_is_warned_with_line_column_before_and_after(sheet_app):
    before = [
        {"id": "S1", "name": "1e5", "phone": "00"},
        {"id": "S2", "value": "12345678901234567", "flag": "TRUE"},
        {"id": "S3", "at": "2024-01-31T10:00:00.123456", "name": "007"},
    ]
    approved(sheet_app, sheet(before))
    after = [
        {"id": "S1", "name": "100000", "phone": "0"},
        {"id": "S2", "value": "12345678901234600", "flag": "WAHR"},
        {"id": "S3", "at": "2024-01-31T10:00:00.123", "name": "7"},
    ]
    r = Api(sheet_app, "alice").upload(sheet(after))
    assert r.status_code == 201 and r.json["summary"]["modified"] == 3
    assert r.json["warnings"] == [
        "line 2, name: text '1e5' became '100000': the spreadsheet read it as a number in scientific notation;"
        " format the column as Text",
        "line 2, phone: '00' lost its leading zeros (now '0')",
        "line 3, value: long number '12345678901234567' became '12345678901234600', which looks rounded by Excel;"
        " format the column as Text",
        "line 3, flag: yes/no text 'TRUE' became 'WAHR': the spreadsheet wrote it in another language;"
        " format the column as Text",
        "line 4, name: '007' lost its leading zeros (now '7')",
        "line 4, at: '2024-01-31T10:00:00.123456' became '2024-01-31T10:00:00.123000': the spreadsheet cut the"
        " microseconds of the time; format the column as Text",
    ]


def test_a_mass_deletion_of_damaged_keys_says_they_are_damaged(sheet_app):
    approved(sheet_app, sheet([{"id": f"{i:05}"} for i in range(1, 41)]))
    r = Api(sheet_app, "alice").upload(sheet([{"id": str(i)} for i in range(1, 41)]))
    assert (r.status_code, r.json["deletions"]) == (422, 40)
    message = r.json["error"]
    assert message.startswith("This upload would delete 40 of 40 rows")
    assert (
        "40 of these deletions are keys a spreadsheet damaged, not deletions: Excel drops leading zeros"
        " (key '00001' is now '1' on line 2)" in message
    )
    assert "Format the key column as Text" in message


# --- 8. control characters -----------------------------------------------------------------------


def test_vertical_tabs_in_a_quoted_header_cell_are_no_binary_file(names_app):
    data = b'id,"Name\x0bof\x0bthe\x0bplace"\r\nX-1,Bonn\r\n'
    detail = staged(names_app, Api(names_app, "alice").upload(data))
    assert detail["added"][0]["name"] == "Bonn"


def test_control_characters_in_cells_are_refused_by_the_cell_check_with_line_and_column(names_app):
    r = Api(names_app, "alice").upload(b'id,name\r\nX-1,"a\x0bb\x0bc\x0bd"\r\nX-2,"\x07"\r\n')
    assert r.status_code == 422
    assert [(e["line"], e["column"], e["message"]) for e in r.json["errors"]] == [
        (2, "name", "contains an invisible control character (U+000B); delete it"),
        (3, "name", "contains an invisible control character (U+0007); delete it"),
    ]
