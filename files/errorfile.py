"""A refused upload given back to its owner with an `errors` column, to fix in a spreadsheet and upload again.

Pure Python (no Flask, no SQL). The `errors` column is put first, so every cell of the user's
file keeps its column, even in a row with a stray or missing separator. Each row's cell lists
that row's problems; problems with the whole file or its header go on the first data row.
`rows.map_header` ignores a column named `errors`, so the fixed file uploads as it is (and a
refused error file gets a fresh `errors` column in place of the old one).

A CSV comes back as CSV (UTF-8 with BOM, the file's own separator, CRLF), its cells formula-escaped
like the export (a text cell that a spreadsheet would run gets a leading `'`, which the upload
takes off again, so the fixed file means what the refused one meant); a workbook comes back as a
workbook of its sheet, cells typed as they were (text cells are never formulas there).

>>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "n", "type": "integer"}]})
>>> upload = io.BytesIO(b"id;n\\r\\nA;1\\r\\nB;two\\r\\n")
>>> report = annotate(upload, schema, [Problem(3, "n", "'two' is not a whole number")])
>>> report.content.decode("utf-8-sig"), report.suffix
("errors;id;n\\r\\n;A;1\\r\\nn: 'two' is not a whole number;B;two\\r\\n", '.csv')
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from files import csv_read, xlsx, xlsx_write
from files.csv_write import TextSink
from files.formulas import FIRST_CHARACTERS, escape_formula, runs_as_formula, unescape_formula
from files.problems import FileProblems, Problem
from files.rows import header_lookup, normalise
from schema import Schema

ERRORS_COLUMN = "errors"
MAX_BYTES = 64 * 1024 * 1024  # larger uploads get their problem list, but no error file


@dataclass(frozen=True)
class ErrorFile:
    """The annotated file: its bytes and its file name suffix (.csv, .txt for tab-separated, .xlsx)."""

    content: bytes
    suffix: str


def annotate(
    stream: IO[bytes],
    schema: Schema,
    problems: Sequence[Problem],
    total: int | None = None,
    sheet: str | None = None,
) -> ErrorFile | None:
    """The uploaded file with an `errors` column; None when it is no table to annotate
    (empty, binary, a damaged workbook, larger than MAX_BYTES). Rewinds the stream first.

    `problems` are those of the refused upload (lines as its rows start, the header is line 1);
    `total` counts them all when only the first ones are listed.
    """
    if stream.seek(0, io.SEEK_END) > MAX_BYTES:
        return None
    stream.seek(0)
    try:
        if xlsx.is_workbook(stream):
            out = io.BytesIO()
            rows = ((n, n, values) for n, values in xlsx.sheet_values(stream, sheet))
            xlsx_write.write_rows(_annotated(rows, schema, problems, total), "errors", out)
            return ErrorFile(out.getvalue(), ".xlsx")
        return _annotate_csv(stream, schema, problems, total)
    except FileProblems:
        return None


def _annotate_csv(
    stream: IO[bytes], schema: Schema, problems: Sequence[Problem], total: int | None
) -> ErrorFile | None:
    encoding = csv_read.detect_encoding(stream)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        sample = text.read(csv_read.SAMPLE_BYTES)
        delimiter = csv_read.choose_delimiter(sample, encoding, schema)
        text.seek(0)
        out = TextSink()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
        records = _formulas_escaped(_records(csv.reader(text, delimiter=delimiter)), schema)
        writer.writerows(_annotated(records, schema, problems, total))
    except (csv.Error, UnicodeDecodeError):
        return None  # not readable the way the upload was: better no error file than a mangled one
    finally:
        text.detach()  # leave the upload open
    content = out.take()
    if not content:
        return None
    suffix = ".txt" if delimiter == "\t" else ".csv"  # Excel opens tab-separated text as .txt
    return ErrorFile(codecs.BOM_UTF8 + content.encode("utf-8"), suffix)


def _records(reader) -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, cells) of each CSV record, counted as csv_read counts them."""
    previous_end = 0
    for cells in reader:
        yield previous_end + 1, reader.line_num, cells
        previous_end = reader.line_num


# A number a spreadsheet shows as a number although it starts with + or - (left as it is in the
# number columns of an error file; anything else there that starts like a formula is escaped).
_PLAIN_NUMBER = re.compile(r"[ \u00a0]*[+-]?[\d.,' \u00a0]*\d[\d.,' \u00a0]*(?:[eE][+-]?\d+)?[ \u00a0]*")


