"""Excel workbooks (.xlsx) in and out, with the same guarantees as CSV.

Pure Python (openpyxl; no Flask, no SQL). `read_xlsx` gives the same kind of object as
`csv_read.read_csv`, so a workbook goes through the same header, blank-row and diff rules, and a
workbook downloaded and uploaded back unchanged stages nothing.

Cells a spreadsheet typed are turned into the text the schema parses to the same value: the
integer 10 → "10", 1.0 in an integer column → "1", TRUE → "true", a date (Excel keeps dates as
datetimes at midnight) → "2024-01-31". Text stays text: "=1+1" or "00123" in a text cell is read
as exactly that, and written as a text cell with Excel's quote prefix (never as a formula or a
number), so workbooks need none of the `'` escaping of CSV.

Writing goes through openpyxl's write-only mode: memory stays flat, the sheet is spooled to a
temporary file. Building an .xlsx takes many times longer than writing the same table as CSV,
so CSV is the fast path for big tables (and the only one past Excel's 1,048,576 rows).

>>> schema = Schema.from_dict({"primaryKey": "id", "fields": [
...     {"name": "id"}, {"name": "n", "type": "integer"}, {"name": "ok", "type": "boolean"}]})
>>> import io
>>> book = io.BytesIO()
>>> write_xlsx(["00123\\x1f10\\x1ftrue", "=1+1\\x1f\\x1f"], schema, book)
2
>>> list(read_xlsx(book, schema).rows)
[(2, ['00123', '10', 'true']), (3, ['=1+1', '', ''])]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import IO, Any
from xml.etree.ElementTree import ParseError

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.text import Text
from openpyxl.reader.excel import ExcelReader
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.xml.constants import SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from files.formulas import escape_formula, unescape_formula, unescaper
from files.problems import FileProblems, Problem, ProblemList
from files.rows import Upload, data_rows, map_header
from records import SEP
from schema import Field, Schema

ENCODING = "xlsx"  # what Upload.encoding (and the change request) says for a workbook
MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MAGIC = b"PK\x03\x04"
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_CHARS = 32_767  # a cell holds at most this many characters
EXCEL_DIGITS = 15  # Excel keeps 15 significant digits of a number; longer ones are written as text
# Zip bombs: the shared strings are the one part held in memory; the rest is streamed, but a
# sheet that unpacks to terabytes would still keep a worker busy for hours.
MAX_SHARED_STRINGS_BYTES = 1024**3
MAX_UNPACKED_BYTES = 8 * 1024**3  # a million rows of 11 columns unpack to about 1 GB
SPOOL_BYTES = 32 * 1024 * 1024
BATCH_ROWS = 1000
_EARLIEST_DATE = dt.date(1900, 3, 1)  # Excel's dates before this are off by one (its 1900 leap year)
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")  # OOXML's escape for characters XML cannot hold
# Text Excel would turn into a formula, number, date or boolean when the cell is edited: written
# with the quote prefix (the ' a user types), so Excel keeps it text.
_NEEDS_QUOTE_PREFIX = re.compile(r"[=+\-@'\d.,\s]|(?:true|false)$", re.IGNORECASE)
_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    LookupError,  # KeyError, IndexError, an unknown encoding named in the XML
    ValueError,
    TypeError,
    AttributeError,
    ParseError,
    InvalidFileException,
    NotImplementedError,  # a compression method zipfile does not know
    RuntimeError,  # an encrypted zip member
)  # what openpyxl and zipfile raise on a damaged or hostile file; no other path reaches them
_OTHER_ZIPS = (
    ("word/", "a Word document"),
    ("ppt/", "a PowerPoint presentation"),
    ("content.xml", "an OpenDocument file (LibreOffice)"),
)


class NotForExcel(ValueError):
    """The table cannot be written as a workbook without losing data; the message says why."""


# --- reading ---------------------------------------------------------------------------------


def is_workbook(stream: IO[bytes]) -> bool:
    """Does the stream start like a zip file (an .xlsx, or another zip)? Rewinds it."""
    stream.seek(0)
    head = stream.read(4)
    stream.seek(0)
    return head == ZIP_MAGIC


def read_xlsx(stream: IO[bytes], schema: Schema, sheet: str | None = None) -> Upload:
    """Open an uploaded workbook: check the header of its first (or the named) sheet, stream its rows.

    Lines are spreadsheet row numbers (the header is row 1), columns are field names. Raises
    FileProblems for what is wrong with the file as a whole (not a workbook, damaged, no such
    sheet, bad header); cell-level problems are collected in `upload.problems` while iterating.
    """
    book = _open(stream)
    worksheet = _pick_sheet(book, sheet)
    rows = _sheet_rows(worksheet)
    problems = ProblemList()
    try:
        _, header = next(rows)
    except StopIteration:
        raise FileProblems([Problem(None, None, f"the sheet {worksheet.title!r} is empty")]) from None
    except _DAMAGED as exc:
        raise FileProblems([_damaged(exc)]) from None
    order, width = map_header([_text(cell.value, "string") for cell in header], schema)
    kinds = ["string"] * width
    names = [""] * width
    for f, position in zip(schema.fields, order, strict=True):
        kinds[position], names[position] = f.type, f.name
    upload = Upload(encoding=ENCODING, delimiter="", rows=iter(()), problems=problems)
    upload.rows = map(_unescaped(schema), data_rows(_SheetReader(rows, kinds, names, problems), order, width, problems))
    return upload


def _unescaped(schema: Schema) -> Callable[[tuple[int, list[str]]], tuple[int, list[str]]]:
    """Undo the CSV download's formula escaping in text cells (`'+49 30 1234567` → `+49 30 1234567`):
    a CSV opened in a spreadsheet and saved as a workbook keeps the `'` as part of the text. A text
    that really starts with `'` and a formula character was written escaped (`_string_cell`)."""
    unescape = unescaper(schema)

    def row(numbered: tuple[int, list[str]]) -> tuple[int, list[str]]:
        return numbered[0], unescape(numbered[1])

    return row


class _Reader(ExcelReader):
    """openpyxl's reader, but shared strings are kept exactly as stored: `_text` undoes their
    escapes, the same way for shared and inline strings (openpyxl only half-undoes shared ones)."""

    def read_strings(self) -> None:
        part = self.package.find(SHARED_STRINGS)
        if part is None:
            return
        name = part.PartName[1:]
        if self.archive.getinfo(name).file_size > MAX_SHARED_STRINGS_BYTES:
            raise _TooBig
        with self.archive.open(name) as src:
            self.shared_strings = _string_table(src)

    def read_worksheets(self) -> None:
        for sheet, rel in self.parser.find_sheets():
            if rel.target in self.valid_files and "chartsheet" not in rel.Type:
                worksheet = _Sheet(self.wb, sheet.name, rel.target, self.shared_strings)
                worksheet.sheet_state = sheet.state
                self.wb._sheets.append(worksheet)


class _Sheet(ReadOnlyWorksheet):
    def _get_size(self) -> None:
        """Skipped: every row is read anyway (`_sheet_rows`), and without a stored size openpyxl
        would parse the whole sheet here once more just to measure it."""


class _TooBig(Exception):
    pass


def _string_table(src: IO[bytes]) -> list[str]:
    tag = f"{{{SHEET_MAIN_NS}}}si"
    strings = []
    for _, node in iterparse(src):
        if node.tag == tag:
            strings.append(Text.from_tree(node).content)
            node.clear()
    return strings


def _open(stream: IO[bytes]):
    """The workbook in read-only mode, or FileProblems saying what the file is instead."""
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except _DAMAGED as exc:
        raise FileProblems([_damaged(exc)]) from None
    names = [m.filename for m in members]
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise FileProblems([_too_big(MAX_UNPACKED_BYTES)])
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        what = next((w for prefix, w in _OTHER_ZIPS if any(n.startswith(prefix) for n in names)), "a zip archive")
        raise FileProblems(
            [
                Problem(
                    None,
                    None,
                    f"this is {what}, not an Excel workbook (.xlsx) or a CSV file; save the table as .xlsx or CSV UTF-8 and upload that",
                )
            ]
        )
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about features it skips (styles, extensions)
            reader = _Reader(stream, read_only=True, data_only=True, keep_links=False)
            reader.read()
    except _TooBig:
        raise FileProblems([_too_big(MAX_SHARED_STRINGS_BYTES)]) from None
    except _DAMAGED as exc:
        raise FileProblems([_damaged(exc)]) from None
    return reader.wb


def _too_big(limit: int) -> Problem:
    return Problem(
        None,
        None,
        f"the workbook unpacks to more than {limit // 1024**3} GB; save the table as CSV UTF-8 and upload that",
    )


def _damaged(exc: BaseException) -> Problem:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return Problem(
        None,
        None,
        f"the Excel workbook is damaged and cannot be read ({detail}); open it in Excel, save it again"
        " as an Excel Workbook (.xlsx) or as CSV UTF-8, and upload that",
    )


def _pick_sheet(book, sheet: str | None):
    """The sheet named `sheet` (trimmed, any case), else the first visible one."""
    sheets = book.worksheets
    if not sheets:
        raise FileProblems([Problem(None, None, "the workbook has no worksheets")])
    if sheet is None or not sheet.strip():
        return next((ws for ws in sheets if ws.sheet_state == "visible"), sheets[0])
    wanted = sheet.strip().casefold()
    for ws in sheets:
        if ws.title.strip().casefold() == wanted:
            return ws
    listed = ", ".join(repr(ws.title) for ws in sheets)
    raise FileProblems(
        [Problem(None, None, f"the workbook has no sheet named {sheet.strip()!r}; its sheets are: {listed}")]
    )


def _sheet_rows(worksheet) -> Iterator[tuple[int, Sequence[Any]]]:
    """(row number, cells) for every row of a sheet, empty rows included; warnings silenced per batch."""
    worksheet.reset_dimensions()  # a stored size may be wrong: read every row that is there
    cells = worksheet.iter_rows()
    number = 0
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batch = list(islice(cells, BATCH_ROWS))
        for row in batch:
            number += 1
            yield number, row
        if len(batch) < BATCH_ROWS:
            return


class _SheetReader:
    """A sheet's data rows as lists of cell texts, shaped like a csv.reader (`line_num` = row number)
    so that the row rules of rows.py (blank rows, column order) apply to workbooks unchanged."""

    def __init__(self, rows: Iterator[tuple[int, Sequence[Any]]], kinds: list[str], names: list[str], problems):
        self.rows = rows
        self.kinds = kinds
        self.names = names
        self.width = len(kinds)
        self.problems = problems
        self.line_num = 1

    def __iter__(self) -> _SheetReader:
        return self

    def __next__(self) -> list[str]:
        try:
            number, cells = next(self.rows)
        except _DAMAGED as exc:
            self.problems.add(self.line_num + 1, None, _damaged(exc).message)
            raise StopIteration from None
        self.line_num = number
        width, kinds = self.width, self.kinds
        texts = [""] * width
        bad = False
        for i, cell in enumerate(cells):
            value = cell.value
            if value is None:
                continue
            if i >= width:
                if _text(value, "string").strip():
                    self.problems.add(
                        number,
                        f"column {get_column_letter(i + 1)}",
                        f"has a value ({_short(value)}) right of the last column of the header; give the column"
                        " a name in row 1 or delete the value",
                    )
                    bad = True
                continue
            if cell.data_type == "e":
                if self.names[i]:
                    self.problems.add(
                        number,
                        self.names[i],
                        f"the cell shows the error {value}, not a value; fix the formula or type the value",
                    )
                    bad = True
                continue
            texts[i] = _text(value, kinds[i])
        return [] if bad else texts  # data_rows skips an empty row: the problem is already reported


def _short(value: Any) -> str:
    text = _text(value, "string")
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _text(value: Any, kind: str) -> str:
    """A cell value as openpyxl gives it → the text a CSV of the same sheet would hold for a field of `kind`.

    >>> [_text(v, k) for v, k in [(10, "integer"), (1.0, "integer"), (0.1, "number"), (True, "boolean"),
    ...     (True, "string"), (dt.datetime(2024, 1, 31), "date"), (dt.datetime(2024, 1, 31, 9, 5), "datetime"),
    ...     ("a_x000D_b", "string"), (None, "string")]]
    ['10', '1', '0.1', 'true', 'TRUE', '2024-01-31', '2024-01-31T09:05:00', 'a\\rb', '']
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return _ESCAPED.sub(_unescape_one, value) if "_x" in value else value
    if isinstance(value, bool):
        if kind == "boolean":
            return "true" if value else "false"
        return "TRUE" if value else "FALSE"  # what Excel shows
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return f"{value:.15g}"  # the digits Excel shows: a formula's 0.1+0.2 is 0.3, not 0.30000000000000004
    if isinstance(value, dt.datetime):
        if kind == "datetime":
            return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _unescape_one(match: re.Match[str]) -> str:
    return chr(int(match[1], 16))


