"""How a file writes numbers and dates, decided per column from all of its cells (files.conventions),
and how reading a CSV gathers that evidence: before the rows for a `;`, tab or `|` file with number
columns, only when a date needs it otherwise, never for a plain `,` file."""

from __future__ import annotations

import io

import pytest

from files import conventions, csv_read, formulas
from files.problems import ProblemList
from schema import Reading, Schema

SCHEMA = Schema.from_dict(
    {
        "primaryKey": "k",
        "fields": [
            {"name": "k"},
            {"name": "x", "type": "number"},
            {"name": "n", "type": "integer"},
            {"name": "d", "type": "date"},
            {"name": "t", "type": "datetime"},
        ],
    }
)


def readings(rows: list[list[str]], delimiter: str = ";") -> list[tuple]:
    problems = ProblemList()
    found = conventions.decide(list(enumerate(rows, start=2)), SCHEMA, delimiter, problems)
    return [(r.decimal_comma, r.day_first) for r in found[1:]] + [p.message for p in problems]


@pytest.mark.parametrize(
    ("rows", "delimiter", "expected"),
    [
        ([["a", "5.840,4", "1.200", "", ""]], ";", [(True, None), (True, None), (False, None), (False, None)]),
        ([["a", "1.5", "3", "", ""]], ";", [(False, None), (False, None), (False, None), (False, None)]),
        # no evidence: a `;` file is European; a tab or `|` file leaves `135.450` ambiguous; `,` has points
        ([["a", "135.450", "", "", ""]], ";", [(True, None), (True, None), (False, None), (False, None)]),
        ([["a", "135.450", "", "", ""]], "\t", [(None, None), (None, None), (False, None), (False, None)]),
        ([["a", "1,5", "", "", ""]], ",", [(False, None), (False, None), (False, None), (False, None)]),
        # a date column settles itself, else follows the other date column
        ([["a", "", "", "31/03/19", "4/2/12 0:00"]], ",", [(False, None), (False, None), (False, True), (False, True)]),
        ([["a", "", "", "03/31/19", "13.01.2024"]], ",", [(False, None), (False, None), (False, False), (False, True)]),
        ([["a", "", "", "03/31/19", ""], ["b", "", "", "31/03/19", ""]], ",",
         [(False, None), (False, None), (False, None), (False, None)]),
    ],
)  # fmt: skip
def test_each_column_follows_its_own_cells_then_the_file_then_the_separator(rows, delimiter, expected):
    assert readings(rows, delimiter) == expected


def test_a_column_mixing_decimal_commas_and_points_is_reported_at_the_rarer_kind():
    rows = [["a", "1,5", "", "", ""], ["b", "2.5", "", "", ""], ["c", "3,25", "", "", ""]]
    assert readings(rows)[-1] == (
        "'2.5' has a decimal point, but this column writes decimal commas (line 2: '1,5');"
        " write every number of a column the same way"
    )


def read(data: bytes, schema: Schema = SCHEMA):
    """(canonical records, problems) of a CSV, parsed the way changes.py does."""
    upload = csv_read.read_csv(io.BytesIO(data), schema)
    parse = schema.row_parser(upload.problems.add, upload.conventions, clean=formulas.unescaper(schema))
    records = [row.record.split("\x1f")[1:] for line, cells in upload.rows if (row := parse(line, cells))]
    return records, [(p.line, p.column, p.message) for p in upload.problems]


def test_a_comma_file_without_ambiguous_cells_is_never_read_twice(monkeypatch):
    monkeypatch.setattr(conventions, "decide", pytest.fail)
    assert read(b"k,x,n,d,t\r\na,1.5,3,2024-03-31,2024-03-31 17:30\r\nb,2,4,31/03/2024,\r\n") == (
        [["1.5", "3", "2024-03-31", "2024-03-31T17:30:00"], ["2", "4", "2024-03-31", ""]],
        [],
    )


def test_an_ambiguous_date_gathers_its_column_from_the_whole_file_then_reading_carries_on():
    body = "".join(f"r{i},,,{i % 12 + 1}/1/2012,\r\n" for i in range(2000))  # month first or not: undecided
    data = ("k,x,n,d,t\r\na,,,4/2/12,\r\n" + body + "z,,,12/31/12,\r\n").encode()
    records, problems = read(data)
    assert problems == [] and len(records) == 2002
    assert records[0][2] == "2012-04-02" and records[-1][2] == "2012-12-31"
    assert records[1][2] == "2012-01-01" and records[12][2] == "2012-12-01"


def test_number_columns_of_a_semicolon_file_are_looked_at_before_its_rows():
    data = "k;x;n;d;t\r\na;135.450;1.200;31.03.19;\r\nb;5.840,4;7;;\r\n".encode("cp1252")
    assert read(data) == ([["135450", "1200", "2019-03-31", ""], ["5840.4", "7", "", ""]], [])


@pytest.mark.parametrize(
    ("text", "reading", "canonical"),
    [
        ("1.234", Reading(decimal_comma=True), "1234"),
        ("1.234", Reading(decimal_comma=False), "1.234"),
        ("1.234.567", Reading(decimal_comma=None), "1234567"),
        ("1,5", Reading(decimal_comma=None), "1.5"),
        ("1.5", Reading(decimal_comma=True), "1.5"),
    ],
)
def test_a_number_is_read_as_its_column_writes_numbers(text, reading, canonical):
    assert SCHEMA.fields[1].canonical(text, reading) == canonical
