"""schema.json → fields; each type's accepted inputs → canonical text, rejected inputs → a clear message."""

from __future__ import annotations

import codecs
import json

import pytest
from conftest import CATALOG_SCHEMA

import values as schema_module
from schema import SEP, Field, Reading, Schema, SchemaError, ValueProblem, pack, unpack


def field(type_: str = "string", **constraints) -> Field:
    schema = Schema.from_dict(
        {"primaryKey": "k", "fields": [{"name": "k"}, {"name": "v", "type": type_, "constraints": constraints}]}
    )
    return schema.fields[1]


@pytest.mark.parametrize(
    ("type_", "text", "canonical"),
    [
        ("string", "plain", "plain"),
        ("string", "  spaces kept  ", "  spaces kept  "),
        ("string", "multi\r\nline\ttab", "multi\r\nline\ttab"),
        ("string", "", ""),
        ("integer", "42", "42"),
        ("integer", " 42 ", "42"),
        ("integer", "+7", "7"),
        ("integer", "-7", "-7"),
        ("integer", "1.0", "1"),
        ("integer", "1.", "1"),
        ("integer", "007", "7"),
        ("integer", "", ""),
        ("integer", "   ", ""),
        ("number", "1.50", "1.5"),
        ("number", "1", "1"),
        ("number", "-0.0", "0"),
        ("number", ".5", "0.5"),
        ("number", "1e3", "1000"),
        ("number", "1.23E+5", "123000"),
        ("number", "100", "100"),
        ("number", " 2.25 ", "2.25"),
        ("boolean", "TRUE", "true"),
        ("boolean", "False", "false"),
        ("boolean", "yes", "true"),
        ("boolean", "No", "false"),
        ("boolean", "1", "true"),
        ("boolean", "0", "false"),
        ("boolean", "y", "true"),
        ("boolean", "WAHR", "true"),
        ("boolean", "FALSCH", "false"),
        ("boolean", "vrai", "true"),
        ("boolean", "", ""),
        ("date", "2024-01-31", "2024-01-31"),
        ("date", "2024-1-5", "2024-01-05"),
        ("date", "2024/01/31", "2024-01-31"),
        ("date", "2024-01-31 00:00:00", "2024-01-31"),
        ("date", "2024-01-31 0:00", "2024-01-31"),
        ("date", "31/01/2024", "2024-01-31"),
        ("date", "1/31/2024", "2024-01-31"),
        ("date", "12/15/2023", "2023-12-15"),
        ("date", "5/5/2024", "2024-05-05"),
        ("date", "31.01.2024", "2024-01-31"),
        ("date", "01.02.2024", "2024-02-01"),
        ("date", "31/01/24", "2024-01-31"),  # two-digit years, as the guide promises (issue 10)
        ("date", "31-Jan-24", "2024-01-31"),
        ("date", "31-Jan-99", "1999-01-31"),
        ("date", "5 Jan 2024", "2024-01-05"),
        ("date", "5 January 2024", "2024-01-05"),
        ("date", "Jan 5, 2024", "2024-01-05"),
        ("date", "September 5 2024", "2024-09-05"),
        ("date", "5 Sept 2024", "2024-09-05"),
        ("date", "", ""),
        ("datetime", "2024-01-31T17:30:00", "2024-01-31T17:30:00"),
        ("datetime", "2024-01-31 17:30", "2024-01-31T17:30:00"),
        ("datetime", "2024-01-31T17:30:00Z", "2024-01-31T17:30:00+00:00"),
        ("datetime", "2024-01-31T17:30:00.250+01:00", "2024-01-31T17:30:00.250000+01:00"),
        ("datetime", "31/01/2024 9:05", "2024-01-31T09:05:00"),
        ("datetime", "", ""),
    ],
)
def test_accepted_inputs_become_canonical_text(type_, text, canonical):
    assert field(type_).canonical(text) == canonical