def _escape(text: str) -> str:
    """Text → the form OOXML stores it in: `_xHHHH_` look-alikes escaped, carriage returns encoded
    (an XML reader would turn them into line feeds)."""
    if "_x" in text:
        text = _ESCAPED.sub(lambda m: "_x005F" + m[0], text)
    return text.replace("\r", "_x000D_")


def sheet_values(stream: IO[bytes], sheet: str | None = None) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cell values as stored) of the first (or the named) sheet, empty rows included.

    Text comes as stored (OOXML escapes kept), so `write_rows` puts it back unchanged. Raises
    FileProblems when the workbook cannot be opened or turns out damaged part way.
    """
    rows = _sheet_rows(_pick_sheet(_open(stream), sheet))
    try:
        for number, cells in rows:
            yield number, [cell.value for cell in cells]
    except _DAMAGED as exc:
        raise FileProblems([_damaged(exc)]) from None


def write_rows(rows: Iterable[Sequence[Any]], title: str, out: IO[bytes]) -> None:
    """Write rows of cell values (as `sheet_values` gives them) as a one-sheet workbook; text stays text."""
    with _new_sheet(title) as (book, sheet):
        for values in rows:
            sheet.append([_raw_cell(sheet, v) for v in values])
        book.save(out)


def _raw_cell(sheet, value: Any) -> CellValue:
    if isinstance(value, str):
        if not value or not _NEEDS_QUOTE_PREFIX.match(value):
            return value or None
        cell = WriteOnlyCell(sheet, value)
        cell.data_type = "s"
        cell.quotePrefix = True
        return cell
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date()  # shown as a date, read back as the same midnight
    return value


# --- writing ---------------------------------------------------------------------------------


def write_xlsx(records: Iterable[str], schema: Schema, out: IO[bytes]) -> int:
    """Write the table as a one-sheet workbook to `out`; return the number of rows written.

    `records` are stored records in schema order. Values are typed where Excel keeps them
    exactly (whole numbers and decimals of up to 15 digits, booleans, dates, date-times without
    time zone or fractions of a second) and written as text cells otherwise. Raises NotForExcel
    when a row or a value does not fit in a workbook.
    """
    cells = [_cell_writer(f) for f in schema.fields]
    count = 0
    with _new_sheet(schema.name) as (book, sheet):
        sheet.freeze_panes = "A2"
        sheet.append([_string_cell(sheet, name) for name in schema.names])
        for count, record in enumerate(records, start=1):
            if count >= EXCEL_MAX_ROWS:
                raise NotForExcel(
                    f"The table has more rows than an Excel sheet can hold ({EXCEL_MAX_ROWS - 1:,} plus the header);"
                    " download it as CSV instead."
                )
            try:
                sheet.append([cell(sheet, value) for cell, value in zip(cells, record.split(SEP), strict=True)])
            except NotForExcel as exc:
                key = record.split(SEP)[schema.key_index]
                raise NotForExcel(f"Row {key!r}: {exc} Download the table as CSV instead.") from None
        book.save(out)
    return count


@contextlib.contextmanager
def _new_sheet(title: str) -> Iterator[tuple[Workbook, Any]]:
    """A write-only workbook with one sheet. When writing fails, the sheet's temporary file is
    closed and deleted (openpyxl would otherwise keep it until the process ends)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(_sheet_title(title))
    try:
        yield book, sheet
    except BaseException:
        if sheet._writer is not None and not sheet.closed:
            with contextlib.suppress(OSError, ValueError):
                sheet.close()
            with contextlib.suppress(OSError, ValueError):
                sheet._writer.cleanup()
        raise


