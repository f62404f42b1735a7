"""The shortcuts the benchmark (bench/) asked for give exactly what the plain code gives.

Each fast path here is checked against a straightforward reference on generated input: the
export's comma-replacing shortcut against csv.writer on every row, and the upload's
"compare raw text first" shortcut against parsing every row. No timing here: speed is measured
by bench/run.py.
"""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from conftest import CATALOG_SCHEMA, row, table
from hypothesis import given, settings
from hypothesis import strategies as st

import diff
from files import csv_write, formulas
from files.formulas import unescaped_as_is
from records import SEP
from schema import Conventions, Reading, Schema, ValueProblem

SCHEMA = Schema.from_dict(
    {
        "primaryKey": "id",
        "fields": [
            {"name": "id"},
            {"name": "note"},
            {"name": "n", "type": "integer"},
            {"name": "ok", "type": "boolean"},
            {"name": "day", "type": "date"},
            {"name": "x", "type": "number"},
        ],
    }
)
ONE_FIELD = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}]})


def reference_csv(records: list[str], schema: Schema) -> bytes:
    """The export done the plain way: split every record, escape every text cell, csv.writer."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(schema.names)
    for record in records:
        cells = record.split(SEP)
        for i in schema.string_indexes:
            cells[i] = formulas.escape_formula(cells[i])
        writer.writerow(cells)
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


# Cell text biased towards what matters to CSV and to formula escaping.
tricky = st.sampled_from(
    ["", ",", '"', "\n", "\r", "\r\n", "'", "=", "+", "-", "@", "\t", " ", "a", "é", "1",
     "\u00a0", "\u3000", "\uff1d", "\uff0b", "\uff0d", "\uff20"]  # blanks before a formula, full-width triggers
)  # fmt: skip
cell = st.lists(tricky, max_size=6).map("".join) | st.text(max_size=8).map(lambda t: t.replace(SEP, ""))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cell, min_size=6, max_size=6), max_size=12), st.integers(1, 5))
def test_export_equals_csv_writer_on_every_row(rows, chunk_rows):
    records = [SEP.join(r) for r in rows]
    got = b"".join(csv_write.csv_chunks(records, SCHEMA, chunk_rows=chunk_rows))
    assert got == reference_csv(records, SCHEMA)


@pytest.mark.parametrize(
    "records",
    [
        [""],  # a lone empty cell must be written as "" or the row would vanish
        ["", "a", ""],
        ["=1+1", "'=x", "-", "plain"],
        [" =1", "\u00a0+1", "\u3000-1", "\uff1dSUM(A1)", "  \uff20x", "' =1", " a=1"],
        ["a,b", 'say "hi"', "two\nlines"],
    ],
)
def test_export_of_a_one_column_table(records):
    assert b"".join(csv_write.csv_chunks(records, ONE_FIELD, chunk_rows=2)) == reference_csv(records, ONE_FIELD)


def test_export_of_many_rows_crosses_batches_with_rows_of_every_kind():
    kinds = [
        "k{}\x1fplain\x1f1\x1ftrue\x1f2024-01-31\x1f1.5",
        "k{}\x1f=SUM(A1)\x1f\x1f\x1f\x1f",
        "k{}\x1fa, b\x1f-3\x1f\x1f\x1f-2",
    ]
    records = [kinds[i % 3].format(i) for i in range(5000)]
    assert b"".join(csv_write.csv_chunks(records, SCHEMA)) == reference_csv(records, SCHEMA)


# --- upload: compare raw text first, parse only what differs --------------------------------


CONSTRAINED = Schema.from_dict(
    {
        "primaryKey": "code",
        "missingValues": ["", "NA"],
        "fields": [
            {"name": "code", "type": "integer", "constraints": {"minimum": 1, "maximum": 5000}},
            {"name": "kind", "constraints": {"required": True, "enum": ["a", "b"], "maxLength": 1}},
            {"name": "tag", "constraints": {"pattern": "[a-z]+", "minLength": 2, "maxLength": 3}},
            {"name": "flag", "type": "boolean", "constraints": {"required": True}},
            {"name": "level", "type": "integer", "constraints": {"enum": [1, 2, 10]}},
            {"name": "since", "type": "date", "constraints": {"minimum": "2020-01-01", "maximum": "2024-12-31"}},
            {"name": "when", "type": "datetime"},
            {"name": "x", "type": "number", "constraints": {"maximum": 10}},
        ],
    }
)
EDGE = ["", "NA", "na", " ", "a", "b", "ab", "abcd", "A", "a ", "1", "01", "0", "2", "10", "5001", "-1", "+1", " 1",
        "1.0", "١", "²", "1e3", "TRUE", "true", "True", "yes", "Y", "WAHR", "true ", "2020-01-01", "2019-12-31",
        "2024-02-30", "2024-1-05", "2024-01-05 00:00", "31/12/2022", "2024-01-05T10:00:00", "1,5", "9.99", "11",
        "DS-1", "https://x.y", "daily", "a\x1fb", "a\x00", "x\ty", "é", "İ",
        # numbers and dates whose reading depends on their column (schema.Reading)
        "1.234", "135.450", "1.234,5", "1.200", "1200,0", "-0,25", "1.234.567", "4/2/12", "31.03.19", "03/31/19",
        "4/2/2012", "5/19/2006 0:00:00", "2/4/2012 0:00:00", "2/4/2012 5:30 PM"]  # fmt: skip
READINGS = {
    "points": Reading(),
    "commas": Reading(decimal_comma=True, day_first=True),
    "undecided": Reading(decimal_comma=None),
    "month-first": Reading(decimal_comma=None, day_first=False),
}


def conventions_for(schema: Schema, reading: Reading) -> Conventions:
    return Conventions([reading] * len(schema.fields))


def cells_for(schema: Schema, reading: Reading):
    """Rows of cells, each mostly valid for its field (else hardly a row would get past its first bad cell)."""
    columns = []
    for f in schema.fields:
        valid = []
        for text in EDGE:
            try:
                f.canonical(text, reading)
                valid.append(text)
            except ValueProblem:
                pass
        columns.append(st.sampled_from(valid * 60 + EDGE))
    return st.tuples(*columns).map(list)


@pytest.mark.parametrize(
    "schema", [SCHEMA, CONSTRAINED, Schema.load(CATALOG_SCHEMA)], ids=["types", "constraints", "default"]
)
@pytest.mark.parametrize("reading", READINGS.values(), ids=READINGS.keys())
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fast_canonical_agrees_with_canonical_row_or_declines(schema, reading, data):
    values = data.draw(cells_for(schema, reading))
    fast = schema.fast_canonical(conventions_for(schema, reading))(values)
    record, problems = schema.canonical_row(values, conventions_for(schema, reading))
    if fast is not None:
        assert problems == []
        assert fast == (record.split(SEP)[schema.key_index], record)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fast_canonical_declines_while_a_column_waits_for_its_evidence(data):
    """A pending column: the shortcut never guesses an ambiguous cell; canonical_row settles, then both agree."""
    pending = Conventions([Reading(pending=True)] * len(SCHEMA.fields), gather=lambda: [Reading(day_first=True)] * 6)
    fast = SCHEMA.fast_canonical(pending)
    values = data.draw(cells_for(SCHEMA, Reading(day_first=True)))
    before = fast(values)
    record, problems = SCHEMA.canonical_row(values, pending)
    after = fast(values)
    if before is not None:
        assert problems == [] and before == (record.split(SEP)[SCHEMA.key_index], record)
    if after is not None:
        assert problems == [] and after == (record.split(SEP)[SCHEMA.key_index], record)


@pytest.mark.parametrize(
    "values",
    [
        ["DS-1", "Sales", "", "a@b.c", "", "", "daily", "true", "10", "2024-01-31", "https://x.y"],
        ["DS-2", "Sales, EMEA", 'say "hi"', "x", "Data", "SAP", "", "false", "", "", ""],
    ],
)
def test_fast_canonical_takes_the_rows_the_app_writes(values):
    """The shortcut is only worth it if it accepts the ordinary rows (the default schema)."""
    schema = Schema.load(CATALOG_SCHEMA)
    assert schema.fast_canonical()(values) == (values[0], SEP.join(values))


# --- the diff of raw rows equals the diff of parsed rows ------------------------------------

KEYED = Schema.from_dict({"primaryKey": "k", "fields": [{"name": "k", "type": "integer"}, {"name": "v"}]})
raw_cell = st.sampled_from(["1", "2", "3", "007", "7", " 2", "x", ""])
raw_value = st.sampled_from(["a", "b", "'=x", "=x", "''=x", "it's", ""])


@settings(max_examples=400, deadline=None)
@given(
    uploaded=st.lists(st.tuples(raw_cell, raw_value), max_size=10),
    stored=st.dictionaries(st.sampled_from(["1", "2", "3", "7"]), raw_value, max_size=4),
    full=st.booleans(),
)
def test_compare_cells_equals_compare_of_every_row_parsed(uploaded, stored, full):
    current = {k: KEYED.canonical_row([k, v])[0] for k, v in stored.items()}
    rows = [(line, list(cells)) for line, cells in enumerate(uploaded, start=2)]
    reported, parsed_reported = [], []
    got = diff.compare_cells(
        current,
        [(line, list(cells)) for line, cells in rows],
        KEYED.key_index,
        KEYED.row_parser(lambda *p: reported.append(p), clean=formulas.unescaper(KEYED)),
        full=full,
        sep=SEP,
        trust_raw=unescaped_as_is,
    )
    parse = KEYED.row_parser(lambda *p: parsed_reported.append(p), clean=formulas.unescaper(KEYED))
    parsed = [r for r in (parse(line, list(cells)) for line, cells in rows) if r is not None]
    want = diff.compare(current, parsed, full=full)
    assert reported == parsed_reported
    if reported:  # the upload is refused: what counts is every problem, duplicates of bad rows included
        assert {(d.line, d.key) for d in want.duplicates} <= {(d.line, d.key) for d in got.duplicates}
        return
    assert (got.added, got.modified, got.unchanged, got.duplicates) == (
        want.added,
        want.modified,
        want.unchanged,
        want.duplicates,
    )
    assert sorted(got.deleted) == sorted(want.deleted)


# --- PostgreSQL rows fetched by a helper thread (store.base._prefetched) ----------------------------


@pytest.fixture
def small_batches(monkeypatch):
    """Fetch one row per batch, so that a three-row table takes several batches."""
    import store.base

    monkeypatch.setattr(store.base, "FETCH_BATCH", 1)


def test_download_in_many_batches_is_whole_and_ordered(app, seeded, login, small_batches):
    text = login("bob").get("/download").data.decode("utf-8-sig")
    assert [line.split(",")[0] for line in text.split("\r\n")[1:-1]] == ["DS-1", "DS-2", "DS-3"]


def test_a_download_closed_early_ends_its_read(app, seeded, login, small_batches):
    bob = login("bob")
    for _ in range(3):  # each abandoned download must let go of its connection and helper thread
        r = bob.get("/download", buffered=False)
        assert next(iter(r.response)).startswith(b"\xef\xbb\xbfid,")
        r.close()
    assert bob.get("/download").data.count(b"\r\n") == 4


def test_upload_reads_the_table_in_many_batches(app, seeded, api, small_batches):
    r = api("alice").upload(table(row("DS-1", "Sales"), row("DS-2", "HR"), row("DS-4", "New")), confirm_deletions=1)
    assert r.status_code == 201, r.text
    assert (r.json["summary"]["added"], r.json["summary"]["deleted"]) == (1, 1)