@pytest.mark.parametrize(
    ("type_", "text", "message"),
    [
        ("string", "bell\x07", "contains an invisible control character (U+0007); delete it"),
        ("string", "a\x1fb", "contains an invisible control character (U+001F); delete it"),
        ("string", "nul\x00", "contains an invisible control character (U+0000); delete it"),
        ("integer", "1.5", "'1.5' is not a whole number (expected digits only, e.g. 1234)"),
        ("integer", "1,5", "'1,5' is not a number here: it has a decimal comma, and this column's numbers have"
         " decimal points (a file separated by commas must: a comma there starts a new cell); write 1234.5, or save"
         " the file separated by semicolons or as an Excel workbook"),
        ("integer", "ten", "'ten' is not a whole number (expected digits only, e.g. 1234)"),
        ("integer", "1.23E+15", "'1.23E+15' looks like a number Excel turned into scientific notation, which loses"
                                " digits; format the column as Text in Excel and type the full value"),
        ("integer", "9" * 400, f"'{'9' * 60}…' (400 characters) has more than 300 digits; that is not a number"
                               " this column holds"),
        ("number", "1,5", "'1,5' is not a number here: it has a decimal comma, and this column's numbers have"
         " decimal points (a file separated by commas must: a comma there starts a new cell); write 1234.5, or save"
         " the file separated by semicolons or as an Excel workbook"),
        ("integer", "1.000", "'1.000' is ambiguous: 1000 with a thousands separator, or 1 with a decimal point?"
         " Nothing else in its column says which; write it as 1000 or 1"),
        ("number", "NaN", "'NaN' is not a number (expected digits with a decimal point, e.g. 1234.5)"),
        ("number", "inf", "'inf' is not a number (expected digits with a decimal point, e.g. 1234.5)"),
        ("number", "1e999999999", "'1e999999999' is too large or too small a number for this column"),
        ("boolean", "maybe", "'maybe' is not a yes/no value (expected TRUE or FALSE)"),
        ("date", "03/04/2024", "'03/04/2024' is ambiguous: 3 April or March 4? Write dates as YYYY-MM-DD,"
                               " e.g. 2024-03-31"),
        ("date", "45322", "'45322' looks like an Excel date serial number (2024-01-31?); format the column as a"
                          " date and write YYYY-MM-DD, e.g. 2024-03-31"),
        ("date", "2024-02-30", "'2024-02-30' is not a real date (day is out of range for month)"),
        ("date", "00/05/2024", "'00/05/2024' is not a real date (month must be in 1..12)"),
        ("date", "05/00/2024", "'05/00/2024' is not a real date (day is out of range for month)"),
        ("date", "13/13/2024", "'13/13/2024' is not a real date (month must be in 1..12)"),
        ("date", "31/01/124", "'31/01/124' is not a date (expected YYYY-MM-DD, e.g. 2024-03-31)"),
        ("date", "Janfoo 5 2024", "'Janfoo 5 2024' is not a date (expected YYYY-MM-DD, e.g. 2024-03-31)"),
        ("date", "yesterday", "'yesterday' is not a date (expected YYYY-MM-DD, e.g. 2024-03-31)"),
        ("datetime", "noon", "'noon' is not a date and time (expected YYYY-MM-DDTHH:MM:SS, e.g. 2024-03-31T17:30:00)"),
    ],
)  # fmt: skip
def test_rejected_inputs_say_what_is_expected(type_, text, message):
    with pytest.raises(ValueProblem) as caught:
        field(type_).canonical(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("type_", "constraints", "text", "message"),
    [
        ("string", {"required": True}, "", "is required but empty"),
        ("integer", {"required": True}, "  ", "is required but empty"),
        ("string", {"maxLength": 3}, "abcd", "is 4 characters long, at most 3 allowed"),
        ("string", {"maxLength": 10_000}, "x" * 5_000_000, "is 5,000,000 characters long, at most 10,000 allowed"),
        ("string", {"minLength": 2}, "a", "is 1 characters long, at least 2 needed"),
        ("string", {"enum": ["daily", "weekly"]}, "Daily", "'Daily' is not one of the allowed values: daily, weekly"),
        ("string", {"enum": ["a"]}, "b" * 100, f"'{'b' * 60}…' (100 characters) is not one of the allowed values: a"),
        ("string", {"pattern": "[A-Z]{2}-\\d+"}, "ab-1", "'ab-1' does not match the pattern [A-Z]{2}-\\d+"),
        ("string", {"pattern": "[A-Z]+"}, "AB1", "'AB1' does not match the pattern [A-Z]+"),
        ("integer", {"minimum": 0}, "-1", "-1 is below the minimum 0"),
        ("integer", {"maximum": 10}, "11", "11 is above the maximum 10"),
        ("number", {"minimum": 0.5}, "0.25", "0.25 is below the minimum 0.5"),
        ("date", {"minimum": "2000-01-01"}, "1999-12-31", "1999-12-31 is below the minimum 2000-01-01"),
        ("datetime", {"minimum": "2000-01-01T00:00:00"}, "2024-01-01T00:00:00Z",
         "2024-01-01T00:00:00+00:00 cannot be compared with the limits of this column"
         " (write it with a time zone exactly when the limits have one)"),
        ("integer", {"enum": [1, 2]}, "3", "'3' is not one of the allowed values: 1, 2"),
        ("boolean", {"enum": [True]}, "no", "'false' is not one of the allowed values: true"),
    ],
)  # fmt: skip
def test_constraints(type_, constraints, text, message):
    with pytest.raises(ValueProblem) as caught:
        field(type_, **constraints).canonical(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("type_", "constraints", "text", "canonical"),
    [
        ("string", {"enum": ["daily", "ad hoc"]}, "ad hoc", "ad hoc"),
        ("integer", {"enum": [1, 2]}, "2.0", "2"),
        ("integer", {"minimum": 0, "maximum": 10}, "10", "10"),
        ("string", {"pattern": "[A-Z]+", "maxLength": 3}, "ABC", "ABC"),
        ("string", {"required": True}, " ", " "),
    ],
)
def test_constraints_accept(type_, constraints, text, canonical):
    assert field(type_, **constraints).canonical(text) == canonical


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("1.234,5", "1234.5"), ("-0,25", "-0.25"), ("12.345.678,9", "12345678.9"), ("3", "3"), ("1.5", "1.5"), ("", "")],
)
def test_decimal_comma(text, canonical):
    assert field("number").canonical(text, Reading(decimal_comma=True)) == canonical