def xlsx_file(records: Iterable[str], schema: Schema) -> IO[bytes]:
    """The workbook in a temporary file (in memory while small), rewound for sending."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - the caller sends and closes it
    try:
        write_xlsx(records, schema, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _sheet_title(name: str) -> str:
    title = re.sub(r"[\[\]:*?/\\]", " ", name).strip("' ")[:31]
    return title or "Sheet1"


CellValue = Any


def _cell_writer(f: Field) -> Callable[[Any, str], CellValue]:
    return {
        "string": _string_cell,
        "integer": _integer_cell,
        "number": _number_cell,
        "boolean": _boolean_cell,
        "date": _date_cell,
        "datetime": _datetime_cell,
    }[f.type]


def _string_cell(sheet, text: str) -> CellValue:
    """A text cell; text Excel would turn into a formula, number or date on editing gets the quote prefix.

    A text that starts with `'` and a formula character is written escaped (`''=x`), as in the CSV
    download: reading a workbook takes such a `'` off again (`_unescaped`)."""
    if not text:
        return None
    if text.startswith("'") and unescape_formula(text) != text:
        text = escape_formula(text)
    if len(text) > EXCEL_MAX_CHARS:
        raise NotForExcel(
            f"a value is {len(text):,} characters long, more than an Excel cell holds ({EXCEL_MAX_CHARS:,})."
        )
    if "\r" in text or "_x" in text:
        text = _escape(text)
    if not _NEEDS_QUOTE_PREFIX.match(text):
        return text
    cell = WriteOnlyCell(sheet, text)
    cell.data_type = "s"  # never a formula, whatever the text starts with
    cell.quotePrefix = True
    return cell


def _integer_cell(sheet, text: str) -> CellValue:
    if not text:
        return None
    if len(text.lstrip("-")) <= EXCEL_DIGITS:
        return int(text)
    return _string_cell(sheet, text)


def _number_cell(sheet, text: str) -> CellValue:
    if not text:
        return None
    number = float(text)
    try:
        exact = Decimal(f"{number:.16g}").normalize() == Decimal(text).normalize()  # what openpyxl writes
        digits = len(Decimal(text).normalize().as_tuple().digits)
    except InvalidOperation:
        exact, digits = False, 0
    if exact and digits <= EXCEL_DIGITS:
        return int(number) if number.is_integer() and abs(number) < 1e15 else number
    return _string_cell(sheet, text)


def _boolean_cell(sheet, text: str) -> CellValue:
    return None if not text else text == "true"


def _date_cell(sheet, text: str) -> CellValue:
    if not text:
        return None
    day = dt.date.fromisoformat(text)
    return day if day >= _EARLIEST_DATE else _string_cell(sheet, text)


def _datetime_cell(sheet, text: str) -> CellValue:
    if not text:
        return None
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None and not when.microsecond and when.date() >= _EARLIEST_DATE:
        return when
    return _string_cell(sheet, text)
