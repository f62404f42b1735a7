"""Excel workbooks: typed cells read as the schema's values, text kept as text, round trips with
no changes, the chosen sheet, and clear answers for bad sheets and damaged files."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from conftest import CATALOG_SCHEMA, HEADER, row, table
from data.make_workbooks import excel_style
from openpyxl import Workbook, load_workbook

import diff
from files import ooxml, xlsx_write
from files import xlsx as workbook
from files.problems import FileProblems
from files.upload import open_upload
from records import SEP
from schema import Schema

DATA = Path(__file__).parent / "data"
FIELDS = HEADER.split(",")
TYPES = Schema.from_dict(
    {
        "primaryKey": "id",
        "fields": [
            {"name": "id"},
            {"name": "n", "type": "integer"},
            {"name": "x", "type": "number"},
            {"name": "ok", "type": "boolean"},
            {"name": "day", "type": "date"},
            {"name": "at", "type": "datetime"},
            {"name": "text"},
        ],
    }
)


def xlsx(*rows, sheets: dict[str, list] | None = None) -> bytes:
    """A workbook written by openpyxl's normal mode: `rows` on the first sheet, then `sheets`.
    Strings starting with '=' are made text cells (as typing '=... in Excel does)."""
    book = Workbook()
    book.remove(book.active)
    for title, sheet_rows in {"Sheet1": list(rows), **(sheets or {})}.items():
        sheet = book.create_sheet(title)
        for values in sheet_rows:
            sheet.append(values)
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def read(data: bytes, schema: Schema = TYPES, sheet: str | None = None):
    upload = open_upload(io.BytesIO(data), schema, sheet)
    return list(upload.rows), list(upload.problems)


def written(records: list[str], schema: Schema = TYPES) -> bytes:
    out = io.BytesIO()
    xlsx_write.write_xlsx(records, schema, out)
    return out.getvalue()


# --- reading typed cells ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "column, value, expected",
    [
        ("n", 10, "10"),
        ("n", 1.0, "1"),
        ("n", -3, "-3"),
        ("n", 12345678901.0, "12345678901"),
        ("x", 0.1, "0.1"),
        ("x", 0.1 + 0.2, "0.3"),
        ("x", 1 / 3, "0.333333333333333"),
        ("x", 2.5, "2.5"),
        ("x", 7, "7"),
        ("x", 1e20, "100000000000000000000"),
        ("ok", True, "true"),
        ("ok", False, "false"),
        ("ok", "yes", "true"),
        ("ok", 1, "true"),
        ("day", dt.datetime(2024, 1, 31), "2024-01-31"),
        ("day", dt.date(2024, 1, 31), "2024-01-31"),
        ("day", "31 Jan 2024", "2024-01-31"),
        ("at", dt.datetime(2024, 1, 31, 17, 30), "2024-01-31T17:30:00"),
        ("at", dt.datetime(2024, 1, 31), "2024-01-31T00:00:00"),
        ("text", 42, "42"),
        ("text", 0.5, "0.5"),
        ("text", True, "TRUE"),
        ("text", dt.datetime(2024, 1, 31), "2024-01-31"),
        ("text", "=1+1", "=1+1"),
        ("text", "'quoted", "'quoted"),
        ("id", "00123", "00123"),
    ],
)
def test_typed_cells_become_the_schema_values(column, value, expected):
    names = list(TYPES.names)
    cells = ["K1", None, None, None, None, None, "t"]
    cells[names.index(column)] = value
    rows, problems = read(xlsx(names, cells))
    assert problems == []
    record, cell_problems = TYPES.canonical_row(rows[0][1])
    assert cell_problems == []
    assert record.split(SEP)[names.index(column)] == expected


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("n", 1.5, "'1.5' is not a whole number"),
        ("n", True, "'TRUE' is not a whole number"),
        ("day", dt.datetime(2024, 1, 31, 13, 30), "'2024-01-31 13:30:00' is not a date"),
        ("x", "1,5", "'1,5' is not a number"),
    ],
)
def test_typed_cells_that_do_not_fit_their_column_say_so(column, value, message):
    names = list(TYPES.names)
    cells = ["K1", None, None, None, None, None, "t"]
    cells[names.index(column)] = value
    rows, _ = read(xlsx(names, cells))
    _, cell_problems = TYPES.canonical_row(rows[0][1])
    assert [(name, text[: len(message)]) for name, text in cell_problems] == [(column, message)]


