"""Reading what spreadsheets write (tests/data/, made by make_files.py) and writing CSV back, byte for byte."""

from __future__ import annotations

import codecs
import io
import json
from pathlib import Path

import pytest
from conftest import CATALOG_SCHEMA
from hypothesis import given, settings
from hypothesis import strategies as st

import diff
from files import csv_read, csv_write, encoding, formulas, rows
from files.formulas import unescaped_as_is
from files.problems import MAX_PROBLEMS, FileProblems
from records import SEP, pack
from schema import Schema

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SCHEMA = Schema.load(CATALOG_SCHEMA)

# What every good file in tests/data holds, in canonical form (schema order).
EXPECTED = {
    "DS-1": ["DS-1", "Café Müller", "Señor's ledger, 5 € per row", "zoë@example.com", "Finance", "SAP", "daily",
             "true", "1200", "2024-01-31", "https://example.com/a"],
    "DS-2": ["DS-2", "Ñandú report", "", "jose@example.com", "Sales", "Salesforce", "weekly",
             "false", "0", "2023-12-15", "https://example.com/b"],
    "DS-3": ["DS-3", "Plain", "", "ops@example.com", "", "", "", "", "", "", ""],
}  # fmt: skip


def read(data: bytes, schema: Schema = SCHEMA):
    """Bytes → (upload, [(line, key, values)], problems as (line, column, message))."""
    upload = csv_read.read_csv(io.BytesIO(data), schema)
    problems = upload.problems
    parse = schema.row_parser(problems.add, upload.conventions, clean=formulas.unescaper(schema))
    rows = [r for r in (parse(line, cells) for line, cells in upload.rows) if r is not None]
    return (
        upload,
        [(r.line, r.key, r.record.split(SEP)) for r in rows],
        [(p.line, p.column, p.message) for p in problems],
    )


def compare_with(data: bytes, known: dict[str, str], schema: Schema = SCHEMA) -> diff.Diff:
    """Upload bytes diffed against stored records the way uploads._prepare does (raw text first)."""
    upload = csv_read.read_csv(io.BytesIO(data), schema)
    parse = schema.row_parser(pytest.fail, clean=formulas.unescaper(schema))
    return diff.compare_cells(known, upload.rows, schema.key_index, parse, full=False, trust_raw=unescaped_as_is)


def problems_of(data: bytes, schema: Schema = SCHEMA) -> list[tuple]:
    """The problems a file gets, whether the header or the rows are at fault."""
    try:
        return read(data, schema)[2]
    except FileProblems as exc:
        return [(p.line, p.column, p.message) for p in exc.problems]


# --- the good files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter", "lines"),
    [
        ("utf8.csv", "utf-8", ",", [2, 3, 4]),
        ("utf8_bom.csv", "utf-8-sig", ",", [2, 3, 4]),
        ("utf16le.txt", "utf-16", "\t", [2, 3, 4]),
        ("utf16be.txt", "utf-16", "\t", [2, 3, 4]),
        ("cp1252.csv", "cp1252", ",", [2, 3, 4]),
        ("semicolon_cp1252.csv", "cp1252", ";", [2, 3, 4]),
        ("tab.tsv", "utf-8", "\t", [2, 3, 4]),
        ("pipe.csv", "utf-8", "|", [2, 3, 4]),
        ("mac_cr.csv", "utf-8", ",", [2, 3, 4]),
        ("mac_roman.csv", "mac_roman", ",", [2, 3, 4]),
        ("reordered_titles.csv", "utf-8", ",", [2, 3, 4]),
        ("excel_trailing.csv", "utf-8-sig", ",", [2, 3, 4]),
    ],
)
def test_every_kind_of_file_reads_as_the_same_rows(name, encoding, delimiter, lines):
    upload, rows, problems = read((DATA / name).read_bytes())
    assert problems == []
    assert (upload.encoding, upload.delimiter) == (encoding, delimiter)
    assert [line for line, _, _ in rows] == lines
    assert {key: values for _, key, values in rows} == EXPECTED