def test_missing_values_from_the_schema():
    schema = Schema.from_dict(
        {
            "primaryKey": "k",
            "missingValues": ["NA", "-"],
            "fields": [{"name": "k"}, {"name": "n", "type": "integer"}, {"name": "s"}],
        }
    )
    assert schema.canonical_row(["a", "NA", "-"]) == (pack(["a", "", ""]), [])
    assert schema.canonical_row(["a", "", ""]) == (pack(["a", "", ""]), [])
    assert schema.canonical_row(["NA", "1", ""])[1] == [
        ("k", "key 'NA' means “no value” in this table (missingValues); every row needs a key")
    ]


# --- keys -----------------------------------------------------------------------------------

DEFAULT = Schema.load(CATALOG_SCHEMA)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "key is empty; every row needs one"),
        ("  ", "key is empty; every row needs one"),
        ("DS-1 ", "key 'DS-1 ' has spaces around it, which would make it a different key from 'DS-1'; remove the spaces"),
        (" DS-1", "key ' DS-1' has spaces around it, which would make it a different key from 'DS-1'; remove the spaces"),
        ("1.23457E+15", "key '1.23457E+15' looks like a number Excel turned into scientific notation, which loses"
                        " digits; format the column as Text in Excel and type the full value"),
        ("4.5E-05", "key '4.5E-05' looks like a number Excel turned into scientific notation, which loses digits;"
                    " format the column as Text in Excel and type the full value"),
        ("DS/1", "'DS/1' does not match the pattern [A-Za-z0-9][A-Za-z0-9._-]*"),
    ],
)  # fmt: skip
def test_key_problems(key, message):
    values = [key, "Name", "", "o@x", "", "", "", "", "", "", ""]
    assert DEFAULT.canonical_row(values)[1] == [("id", message)]


def test_integer_keys_are_canonical_so_spaces_do_not_matter():
    schema = Schema.from_dict({"primaryKey": "n", "fields": [{"name": "n", "type": "integer"}]})
    assert schema.canonical_row([" 007 "]) == ("7", [])


def test_all_problems_of_a_row_are_reported_in_field_order():
    values = ["DS 1", "", "", "o@x", "", "", "often", "perhaps", "-5", "2024-13-01", "mailto:x"]
    assert [name for name, _ in DEFAULT.canonical_row(values)[1]] == [
        "id",
        "name",
        "update_frequency",
        "contains_pii",
        "row_count",
        "created",
        "url",
    ]


def test_row_parser_reports_and_skips_bad_rows():
    reported = []
    parse = DEFAULT.row_parser(lambda *p: reported.append(p))
    good = parse(2, ["DS-1", "A", "", "o@x", "", "", "", "", "", "", ""])
    assert (good.line, good.key) == (2, "DS-1")
    assert parse(3, ["", "B", "", "o@x", *[""] * 7]) is None
    assert reported == [(3, "id", "key is empty; every row needs one")]


# --- schema.json ----------------------------------------------------------------------------