def test_a_workbook_saved_the_way_excel_saves_it():
    """tests/data/typed.xlsx: titles as header, shared strings, booleans, numbers, date cells, escapes."""
    rows, problems = read((DATA / "typed.xlsx").read_bytes(), Schema.load(CATALOG_SCHEMA))
    assert problems == []
    assert rows == [
        (2, ["DS-1", "Café Müller", "Señor's ledger, 5 € per row", "zoë@example.com", "Finance", "SAP",
             "daily", "true", "1200", "2024-01-31", "https://example.com/a"]),
        (3, ["DS-2", "Ñandú report", "", "jose@example.com", "Sales", "Salesforce",
             "weekly", "false", "0", "2023-12-15", "https://example.com/b"]),
        (4, ["00123", "=not a formula", "line one\r\nline two", "ops@example.com", "_x0041_ is text",
             "", "", "", "", "", ""]),
    ]  # fmt: skip


def test_a_formula_gives_its_computed_value_and_an_error_cell_is_named():
    rows, problems = read((DATA / "formulas.xlsx").read_bytes(), Schema.load(CATALOG_SCHEMA))
    assert [(line, cells[0], cells[FIELDS.index("row_count")]) for line, cells in rows] == [(2, "DS-1", "42")]
    assert [(p.line, p.column) for p in problems] == [(3, "row_count")]
    assert "#DIV/0!" in problems[0].message


def test_lines_are_row_numbers_blank_rows_are_skipped_and_stray_cells_named():
    names = list(TYPES.names)
    data = xlsx(names, ["A", 1], [], ["B", 2], ["C", 3, None, None, None, None, None, None, "stray"])
    rows, problems = read(data)
    assert [(line, cells[0]) for line, cells in rows] == [(2, "A"), (4, "B")]
    assert [(p.line, p.column) for p in problems] == [(5, "column I")]
    assert "'stray'" in problems[0].message and "right of the last column" in problems[0].message


def test_columns_in_any_order_by_title_and_trailing_empty_header_cells():
    data = xlsx(["TEXT", " id ", "at", "day", "ok", "x", "n", None, None], ["t", "K1", None, None, None, None, 5])
    rows, problems = read(data)
    assert problems == []
    assert rows == [(2, ["K1", "5", "", "", "", "", "t"])]


# --- the sheet -------------------------------------------------------------------------------


def test_the_first_sheet_is_read_unless_another_is_chosen():
    data = (DATA / "two_sheets.xlsx").read_bytes()
    schema = Schema.load(CATALOG_SCHEMA)
    with pytest.raises(FileProblems) as refused:
        read(data, schema)
    assert "unknown column 'Edit the Data sheet" in refused.value.problems[0].message
    for name in ("Data", " data "):
        rows, problems = read(data, schema, sheet=name)
        assert problems == [] and [cells[:2] for _, cells in rows] == [["DS-7", "From the second sheet"]]


def test_an_unknown_sheet_lists_the_sheets():
    with pytest.raises(FileProblems) as refused:
        read((DATA / "two_sheets.xlsx").read_bytes(), Schema.load(CATALOG_SCHEMA), sheet="Sheet9")
    assert (
        refused.value.problems[0].message
        == "the workbook has no sheet named 'Sheet9'; its sheets are: 'Read me', 'Data'"
    )


def test_a_hidden_first_sheet_is_skipped():
    book = Workbook()
    book.active.title = "Old"
    book.active.append(["nothing"])
    book.active.sheet_state = "hidden"
    book.create_sheet("Now").append(list(TYPES.names))
    book["Now"].append(["K9"])
    out = io.BytesIO()
    book.save(out)
    rows, problems = read(out.getvalue())
    assert problems == [] and rows[0][1][0] == "K9"


