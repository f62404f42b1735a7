"""Issue 19, encodings through the app (SQLite and PostgreSQL): files from East Asian Excel, KOI8-R
and a few French accents staged as written or with a warning naming the cells, and the `encoding`
field (upload page, API multipart field, raw-body query parameter) that lets a person say it."""

from __future__ import annotations

import html
import io
import json
import zipfile

import pytest
from conftest import Api, Browser, add_test_users
from openpyxl import Workbook

SCHEMA = {"primaryKey": "id", "fields": [{"name": "id"}, {"name": "name"}]}


@pytest.fixture
def names_app(make_app, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return add_test_users(make_app(SCHEMA_PATH=str(path)))


def csv_of(names: list[str], code_page: str) -> bytes:
    return ("id,name\r\n" + "".join(f"K-{i},{n}\r\n" for i, n in enumerate(names))).encode(code_page)


def staged_names(app, response) -> list[str]:
    assert response.status_code == 201, response.text
    detail = Api(app, "boss").get(f"/api/v1/changes/{response.json['id']}").json
    return [row["name"] for row in detail["added"]]


@pytest.mark.parametrize(
    ("names", "code_page", "read_as"),
    [
        (["東京", "Osaka"], "cp932", "cp932"),  # Excel in Japan: was “Œ‹‍ (Windows-1256), no warning
        (["北京", "上海", "Shenzhen"], "gbk", "gb18030"),
        (["台北", "Taichung"], "big5", "cp950"),
        (["서울", "Busan"], "cp949", "cp949"),
        (["Москва", "Kazan"], "koi8_r", "koi8_r"),
        (["Vásárlás", "Budapest"], "cp1250", "cp1252"),  # was Vįsįrlįs (1257), no warning; 1252 reads it as 1250
    ],
)
def test_files_of_few_words_in_legacy_code_pages_are_staged_as_written(names_app, names, code_page, read_as):
    r = Api(names_app, "alice").upload(csv_of(names, code_page))
    assert staged_names(names_app, r) == names
    assert r.json["encoding"] == read_as


def test_a_reading_other_code_pages_would_change_names_each_cell_with_the_likeliest_other_first(names_app):
    """`à revoir` is `ą revoir` in Windows-1257 and `Noël` is `Noėl`: the file does not say. Read
    as Windows-1252, the likelier, and warned naming both cells, what the other code pages make of
    them, and how to choose (it was read as Windows-1257 with no warning)."""
    r = Api(names_app, "alice").upload(csv_of(["à revoir", "Paris", "Noël"], "cp1252"))
    assert staged_names(names_app, r) == ["à revoir", "Paris", "Noël"]
    (warning,) = r.json["warnings"]
    assert warning.startswith("The file was read as Windows-1252, which is a guess")
    assert "line 2, name: 'à revoir' (as Windows-1257: 'ą revoir'; as Windows-1250: 'ŕ revoir')" in warning
    assert "line 4, name: 'Noël' (as Windows-1257: 'Noėl')" in warning and "line 3" not in warning
    assert "upload the file again with its encoding chosen (e.g. Windows-1257)" in warning
    review = html.unescape(Browser(names_app, "boss").get(f"/changes/{r.json['id']}").text)
    assert warning in review


@pytest.mark.parametrize(
    ("name", "given"), [("Shift_JIS", "cp932"), ("windows-31j", "cp932"), ("cp932", "cp932"), ("SJIS", "cp932")]
)
def test_the_encoding_field_of_the_api_is_used_as_given(names_app, name, given):
    r = Api(names_app, "alice").upload(csv_of(["テスト", "横浜"], "cp932"), encoding=name)
    assert staged_names(names_app, r) == ["テスト", "横浜"]
    assert (r.json["encoding"], r.json["warnings"]) == (given, [])


def test_the_encoding_of_a_raw_body_is_a_query_parameter(names_app):
    api = Api(names_app, "alice")
    r = api.post("/api/v1/changes?encoding=windows-1250", data=csv_of(["Gdańsk", "Łódź"], "cp1250"),
                 content_type="text/csv")  # fmt: skip
    assert staged_names(names_app, r) == ["Gdańsk", "Łódź"]
    assert (r.json["encoding"], r.json["warnings"]) == ("cp1250", [])


def test_an_encoding_the_app_does_not_know_is_a_422_naming_it(names_app):
    r = Api(names_app, "alice").upload(csv_of(["Gdańsk"], "cp1250"), encoding="klingon")
    assert r.status_code == 422
    assert "'klingon' is not an encoding this app knows" in r.json["error"]
    r = Api(names_app, "alice").upload(csv_of(["Gdańsk"], "cp1250"), encoding="base64")  # a codec, not a text encoding
    assert r.status_code == 422


def test_a_file_that_is_no_text_in_the_chosen_encoding_is_refused_naming_the_line(names_app):
    r = Api(names_app, "alice").upload(csv_of(["plain", "Gdańsk"], "cp1250"), encoding="UTF-8")
    assert r.status_code == 422
    (problem,) = r.json["errors"]
    assert problem["line"] == 3
    assert "is not UTF-8 text from this line on, though you said the file is in that encoding" in problem["message"]


def test_the_upload_page_has_the_field_and_uses_it(names_app):
    browser = Browser(names_app, "alice")
    page = browser.get("/upload").text
    assert 'name="encoding"' in page and '<option value="Shift_JIS">' in page
    r = browser.upload(csv_of(["Dvořák", "Plzeň"], "cp1250"), encoding="windows-1250")
    assert r.status_code == 302, r.text
    (change,) = Api(names_app, "boss").get("/api/v1/changes?status=pending").json["items"]
    rows = Api(names_app, "boss").get(f"/api/v1/changes/{change['id']}").json["added"]
    assert [row["name"] for row in rows] == ["Dvořák", "Plzeň"]


def test_a_bad_encoding_on_the_upload_page_is_an_error_beside_the_field(names_app):
    r = Browser(names_app, "alice").upload(csv_of(["Dvořák"], "cp1250"), encoding="klingon")
    assert r.status_code == 400
    assert (
        "&#39;klingon&#39; is not an encoding this app knows" in r.text
        or "'klingon' is not an encoding" in html.unescape(r.text)
    )


def test_a_file_no_code_page_reads_asks_for_its_encoding(names_app):
    r = Api(names_app, "alice").upload(b"id,name\r\nX-1,plain\r\nX-2,\x81\x8d\x90\xad\xff\xfe\r\n")
    assert r.status_code == 422
    (problem,) = r.json["errors"]
    assert "choose it in the upload's “Text encoding” field" in problem["message"]


SOFFICE_FILES = {  # what LibreOffice 7.4 writes when "Save As" picks these formats, cut to their start
    "fods": (b'<?xml version="1.0" encoding="UTF-8"?>\n\n<office:document xmlns:office="urn:oasis:names:tc:'
             b'opendocument:xmlns:office:1.0" office:mimetype="application/vnd.oasis.opendocument.spreadsheet">',
             "this is a LibreOffice flat XML spreadsheet (.fods), not a CSV file"),
    "html": (b'<!DOCTYPE html>\n\n<html>\n<head>\n\t\n\t<meta http-equiv="content-type" content="text/html; '
             b'charset=utf-8"/>\n\t<title></title>\n</head><body><table><tr><td>id</td></tr></table></body></html>',
             "this is a web page (HTML"),
    "xml2003": (b'<?xml version="1.0" encoding="UTF-8"?>\n<?mso-application progid="Excel.Sheet"?><Workbook '
                b'xmlns="urn:schemas-microsoft-com:office:spreadsheet">',
                "this is an Excel 2003 XML spreadsheet, not a CSV file"),
}  # fmt: skip


@pytest.mark.parametrize("kind", SOFFICE_FILES)
def test_files_that_are_not_csv_get_a_clear_answer(names_app, kind):
    data, answer = SOFFICE_FILES[kind]
    r = Api(names_app, "alice").upload(data)
    assert r.status_code == 422, r.text
    (problem,) = r.json["errors"]
    assert problem["message"].startswith(answer) and "save the table as CSV UTF-8 or .xlsx" in problem["message"]


def test_a_strict_open_xml_workbook_gets_a_clear_answer(names_app, tmp_path):
    """Excel's "Strict Open XML Spreadsheet": a workbook whose namespaces openpyxl's reader does not
    know (it was "the workbook has no worksheets")."""
    book = Workbook()
    book.active.append(["id", "name"])
    book.active.append(["A", "alpha"])
    transitional = tmp_path / "t.xlsx"
    book.save(transitional)
    strict = io.BytesIO()
    with zipfile.ZipFile(transitional) as source, zipfile.ZipFile(strict, "w") as out:
        for item in source.infolist():
            data = (
                source.read(item)
                .replace(
                    b"http://schemas.openxmlformats.org/spreadsheetml/2006/main",
                    b"http://purl.oclc.org/ooxml/spreadsheetml/main",
                )
                .replace(
                    b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
                    b"http://purl.oclc.org/ooxml/officeDocument/relationships",
                )
            )
            out.writestr(item, data)
    r = Api(names_app, "alice").upload(strict.getvalue(), filename="strict.xlsx")
    assert r.status_code == 422, r.text
    (problem,) = r.json["errors"]
    assert problem["message"].startswith("this is an Excel workbook in Strict Open XML, which this app does not read")