def test_quoted_fields_keep_delimiters_quotes_and_line_breaks():
    _, rows, problems = read((DATA / "quoted.csv").read_bytes())
    assert problems == []
    assert [(line, values[1], values[2]) for line, _, values in rows] == [
        (2, 'Say "hi", then go', "first line\r\nsecond, with comma\r\nthird; with semicolon"),
        (5, '"Quoted" name', 'ends with a quote "'),
        (6, "Tab\there", "lf only\nbreak"),
    ]


def test_unchanged_rows_are_recognised_without_parsing_them():
    """A re-upload of the stored records is all fast path: the records come back identical."""
    known = {key: pack(values) for key, values in EXPECTED.items()}
    result = compare_with((DATA / "utf8.csv").read_bytes(), known)  # parsing any row fails the test
    assert result.unchanged == len(known) and not result.changed


MEASUREMENTS = Schema.from_dict(json.loads((DATA / "measurements.schema.json").read_text()))


@pytest.mark.parametrize(("name", "delimiter"), [("measurements_semicolon.csv", ";"), ("measurements_comma.csv", ",")])
def test_numbers_with_decimal_comma_in_semicolon_files(name, delimiter):
    upload, rows, problems = read((DATA / name).read_bytes(), MEASUREMENTS)
    assert problems == [] and upload.delimiter == delimiter
    assert [values for _, _, values in rows] == [
        ["A", "1234.5", "3", "true", "2024-01-31"],
        ["B", "-0.25", "0", "false", "2024-02-01"],
        ["C", "3", "1", "true", ""],
        ["D", "", "", "", ""],
    ]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("1,23,4", "is not a number (expected digits with a decimal comma, e.g. 1234,5)"),  # 1,234.5: English, read
        ("1,2,3", "is not a number (expected digits with a decimal comma, e.g. 1234,5)"),
        ("12,5 kg", "is not a number (expected digits with a decimal comma, e.g. 1234,5)"),
    ],
)
def test_decimal_comma_that_is_not_a_number(cell, message):
    data = f"code;value;count;ok;taken\r\nA;{cell};;;\r\n".encode()
    assert problems_of(data, MEASUREMENTS) == [(2, "value", f"{cell!r} {message}")]


# --- encoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"id,name\nDS-1,Plain\n", "utf-8"),
        ("id,name\nDS-1,Zoë\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + b"id\n", "utf-8-sig"),
        (codecs.BOM_UTF16_LE + "id\tname\n".encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + "id\tname\n".encode("utf-16-be"), "utf-16"),
        ("id\tname\nDS-1\tx\n".encode("utf-16-le"), "utf-16-le"),
        ("id\tname\nDS-1\tx\n".encode("utf-16-be"), "utf-16-be"),
        ("id,name\nDS-1,Café €5 Ñandú\n".encode("cp1252"), "cp1252"),
        ("id,name\rDS-1,Café €5 Ñandú\r".encode("mac_roman"), "mac_roman"),
        ("id,name\rDS-1,Zoë\r".encode(), "utf-8"),
        # a file that is ASCII until its last line, which is Windows-1252
        (("id,name\n" + "DS-1,Zoe\n" * 1000).encode() + b"DS-2,Caf\xe9\n", "cp1252"),
        # one stray control character in text is for the cell check to report, not binary
        (b"id,name\nDS-1,a\x00b\n" + b"DS-2,plain text\n" * 10, "utf-8"),
    ],
)
def test_detect_encoding(data, encoding):
    stream = io.BytesIO(data)
    assert csv_read.detect_encoding(stream) == encoding
    assert stream.tell() == 0


def test_encoding_detection_reads_past_the_first_chunk(monkeypatch):
    monkeypatch.setattr(encoding, "CHUNK_BYTES", 16)
    monkeypatch.setattr(encoding, "SAMPLE_BYTES", 16)
    data = b"id,name\n" + b"DS-1,plain\n" * 20 + "DS-2,Café\n".encode("cp1252")
    assert csv_read.detect_encoding(io.BytesIO(data)) == "cp1252"