# --- files that are not workbooks ------------------------------------------------------------


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return out.getvalue()


def rezipped(change) -> bytes:
    """typed.xlsx with its members passed through `change(name, content) -> content`."""
    source = zipfile.ZipFile(DATA / "typed.xlsx")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in source.namelist():
            archive.writestr(name, change(name, source.read(name)))
    source.close()
    return out.getvalue()


def opendocument() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    return out.getvalue()


def unknown_compression() -> bytes:
    """typed.xlsx with every member marked as compressed by a method zipfile does not know (99: AES)."""
    data = bytearray((DATA / "typed.xlsx").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        for info in archive.infolist():
            data[info.header_offset + 8 : info.header_offset + 10] = (99).to_bytes(2, "little")
    start = 0
    while (start := data.find(b"PK\x01\x02", start)) >= 0:
        data[start + 10 : start + 12] = (99).to_bytes(2, "little")
        start += 4
    return bytes(data)


@pytest.mark.parametrize(
    "content, message",
    [
        ((DATA / "damaged.xlsx").read_bytes(), "the Excel workbook is damaged and cannot be read"),
        ((DATA / "not_a_workbook.xlsx").read_bytes(), "this is a Word document, not an Excel workbook (.xlsx)"),
        (plain_zip(), "this is a zip archive, not an Excel workbook (.xlsx)"),
        (opendocument(), "this is an OpenDocument file (LibreOffice), not an Excel workbook (.xlsx)"),
        (b"PK\x03\x04" + b"\x00" * 100, "the Excel workbook is damaged and cannot be read"),
        (xlsx(), "the sheet 'Sheet1' is empty"),
        (unknown_compression(), '"docProps/app.xml" in the workbook is packed with AES encryption'),
        (
            rezipped(lambda n, c: b'<?xml version="1.0" encoding="eTF-8"?>' + c if n == "xl/workbook.xml" else c),
            "the Excel workbook is damaged and cannot be read",
        ),
        (rezipped(lambda n, c: c.replace(b"row", b"rov") if "sheet1" in n else c), "the sheet 'Datasets' is empty"),
    ],
    ids=["truncated", "word", "zip", "ods", "garbage", "empty", "compression", "xml-encoding", "no-rows"],
)
def test_files_that_are_no_readable_workbook_get_a_clear_message(content, message):
    with pytest.raises(FileProblems) as refused:
        read(content)
    assert [p.message[: len(message)] for p in refused.value.problems] == [message]


# --- writing ---------------------------------------------------------------------------------

TRICKY = {
    "id": ["00123", "K-2", "1234567890123456789", "1E5", "TRUE"],
    "n": ["0", "-5", "123456789012345", "1234567890123456789", ""],
    "x": ["0.1", "1234.5", "0.30000000000000004", "-0.000001", "100000000000000000000"],
    "ok": ["true", "false", "", "true", "false"],
    "day": ["2024-01-31", "1899-12-31", "1900-01-01", "9999-12-31", ""],
    "at": ["2024-01-31T17:30:00", "2024-01-31T17:30:00.123456", "2024-01-31T17:30:00+02:00", "1800-01-01T00:00:00", ""],
    "text": ["=1+1", "+44 20 7946 0000", "a\r\nb and a\rc", "_x000D_ and _x005F_ are text", "  spaced\ttab  "],
}  # fmt: skip
MORE_TEXT = ["-minus", "@mention", "'=SUM(A1)", "TRUE", "0042", "Ünï€ode", "1/2", ""]


def tricky_records() -> list[str]:
    rows = [[TRICKY[name][i] for name in TYPES.names] for i in range(5)]
    rows += [[f"T{i}", "", "", "", "", "", text] for i, text in enumerate(MORE_TEXT)]
    return [SEP.join(values) for values in rows]


@pytest.mark.parametrize("resave", [False, True], ids=["as-written", "excel-resaved"])
def test_written_workbooks_read_back_to_the_same_records(resave):
    records = tricky_records()
    data = written(records)
    if resave:
        data = excel_style(data)  # text moved into a shared-strings table, as Excel saves it
    rows, problems = read(data)
    assert problems == []
    assert [TYPES.canonical_row(cells)[0] for _, cells in rows] == records
    stored = {r.split(SEP)[0]: r for r in records}
    result = diff.compare_cells(stored, rows, TYPES.key_index, TYPES.row_parser(pytest.fail))
    assert result.unchanged == len(records) and not result.changed


def test_text_that_looks_like_a_formula_is_written_as_text_never_as_a_formula():
    data = written([SEP.join(["K1", "", "", "", "", "", '=HYPERLINK("http://x")'])])
    sheet_xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "inlineStr" in sheet_xml
    cell = load_workbook(io.BytesIO(data))["datasets"]["G2"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == ('=HYPERLINK("http://x")', "s", True)


@pytest.mark.parametrize(
    "value, kind",
    [("0042", "s"), ("12345678901234567890", "s"), ("123456789012345", "n"), ("0.1", "n"), ("true", "b")],
)
def test_values_excel_would_change_are_written_as_text(value, kind):
    schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "v", "type": _type(value)}]})
    data = written([f"K1{SEP}{value}"], schema)
    assert load_workbook(io.BytesIO(data))["datasets"]["B2"].data_type == kind


