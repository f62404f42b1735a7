"""Hardening round 3 (issue 20), unpacking: only stored and deflated members are unpacked, in
workbooks and zips alike; a zip's unpacked total counts against MAX_UPLOAD_MB and its rows against
MAX_UPLOAD_ROWS; a workbook inside a zip gets no parsing allowance of its own."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from conftest import CATALOG_SCHEMA, Api, add_test_users
from test_tables import PACKAGE, SYSTEMS, TEAMS, send

from files import bundle, xlsx
from files.problems import FileProblems
from schema import Schema

CATALOG = Schema.load(CATALOG_SCHEMA)


def small_workbook() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["id", "name"])
    sheet.append(["DS-1", "Sales"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def repacked(data: bytes, method: int, padding: int = 0) -> bytes:
    """The workbook with every member packed with `method`; the sheet padded with `padding` spaces
    (a bomb: bzip2 and LZMA pack megabytes of one byte into a few hundred)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", method) as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml" and padding:
                content = content.replace(b"<sheetData>", b"<sheetData>" + b" " * padding, 1)
            dst.writestr(info.filename, content)
    return out.getvalue()


@pytest.mark.parametrize("method, name", [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA")])
def test_a_workbook_with_bzip2_or_lzma_parts_is_refused_fast_naming_part_and_method(method, name):
    bomb = repacked(small_workbook(), method, padding=200 * 1024**2)
    assert len(bomb) < 100_000
    started = time.perf_counter()
    with pytest.raises(FileProblems) as refused:
        xlsx.read_xlsx(io.BytesIO(bomb), CATALOG)
    assert time.perf_counter() - started < 2
    message = refused.value.problems[0].message
    assert (
        message.startswith('"') and f"in the workbook is packed with {name}, which this app does not unpack" in message
    )


@pytest.mark.parametrize("method, name", [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA")])
def test_a_zip_with_bzip2_or_lzma_members_is_refused_naming_member_and_method(method, name):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        z.writestr("teams.csv", TEAMS)
        z.writestr("datasets.csv", "id\n")
    with pytest.raises(FileProblems) as refused:
        bundle.open_bundle(io.BytesIO(out.getvalue()), ["datasets", "teams"])
    assert f"in the zip file is packed with {name}, which this app does not unpack" in refused.value.problems[0].message


def test_a_deflated_workbook_is_still_read():
    with pytest.raises(FileProblems) as refused:  # read through to its header, which lacks columns
        xlsx.read_xlsx(io.BytesIO(repacked(small_workbook(), zipfile.ZIP_DEFLATED)), CATALOG)
    assert "column 'owner' is missing from the header" in str(refused.value)


@pytest.fixture
def multi_small(make_app):
    """The three-table package with a 1 MB upload limit and at most 5 rows per upload."""
    app = add_test_users(make_app(SCHEMA_PATH=PACKAGE, MAX_CONTENT_LENGTH=1024**2, MAX_UPLOAD_ROWS=5))
    return app, Api(app, "alice")


def deflated(files: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return out.getvalue()


def test_the_unpacked_total_of_a_zip_counts_against_the_upload_limit(multi_small):
    _, alice = multi_small
    big = TEAMS + "".join(f"Team {i:07d},Lead,CC-{i}\n" for i in range(60_000))  # about 1.5 MB
    data = deflated({"teams.csv": big, "source_systems.csv": SYSTEMS})
    assert len(data) < 1024**2 < len(big)
    r = send(alice, data, "export.zip")
    assert r.status_code == 413, r.text
    assert "unpack to 1.5 MB together, over the upload limit of 1 MB (MAX_UPLOAD_MB)" in str(r.json)


def test_the_rows_of_a_zip_count_together_against_the_row_limit(multi_small):
    _, alice = multi_small
    data = deflated({"teams.csv": TEAMS + "Legal,Lee,CC-3\n", "source_systems.csv": SYSTEMS + "ERP,Acme,x\n"})
    r = send(alice, data, "export.zip")
    assert r.status_code == 413, r.text
    assert "hold more than 5 rows together (MAX_UPLOAD_ROWS)" in str(r.json)


def test_a_workbook_inside_a_zip_is_refused_not_parsed_on_the_members_size(multi_small):
    _, alice = multi_small
    data = deflated({"teams.csv": small_workbook(), "source_systems.csv": SYSTEMS})
    r = send(alice, data, "export.zip")
    assert r.status_code == 422, r.text
    assert '"teams.csv" in the zip file is a workbook or another zip, not a CSV file' in str(r.json)