def _formulas_escaped(
    records: Iterable[tuple[int, int, list[str]]], schema: Schema
) -> Iterator[tuple[int, int, list[str]]]:
    """The CSV records with every cell a spreadsheet would run as a formula escaped.

    Text columns (and columns the header does not name) get `escape_formula(unescape_formula(cell))`:
    the upload unescapes them, so the error file's cell means what the uploaded one meant. In
    other columns the upload does not unescape; a cell there that starts like a formula is not a
    value of its type anyway, so it is escaped (plain signed numbers are left as they are).
    """
    records = iter(records)
    first = next(records, None)
    if first is None:
        return
    lookup, types = header_lookup(schema), {f.name: f.type for f in schema.fields}
    start, end, header = first
    names = [lookup.get(normalise(cell)) for cell in header]
    kinds = [types.get(name) if name else None for name in names]
    yield start, end, [cell if name else escape_formula(cell) for cell, name in zip(header, names, strict=True)]
    for start, end, cells in records:
        yield start, end, [_escaped(cell, kinds[i] if i < len(kinds) else None) for i, cell in enumerate(cells)]


def _escaped(cell: str, kind: str | None) -> str:
    if not cell or cell[0] not in FIRST_CHARACTERS:
        return cell
    if kind in (None, "string"):
        return escape_formula(unescape_formula(cell))
    if runs_as_formula(cell) and not _PLAIN_NUMBER.fullmatch(cell):
        return escape_formula(cell)
    return cell


def _is_errors_column(cell: Any, schema: Schema) -> bool:
    """The column this module adds (unless the table has a column of that name itself)."""
    if not isinstance(cell, str) or " ".join(cell.split()).casefold() != ERRORS_COLUMN:
        return False
    return all(ERRORS_COLUMN not in (f.name.casefold(), f.title.casefold()) for f in schema.fields)


def _where(p: Problem) -> str:
    if p.line is None:
        place = "whole file"
    elif p.line == 1:
        place = "header"
    else:
        place = f"line {p.line}"
    return f"{place}, {p.column}: {p.message}" if p.column else f"{place}: {p.message}"


def _annotated(
    rows: Iterable[tuple[int, int, list[Any]]], schema: Schema, problems: Sequence[Problem], total: int | None
) -> Iterator[list[Any]]:
    """[errors cell, *cells] for the header and every row; a row's cell lists the problems on its lines.

    Problems with the file or its header, and a note when only the first problems are listed,
    go on the first data row (on a row of their own when the file has none). Blank rows at the
    end are dropped (Excel may keep a million formatted empty rows).
    """
    notes = [_where(p) for p in problems if p.line is None or p.line <= 1]
    if total is not None and total > len(problems):
        notes.append(
            f"only the first {len(problems):,} of {total:,} problems are marked; fix them and upload again to see the rest"
        )
    by_line = sorted((p for p in problems if p.line is not None and p.line > 1), key=lambda p: p.line or 0)
    rows = iter(rows)
    header = next(rows, None)
    if header is None:
        return
    drop = {i for i, cell in enumerate(header[2]) if _is_errors_column(cell, schema)}

    def cells(values: list[Any]) -> list[Any]:
        return [v for i, v in enumerate(values) if i not in drop] if drop else values

    yield [ERRORS_COLUMN, *cells(header[2])]
    held: list[list[Any]] = []  # blank rows, written only when a row with content follows
    last: tuple[list[str], list[Any]] | None = None  # the previous row, kept back for late problems
    taken = 0
    for _, end, values in rows:
        messages = []
        while taken < len(by_line) and (by_line[taken].line or 0) <= end:
            p = by_line[taken]
            messages.append(f"{p.column}: {p.message}" if p.column else p.message)
            taken += 1
        values = cells(values)
        if not messages and not any(v not in (None, "") for v in values):
            held.append(values)
            continue
        if last is not None:
            yield _row(*last)
        else:
            messages[:0] = notes
            notes = []
        yield from (["", *blank] if blank else [] for blank in held)
        held.clear()
        last = (messages, values)
    leftover = [_where(p) for p in by_line[taken:]]
    if last is None:
        if notes or leftover:
            yield _row(notes + leftover, [])
        return
    last[0].extend(leftover)
    yield _row(*last)


def _row(messages: list[str], values: list[Any]) -> list[Any]:
    return [escape_formula("; ".join(messages)), *values]