def _type(value: str) -> str:
    if value == "true":
        return "boolean"
    return "string" if value.startswith("0") and value != "0.1" else "integer" if "." not in value else "number"


def test_a_zip_bomb_is_refused_before_it_is_unpacked(monkeypatch):
    data = (DATA / "typed.xlsx").read_bytes()
    for limit in ("MAX_UNPACKED_BYTES", "MAX_SHARED_STRINGS_BYTES"):
        with monkeypatch.context() as patch:
            patch.setattr(ooxml, limit, 1000)
            with pytest.raises(FileProblems) as refused:
                read(data, Schema.load(CATALOG_SCHEMA))
        assert refused.value.problems[0].message.startswith("the workbook unpacks to more than")


def test_a_value_longer_than_an_excel_cell_is_refused_not_cut():
    with pytest.raises(xlsx_write.NotForExcel, match="32,767"):
        written([SEP.join(["K1", "", "", "", "", "", "x" * 40_000])])


# --- through the app, on SQLite and PostgreSQL -----------------------------------------------

TRICKY_CSV = table(
    row("00123", "=1+1", description="''=SUM(A1)", row_count="123456789012345678"),
    row("DS-1", "+44 20 7946 0000", description="a\r\nb", team="_x000D_", contains_pii="true"),
    row("DS-2", "TRUE", description="Ünï€ode  ", created="1899-12-31", row_count="", contains_pii=""),
    row("DS-3", "-minus", url="https://example.com/x?a=1&b=2", update_frequency="ad hoc", created=""),
)


@pytest.fixture
def tricky(app, api):
    """A table holding values Excel likes to change (approved); returns the admin's API client."""
    alice, boss = api("alice"), api("boss")
    r = alice.upload(TRICKY_CSV)
    assert r.status_code == 201, r.json
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    return boss


def test_download_excel_and_upload_it_unchanged_is_no_change(app, login, api, tricky):
    alice = login("alice")
    index = alice.get("/")
    assert 'href="/download.xlsx">Download Excel</a>' in index.text
    r = alice.get("/download.xlsx")
    assert r.status_code == 200
    assert r.mimetype == workbook.MIMETYPE
    assert r.headers["Content-Disposition"] == "attachment; filename=datasets-v1.xlsx"
    assert r.headers["X-Dataset-Version"] == "1"
    for data in (r.data, excel_style(r.data)):
        upload = alice.upload(data, filename="datasets-v1.xlsx")
        assert upload.status_code == 302 and upload.headers["Location"] == "/", upload.text
    assert "No changes" in alice.get("/").text
    exported = api("bob").get("/api/v1/export.xlsx")
    assert exported.status_code == 200 and exported.headers["X-Dataset-Version"] == "1"
    r = api("bob").upload(exported.data, filename="t.xlsx")
    assert (r.status_code, r.json["status"], r.json["encoding"]) == (200, "unchanged", "xlsx")