@pytest.mark.parametrize(
    ("encoding", "label"),
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8 with BOM"),
        ("utf-16", "UTF-16"),
        ("utf-16-le", "UTF-16 (little-endian, no BOM)"),
        ("cp1252", "Windows-1252"),
        ("mac_roman", "Mac Roman"),
        ("something-else", "something-else"),
    ],
)
def test_encoding_label(encoding, label):
    assert csv_read.encoding_label(encoding) == label


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (b"", None, "the file is empty"),
        (b"   \r\n\r\n", None, "the file is empty"),
        (b"%PDF-1.7\n...", 1, "this is a PDF document, not a CSV file"),
        (b"PK\x03\x04rest-of-zip", 1, "an Excel workbook or another zip file"),
        (b"\x89PNG\r\n\x1a\n....", 1, "a PNG image"),
        (b"\xff\xd8\xff\xe0....", 1, "a JPEG image"),
        (b"id,name\nDS-1," + bytes(range(32)) * 4, 2, "this is a binary file, not CSV text"),
        (b"id,name\nDS-1,ok\nDS-2,\x81\x8d\n", 3, "is neither UTF-8 nor Windows-1252 text"),
        # UTF-8 until a Windows-1252 byte: read as Windows-1252, every é before it would be mojibake (Ã©)
        (("id,name\n" + "DS-1,Zoë\n" * 1000).encode() + b"DS-2,Caf\xe9\n", 1002, "is neither UTF-8 nor Windows-1252"),
        # a UTF-8 sequence cut off at the end of the file
        ("id,name\nDS-1,Zoë".encode()[:-1], 2, "is neither UTF-8 nor Windows-1252 text"),
        # text pasted together from a UTF-8 and a Windows-1252 file
        (
            "id,name\nA,Zoë\nB,Müller\nC,Señor\n".encode() + "D,Café\n".encode("cp1252"),
            5,
            "is not UTF-8 text from this",
        ),
        (codecs.BOM_UTF16_LE + "id\tname\n".encode("utf-16-le") + b"\x00", 1, "cannot be read as UTF-16 text"),
    ],
)
def test_files_that_are_not_text(data, line, message):
    with pytest.raises(FileProblems) as caught:
        csv_read.read_csv(io.BytesIO(data), SCHEMA)
    (problem,) = caught.value.problems
    assert problem.line == line and message in problem.message


def test_a_stray_nul_is_reported_with_line_and_column():
    data = (DATA / "nul_byte.csv").read_bytes()
    assert problems_of(data) == [(3, "description", "contains an invisible control character (U+0000); delete it")]


# --- delimiter and header ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "delimiter"),
    [
        ("id,name,owner\n1,a;b,c\n", ","),
        ("id;name;owner\n1;a,b;c\n", ";"),
        ("id\tname\towner\n", "\t"),
        ("id|name|owner\n", "|"),
        ("ID ; Name ; Owner\r\n", ";"),
        ('"id","name, the title"\n', ","),
        ("Row count;Contains PII;id\r", ";"),  # titles, old-Mac line end
        ("id,name\rDS-1,a\r", ","),
        ('"id;x",name,owner\n', ","),  # a quoted delimiter does not split
    ],
)
def test_sniff_delimiter(sample, delimiter):
    assert csv_read.sniff_delimiter(sample, SCHEMA) == delimiter


NAMES = SCHEMA.names


@pytest.mark.parametrize(
    ("header", "order"),
    [
        (list(NAMES), list(range(11))),
        (list(reversed(NAMES)), list(range(10, -1, -1))),
        ([f" {n.upper()} " for n in NAMES], list(range(11))),
        ([f.title for f in SCHEMA.fields], list(range(11))),
        (["Source  system" if n == "source_system" else n for n in NAMES], list(range(11))),
        (["\ufeffid", *NAMES[1:]], list(range(11))),
        ([*NAMES, "", " ", ""], list(range(11))),
    ],
)
def test_map_header(header, order):
    assert rows.map_header(header, SCHEMA) == (order, 11)


