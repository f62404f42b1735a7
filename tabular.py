"""Bytes in and out: decode an uploaded file, find its dialect and header, yield its rows; write CSV.

Pure Python (no Flask, no SQL). Everything a user can get wrong about a file is reported as a
`Problem` with the physical line (the header is line 1) and the column, so the page and the API
can say exactly where to look.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from schema import SEP, Schema, show

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024
CHUNK_BYTES = 1024 * 1024
MAX_PROBLEMS = 200
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook or another zip file",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) or Word document",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"RIFF": "a WebP image or another RIFF file",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"{\\rtf": "an RTF document",
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

ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 (little-endian, no BOM)",
    "utf-16-be": "UTF-16 (big-endian, no BOM)",
    "cp1252": "Windows-1252",
    "mac_roman": "Mac Roman",
}
_CP1252_UNDEFINED = re.compile(b"[\x81\x8d\x8f\x90\x9d]")
_BINARY_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\x0c\x1a") + b"\x7f"


def encoding_label(encoding: str) -> str:
    """The name a user knows an encoding by, for the review page.

    >>> encoding_label("utf-8-sig"), encoding_label("cp1252"), encoding_label("xlsx")
    ('UTF-8 with BOM', 'Windows-1252', 'xlsx')
    """
    return ENCODING_LABELS.get(encoding, encoding)


def detect_encoding(stream: IO[bytes]) -> str:
    """Name the encoding of a text file: BOM first, else UTF-8 if every byte decodes, else Windows-1252.

    Reads the whole stream once in chunks (cheap next to parsing) and rewinds it. Raises
    FileProblems for empty files, known binary formats (PDF, images, zip), binary garbage and
    bytes that are text in neither UTF-8 nor Windows-1252. A stray control character inside
    otherwise good text is left for the cell check, which can name its line and column.

    >>> detect_encoding(io.BytesIO("név,€".encode("cp1252"))), detect_encoding(io.BytesIO(b"id"))
    ('cp1252', 'utf-8')
    """
    head = stream.read(SAMPLE_BYTES)
    if not head:
        raise FileProblems([Problem(None, None, "the file is empty")])
    for magic, what in _SIGNATURES.items():
        if head.startswith(magic):
            stream.seek(0)
            raise FileProblems(
                [Problem(1, None, f"this is {what}, not a CSV file; save it as CSV UTF-8 and upload that")]
            )
    stream.seek(0)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if utf16 := _bomless_utf16(head[:64]):
        return utf16
    controls = len(head) - len(head.translate(None, _BINARY_BYTES))
    if controls > 2 and controls * 50 > len(head):  # over 2% control bytes: no spreadsheet writes that
        where = min(i for i in (head.find(bytes([b])) for b in _BINARY_BYTES) if i >= 0)
        raise FileProblems(
            [
                Problem(
                    _line_at(head, where),
                    None,
                    "this is a binary file, not CSV text (it is full of control characters and NUL bytes); "
                    "save the table as CSV UTF-8 and upload that",
                )
            ]
        )
    encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    while chunk := stream.read(CHUNK_BYTES):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            encoding = _legacy_encoding(stream, head, offset + exc.start)
            break
        offset += len(chunk)
    else:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            encoding = _legacy_encoding(stream, head, offset)
    stream.seek(0)
    return encoding


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without a BOM: text whose every other byte is NUL."""
    head = head[: len(head) - len(head) % 2]
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if not odd.strip(b"\x00") and b"\x00" not in even:
        return "utf-16-le"
    if not even.strip(b"\x00") and b"\x00" not in odd:
        return "utf-16-be"
    return None