def test_an_edited_workbook_stages_exactly_the_edit(app, login, api, tricky):
    data = login("alice").get("/download.xlsx").data
    book = load_workbook(io.BytesIO(data))
    sheet = book.active
    keys = [c.value for c in sheet["A"]]
    sheet.cell(keys.index("00123") + 1, FIELDS.index("team") + 1, "Risk")  # that row's '=SUM stays as it is
    sheet.cell(keys.index("DS-3") + 1, FIELDS.index("row_count") + 1, 7.0)
    out = io.BytesIO()
    book.save(out)
    r = api("alice").upload(out.getvalue(), filename="edited.xlsx")
    assert r.status_code == 201, r.json
    detail = api("alice").get(f"/api/v1/changes/{r.json['id']}").json
    assert detail["summary"] == {"added": 0, "modified": 2, "deleted": 0, "unchanged": 2, "conflicts": 0}
    changed = {m["key"]: (m["changed"], m["after"]) for m in detail["modified"]}
    assert changed["00123"][0] == ["team"] and changed["00123"][1]["description"] == "'=SUM(A1)"
    assert changed["DS-3"][0] == ["row_count"] and changed["DS-3"][1]["row_count"] == 7


def test_a_bad_cell_in_a_workbook_names_its_row_and_column(app, login):
    data = xlsx(
        FIELDS, ["DS-1", "A", None, "o@example.com"], [], ["DS-2", "B", None, "o@example.com", *[None] * 4, "ten"]
    )
    r = login("alice").upload(data, filename="bad.xlsx")
    assert r.status_code == 422
    assert (
        '<td class="num">4</td><td class="key-cell"><span class="key">DS-2</span></td><td>row_count</td><td>&#39;ten&#39; is not a whole number'
        in r.text
    )


@pytest.mark.parametrize("via", ["page", "api"])
def test_the_sheet_can_be_chosen_on_the_page_and_in_the_api(app, login, api, via):
    data = (DATA / "two_sheets.xlsx").read_bytes()
    client = login("alice") if via == "page" else api("alice")
    refused = client.upload(data, filename="two.xlsx", sheet="Summary")
    assert refused.status_code == 422
    assert "no sheet named &#39;Summary&#39;" in refused.text or "no sheet named 'Summary'" in refused.text
    staged = client.upload(data, filename="two.xlsx", sheet="Data")
    assert staged.status_code in (201, 302), staged.text
    if via == "page":
        review = client.get(staged.headers["Location"]).text
        assert "two.xlsx (read as xlsx;" in review and "separated by" not in review
    assert api("boss").get("/api/v1/changes/1").json["added"][0]["name"] == "From the second sheet"


def test_a_damaged_workbook_is_refused_with_a_clear_message(app, api):
    r = api("alice").upload((DATA / "damaged.xlsx").read_bytes(), filename="report.xlsx")
    assert r.status_code == 422
    assert r.json["errors"][0]["message"].startswith("the Excel workbook is damaged and cannot be read")
    assert api("alice").get("/api/v1/changes").json["total"] == 0


def test_export_xlsx_needs_a_token(app):
    assert app.test_client().get("/api/v1/export.xlsx").status_code == 401


def test_a_table_too_big_for_excel_is_refused_with_a_pointer_to_csv(app, login, seeded, monkeypatch):
    monkeypatch.setattr(xlsx_write, "EXCEL_MAX_ROWS", 3)
    r = login("alice").get("/download.xlsx")
    assert r.status_code == 422 and "download it as CSV" in r.text