def good(**changes) -> dict:
    return {"primaryKey": "id", "fields": [{"name": "id"}, {"name": "n", "type": "integer"}]} | changes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], 'needs a non-empty "fields" list'),
        ({"fields": []}, 'needs a non-empty "fields" list'),
        (good(fields=[{"type": "string"}]), 'field 1: needs a "name"'),
        (good(fields=[{"name": "id"}, {"name": " n"}]), "field 2 (' n'): a name may not have surrounding spaces"),
        (good(fields=[{"name": "id"}, {"name": "a,b"}]), "field 2 ('a,b'): a name may not have surrounding spaces or commas"),
        (good(fields=[{"name": "id"}, {"name": "n", "type": "money"}]), "field 2 ('n'): unknown type 'money' (use one of string, integer, number, boolean, date, datetime)"),
        (good(fields=[{"name": "id"}, {"name": "n", "constraints": []}]), "field 2 ('n'): \"constraints\" must be an object"),
        (good(fields=[{"name": "id"}, {"name": "n", "constraints": {"max": 3}}]), "field 2 ('n'): unknown constraint 'max'"),
        (good(fields=[{"name": "id"}, {"name": "n", "type": "integer", "constraints": {"minimum": "x"}}]), "field 2 ('n'): constraint value 'x' is not a whole number"),
        (good(fields=[{"name": "id"}, {"name": "n", "constraints": {"enum": "a"}}]), "field 2 ('n'): \"enum\" must be a list"),
        (good(fields=[{"name": "id"}, {"name": "n", "type": "integer", "constraints": {"pattern": "\\d"}}]), "field 2 ('n'): \"pattern\" applies to string fields only"),
        (good(fields=[{"name": "id"}, {"name": "n", "constraints": {"pattern": "("}}]), "field 2 ('n'): invalid pattern '('"),
        (good(fields=[{"name": "id"}, {"name": "n", "constraints": {"maxLength": -1}}]), "field 2 ('n'): \"maxLength\" must be a whole number ≥ 0"),
        (good(fields=[{"name": "id"}, {"name": "ID"}]), "field name 'ID' is used twice"),
        (good(primaryKey="nope"), "\"primaryKey\" must name one of the fields ['id', 'n'], got 'nope'"),
        (good(primaryKey=["id", "n"]), '"primaryKey" must name exactly one field (composite keys are not supported)'),
        (good(primaryKey=None), '"primaryKey" must name one of the fields'),
        (good(fields=[{"name": "id", "type": "date"}]), "the primary key 'id' must be of type string or integer, not date"),
        (good(missingValues="NA"), '"missingValues" must be a list of texts, e.g. ["", "NA"]'),
        (good(missingValues=[None]), '"missingValues" must be a list of texts'),
    ],
)  # fmt: skip
def test_from_dict_errors_name_the_problem(data, message):
    with pytest.raises(SchemaError) as caught:
        Schema.from_dict(data)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("{oops", "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
        ('{"fields": []}', 'needs a non-empty "fields" list'),
    ],
)
def test_load_names_the_file(tmp_path, content, message):
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SchemaError) as caught:
        Schema.load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_load_accepts_a_bom(tmp_path):
    path = tmp_path / "schema.json"
    path.write_bytes(codecs.BOM_UTF8 + json.dumps(good()).encode())
    assert Schema.load(path).names == ("id", "n")


def test_the_default_schema():
    assert DEFAULT.key == "id" and len(DEFAULT.names) == 11
    assert DEFAULT.fields[DEFAULT.names.index("update_frequency")].enum[-2:] == ("ad hoc", "never")


# --- records --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old_names", "record", "new_names", "repacked"),
    [
        (["id", "a"], "1\x1fx", ["id", "a", "b"], "1\x1fx\x1f"),  # field added: empty
        (["id", "a", "b"], "1\x1fx\x1fy", ["id", "b"], "1\x1fy"),  # field removed: dropped
        (["id", "a", "b"], "1\x1fx\x1fy", ["id", "b", "a"], "1\x1fy\x1fx"),  # reordered
        (["id", "a"], "1\x1fx", ["id", "a"], "1\x1fx"),
    ],
)
def test_repack(old_names, record, new_names, repacked):
    schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": n} for n in new_names]})
    assert schema.repack(record, old_names) == repacked


def test_pack_and_unpack():
    assert unpack(pack(["a", "", "c"])) == ["a", "", "c"] and pack(["a", "b"]) == f"a{SEP}b"


def test_to_dict_types_values_for_json():
    schema = Schema.from_dict(
        {
            "primaryKey": "id",
            "fields": [
                {"name": "id"},
                {"name": "n", "type": "integer"},
                {"name": "x", "type": "number"},
                {"name": "b", "type": "boolean"},
                {"name": "d", "type": "date"},
            ],
        }
    )
    assert schema.to_dict(pack(["k", "3", "1.5", "true", ""])) == {"id": "k", "n": 3, "x": 1.5, "b": True, "d": None}
    assert schema.to_dict("k\x1f3", ["id", "old"]) == {
        "id": "k",
        "n": None,
        "x": None,
        "b": None,
        "d": None,
        "old": "3",
    }


@pytest.mark.parametrize(
    ("language", "words"),
    list(schema_module.SPREADSHEET_BOOLEANS.items()),
    ids=list(schema_module.SPREADSHEET_BOOLEANS),
)
def test_the_yes_no_words_of_every_spreadsheet_language_are_read(language, words):
    """Issue 19: `VERDADEIRO` was refused while `FALSO` passed; `ИСТИНА`, `PRAWDA` refused."""
    field = Field("ok", "boolean")
    for word, canonical in zip(words, ("true", "false"), strict=True):
        for form in (word.upper(), word, word.capitalize()):
            assert field.canonical(form) == canonical, (language, form)
