"""Hardening of the way in and out (issue 11): workbook bombs refused within seconds and bounded
memory while other requests keep answering, MAX_UPLOAD_ROWS, and formula escaping that also
catches blanks before the formula and full-width signs, in the export and in the error file.

The bombs are built here, never committed: a few hundred KB of zip that unpack to 100 MB or more.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import csv
import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import CATALOG_SCHEMA, HEADER, Api, add_test_users, row, table
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from files import ooxml, xlsx
from files.errorfile import annotate
from files.formulas import runs_as_formula, unescape_formula
from files.problems import FileProblems, Problem, TooLarge
from files.upload import open_upload
from schema import Schema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Schema.load(CATALOG_SCHEMA)
MAIN_NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def workbook(*rows) -> bytes:
    book = Workbook()
    for values in rows:
        book.active.append(values)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


SMALL = workbook(HEADER.split(","), ["DS-1", "x"])


def bomb(member: str, unit: bytes, repeat: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """SMALL with one member replaced by prefix + unit × repeat + suffix, packed as tightly as zip packs."""
    source = zipfile.ZipFile(io.BytesIO(SMALL))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            if info.filename != member:
                archive.writestr(info, source.read(info.filename))
        if member not in source.namelist() and member != "xl/sharedStrings.xml":
            raise AssertionError(member)
        with archive.open(member, "w") as part:
            part.write(prefix)
            if unit and repeat:
                per_block = max(1, (1 << 20) // len(unit))
                for _ in range(repeat // per_block):
                    part.write(unit * per_block)
                part.write(unit * (repeat % per_block))
            part.write(suffix)
    return out.getvalue()


HEADER_ROW = (
    b'<row r="1">'
    + b"".join(b'<c t="inlineStr"><is><t>' + name.encode() + b"</t></is></c>" for name in HEADER.split(","))
    + b"</row>"
)


def sheet(unit: bytes, repeat: int, rows: bytes = b"") -> bytes:
    """A bomb in the sheet: the header row, then `unit` repeated (inside a row when `rows` opens one)."""
    close = b"</row>" if rows else b""
    return bomb(
        "xl/worksheets/sheet1.xml",
        unit,
        repeat,
        b"<worksheet " + MAIN_NS + b"><sheetData>" + (b"" if b'r="1"' in rows else HEADER_ROW) + rows,
        close + b"</sheetData></worksheet>",
    )


def with_shared_strings(unit: bytes, repeat: int) -> bytes:
    """SMALL plus a shared strings table of `unit` × repeat (and its content type)."""
    data = bomb(
        "xl/worksheets/sheet1.xml",
        b"",
        0,
        b"<worksheet " + MAIN_NS + b'><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row>',
        b"</sheetData></worksheet>",
    )
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "[Content_Types].xml":
                content = content.replace(
                    b"</Types>",
                    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
                    b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
                )
            archive.writestr(info, content)
        with archive.open("xl/sharedStrings.xml", "w") as part:
            part.write(b"<sst " + MAIN_NS + b">")
            block = unit * ((1 << 20) // len(unit))
            for _ in range(repeat // ((1 << 20) // len(unit))):
                part.write(block)
            part.write(b"</sst>")
    return out.getvalue()


def read_all(data: bytes) -> list:
    upload = open_upload(io.BytesIO(data), SCHEMA)
    return list(upload.rows)


# --- the red team's workbook: 151 KB that unpack to 100 MB of empty rows ---------------------


@pytest.fixture(scope="module")
def red_team_bomb(tmp_path_factory) -> Path:
    """The red team's workbook: 100 MB of `<row/>` (17 million empty rows) packed into ~150 KB."""
    path = tmp_path_factory.mktemp("bomb") / "tiny.xlsx"
    path.write_bytes(sheet(b"<row/>", 100 * 1024 * 1024 // 6))
    assert path.stat().st_size < 200_000
    return path


CHILD = """
import io, re, sys
from files.problems import TooLarge
from files.upload import open_upload
from schema import Schema
try:
    list(open_upload(io.BytesIO(open(sys.argv[1], "rb").read()), Schema.load("examples/catalog.schema.json")).rows)
    print("read", end=" ")
except TooLarge as exc:
    print("refused", end=" ")
# The peak of this process's own memory (ru_maxrss would count the parent's, inherited at fork).
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())[1]) // 1024)
"""


def test_a_small_workbook_of_millions_of_empty_rows_is_refused_with_bounded_memory(red_team_bomb):
    """Read in a process of its own, to measure its memory: the old reader took +1.4 GiB and answered 200."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(red_team_bomb)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    outcome, peak_mib = done.stdout.split()
    assert outcome == "refused"
    assert int(peak_mib) < 300, f"{peak_mib} MiB"
    with pytest.raises(TooLarge, match=r"more than 1,048,576 rows"):
        read_all(red_team_bomb.read_bytes())


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(
            lambda: sheet(b'<c r="A1"/>', 2_000_000, b'<row r="1">'), "zip bomb", id="one-cell-again-and-again"
        ),
        pytest.param(lambda: sheet(b"<row>" + b"<c/>" * 500 + b"</row>", 4_000), "zip bomb", id="rows-of-empty-cells"),
        pytest.param(lambda: sheet(b"<x/>", 4_000_000), "zip bomb", id="unknown-elements"),
        pytest.param(lambda: sheet(b" " * 1024, 100_000), "zip bomb", id="whitespace"),
        pytest.param(lambda: sheet(b"<c/>", 17_000, b'<row r="1">'), "damaged", id="more-cells-than-excel-columns"),
        pytest.param(lambda: sheet(b'<row r="2000000"/>', 1), "more than 1,048,576 rows", id="row-past-excel"),
        pytest.param(lambda: with_shared_strings(b"<si><t/></si>", 2_000_000), "zip bomb", id="shared-strings"),
        pytest.param(
            lambda: bomb(
                "xl/styles.xml",
                b"<xf/>",
                200_000,
                b"<styleSheet " + MAIN_NS + b"><cellXfs>",
                b"</cellXfs></styleSheet>",
            ),
            "cell styles",
            id="styles",
        ),
        pytest.param(
            lambda: bomb(
                "xl/worksheets/sheet1.xml",
                b"x" * 1024,
                3_000,
                b"<worksheet " + MAIN_NS + b'><sheetData><row r="1"><c r="A1" t="str"><v>',
                b"</v></c></row></sheetData></worksheet>",
            ),
            "more than 1,000,000 characters",
            id="one-huge-cell",
        ),
    ],
)
def test_workbook_bombs_are_refused(make, message):
    data = make()
    assert len(data) < 400_000
    with pytest.raises(FileProblems) as refused:
        read_all(data)
    assert message in refused.value.problems[0].message


def test_a_dtd_is_refused():
    data = bomb(
        "xl/worksheets/sheet1.xml",
        b"",
        0,
        b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><worksheet '
        + MAIN_NS
        + b'><sheetData><row r="1"><c r="A1" t="str"><v>&b;</v></c></row>',
        b"</sheetData></worksheet>",
    )
    with pytest.raises(FileProblems) as refused:
        read_all(data)
    assert "damaged" in refused.value.problems[0].message and "DTD" in refused.value.problems[0].message


def dense_workbook(rows: int) -> bytes:
    """As dense as real workbooks come: the same values on every row, then formatted empty cells
    (half a cell per packed byte, the most measured on real sheets)."""
    book = Workbook(write_only=True)
    ws = book.create_sheet("Data")
    ws.append(HEADER.split(","))
    bold = Font(bold=True)
    for i in range(rows):
        formatted = [WriteOnlyCell(ws, None) for _ in range(20)]
        for cell in formatted:
            cell.font = bold
        ws.append([f"DS-{i}", "same", "", "o@example.com", "Data", "SAP", "daily", True, 10, None, None, *formatted])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_real_workbooks_stay_within_the_budget_without_its_free_allowance(monkeypatch):
    """Only what a workbook's packed size buys: a dense real sheet still reads whole."""
    for name in ("FREE_TAGS", "FREE_ITEMS", "FREE_BYTES"):
        monkeypatch.setattr(ooxml, name, 0)
    data = dense_workbook(3000)
    part = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/worksheets/sheet1.xml")
    cells = zipfile.ZipFile(io.BytesIO(data)).read(part.filename).count(b"<c ")
    assert cells / part.compress_size > 0.35  # about as dense as the densest real sheets measured (0.5)
    rows = read_all(data)
    assert len(rows) == 3000 and rows[-1][1][:2] == ["DS-2999", "same"]


def test_max_upload_rows_counts_workbook_rows():
    data = workbook(HEADER.split(","), *([f"DS-{i}"] for i in range(5)))
    assert len(list(open_upload(io.BytesIO(data), SCHEMA, max_rows=6).rows)) == 5
    with pytest.raises(TooLarge, match="more than 5 rows"):
        list(open_upload(io.BytesIO(data), SCHEMA, max_rows=5).rows)


def test_max_upload_rows_counts_csv_rows_blank_ones_too():
    data = (table(row("DS-1")) + "\n" * 3).encode()
    assert len(list(open_upload(io.BytesIO(data), SCHEMA, max_rows=4).rows)) == 1
    with pytest.raises(TooLarge, match="more than 3 rows"):
        list(open_upload(io.BytesIO(data), SCHEMA, max_rows=3).rows)


# --- through the app, on SQLite and PostgreSQL -----------------------------------------------


def test_a_workbook_bomb_gets_413_and_stages_nothing(app, api, login, red_team_bomb):
    data = red_team_bomb.read_bytes()
    alice = api("alice")
    r = alice.upload(data, filename="tiny.xlsx")
    assert r.status_code == 413, r.text
    assert "more than 1,048,576 rows" in r.json["errors"][0]["message"] and r.json["error_file"] is None
    page = login("alice").upload(data, filename="tiny.xlsx")
    assert page.status_code == 413 and "more than 1,048,576 rows" in page.text
    assert alice.get("/api/v1/changes?status=all").json["total"] == 0


def test_max_upload_rows_refuses_a_csv_with_413(make_app):
    alice = Api(add_test_users(make_app(MAX_UPLOAD_ROWS=3)), "alice")
    assert alice.upload(table(row("DS-1"), row("DS-2"), row("DS-3"))).status_code == 201
    r = alice.upload(table(row("DS-1"), row("DS-2"), row("DS-3"), row("DS-4")))
    assert r.status_code == 413 and "more than 3 rows" in r.json["errors"][0]["message"]
    r = alice.upload(table(row("DS-1")) + "\n" * 10)  # empty lines cost as much to read as rows
    assert r.status_code == 413


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = "----hardening-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_healthz_answers_while_two_workbook_bombs_are_processed(tmp_path, red_team_bomb):
    """The red team's outage: two small workbooks held both gunicorn workers (and /healthz) for 46 s.
    Now each is refused within seconds, and /healthz answers meanwhile (gunicorn, 2 workers)."""
    port, base = free_port(), None
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bomb.db'}",
        "SECRET_KEY": "bomb-test",
        "ADMIN_USER": "boss",
        "APP_ENV": "development",
        "SCHEMA_PATH": str(CATALOG_SCHEMA),
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    cmd = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("gunicorn exited:\n" + (tmp_path / "gunicorn.log").read_text())
                time.sleep(0.1)
        flask = [sys.executable, "-m", "flask", "--app", "app", "tokens", "create", "boss"]
        token = subprocess.run(flask, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.split()[-1]
        body, content_type = multipart(red_team_bomb.read_bytes(), "tiny.xlsx")

        def upload() -> tuple[int, str]:
            request = urllib.request.Request(
                base + "/api/v1/changes",
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
            )
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            bombs = [pool.submit(upload) for _ in range(2)]
            time.sleep(0.2)  # both uploads are on their way to the two workers
            with urllib.request.urlopen(base + "/healthz", timeout=30) as health:  # the old reader: 48 s and more
                assert health.status == 200
            answers = [b.result() for b in bombs]
        assert [status for status, _ in answers] == [413, 413], answers
        assert all("more than 1,048,576 rows" in text for _, text in answers)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


# --- formula escaping: blanks before the formula, full-width signs ----------------------------

SNEAKY = [" =1+1", "\u00a0+1", "\u3000-2", "\uff1dSUM(A1)", "\uff0b1", "\uff0d1", "  \uff20x", "' =1"]


def test_the_csv_export_escapes_formulas_after_blanks_and_full_width_ones(app, api):
    alice, boss = api("alice"), api("boss")
    rows = [row(f"DS-{i}", value, description=value) for i, value in enumerate(SNEAKY)]
    r = alice.upload(table(*rows))
    assert r.status_code == 201, r.text
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    export = alice.get("/api/v1/export.csv")
    lines = list(csv.reader(io.StringIO(export.data.decode("utf-8-sig"), newline="")))
    for cells in lines[1:]:
        assert not any(runs_as_formula(cell) for cell in cells), cells
    names = {cells[0]: cells[1] for cells in lines[1:]}
    assert names["DS-0"] == "' =1+1" and names["DS-3"] == "'\uff1dSUM(A1)"
    again = alice.upload(export.data, filename="export.csv")  # and the upload takes the ' off again
    assert (again.status_code, again.json["status"]) == (200, "unchanged"), again.text


def test_the_error_file_escapes_the_uploaders_cells_and_means_the_same_on_upload(app, api, login):
    alice = api("alice")
    bad = table(
        row("DS-1", "=HYPERLINK(A1)", row_count="many"),
        row("DS-2", "\u3000\uff1dcmd", description="'=kept as typed"),
        row("DS-3", "-2+3+cmd|' /C calc'!A0", row_count="-5"),
    )
    r = alice.upload(bad, filename="bad.csv")
    assert r.status_code == 422
    content = login("alice").get(r.json["error_file"]).data
    lines = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert [cell for cells in lines for cell in cells if runs_as_formula(cell)] == ["-5"]  # a number, see below
    by_key = {cells[1]: cells for cells in lines[1:]}
    assert by_key["DS-1"][2] == "'=HYPERLINK(A1)"
    assert by_key["DS-2"][3] == "'=kept as typed"  # already escaped: kept, so it still means =kept as typed
    assert by_key["DS-3"][9] == "-5"  # a plain negative number in a number column stays as it is
    fixed = [cells[1:] for cells in lines]
    fixed[1][8] = fixed[3][8] = "1"  # fix the bad cells, drop the errors column, upload what is left
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(fixed)
    staged = alice.upload(out.getvalue(), filename="fixed.csv")
    assert staged.status_code == 201, staged.text
    added = {d["id"]: d for d in alice.get(f"/api/v1/changes/{staged.json['id']}").json["added"]}
    assert added["DS-1"]["name"] == "=HYPERLINK(A1)"
    assert added["DS-2"]["name"] == "\u3000\uff1dcmd" and added["DS-2"]["description"] == "=kept as typed"
    assert added["DS-3"]["name"] == "-2+3+cmd|' /C calc'!A0"


def test_the_error_file_of_a_number_column_escapes_what_is_no_number():
    schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "n", "type": "integer"}]})
    content = b"id,n\r\nA,=1+1\r\nB,-5\r\nC,+7\r\nD,-1+cmd\r\n"
    report = annotate(io.BytesIO(content), schema, [Problem(2, "n", "bad")])
    lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"), newline="")))
    assert [cells[2] for cells in lines[1:]] == ["'=1+1", "-5", "+7", "'-1+cmd"]
    assert unescape_formula("'=1+1") == "=1+1"
    assert report.content.startswith(codecs.BOM_UTF8)


