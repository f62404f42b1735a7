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
from hypothesis import given, settings
from hypothesis import strategies as st

import diff
import tabular
from schema import SEP, Schema

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
            cells[i] = tabular.escape_formula(cells[i])
        writer.writerow(cells)
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


# Cell text biased towards what matters to CSV and to formula escaping.
tricky = st.sampled_from(["", ",", '"', "\n", "\r", "\r\n", "'", "=", "+", "-", "@", "\t", " ", "a", "é", "1"])
cell = st.lists(tricky, max_size=6).map("".join) | st.text(max_size=8).map(lambda t: t.replace(SEP, ""))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cell, min_size=6, max_size=6), max_size=12), st.integers(1, 5))
def test_export_equals_csv_writer_on_every_row(rows, chunk_rows):
    records = [SEP.join(r) for r in rows]
    got = b"".join(tabular.csv_chunks(records, SCHEMA, chunk_rows=chunk_rows))
    assert got == reference_csv(records, SCHEMA)


@pytest.mark.parametrize(
    "records",
    [
        [""],  # a lone empty cell must be written as "" or the row would vanish
        ["", "a", ""],
        ["=1+1", "'=x", "-", "plain"],
        ["a,b", 'say "hi"', "two\nlines"],
    ],
)
def test_export_of_a_one_column_table(records):
    assert b"".join(tabular.csv_chunks(records, ONE_FIELD, chunk_rows=2)) == reference_csv(records, ONE_FIELD)


def test_export_of_many_rows_crosses_batches_with_rows_of_every_kind():
    kinds = [
        "k{}\x1fplain\x1f1\x1ftrue\x1f2024-01-31\x1f1.5",
        "k{}\x1f=SUM(A1)\x1f\x1f\x1f\x1f",
        "k{}\x1fa, b\x1f-3\x1f\x1f\x1f-2",
    ]
    records = [kinds[i % 3].format(i) for i in range(5000)]
    assert b"".join(tabular.csv_chunks(records, SCHEMA)) == reference_csv(records, SCHEMA)


# --- upload: compare raw text first, parse only what differs --------------------------------


def canonical_everything(rows: list[tuple[int, list[str]]]) -> tuple[list[diff.Row], list[tuple]]:
    """The reference: unescape and parse every row, whatever is stored."""
    problems, out = [], []
    clean = tabular.unescaper(SCHEMA)
    for line, values in rows:
        record, row_problems = SCHEMA.canonical_row(clean(list(values)))
        if row_problems:
            problems.extend((line, name, message) for name, message in row_problems)
        else:
            out.append(diff.Row(line, record.split(SEP)[SCHEMA.key_index], record))
    return out, problems


value = st.sampled_from(
    ["", "x", "'=x", "=x", "''=x", "'x", " x", "1", "01", "1.0", "TRUE", "yes", "2024-01-31", "31/01/2024"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", " a", ""]), value, value, value, value, value), max_size=8),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.tuples(value, value, value, value, value), max_size=3),
)
def test_rows_to_records_equals_parsing_every_row(uploaded, stored):
    known = {}
    for key, values in stored.items():
        record, problems = SCHEMA.canonical_row([key, *values])
        if not problems:
            known[key] = record  # stored records are canonical
    rows = [(line, list(cells)) for line, cells in enumerate(uploaded, start=2)]
    problems: list[tuple] = []
    got = list(
        SCHEMA.rows_to_records(
            [(line, list(cells)) for line, cells in rows],
            known,
            lambda *p: problems.append(p),
            clean=tabular.unescaper(SCHEMA),
        )
    )
    want, want_problems = canonical_everything(rows)
    assert got == want
    assert problems == want_problems