def _legacy_encoding(stream: IO[bytes], head: bytes, bad_utf8: int) -> str:
    """The encoding of a file that is not UTF-8: what Excel's plain "CSV" formats write.

    Lines ending in a lone CR come from Excel for Mac's "CSV (Macintosh)", which writes Mac Roman;
    everything else from Excel for Windows' "CSV (Comma delimited)", which writes Windows-1252
    (unless the file has bytes that encoding lacks).
    """
    if b"\r" in head and b"\n" not in head:
        stream.seek(0)
        return "mac_roman"
    stream.seek(0)
    while chunk := stream.read(CHUNK_BYTES):
        if _CP1252_UNDEFINED.search(chunk):
            line = _line_of_offset(stream, bad_utf8)
            raise FileProblems(
                [
                    Problem(
                        line,
                        None,
                        "is neither UTF-8 nor Windows-1252 text from this line on (is it a binary file?);"
                        " save the table as CSV UTF-8 and upload that",
                    )
                ]
            )
    stream.seek(0)
    return "cp1252"


def _line_of_offset(stream: IO[bytes], offset: int) -> int:
    stream.seek(0)
    line = 1
    while offset > 0 and (chunk := stream.read(min(CHUNK_BYTES, offset))):
        line += _line_at(chunk, len(chunk)) - 1
        offset -= len(chunk)
    stream.seek(0)
    return line


def _line_at(data: bytes, offset: int) -> int:
    """Physical line (1-based) of a byte offset, counting LF, CRLF and lone CR endings."""
    before = data[:offset]
    return 1 + before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n")


def _header_cells(text: str, delimiter: str) -> list[str]:
    """The first record of a sample under one delimiter ([] when it is not CSV under it)."""
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return []


def sniff_delimiter(sample: str, schema: Schema) -> str:
    """The delimiter under which the header names the most schema columns (ties: the most cells).

    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "ok"}]})
    >>> [sniff_delimiter(h, schema) for h in ("id,ok", "ID; OK", "ok\\tid", "id|ok")]
    [',', ';', '\\t', '|']
    """
    wanted = _header_lookup(schema)

    def score(delimiter: str) -> tuple[int, int]:
        cells = _header_cells(sample, delimiter)
        return sum(_norm(c) in wanted for c in cells), len(cells)

    return max(DELIMITERS, key=score)


def _norm(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).casefold()


def _header_lookup(schema: Schema) -> dict[str, str]:
    """Normalised header text → field name, by name and by title."""
    lookup = {_norm(f.title): f.name for f in schema.fields if f.title}
    lookup.update({_norm(f.name): f.name for f in schema.fields})
    return lookup


MAX_UNKNOWN_LISTED = 10


def choose_delimiter(sample: str, encoding: str, schema: Schema) -> str:
    """The delimiter of a file, from its first characters: tab for Excel's UTF-16 "Unicode Text", else sniffed."""
    first_line = sample[: min((i for i in (sample.find("\n"), sample.find("\r")) if i >= 0), default=None)]
    if encoding.startswith("utf-16") and "\t" in first_line:
        return "\t"
    return sniff_delimiter(sample, schema)