def test_rows_missing_from_the_sheet_xml_keep_their_numbers_without_a_row_each():
    """The reader no longer makes an empty row for every row number the XML skips, yet lines stay
    the sheet's row numbers, in problems and in the error file."""
    cell = '<c r="{}" t="inlineStr"><is><t>{}</t></is></c>'
    data = bomb(
        "xl/worksheets/sheet1.xml",
        b"",
        0,
        b"<worksheet "
        + MAIN_NS
        + b"><sheetData>"
        + HEADER_ROW
        + f'<row r="2">{cell.format("A2", "DS-1")}</row>'.encode()
        + f'<row r="5000">{cell.format("A5000", "DS-2")}{cell.format("I5000", "ten")}</row>'.encode(),
        b"</sheetData></worksheet>",
    )
    upload = open_upload(io.BytesIO(data), SCHEMA)
    assert [(line, cells[0]) for line, cells in upload.rows] == [(2, "DS-1"), (5000, "DS-2")]
    rows = list(xlsx.sheet_values(io.BytesIO(data)))
    assert [number for number, values in rows if values] == [1, 2, 5000] and len(rows) == 5000
    schema_problems = [Problem(5000, "row_count", "'ten' is not a whole number")]
    report = annotate(io.BytesIO(data), SCHEMA, schema_problems)
    sheet_back = load_workbook(io.BytesIO(report.content), read_only=True).active
    marked = [(r[0].row, r[0].value) for r in sheet_back.iter_rows(min_row=5000, max_row=5000)]
    assert marked == [(5000, "row_count: 'ten' is not a whole number")]