@pytest.mark.parametrize(
    ("header", "problems"),
    [
        (["id", "name", "Name", *NAMES[2:]], [(1, "name", "column 'name' appears twice (columns 2 and 3)")]),
        (["id", "", *NAMES[1:]], [(1, "column 2", "header cell is empty; every column needs a name")]),
        ([*NAMES[:-1], "website"], [(1, "column 11", "unknown column 'website'; expected one of: id, name"),
                                    (1, "url", "column 'url' is missing from the header")]),
        ([*NAMES[:-1]], [(1, "url", "column 'url' is missing from the header")]),
        ([], [(1, None, "the first line is empty; it must be the header row with the column names")]),
        (["id\nname", *NAMES[1:]], [(1, "column 1", "header cell 'id\\nname' runs over several lines: a quote"),
                                    (1, "id", "column 'id' is missing from the header")]),
    ],
)  # fmt: skip
def test_map_header_problems(header, problems):
    with pytest.raises(FileProblems) as caught:
        rows.map_header(header, SCHEMA)
    got = [(p.line, p.column, p.message) for p in caught.value.problems]
    assert len(got) == len(problems)
    for (line, column, message), expected in zip(got, problems, strict=True):
        assert (line, column) == expected[:2] and message.startswith(expected[2])


def test_a_very_wide_header_gets_one_clear_message():
    with pytest.raises(FileProblems) as caught:
        csv_read.read_csv(io.BytesIO((DATA / "wide_header.csv").read_bytes()), SCHEMA)
    first = caught.value.problems[0]
    assert (first.line, first.column) == (1, "column 1")
    assert "the header has 10,000 columns and 10,000 of them are not columns of this table" in first.message
    assert "'column_0', 'column_1'" in first.message
    assert caught.value.total == 12  # that one, and each of the 11 missing columns


# --- rows -------------------------------------------------------------------------------------

HEADER = ",".join(NAMES)
GOOD_ROW = "DS-{},Name,,o@example.com,,,,,,,"


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        (GOOD_ROW.format(1) + ",extra\n", [(2, "column 12", "has 12 cells but the header has 11; check for a stray")]),
        (GOOD_ROW.format(1) + ",,,\n", []),  # Excel's trailing empty cells
        ("DS-1,Name,,o@example.com\n", [(2, "team", "has 4 cells but the header has 11 (no value for 'team'")]),
        ("\n,,,,,,,,,,\n,,,,,,,,,,,,,,,\n,,,\n" + GOOD_ROW.format(1) + "\n\n", []),  # blank rows
        (GOOD_ROW.format(1) + '\nDS-2,"open,,o@example.com,,,,,,,\nDS-3,x,,o,,,,,,,\n',
         [(3, "name", 'the quote (") that opens this value is never closed, so the row runs over 2 lines and has 2 '
                      "cells but the header has 11; close the quote, or remove it")]),
    ],
)  # fmt: skip
def test_ragged_rows(body, problems):
    got = problems_of((HEADER + "\n" + body).encode())
    assert [(line, column) for line, column, _ in got] == [p[:2] for p in problems]
    for (_, _, message), expected in zip(got, problems, strict=True):
        assert message.startswith(expected[2])


def test_line_numbers_count_physical_lines_of_multi_line_records():
    body = (
        'DS-1,"two\nlines",,o@example.com,,,,,,,\n'
        'DS-2,"three\r\nlines\rhere",,o@example.com,,,,,,,\n'
        "DS-3,Name,,o@example.com,,,,,bad,,\n"
        "\n"
        "DS-4,Name,,o@example.com,,,,,,,\n"
    )
    _, rows, problems = read((HEADER + "\n" + body).encode())
    assert [(line, key) for line, key, _ in rows] == [(2, "DS-1"), (4, "DS-2"), (9, "DS-4")]
    assert problems == [(7, "row_count", "'bad' is not a whole number (expected digits only, e.g. 1234)")]


def test_problems_are_capped_but_counted():
    upload, _, problems = read((DATA / "many_errors.csv").read_bytes())
    assert len(problems) == MAX_PROBLEMS and upload.problems.total == 300
    assert problems[0] == (2, "row_count", "'many' is not a whole number (expected digits only, e.g. 1234)")