def map_header(cells: Sequence[str], schema: Schema) -> tuple[list[int], int]:
    """Header cells → (position of each schema field in the file, number of meaningful columns).

    Names match after trimming, case-insensitively, by field name or title. Trailing empty header
    cells (Excel's `,,,`) are ignored. Raises FileProblems naming every bad header cell.

    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "ok", "title": "Is OK"}]})
    >>> map_header([" is ok ", "ID", "", ""], schema)
    ([1, 0], 2)
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
    expected = ", ".join(schema.names)
    position: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    for i, cell in enumerate(cells):
        if not cell.strip():
            problems.add(1, f"column {i + 1}", "header cell is empty; every column needs a name")
            continue
        name = lookup.get(_norm(cell))
        if name is None and _norm(cell) == "errors":
            continue  # the column errorfile.py adds to a refused file: ignored, so the fixed file uploads as it is
        if name is None:
            unknown.append((i, cell.strip()))
        elif name in position:
            problems.add(1, name, f"column {name!r} appears twice (columns {position[name] + 1} and {i + 1})")
        else:
            position[name] = i
    if len(unknown) > MAX_UNKNOWN_LISTED:
        first = ", ".join(show(c) for _, c in unknown[:5])
        problems.add(
            1,
            f"column {unknown[0][0] + 1}",
            f"the header has {len(cells):,} columns and {len(unknown):,} of them are not columns of this table"
            f" (first: {first}, …); is this the right file? Expected the columns: {expected}",
        )
    else:
        for i, cell in unknown:
            if "\n" in cell or "\r" in cell:
                message = f'header cell {show(cell)} runs over several lines: a quote (") in it is never closed'
            else:
                message = f"unknown column {show(cell)}; expected one of: {expected}"
            problems.add(1, f"column {i + 1}", message)
    for name in schema.names:
        if name not in position and not any(p.column == name for p in problems):
            problems.add(1, name, f"column {name!r} is missing from the header")
    problems.raise_if_any()
    return [position[name] for name in schema.names], len(cells)


def open_upload(stream: IO[bytes], schema: Schema, filename: str = "", sheet: str | None = None) -> CsvUpload:
    """Open an uploaded file, whatever a spreadsheet saved it as: a zip file goes to
    workbook.read_xlsx (`sheet` picks the sheet), anything else to read_csv. Decided by content,
    not by `filename`."""
    import workbook  # imports this module; imported here so that neither needs the other at import time

    if workbook.is_workbook(stream):
        return workbook.read_xlsx(stream, schema, sheet)
    return read_csv(stream, schema)


def read_csv(stream: IO[bytes], schema: Schema) -> CsvUpload:
    """Open an uploaded CSV: detect encoding and delimiter, check the header, stream the rows.

    Raises FileProblems for what is wrong with the file as a whole (empty, binary, bad header);
    row-level problems (ragged rows) are collected in `upload.problems` while iterating.

    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "ok"}]})
    >>> upload = read_csv(io.BytesIO(b'\\xef\\xbb\\xbfok;id\\r\\n"a;\\r\\nb";1\\r\\n;;\\r\\n;2\\r\\n'), schema)
    >>> upload.encoding, upload.delimiter, list(upload.rows)
    ('utf-8-sig', ';', [(2, ['1', 'a;\\r\\nb']), (5, ['2', ''])])
    """
    encoding = detect_encoding(stream)
    text = io.TextIOWrapper(_KeepOpen(stream), encoding=encoding, newline="")
    try:
        sample = text.read(SAMPLE_BYTES)
        if not sample.strip():
            raise FileProblems([Problem(None, None, "the file is empty")])
        delimiter = choose_delimiter(sample, encoding, schema)
        text.seek(0)
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader)
    except UnicodeDecodeError as exc:
        what = ENCODING_LABELS.get(encoding, encoding)
        raise FileProblems(
            [Problem(1, None, f"cannot be read as {what} text ({exc.reason}); save the table as CSV UTF-8")]
        ) from None
    except csv.Error as exc:
        raise FileProblems([Problem(1, None, f"the header row is not valid CSV: {exc}")]) from None
    except StopIteration:
        raise FileProblems([Problem(None, None, "the file is empty")]) from None
    order, width = map_header(header, schema)
    names = [""] * width
    for name, position in zip(schema.names, order, strict=True):
        names[position] = name
    upload = CsvUpload(encoding=encoding, delimiter=delimiter, rows=iter(()))
    upload.rows = _data_rows(reader, order, width, upload.problems, names)
    return upload


class _KeepOpen(io.BufferedIOBase):
    """The caller's stream as read_csv's text wrapper sees it: the wrapper closes what it wraps when
    it is collected (the rows are read lazily, so it cannot be detached in time); the caller's
    upload must stay open, e.g. to be read again for its error file."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._stream.read(-1 if size is None else size)

    read1 = read

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        """Leave the caller's stream open."""


