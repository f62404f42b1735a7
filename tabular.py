"""Bytes in and out: decode an uploaded file, find its dialect and header, yield its rows; write CSV.

Pure Python (no Flask, no SQL). Everything a user can get wrong about a file is reported as a
`Problem` with the physical line (the header is line 1) and the column, so the page and the API
can say exactly where to look.
"""

from __future__ import annotations

import codecs
import csv
import io
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from schema import SEP, Schema

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024
CHUNK_BYTES = 1024 * 1024
MAX_PROBLEMS = 200
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_MIGHT_NEED_ESCAPE = re.compile("(?:^|\x1f)['=+\\-@\t\r]")
_SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook or another zip file",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) or Word document",
}

csv.field_size_limit(64 * 1024 * 1024)  # a single big cell is allowed; its field's maxLength decides


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an uploaded file, and where."""

    line: int | None
    column: str | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = ", ".join(p for p in (f"line {self.line}" if self.line else "", self.column or "") if p)
        return f"{where}: {self.message}" if where else self.message


class FileProblems(Exception):
    """The file cannot be staged; `problems` lists why (at most MAX_PROBLEMS), `total` counts all."""

    def __init__(self, problems: Sequence[Problem], total: int | None = None):
        self.problems = list(problems)[:MAX_PROBLEMS]
        self.total = total if total is not None else len(problems)
        super().__init__("; ".join(str(p) for p in self.problems[:3]))


class ProblemList(list[Problem]):
    """Collects problems, keeping the first MAX_PROBLEMS but counting all of them."""

    total = 0

    def add(self, line: int | None, column: str | None, message: str) -> None:
        self.total += 1
        if len(self) < MAX_PROBLEMS:
            self.append(Problem(line, column, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise FileProblems(self, self.total)


@dataclass
class CsvUpload:
    """An opened upload: how it was read, and its data rows as (line, cells in schema order)."""

    encoding: str
    delimiter: str
    rows: Iterator[tuple[int, list[str]]]
    problems: ProblemList = field(default_factory=ProblemList)

    @property
    def decimal_comma(self) -> bool:
        """European Excel writes `;`-separated files with decimal commas."""
        return self.delimiter == ";"


# --- reading ---------------------------------------------------------------------------------


def detect_encoding(stream: IO[bytes]) -> str:
    """Name the encoding of a text file: BOM first, else UTF-8 if every byte decodes, else Windows-1252.

    Reads the whole stream once in chunks (cheap next to parsing) and rewinds it.
    Raises FileProblems for empty and binary files.
    """
    head = stream.read(8)
    if not head:
        raise FileProblems([Problem(None, None, "the file is empty")])
    for magic, what in _SIGNATURES.items():
        if head.startswith(magic):
            raise FileProblems(
                [Problem(None, None, f"this is {what}, not a CSV file; save it as CSV UTF-8 and upload that")]
            )
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        stream.seek(0)
        return "utf-16"
    else:
        encoding = "utf-8"
    stream.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    while chunk := stream.read(CHUNK_BYTES):
        if b"\x00" in chunk:
            line += chunk[: chunk.index(b"\x00")].count(b"\n")
            stream.seek(0)
            raise FileProblems([Problem(line, None, "contains NUL bytes: this is a binary file, not CSV text")])
        if encoding != "cp1252":
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                encoding = "cp1252"
        line += chunk.count(b"\n")
    stream.seek(0)
    return encoding


def _header_cells(text: str, delimiter: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return first


def sniff_delimiter(sample: str, schema: Schema) -> str:
    """The delimiter under which the header names the most schema columns (ties: the most cells)."""
    wanted = _header_lookup(schema)

    def score(delimiter: str) -> tuple[int, int]:
        cells = _header_cells(sample, delimiter)
        return sum(_norm(c) in wanted for c in cells), len(cells)

    return max(DELIMITERS, key=score)


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _header_lookup(schema: Schema) -> dict[str, str]:
    """Normalised header text → field name, by name and by title."""
    lookup = {_norm(f.title): f.name for f in schema.fields if f.title}
    lookup.update({_norm(f.name): f.name for f in schema.fields})
    return lookup


def map_header(cells: Sequence[str], schema: Schema) -> tuple[list[int], int]:
    """Header cells → (position of each schema field in the file, number of meaningful columns).

    Names match after trimming, case-insensitively, by field name or title. Trailing empty header
    cells (Excel's `,,,`) are ignored. Raises FileProblems naming every bad header cell.
    """
    cells = list(cells)
    while cells and not cells[-1].strip():
        cells.pop()
    problems = ProblemList()
    if not cells:
        raise FileProblems(
            [Problem(1, None, "the first line is empty; it must be the header row with the column names")]
        )
    lookup = _header_lookup(schema)
    position: dict[str, int] = {}
    for i, cell in enumerate(cells):
        label = f"column {i + 1}"
        if not cell.strip():
            problems.add(1, label, "header cell is empty; every column needs a name")
            continue
        name = lookup.get(_norm(cell))
        if name is None:
            problems.add(
                1, cell.strip(), f"unknown column {cell.strip()!r}; expected one of: {', '.join(schema.names)}"
            )
        elif name in position:
            problems.add(1, name, f"column {name!r} appears twice (columns {position[name] + 1} and {i + 1})")
        else:
            position[name] = i
    for name in schema.names:
        if name not in position and not any(p.column == name for p in problems):
            problems.add(1, name, f"column {name!r} is missing from the header")
    problems.raise_if_any()
    return [position[name] for name in schema.names], len(cells)


def open_upload(stream: IO[bytes], schema: Schema, filename: str = "") -> CsvUpload:
    """Open an uploaded file, whatever a spreadsheet saved it as; see read_csv."""
    return read_csv(stream, schema)


def read_csv(stream: IO[bytes], schema: Schema) -> CsvUpload:
    """Open an uploaded CSV: detect encoding and delimiter, check the header, stream the rows.

    Raises FileProblems for what is wrong with the file as a whole (empty, binary, bad header);
    row-level problems (ragged rows) are collected in `upload.problems` while iterating.
    """
    encoding = detect_encoding(stream)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    sample = text.read(SAMPLE_BYTES)
    if not sample.strip():
        raise FileProblems([Problem(None, None, "the file is empty")])
    delimiter = "\t" if encoding == "utf-16" and "\t" in sample.partition("\n")[0] else sniff_delimiter(sample, schema)
    text.seek(0)
    reader = csv.reader(text, delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise FileProblems([Problem(1, None, f"the header row is not valid CSV: {exc}")]) from None
    order, width = map_header(header, schema)
    upload = CsvUpload(encoding=encoding, delimiter=delimiter, rows=iter(()))
    upload.rows = _data_rows(reader, order, width, upload.problems)
    return upload


def _data_rows(reader, order: list[int], width: int, problems: ProblemList) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, cells in schema order); skip blank rows; report ragged ones."""
    pick: Callable[[list[str]], list[str]]
    if order == list(range(width)):
        pick = _identity
    else:
        getter = operator.itemgetter(*order)
        pick = (lambda cells: [getter(cells)]) if len(order) == 1 else (lambda cells: list(getter(cells)))
    previous_end = reader.line_num
    try:
        for cells in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if len(cells) != width:
                if len(cells) > width and not any(c.strip() for c in cells[width:]):
                    cells = cells[:width]
                elif not any(c.strip() for c in cells):
                    continue
                else:
                    problems.add(
                        line,
                        None,
                        f"has {len(cells)} cells but the header has {width}; check for a stray or missing separator",
                    )
                    continue
            elif not any(cells):
                continue
            yield line, pick(cells)
    except csv.Error as exc:
        problems.add(reader.line_num, None, f"not valid CSV here: {exc} (an unclosed quote?)")
    except UnicodeDecodeError as exc:
        problems.add(previous_end + 1, None, f"cannot be read as text ({exc.reason}); save the file as CSV UTF-8")


def _identity(cells: list[str]) -> list[str]:
    return cells


# --- formula escaping (OWASP "CSV injection") -----------------------------------------------


def _needs_escape(value: str) -> bool:
    """Would a spreadsheet run this text as a formula (or is it already an escaped one)?"""
    while value.startswith("'"):
        value = value[1:]
        if value.startswith(FORMULA_TRIGGERS):
            return True
    return value.startswith(FORMULA_TRIGGERS)


def escape_formula(value: str) -> str:
    """Prefix `'` to text a spreadsheet would run as a formula; `unescape_formula` reverses it exactly.

    >>> escape_formula("=1+1"), escape_formula("'=1+1"), escape_formula("it's")
    ("'=1+1", "''=1+1", "it's")
    """
    return "'" + value if _needs_escape(value) else value


def unescape_formula(value: str) -> str:
    """Undo `escape_formula`: strip one `'` only where escape_formula would have added it."""
    if value.startswith("'") and _needs_escape(value[1:]):
        return value[1:]
    return value


def unescaper(schema: Schema) -> Callable[[list[str]], list[str]]:
    """A function that unescapes the string cells of a row (cells in schema order)."""
    indexes = schema.string_indexes

    def unescape_row(cells: list[str]) -> list[str]:
        for i in indexes:
            if cells[i].startswith("'"):
                cells[i] = unescape_formula(cells[i])
        return cells

    return unescape_row


# --- writing ---------------------------------------------------------------------------------


class _Buffer:
    """A write-only text sink whose contents are taken in chunks."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str) -> None:
        self.parts.append(s)

    def take(self) -> str:
        out = "".join(self.parts)
        self.parts.clear()
        return out


def csv_chunks(records: Iterable[str], schema: Schema, chunk_rows: int = 2000) -> Iterator[bytes]:
    """Stream a CSV file: UTF-8 with BOM, CRLF, header = field names, formulas escaped in text cells.

    `records` are stored records in schema order; memory stays flat whatever their number.
    """
    buffer = _Buffer()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(schema.names)
    yield codecs.BOM_UTF8 + buffer.take().encode("utf-8")
    string_indexes = schema.string_indexes
    might_need_escape = _MIGHT_NEED_ESCAPE.search
    batch: list[list[str]] = []
    for record in records:
        cells = record.split(SEP)
        if might_need_escape(record):
            for i in string_indexes:
                cells[i] = escape_formula(cells[i])
        batch.append(cells)
        if len(batch) >= chunk_rows:
            writer.writerows(batch)
            batch.clear()
            yield buffer.take().encode("utf-8")
    writer.writerows(batch)
    yield buffer.take().encode("utf-8")