# --- formula escaping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("=1+1", "'=1+1"),
        ("+49 30 1234", "'+49 30 1234"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tindented", "'\tindented"),
        ("\rreturn", "'\rreturn"),
        ("'=1+1", "''=1+1"),
        ("''=1+1", "'''=1+1"),
        ("'plain", "'plain"),
        ("it's", "it's"),
        ("'", "'"),
        ("", ""),
        ("a=b", "a=b"),
        ("O'Brien", "O'Brien"),
        (" =1+1", "' =1+1"),  # blanks before the trigger: spaces, no-break spaces, ideographic spaces
        ("\u00a0\u00a0-5", "'\u00a0\u00a0-5"),
        ("\u3000@x", "'\u3000@x"),
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),  # full-width = + - @
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20x", "'\uff20x"),
        (" \u3000\uff1d1", "' \u3000\uff1d1"),
        ("' =1", "'' =1"),
        (" a=1", " a=1"),
        ("   ", "   "),
    ],
)
def test_formula_escape_round_trip(value, escaped):
    assert formulas.escape_formula(value) == escaped
    assert formulas.unescape_formula(escaped) == value


formula_text = st.lists(
    st.sampled_from(
        ["'", "=", "+", "-", "@", "\t", "\r", " ", "\u00a0", "\u3000", "\uff1d", "\uff0b", "\uff0d", "\uff20", "a", "1"]
    ),
    max_size=6,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(formula_text | st.text(max_size=6))
def test_escape_then_unescape_is_the_identity_and_leaves_no_formula(value):
    escaped = formulas.escape_formula(value)
    assert formulas.unescape_formula(escaped) == value
    assert not formulas.runs_as_formula(escaped)


def test_unescaping_applies_to_text_columns_only():
    schema = Schema.from_dict(
        {"primaryKey": "id", "fields": [{"name": "id"}, {"name": "n", "type": "integer"}, {"name": "t"}]}
    )
    assert formulas.unescaper(schema)(["'=x", "-5", "'-5"]) == ["=x", "-5", "-5"]


def test_escaped_values_are_not_taken_for_unchanged_rows():
    """A stored `'=x` uploaded as `'=x` means `=x` (escaped): that is a change, though the raw text matches."""
    schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "t"}]})
    known = {"1": "1\x1f'=x", "2": "2\x1f''=y"}
    upload = csv_read.read_csv(io.BytesIO(b"id,t\n1,'=x\n2,'''=y\n"), schema)
    parse = schema.row_parser(pytest.fail, clean=formulas.unescaper(schema))
    result = diff.compare_cells(known, upload.rows, schema.key_index, parse, trust_raw=unescaped_as_is)
    assert [m.after.split(SEP) for m in result.modified] == [["1", "=x"]]  # '=x means =x: a change
    assert result.unchanged == 1  # '''=y means ''=y: what is stored


# --- writing ----------------------------------------------------------------------------------


def test_csv_chunks_exact_bytes():
    records = [
        pack(["DS-1", "Café", 'say "hi", ok', "o@x", "", "", "daily", "true", "10", "2024-01-31", ""]),
        pack(["DS-2", "=HYPERLINK()", "line\r\nbreak", "-me", "", "", "", "", "", "", ""]),
    ]
    out = b"".join(csv_write.csv_chunks(records, SCHEMA, chunk_rows=1))
    assert out == (
        b"\xef\xbb\xbfid,name,description,owner,team,source_system,update_frequency,contains_pii,row_count,created,url\r\n"
        + 'DS-1,Café,"say ""hi"", ok",o@x,,,daily,true,10,2024-01-31,\r\n'.encode()
        + b"DS-2,'=HYPERLINK(),\"line\r\nbreak\",'-me,,,,,,,\r\n"
    )


def test_csv_chunks_of_an_empty_table_is_the_header():
    assert b"".join(csv_write.csv_chunks([], SCHEMA)) == codecs.BOM_UTF8 + (",".join(NAMES) + "\r\n").encode()


def test_download_reads_back_as_the_same_records():
    records = [pack(v) for v in EXPECTED.values()] + [
        pack(["DS-4", "'=1", "=2", "+3", "", "", "", "", "", "", ""]),
        pack(["DS-5", "multi\nline", "'quote", "@at", "", "", "", "", "", "", ""]),
    ]
    data = b"".join(csv_write.csv_chunks(records, SCHEMA))
    _, rows, problems = read(data)
    assert problems == [] and [pack(values) for _, _, values in rows] == records
