"""The error file: a refused upload given back with an `errors` column, fixed, and uploaded again."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re

import pytest
from conftest import HEADER, row, table
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from files import csv_read, errorfile
from files.formulas import runs_as_formula, unescape_formula
from files.problems import Problem
from models import ErrorReport, db
from schema import Schema

SCHEMA = Schema.from_dict(
    {"primaryKey": "id", "fields": [{"name": "id"}, {"name": "n", "type": "integer"}, {"name": "note"}]}
)
FIELDS = HEADER.split(",")


def annotate(content: bytes, problems: list[Problem], total: int | None = None, schema: Schema = SCHEMA):
    return errorfile.annotate(io.BytesIO(content), schema, problems, total)


def p(line: int | None, column: str | None, message: str) -> Problem:
    return Problem(line, column, message)


# --- the annotated file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, problems, total, expected",
    [
        pytest.param(
            b"id;n;note\r\nA;1;x\r\nB;two;y\r\n",
            [p(3, "n", "'two' is not a whole number")],
            None,
            "errors;id;n;note\r\n;A;1;x\r\nn: 'two' is not a whole number;B;two;y\r\n",
            id="semicolons-kept",
        ),
        pytest.param(
            b'id,n,note\n"A",1,"two\nlines"\nB,x,\n',
            [p(2, "note", "too long"), p(4, "n", "'x' is not a whole number"), p(4, None, "another")],
            None,
            "errors,id,n,note\r\nnote: too long,A,1,\"two\nlines\"\r\nn: 'x' is not a whole number; another,B,x,\r\n",
            id="multi-line-record",
        ),
        pytest.param(
            b'id,n,note\nA,1,"open\nquote\n',
            [p(3, None, "not valid CSV here"), p(9, None, "beyond the end")],
            None,
            'errors,id,n,note\r\nnot valid CSV here; line 9: beyond the end,A,1,"open\nquote\n"\r\n',
            id="problem-inside-a-record",
        ),
        pytest.param(
            b"id,n,nmae\nA,1,x\nB,2,y\n",
            [p(1, "column 3", "unknown column 'nmae'"), p(1, "note", "column 'note' is missing")],
            None,
            "errors,id,n,nmae\r\n\"header, column 3: unknown column 'nmae'; header, note: column 'note' is missing\""
            ",A,1,x\r\n,B,2,y\r\n",
            id="header-problems-on-first-row",
        ),
        pytest.param(
            b"id,n,note\nA,1\nB,2,x,extra\n",
            [p(2, "note", "has 2 cells"), p(3, "column 4", "has 4 cells")],
            None,
            "errors,id,n,note\r\nnote: has 2 cells,A,1\r\ncolumn 4: has 4 cells,B,2,x,extra\r\n",
            id="ragged-rows-stay-ragged",
        ),
        pytest.param(
            b"id,errors,n,note\nA,old message,one,\n",
            [p(2, "n", "'one' is not a whole number")],
            None,
            "errors,id,n,note\r\nn: 'one' is not a whole number,A,one,\r\n",
            id="old-errors-column-replaced",
        ),
        pytest.param(
            b"id,n,note\nA,x,\nB,y,\nC,z,\n",
            [p(2, "n", "bad"), p(3, "n", "bad")],
            3,
            "errors,id,n,note\r\nonly the first 2 of 3 problems are marked; fix them and upload again to see the rest;"
            " n: bad,A,x,\r\nn: bad,B,y,\r\n,C,z,\r\n",
            id="capped-list-noted",
        ),
        pytest.param(
            b"id,n,note\n\nA,x,\n\n\n",
            [p(3, "n", "bad")],
            None,
            "errors,id,n,note\r\n\r\nn: bad,A,x,\r\n",
            id="trailing-blank-lines-dropped",
        ),
        pytest.param(
            b"id,n\n",
            [p(1, "note", "column 'note' is missing")],
            None,
            "errors,id,n\r\n\"header, note: column 'note' is missing\"\r\n",
            id="header-only",
        ),
        pytest.param(
            b"id,n,note\nA,1,x\n",
            [p(2, "=cmd", "what a cell said")],
            None,
            "errors,id,n,note\r\n'=cmd: what a cell said,A,1,x\r\n",
            id="user-text-in-a-message",
        ),
    ],
)
def test_each_row_gets_its_problems(content, problems, total, expected):
    report = annotate(content, problems, total)
    assert report.suffix == ".csv"
    assert report.content.startswith(codecs.BOM_UTF8)
    assert report.content[3:].decode("utf-8") == expected


def test_other_encodings_come_back_as_utf8_and_tab_separated_text_as_txt():
    cp1252 = annotate("id,n,note\r\nA,x,Café\r\n".encode("cp1252"), [p(2, "n", "bad")])
    assert cp1252.content.decode("utf-8-sig") == "errors,id,n,note\r\nn: bad,A,x,Café\r\n"
    utf16 = annotate("id\tn\tnote\r\nA\tx\tñ\r\n".encode("utf-16"), [p(2, "n", "bad")])
    assert (utf16.suffix, utf16.content.decode("utf-8-sig")) == (".txt", "errors\tid\tn\tnote\r\nn: bad\tA\tx\tñ\r\n")


@pytest.mark.parametrize(
    "content",
    [b"", b"%PDF-1.7\n...", b"\x00\x01\x02binary", b"PK\x03\x04damaged"],
    ids=["empty", "pdf", "binary", "damaged-zip"],
)
def test_no_error_file_for_what_is_not_a_table(content):
    assert annotate(content, [p(None, None, "not a table")]) is None


def test_no_error_file_for_a_very_large_upload(monkeypatch):
    monkeypatch.setattr(errorfile, "MAX_BYTES", 10)
    assert annotate(b"id,n,note\nA,x,\n", [p(2, "n", "bad")]) is None


def test_a_workbook_comes_back_as_a_workbook_with_its_cells_typed():
    book = Workbook()
    sheet = book.active
    sheet.title = "Mine"
    sheet.append(["id", "n", "note"])
    sheet.append(["A", 1.5, dt.datetime(2024, 1, 31)])
    sheet.append(["B", 2, "=not a formula"])
    sheet["C3"].data_type = "s"
    data = io.BytesIO()
    book.save(data)
    report = annotate(data.getvalue(), [p(2, "n", "'1.5' is not a whole number")])
    assert report.suffix == ".xlsx"
    out = load_workbook(io.BytesIO(report.content)).active
    assert [[c.value for c in r] for r in out.iter_rows()] == [
        ["errors", "id", "n", "note"],
        ["n: '1.5' is not a whole number", "A", 1.5, dt.datetime(2024, 1, 31)],
        [None, "B", 2, "=not a formula"],
    ]
    assert out["D3"].data_type == "s"


def test_the_errors_column_is_ignored_on_upload():
    upload = csv_read.read_csv(io.BytesIO(b"errors,id,n,note\nsome problem,A,1,x\n"), SCHEMA)
    assert list(upload.rows) == [(2, ["A", "1", "x"])]


# --- through the app, on SQLite and PostgreSQL -----------------------------------------------

BAD = table(row("DS-1", "Sales"), row("DS-2", "HR", row_count="ten"), row("DS-3", "Finance", created="31/31/2024"))


def error_link(page: str) -> str:
    match = re.search(r'href="(/uploads/errors/\d+)">Download your file with an errors column', page)
    assert match, page
    return match[1]


def test_fix_the_error_file_and_upload_it_again(app, login, api):
    alice = login("alice")
    refused = alice.upload(BAD, filename="catalog.csv")
    assert refused.status_code == 422
    download = alice.get(error_link(refused.text))
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == "attachment; filename=catalog-errors.csv"
    assert download.mimetype == "text/csv"
    text = download.data.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0] == "errors," + HEADER
    assert lines[1] == "," + row("DS-1", "Sales")
    assert lines[2].startswith("\"row_count: 'ten' is not a whole number") and lines[2].endswith(
        row("DS-2", "HR", row_count="ten")
    )
    assert lines[3].startswith("created: '31/31/2024' is not a real date")
    fixed = text.replace(",ten,", ",10,").replace("31/31/2024", "2024-03-31")
    staged = alice.upload(fixed, filename="catalog-errors.csv")
    assert staged.status_code == 302 and "/changes/" in staged.headers["Location"], staged.text
    added = {r["id"]: r for r in api("boss").get("/api/v1/changes/1").json["added"]}
    assert (added["DS-2"]["row_count"], added["DS-3"]["created"]) == (10, "2024-03-31")


def test_only_the_owner_can_download_an_error_file(app, login, api):
    refused = api("alice").upload(BAD)
    assert refused.status_code == 422
    url = refused.json["error_file"]
    assert re.fullmatch(r"/uploads/errors/\d+", url)
    assert login("alice").get(url).status_code == 200
    assert login("bob").get(url).status_code == 404
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    by_token = api("alice").get("/api/v1" + url)
    assert by_token.status_code == 200 and by_token.data == login("alice").get(url).data
    assert api("bob").get("/api/v1" + url).status_code == 404


def test_a_workbook_error_file_can_be_fixed_and_uploaded(app, api):
    book = Workbook()
    book.active.append(FIELDS)
    book.active.append(["DS-1", "Sales", None, "o@example.com", None, None, "sometimes"])
    data = io.BytesIO()
    book.save(data)
    alice = api("alice")
    refused = alice.upload(data.getvalue(), filename="catalog.xlsx")
    assert refused.status_code == 422
    report = alice.get("/api/v1" + refused.json["error_file"])
    assert report.headers["Content-Disposition"] == "attachment; filename=catalog-errors.xlsx"
    sheet = load_workbook(io.BytesIO(report.data)).active
    assert sheet["A1"].value == "errors"
    assert sheet["A2"].value.startswith("update_frequency: 'sometimes' is not one of the allowed values")
    sheet["H2"] = "weekly"
    fixed = io.BytesIO()
    sheet.parent.save(fixed)
    assert alice.upload(fixed.getvalue(), filename="catalog-errors.xlsx").status_code == 201


def test_no_error_file_when_the_upload_is_not_a_table(app, login, api):
    refused = api("alice").upload(b"%PDF-1.7 not a table", filename="table.csv")
    assert refused.status_code == 422 and refused.json["error_file"] is None
    page = login("alice").upload(b"%PDF-1.7 not a table", filename="table.csv")
    assert page.status_code == 422 and "errors column" not in page.text


def test_error_files_expire_after_a_day(app, api, login):
    alice = api("alice")
    first = alice.upload(BAD).json["error_file"]
    with app.app_context():
        report = db.session.get(ErrorReport, int(first.rsplit("/", 1)[1]))
        report.created_at -= dt.timedelta(hours=25)
        db.session.commit()
    assert login("alice").get(first).status_code == 404
    second = alice.upload(BAD).json["error_file"]
    assert login("alice").get(second).status_code == 200
    with app.app_context():
        assert [r.id for r in db.session.scalars(db.select(ErrorReport))] == [int(second.rsplit("/", 1)[1])]


cell_text = st.text(alphabet=st.sampled_from(list("ab ,;|\t\"'=\r\n€é0")), max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(cell_text, min_size=1, max_size=5).filter(lambda r: any(r)), max_size=6),
    delimiter=st.sampled_from([",", ";", "|"]),
    lines=st.lists(st.integers(min_value=1, max_value=12), max_size=5),
)
def test_the_error_file_holds_every_cell_of_the_upload(rows, delimiter, lines):
    """Whatever the cells hold, the annotated file minus its errors column is the uploaded file as
    the upload reads it (text cells unescaped), and no cell of it runs as a formula."""
    header = ["id", "n", "note"]
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\r\n").writerows([header, *rows])
    problems = [p(line, "n", f"problem on line {line}") for line in sorted(lines)]
    report = annotate(text.getvalue().encode("utf-8"), problems)
    back = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"), newline=""), delimiter=delimiter))
    assert back[0][1:] == header
    for got, sent in zip(back[1 : len(rows) + 1], rows, strict=True):
        assert len(got) - 1 == len(sent)
        for column, (cell, original) in enumerate(zip(got[1:], sent, strict=True)):
            if column == 1:  # n, a whole-number column: the upload does not unescape it
                assert cell in (original, "'" + original)
            else:
                assert unescape_formula(cell) == unescape_formula(original)
    assert not any(runs_as_formula(cell) for r in back for cell in r)
    assert back[0][0] == "errors"
    marked = "; ".join(r[0] for r in back[1:])
    assert all(f"problem on line {line}" in marked for line in lines if line > 1)