def _data_rows(
    reader, order: list[int], width: int, problems: ProblemList, names: Sequence[str] = ()
) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, cells in schema order); skip blank rows; report ragged ones.

    `names` are the field names by position in the file, for naming the column of a short row.
    This is the per-row hot path of an upload: a well-formed row costs a length check, `any`
    and (when the file's columns are not in schema order) one itemgetter call.
    """
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
                    cells = cells[:width]  # Excel's trailing empty columns
                if len(cells) != width or not any(c.strip() for c in cells):
                    if any(c.strip() for c in cells):
                        problems.add(line, *_ragged(cells, width, names, previous_end - line + 1))
                    continue
            elif not any(cells):
                continue
            yield line, pick(cells)
    except csv.Error as exc:
        problems.add(reader.line_num, None, f"not valid CSV here: {exc}")
    except UnicodeDecodeError as exc:
        problems.add(previous_end + 1, None, f"cannot be read as text ({exc.reason}); save the table as CSV UTF-8")


def _ragged(cells: list[str], width: int, names: Sequence[str], lines: int) -> tuple[str | None, str]:
    """(column, message) for a row whose number of cells differs from the header's."""
    count = f"has {len(cells):,} cells but the header has {width}"
    broken = next((i for i, c in enumerate(cells) if "\n" in c or "\r" in c), None) if lines > 1 else None
    if broken is not None:
        column = (names[broken] if broken < len(names) else "") or f"column {broken + 1}"
        return column, (
            f'the quote (") that opens this value is never closed, so the row runs over {lines:,} lines'
            f" and {count}; close the quote, or remove it"
        )
    if len(cells) > width:
        return f"column {width + 1}", (
            f"{count}; check for a stray separator or an unquoted separator inside a value"
            f" (extra: {show(cells[width])})"
        )
    column = (names[len(cells)] if len(cells) < len(names) else "") or None
    missing = f" (no value for {column!r} or the columns after it)" if column else ""
    return column, f"{count}{missing}; check for a missing separator"


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

    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "note"}]})
    >>> rows = ["1" + SEP + "plain", "2" + SEP + "a, b", "3" + SEP + "=1+1"]
    >>> b"".join(csv_chunks(rows, schema)).decode("utf-8-sig").split("\\r\\n")
    ['id,note', '1,plain', '2,"a, b"', "3,'=1+1", '']
    """
    buffer = _Buffer()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(schema.names)
    yield codecs.BOM_UTF8 + buffer.take().encode("utf-8")
    records = iter(records)
    while batch := list(itertools.islice(records, chunk_rows)):
        yield _csv_lines(batch, schema.string_indexes, writer, buffer).encode("utf-8")


_CELL_STARTS_TRIGGER = re.compile("\x1f['=+\\-@\t\r]")  # a cell after the first that escape_formula may change


def _csv_lines(batch: list[str], string_indexes: Sequence[int], writer, buffer: _Buffer) -> str:
    """Records → CSV lines, each ending in CRLF; `batch` is reused.

    Most records need neither quoting nor formula escaping: they become CSV by turning the
    separators into commas, all rows at once. Only the others are split: the rows with a cell that
    starts like a formula (found in one regular-expression pass over the batch) and the rows with
    a quote, comma or line break (found with `in`, which is much cheaper than a regex per row).
    """
    text = SEP.join(batch)
    positions = [m.start() + 1 for m in _CELL_STARTS_TRIGGER.finditer(text)]
    if positions or batch[0].startswith(("'", *FORMULA_TRIGGERS)):
        ends = list(itertools.accumulate(len(r) + 1 for r in batch))  # where each next record starts
        rows = {bisect.bisect_right(ends, p) for p in positions}
        if batch[0].startswith(("'", *FORMULA_TRIGGERS)):
            rows.add(0)
        for i in rows:
            cells = batch[i].split(SEP)
            for j in string_indexes:
                cells[j] = escape_formula(cells[j])
            batch[i] = SEP.join(cells)
    for i in [i for i, r in enumerate(batch) if not r or '"' in r or "," in r or "\n" in r or "\r" in r]:
        writer.writerow(batch[i].split(SEP))  # csv.writer quotes what needs it ("" for a lone empty cell)
        batch[i] = buffer.take()[:-2]
    batch.append("")
    return "\r\n".join(batch).replace(SEP, ",")
