"""USER_GUIDE.md's table of accepted forms matches what the reader does: every form it lists is read
(through a real CSV file, so separators and column conventions count), every type has a row, and the
dates it says are refused are refused."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from files import csv_read
from schema import TYPES, Schema

GUIDE = (Path(__file__).resolve().parent.parent / "USER_GUIDE.md").read_text(encoding="utf-8")
TYPE_NAMES = {
    "text": "string",
    "whole number": "integer",
    "number": "number",
    "yes/no": "boolean",
    "date": "date",
    "date and time": "datetime",
}


def guide_table() -> dict[str, list[str]]:
    """The table under "The CSV rules": type → the forms (in backticks) it lists, written and accepted."""
    section = GUIDE.split("### The CSV rules", 1)[1]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in TYPE_NAMES:
            rows[TYPE_NAMES[cells[0]]] = re.findall(r"`([^`]+)`", " ".join(cells[1:]))
    return rows


FORMS = [(kind, form) for kind, forms in guide_table().items() for form in forms]


def read_one(kind: str, text: str, delimiter: str, *evidence: str) -> tuple[str, list[str]]:
    """(canonical text, problems) of one cell of a column of `kind`, read from a CSV file, with the
    `evidence` cells below it in the column."""
    schema = Schema.from_dict({"primaryKey": "k", "fields": [{"name": "k"}, {"name": "v", "type": kind}]})
    out = io.StringIO()
    rows = [["k", "v"], ["a", text], *([f"e{i}", cell] for i, cell in enumerate(evidence))]
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    upload = csv_read.read_csv(io.BytesIO(out.getvalue().encode("utf-8")), schema)
    problems: list[str] = []
    parse = schema.row_parser(lambda line, column, message: problems.append(message), upload.conventions)
    rows = [parse(line, cells) for line, cells in upload.rows]
    return (rows[0].record.split("\x1f")[1] if rows[0] else ""), problems


def test_the_table_has_a_row_for_every_type_with_forms_to_check():
    assert set(guide_table()) == set(TYPES)
    assert all(forms for kind, forms in guide_table().items() if kind != "string")


@pytest.mark.parametrize(("kind", "form"), FORMS, ids=[f"{kind}:{form}" for kind, form in FORMS])
def test_every_form_the_guide_lists_is_read(kind, form):
    numeric = kind in ("number", "integer") and ("," in form or "." in form)
    delimiter = ";" if numeric else ","
    evidence = ("1.234.567",) if numeric and "." in form and "," not in form else ()  # a file writing thousands dots
    canonical, problems = read_one(kind, form, delimiter, *evidence)
    assert problems == [] and canonical != "", (form, problems)


def test_the_numbers_the_guide_explains_mean_what_it_says():
    assert read_one("number", "135.450", ";", "5.840,4")[0] == "135450"
    assert read_one("number", "135,450", ";", "5.840,4")[0] == "135.45"
    assert read_one("number", "135.450", ";", "0.25")[0] == "135.45"
    assert read_one("number", "135,450", "\t", "1,234.5")[0] == "135450"
    assert read_one("integer", "1.234", ";", "1.234.567")[0] == "1234"
    assert read_one("number", "1.234,5", ";")[0] == "1234.5"
    assert read_one("number", "1,234.5", ",")[0] == "1234.5"


@pytest.mark.parametrize(
    ("kind", "text", "delimiter", "readings"),
    [
        ("number", "135.450", ";", "135450 with a thousands separator, or 135.45 with a decimal point"),
        ("number", "1.250", ";", "1250 with a thousands separator, or 1.25 with a decimal point"),  # de-CH
        ("number", "135,450", "\t", "135450 with a thousands separator, or 135.45 with a decimal comma"),
        ("number", "135,450", "|", "135450 with a thousands separator, or 135.45 with a decimal comma"),
        ("number", "135.450", ",", "135450 with a thousands separator, or 135.45 with a decimal point"),
        ("integer", "1.000", ",", "1000 with a thousands separator, or 1 with a decimal point"),
        ("integer", "1.000", "\t", "1000 with a thousands separator, or 1 with a decimal point"),
    ],
)
def test_a_number_that_reads_two_ways_with_no_clue_is_refused_with_both_readings(kind, text, delimiter, readings):
    """Issue 19: `135,450` in a tab or `|` file and `135.450` in a `,` file were 135.45; `1.000` in
    an integer column 1; a de-CH `;` file's `1.250` 1250. No clue in the file: refused."""
    _, problems = read_one(kind, text, delimiter)
    assert problems == [f"'{text}' is ambiguous: {readings}? Nothing else in its column says which; write it as"
                        f" {readings.split()[0]} or {readings.split(', or ')[1].split()[0]}"]  # fmt: skip


def test_an_integer_column_never_takes_a_thousands_separator_for_a_decimal_point():
    assert read_one("integer", "1.000", "\t", "0.5")[1] != []  # a column of decimal points: still not 1
    assert read_one("integer", "1.000", ";", "1.234.567")[0] == "1000"


def test_a_decimal_comma_in_a_comma_file_is_refused_with_a_hint():
    _, problems = read_one("number", "1,5", ",")
    assert problems and "save the file separated by semicolons or as an Excel workbook" in problems[0]


def dates_refused() -> list[str]:
    """The dates the guide's bullet "Dates like …" says are refused."""
    bullet = GUIDE.split("- Dates like", 1)[1].split("\n- ", 1)[0]
    return re.findall(r"`([^`]+)`", bullet)


@pytest.mark.parametrize("form", dates_refused())
def test_the_dates_the_guide_says_are_refused_are_refused(form):
    _, problems = read_one("date", form, ",")
    assert problems and ("ambiguous" in problems[0] or "serial number" in problems[0]), problems


def test_the_guide_names_the_encodings_the_reader_knows():
    for label in (
        "UTF-16",
        "UTF-32",
        "Windows-1250",
        "1257",
        "ISO-8859-2",
        "-7 and -15",
        "Mac Roman",
        "KOI8-R",
        "Shift_JIS",
        "GBK",
        "Big5",
        "EUC-KR",
    ):
        assert label in GUIDE
