"""Excel workbooks (.xlsx) in and out, with the same guarantees as CSV.

Pure Python (no Flask, no SQL). `read_xlsx` gives the same kind of object as
`csv_read.read_csv`, so a workbook goes through the same header, blank-row and diff rules, and a
workbook downloaded and uploaded back unchanged stages nothing. Reading streams the XML with the
standard library's expat parser on a budget (a small file can unpack to gigabytes: see
"reading" below); cells are converted as openpyxl converts them.

Cells a spreadsheet typed are turned into the text the schema parses to the same value: the
integer 10 → "10", 1.0 in an integer column → "1", TRUE → "true", a date (Excel keeps dates as
datetimes at midnight) → "2024-01-31". Text stays text: "=1+1" or "00123" in a text cell is read
as exactly that, and written as a text cell with Excel's quote prefix (never as a formula or a
number), so workbooks need none of the `'` escaping of CSV.

Writing goes through openpyxl's write-only mode: memory stays flat, each sheet is spooled to a
temporary file. A workbook holds one table (`write_xlsx`) or several, a sheet each, titled after
the tables (`write_workbook`, `sheet_titles`). Building an .xlsx takes many times longer than
writing the same table as CSV, so CSV is the fast path for big tables (and the only one past
Excel's 1,048,576 rows).

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
import io
import posixpath
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any, TypeVar
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH, from_excel, from_ISO8601
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.xml.constants import REL_NS, SHARED_STRINGS, SHEET_MAIN_NS, XLSM, XLSX, XLTM, XLTX

from files.formulas import escape_formula, unescape_formula, unescaper
from files.problems import FileProblems, Problem, ProblemList, TooLarge
from files.rows import Upload, data_rows, map_header
from records import SEP
from schema import Field, Schema

ENCODING = "xlsx"  # what Upload.encoding (and the change request) says for a workbook
MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MAGIC = b"PK\x03\x04"
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_CHARS = 32_767  # a cell holds at most this many characters
EXCEL_DIGITS = 15  # Excel keeps 15 significant digits of a number; longer ones are written as text
EXCEL_MAX_COLUMNS = 16_384  # column XFD
# Zip bombs. The declared sizes are checked first (zipfile never unpacks more than a member
# declares); then every part is parsed on a budget (`_Budget`) that real workbooks stay far below:
# a free allowance, plus so much per byte of the part as packed in the zip. Shared strings are the
# one part held in memory whole.
MAX_SHARED_STRINGS_BYTES = 1024**3
MAX_UNPACKED_BYTES = 8 * 1024**3  # a million rows of 11 columns unpack to about 1 GB
FREE_TAGS = 1_000_000  # about a second of parsing
TAGS_PER_PACKED_BYTE = 10  # real sheets: 0.5 to 2 (measured); a flood of `<c/>` or `<row/>`: 150 to 250
FREE_ITEMS = 300_000  # cells and shared strings, the elements that cost most (1 to 3 µs each)
ITEMS_PER_PACKED_BYTE = 2  # cells. Real sheets: 0.1 to 0.5 per packed byte; a flood of `<c/>`: 250
STRINGS_PER_PACKED_BYTE = 1  # shared strings, each different (Excel shares repeats): real tables below 0.3
FREE_BYTES = 64 * 1024**2
BYTES_PER_PACKED_BYTE = 200  # real sheets unpack to 5 to 20 times their packed size
MAX_VALUE_CHARS = 1_000_000  # characters of one cell or shared string (Excel's cells hold 32,767)
MAX_PACKAGE_ENTRIES = 100_000  # sheets, relationships, number formats, cell styles (Excel: 64,000 styles)
ERROR_FILE_MAX_CELLS = 20_000_000  # cells written back into a refused workbook's error file
CHUNK_BYTES = 64 * 1024
SPOOL_BYTES = 32 * 1024 * 1024
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
    expat.ExpatError,
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
#
# The package is read with a streaming XML parser (expat) and a budget, never as a tree: a
# workbook of 150 KB can unpack to gigabytes of tiny elements (millions of empty `<row/>` or
# `<c/>`), and building an object per element would hold a worker for minutes and gigabytes.
# Only the parts needed are read: the content types, the workbook and its relationships, the
# date formats of styles.xml, the shared strings and the one sheet. Rows are counted while the
# sheet streams (more than `max_rows` → TooLarge); an empty row costs a counter, no object.


def is_workbook(stream: IO[bytes]) -> bool:
    """Does the stream start like a zip file (an .xlsx, or another zip)? Rewinds it."""
    stream.seek(0)
    head = stream.read(4)
    stream.seek(0)
    return head == ZIP_MAGIC


def read_xlsx(stream: IO[bytes], schema: Schema, sheet: str | None = None, max_rows: int = EXCEL_MAX_ROWS) -> Upload:
    """Open an uploaded workbook: check the header of its first (or the named) sheet, stream its rows.

    Lines are spreadsheet row numbers (the header is row 1), columns are field names. Raises
    FileProblems for what is wrong with the file as a whole (not a workbook, damaged, no such
    sheet, bad header); cell-level problems are collected in `upload.problems` while iterating.
    Raises TooLarge (also while iterating) past `max_rows` rows or past the XML budget.
    """
    return read_sheet(open_workbook(stream), schema, sheet, max_rows)


def open_workbook(stream: IO[bytes]) -> _Book:
    """An uploaded workbook's structure (`worksheets`: title, state), date styles and shared
    strings, read once on one budget. Several sheets of one upload are then read with
    `read_sheet` without parsing the shared strings again, and the budget covers them all.
    Raises FileProblems (not a workbook, damaged) or TooLarge as read_xlsx does."""
    return _open(stream)


def read_sheet(book: _Book, schema: Schema, sheet: str | None = None, max_rows: int = EXCEL_MAX_ROWS) -> Upload:
    """`read_xlsx` for a workbook already opened (`open_workbook`)."""
    part = _pick_sheet(book, sheet)
    rows = book.rows(part, max_rows)
    problems = ProblemList()
    try:
        number, cells = next(rows)
    except StopIteration:
        if not book.rows_seen:
            raise FileProblems([Problem(None, None, f"the sheet {part.title!r} is empty")]) from None
        number, cells = 0, []
    except _DAMAGED as exc:
        raise FileProblems([_damaged(exc)]) from None
    header = _dense(cells) if number == 1 else []  # no row 1: the header row is empty
    order, width = map_header([_text(value, "string") for value in header], schema)
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


def sheet_values(
    stream: IO[bytes], sheet: str | None = None, max_cells: int = ERROR_FILE_MAX_CELLS
) -> Iterator[tuple[int, Sequence[Any]]]:
    """(row number, cell values as stored) of the first (or the named) sheet, empty rows included.

    Text comes as stored (OOXML escapes kept), so `write_rows` puts it back unchanged. Raises
    FileProblems when the workbook cannot be opened or turns out damaged part way, TooLarge past
    `max_cells` cells (counted from column A to each row's last value).
    """
    book = _open(stream)
    rows = book.rows(_pick_sheet(book, sheet), EXCEL_MAX_ROWS, merged_ok=True)
    previous, cells_left = 0, max_cells
    try:
        for number, cells in rows:
            for empty in range(previous + 1, number):
                yield empty, ()
            values = _dense(cells)
            cells_left -= len(values)
            if cells_left < 0:
                raise TooLarge(f"the sheet has more than {max_cells:,} cells")
            yield number, values
            previous = number
    except _DAMAGED as exc:
        raise FileProblems([_damaged(exc)]) from None


def _dense(cells: list[tuple[int, Any, str]]) -> list[Any]:
    """A row's (column, value, type) cells as values from column A on, None where no value."""
    values: list[Any] = [None] * (max(column for column, _, _ in cells) + 1) if cells else []
    for column, value, _ in cells:
        values[column] = value
    return values


class _SheetReader:
    """A sheet's data rows as lists of cell texts, shaped like a csv.reader (`line_num` = row number)
    so that the row rules of rows.py (blank rows, column order) apply to workbooks unchanged.

    Rows without values are not in `rows`; a gap before a row is handed over as one empty row
    (which data_rows skips), so that data_rows counts lines right without a row per empty row.
    """

    def __init__(self, rows: Iterator[tuple[int, list]], kinds: list[str], names: list[str], problems):
        self.rows = rows
        self.kinds = kinds
        self.names = names
        self.width = len(kinds)
        self.problems = problems
        self.line_num = 1
        self.waiting: tuple[int, list] | None = None

    def __iter__(self) -> _SheetReader:
        return self

    def __next__(self) -> list[str]:
        if self.waiting is not None:
            (number, cells), self.waiting = self.waiting, None
        else:
            try:
                number, cells = next(self.rows)
            except _DAMAGED as exc:
                self.problems.add(self.line_num + 1, None, _damaged(exc).message)
                raise StopIteration from None
            if number > self.line_num + 1:
                self.waiting = (number, cells)
                self.line_num = number - 1
                return []
        self.line_num = number
        width, kinds = self.width, self.kinds
        texts = [""] * width
        bad = False
        for i, value, data_type in cells:
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
            if data_type == UNSAVED:
                if self.names[i]:
                    self.problems.add(
                        number,
                        self.names[i],
                        f"cell {get_column_letter(i + 1)}{number} holds a formula with no saved result (a program"
                        " wrote the workbook without calculating it); open it in Excel or LibreOffice, save it,"
                        " and upload that",
                    )
                    bad = True
                continue
            if data_type == "e":
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


# --- reading: the package, on a budget -------------------------------------------------------

_MAIN = SHEET_MAIN_NS + "}"  # element names as the parser gives them: namespace}local
_ROW, _CELL, _VALUE, _INLINE, _SHARED = _MAIN + "row", _MAIN + "c", _MAIN + "v", _MAIN + "is", _MAIN + "si"
_FORMULA, _MERGE = _MAIN + "f", _MAIN + "mergeCell"
UNSAVED = "f"  # the type of a cell whose formula has no saved result (a script wrote the workbook)
MAX_MERGES_NAMED = 20
_REL_ID = REL_NS + "}id"
_WORKBOOK_TYPES = (XLTM, XLTX, XLSM, XLSX)  # openpyxl's order of preference
_COLUMNS = {get_column_letter(i): i for i in range(1, EXCEL_MAX_COLUMNS + 1)}
_DIGITS = "0123456789"


@dataclass(frozen=True)
class _SheetPart:
    """A worksheet of the workbook: its name, visibility and the zip member holding its XML."""

    title: str
    sheet_state: str
    path: str


class _Budget:
    """How much XML a workbook may make the reader parse: a free allowance plus an amount per byte
    of its parts as packed in the zip, in bytes, in tags (`<`: every element, comment or
    declaration has one; counted per chunk before it is parsed) and in items (cells and shared
    strings, counted as they are met). Real workbooks stay far below; a zip bomb, whose tiny
    packed size unpacks to millions of elements, runs into it within a few seconds.
    """

    def __init__(self, upload_size: int):
        self.upload_size = upload_size
        self.tags_left = FREE_TAGS
        self.bytes_left = FREE_BYTES
        self.items_left = FREE_ITEMS
        self.part = ""

    def open_part(self, info: zipfile.ZipInfo, items_per_packed_byte: int) -> None:
        packed = min(info.compress_size, self.upload_size)  # the directory may lie; the upload cannot
        self.tags_left += TAGS_PER_PACKED_BYTE * packed
        self.bytes_left += BYTES_PER_PACKED_BYTE * packed
        self.items_left += items_per_packed_byte * packed
        self.part = info.filename

    def charge(self, chunk: bytes) -> None:
        self.bytes_left -= len(chunk)
        self.tags_left -= chunk.count(b"<")
        if self.bytes_left < 0 or self.tags_left < 0:
            self.exceeded()

    def exceeded(self) -> None:
        raise TooLarge(
            f"the workbook unpacks to far more XML than its size suggests ({self.part}); it looks like a zip bomb"
            " and was not read. If it is a real table, save it as CSV UTF-8 and upload that"
        )


class _Book:
    """An opened workbook: its sheets, shared strings and date styles; `rows` streams one sheet."""

    def __init__(self, archive: zipfile.ZipFile, upload_size: int):
        self.archive = archive
        self.names = set(archive.namelist())
        self.budget = _Budget(upload_size)
        self.worksheets: list[_SheetPart] = []
        self.strings: list[str] = []
        self.date_styles: set[int] = set()
        self.timedelta_styles: set[int] = set()
        self.epoch = WINDOWS_EPOCH
        self.rows_seen = 0

    def parse(self, name: str, handler: _Handler, items_per_packed_byte: int = ITEMS_PER_PACKED_BYTE) -> Iterator[None]:
        """Parse one member with a handler, a chunk at a time, yielding after each chunk."""
        info = self.archive.getinfo(name)
        self.budget.open_part(info, items_per_packed_byte)
        parser = expat.ParserCreate(namespace_separator="}")
        parser.buffer_text = True
        parser.StartElementHandler = handler.start
        parser.EndElementHandler = handler.end
        parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = _refuse_dtd  # never in a workbook
        handler.parser = parser
        with self.archive.open(info) as src:
            while chunk := src.read(CHUNK_BYTES):
                self.budget.charge(chunk)
                parser.Parse(chunk, False)
                yield
        parser.Parse(b"", True)
        yield

    def read(self) -> None:
        """Read what every sheet needs: the sheet list, the date styles and the shared strings."""
        types = self._read(_ContentTypes(), "[Content_Types].xml")
        workbook = self._read(_WorkbookPart(), types.workbook)
        relations = self._read(_Relations(types.workbook), _relations_path(types.workbook)).relations
        if workbook.date1904:
            self.epoch = CALENDAR_MAC_1904
        for title, state, relation in workbook.sheets:
            if not relation:
                continue  # as openpyxl does (old .xlsm files have such entries)
            target, kind = relations[relation]
            if target in self.names and "chartsheet" not in kind:
                self.worksheets.append(_SheetPart(title, state, target))
        if "xl/styles.xml" in self.names:
            self.date_styles, self.timedelta_styles = self._read(_Styles(), "xl/styles.xml").date_styles()
        if types.shared_strings is not None:
            if self.archive.getinfo(types.shared_strings).file_size > MAX_SHARED_STRINGS_BYTES:
                raise TooLarge(_too_big(MAX_SHARED_STRINGS_BYTES))
            strings = _SharedStrings(self.budget)
            for _ in self.parse(types.shared_strings, strings, STRINGS_PER_PACKED_BYTE):
                pass
            self.strings = strings.strings

    def _read(self, handler: H, name: str) -> H:
        for _ in self.parse(name, handler):
            pass
        return handler

    def rows(
        self, part: _SheetPart, max_rows: int, merged_ok: bool = False
    ) -> Iterator[tuple[int, list[tuple[int, Any, str]]]]:
        """(row number, [(column from 0, value, type)]) of each row of a sheet that holds a value.
        Raises FileProblems at the end for merged cells (their ranges come after the rows), unless
        `merged_ok`: the cells under a merge are empty, which would read as values deleted."""
        sheet = _SheetRows(self, part.title, min(max_rows, EXCEL_MAX_ROWS))
        for _ in self.parse(part.path, sheet):
            if sheet.ready:
                ready, sheet.ready = sheet.ready, []
                yield from ready
            self.rows_seen = sheet.rows_seen
        if sheet.merged and not merged_ok:
            raise FileProblems([_merge_problem(reference) for reference in sheet.merged])


class _Handler:
    """What a part's parser calls; `collect`/`collected` switch the text handler on only where text
    is kept (a list's append: no Python code runs per piece of text)."""

    parser: Any = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        pass

    def end(self, name: str) -> None:
        pass

    def collect(self) -> None:
        self.parts: list[str] = []
        self.parser.CharacterDataHandler = self.parts.append

    def collected(self) -> str:
        self.parser.CharacterDataHandler = None
        return _checked("".join(self.parts))


def _checked(text: str) -> str:
    if len(text) > MAX_VALUE_CHARS:  # its bytes were within the budget; a value this long is still no cell
        raise TooLarge(f"a cell of the workbook holds more than {MAX_VALUE_CHARS:,} characters")
    return text


H = TypeVar("H", bound=_Handler)


class _Nested(_Handler):
    """A handler that knows the local names of the elements it is in."""

    def __init__(self) -> None:
        self.path: list[str] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition("}")[2]
        self.element(local, self.path[-1] if self.path else "", attrs)
        self.path.append(local)

    def end(self, name: str) -> None:
        self.path.pop()

    def element(self, local: str, parent: str, attrs: dict[str, str]) -> None:
        pass


class _ContentTypes(_Handler):
    """[Content_Types].xml: the workbook part and the shared strings part, as openpyxl finds them."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}
        self.default_workbook = False

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local, kind = name.rpartition("}")[2], attrs.get("ContentType", "")
        if local == "Override" and (kind in _WORKBOOK_TYPES or kind == SHARED_STRINGS):
            self.first.setdefault(kind, attrs.get("PartName", "").removeprefix("/"))
        elif local == "Default" and kind in _WORKBOOK_TYPES:
            self.default_workbook = True

    @property
    def workbook(self) -> str:
        part = next((self.first[kind] for kind in _WORKBOOK_TYPES if kind in self.first), None)
        if part is None and not self.default_workbook:
            raise OSError("File contains no valid workbook part")
        return part or "xl/workbook.xml"

    @property
    def shared_strings(self) -> str | None:
        return self.first.get(SHARED_STRINGS)


class _WorkbookPart(_Nested):
    """xl/workbook.xml: the sheets in order (name, state, relationship id) and the date system."""

    def __init__(self) -> None:
        super().__init__()
        self.sheets: list[tuple[str, str, str | None]] = []
        self.date1904 = False

    def element(self, local: str, parent: str, attrs: dict[str, str]) -> None:
        if local == "sheet" and parent == "sheets":
            _count(self.sheets, "sheets")
            self.sheets.append((attrs.get("name", ""), attrs.get("state", "visible"), attrs.get(_REL_ID)))
        elif local == "workbookPr":
            self.date1904 = attrs.get("date1904", "").lower() in ("1", "true")


def _relations_path(part: str) -> str:
    folder, file = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{file}.rels")


class _Relations(_Handler):
    """A part's relationships: id → (zip member, type), targets resolved as openpyxl resolves them."""

    def __init__(self, part: str) -> None:
        self.folder = posixpath.dirname(part)
        self.relations: dict[str, tuple[str, str]] = {}

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name.rpartition("}")[2] != "Relationship":
            return
        _count(self.relations, "relationships")
        target = attrs.get("Target", "")
        if attrs.get("TargetMode") != "External":
            target = target[1:] if target.startswith("/") else posixpath.normpath(posixpath.join(self.folder, target))
        self.relations[attrs.get("Id", "")] = (target, attrs.get("Type", ""))


class _Styles(_Nested):
    """xl/styles.xml, for one thing only: which cell styles show a number as a date or a duration."""

    def __init__(self) -> None:
        super().__init__()
        self.custom: dict[int, str] = {}
        self.formats: list[int] = []

    def element(self, local: str, parent: str, attrs: dict[str, str]) -> None:
        if local == "numFmt" and parent == "numFmts":
            _count(self.custom, "number formats")
            self.custom[int(attrs["numFmtId"])] = attrs.get("formatCode", "")
        elif local == "xf" and parent == "cellXfs":
            _count(self.formats, "cell styles")
            self.formats.append(int(attrs.get("numFmtId", 0)))

    def date_styles(self) -> tuple[set[int], set[int]]:
        dates, durations = set(), set()
        for style, number_format in enumerate(self.formats):
            code = self.custom[number_format] if number_format in self.custom else builtin_format_code(number_format)
            if is_date_format(code):
                dates.add(style)
            if is_timedelta_format(code):
                durations.add(style)
        return dates, durations


class _RichText(_Handler):
    """The text of a string item (`<si>`, or a cell's `<is>`): its `<t>` and the `<t>` of its runs,
    joined; phonetic hints (`<rPh>`) left out. What openpyxl's `Text.content` gives."""

    inside: list[str]
    texts: list[str]
    in_text = False

    def begin(self) -> None:
        self.inside = []
        self.texts = []

    def enter(self, name: str) -> None:
        inside = self.inside
        local = name[name.rfind("}") + 1 :]
        inside.append(local)
        if local == "t" and (len(inside) == 1 or (len(inside) == 2 and inside[0] == "r")):
            self.in_text = True
            self.collect()

    def leave(self) -> None:
        if self.in_text:
            self.in_text = False
            self.texts.append(self.collected())
        self.inside.pop()

    def finish(self) -> str:
        return _checked("".join(self.texts))


class _SharedStrings(_RichText):
    """xl/sharedStrings.xml: the strings cells of type `s` point to, by position."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.strings: list[str] = []
        self.in_item = False

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self.in_item:
            self.enter(name)
        elif name == _SHARED:
            budget = self.budget
            budget.items_left -= 1
            if budget.items_left < 0:
                budget.exceeded()
            self.in_item = True
            self.inside = []
            self.texts = []

    def end(self, name: str) -> None:
        if not self.in_item:
            return
        if self.inside:
            self.leave()
        else:
            self.in_item = False
            texts = self.texts
            self.strings.append(texts[0] if len(texts) == 1 else _checked("".join(texts)))


class _SheetRows(_RichText):
    """A worksheet's rows as the parser meets them: `ready` collects (row number, cells) of the rows
    that hold a value; empty rows and cells only move counters. Raises TooLarge past `max_rows`."""

    def __init__(self, book: _Book, title: str, max_rows: int) -> None:
        self.book = book
        self.budget = book.budget
        self.title = title
        self.max_rows = max_rows
        self.ready: list[tuple[int, list[tuple[int, Any, str]]]] = []
        self.rows_seen = 0
        self.number = 0  # the current (or last) row's number
        self.cells: list[tuple[int, Any, str]] | None = None  # the current row's cells with a value
        self.column = 0
        self.cell_attrs: dict[str, str] | None = None  # the current cell's attributes, while in one
        self.value: str | None = None  # its text, once read
        self.inline = False  # in a cell's <is>
        self.in_value = False
        self.formula = False  # the current cell has a formula
        self.merged: list[str] = []  # the ranges of merged cells (the first MAX_MERGES_NAMED)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        # The hot path of a sheet: a cell's start costs a budget step, its column and two assignments.
        if name == _CELL:
            if self.cells is None:
                return  # a cell outside a row: openpyxl ignores it too
            budget = self.budget
            budget.items_left -= 1
            if budget.items_left < 0:
                budget.exceeded()
            reference = attrs.get("r")
            if reference:
                column = _COLUMNS.get(reference.rstrip(_DIGITS)) or _COLUMNS.get(reference.rstrip(_DIGITS).upper())
                if column is None:
                    raise ValueError(f"{reference!r} is not a cell of an Excel sheet")
            else:
                column = self.column + 1
                if column > EXCEL_MAX_COLUMNS:
                    raise ValueError(f"row {self.number} has more than {EXCEL_MAX_COLUMNS:,} cells")
            self.column = column
            self.cell_attrs = attrs
        elif name == _ROW:
            self.row(attrs.get("r"))
        elif name == _MERGE:
            if len(self.merged) < MAX_MERGES_NAMED:
                self.merged.append(attrs.get("ref", "?"))
        elif self.cell_attrs is not None:
            if name == _FORMULA:
                self.formula = True
            elif self.inline:
                self.enter(name)
            elif name == _VALUE and not self.in_value and self.value is None:
                self.in_value = True
                self.collect()
            elif name == _INLINE and self.cell_attrs.get("t") == "inlineStr":
                self.inline = True
                self.begin()

    def row(self, number_text: str | None) -> None:
        if number_text:
            try:
                number = int(number_text)
            except ValueError:
                as_float = float(number_text)
                if not as_float.is_integer():
                    raise ValueError(f"{number_text!r} is not a row number") from None
                number = int(as_float)
            if number <= self.number:
                raise ValueError(f"row {number} comes after row {self.number}")
        else:
            number = self.number + 1
        if number > self.max_rows:
            raise TooLarge(
                f"the sheet {self.title!r} has more than {self.max_rows:,} rows, more than one upload may hold"
                " (MAX_UPLOAD_ROWS); upload the rows you changed as a partial upload, or ask the administrator"
            )
        self.number = number
        self.rows_seen += 1
        self.cells = []
        self.column = 0

    def end(self, name: str) -> None:
        if name == _CELL:
            if self.cell_attrs is not None:
                if self.value is not None:  # most cells of a bomb end here, without a value
                    self.cell()
                    self.value = None
                elif self.formula:  # a formula nobody calculated: not an empty cell
                    self.cells.append((self.column - 1, None, UNSAVED))
                self.formula = False
                self.cell_attrs = None
        elif name == _ROW:
            if self.cells:
                self.ready.append((self.number, self.cells))
            self.cells = None
        elif self.cell_attrs is not None:
            if self.inline:
                if self.inside:
                    self.leave()
                else:
                    self.inline = False
                    self.value = self.finish()
            elif self.in_value and name == _VALUE:
                self.in_value = False
                self.value = self.collected()

    def cell(self) -> None:
        """The finished cell's value, converted as openpyxl converts it (data_only: a formula's value)."""
        attrs, text = self.cell_attrs, self.value
        kind = attrs.get("t", "n")
        if kind == "inlineStr":
            value: Any = text
            kind = "s"
        elif not text:
            if self.formula:
                self.cells.append((self.column - 1, None, UNSAVED))
            return  # <v></v>
        elif kind == "n":
            value = float(text) if ("." in text or "E" in text or "e" in text) else int(text)
            style = int(attrs.get("s") or 0)
            if style in self.book.date_styles:
                try:
                    value = from_excel(value, self.book.epoch, timedelta=style in self.book.timedelta_styles)
                except (OverflowError, ValueError):
                    value, kind = "#VALUE!", "e"  # a date no calendar has: an error cell, as in openpyxl
        elif kind == "s":
            index = int(text)
            if index < 0:
                raise IndexError(f"shared string {index}")
            value = self.book.strings[index]
        elif kind == "b":
            value = bool(int(text))
        elif kind == "str":
            value, kind = text, "s"
        elif kind == "d":
            value = from_ISO8601(text)
        else:
            value = text
        if value is not None:
            self.cells.append((self.column - 1, value, kind))


def _merge_problem(reference: str) -> Problem:
    """A merged range, named: only its first cell holds the value, the others read as empty."""
    first = re.match(r"[A-Za-z]+(\d+)", reference)
    return Problem(
        int(first[1]) if first else None,
        None,
        f"cells {reference} are merged: only the first holds the value, and the others would read as empty;"
        " unmerge them (Merge & Center off), fill in each cell, save and upload again",
    )


def _count(items: Sized, what: str) -> None:
    if len(items) >= MAX_PACKAGE_ENTRIES:
        raise TooLarge(f"the workbook lists more than {MAX_PACKAGE_ENTRIES:,} {what}")


def _refuse_dtd(*args: Any) -> None:
    raise ValueError("the XML declares a DTD, which no workbook does")


def _open(stream: IO[bytes]) -> _Book:
    """The workbook's structure, read on a budget, or FileProblems saying what the file is instead."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
        members = archive.infolist()
    except _DAMAGED as exc:
        raise FileProblems([_damaged(exc)]) from None
    names = [m.filename for m in members]
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise TooLarge(_too_big(MAX_UNPACKED_BYTES))
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
    book = _Book(archive, size)
    try:
        if _is_strict(archive, names):
            raise FileProblems([Problem(None, None, STRICT)])
        book.read()
    except _DAMAGED as exc:
        raise FileProblems([_damaged(exc)]) from None
    return book


STRICT = (
    "this is an Excel workbook in Strict Open XML, which this app does not read; in Excel choose Save As, then"
    " “Excel Workbook (.xlsx)” (not “Strict Open XML Spreadsheet”), or save the table as CSV UTF-8, and upload that"
)


def _is_strict(archive: zipfile.ZipFile, names: list[str]) -> bool:
    """Is the workbook saved as Strict Open XML (its namespaces under purl.oclc.org, which openpyxl's
    reading of transitional workbooks finds no sheets in)?"""
    part = "xl/workbook.xml" if "xl/workbook.xml" in names else None
    if part is None:
        return False
    with archive.open(part) as opened:
        return b"purl.oclc.org/ooxml/spreadsheetml" in opened.read(4096)


def _too_big(limit: int) -> str:
    return f"the workbook unpacks to more than {limit // 1024**3} GB; save the table as CSV UTF-8 and upload that"


def _damaged(exc: BaseException) -> Problem:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return Problem(
        None,
        None,
        f"the Excel workbook is damaged and cannot be read ({detail}); open it in Excel, save it again"
        " as an Excel Workbook (.xlsx) or as CSV UTF-8, and upload that",
    )


def _pick_sheet(book: _Book, sheet: str | None) -> _SheetPart:
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
    return write_workbook([schema], [records], out)[0]


def write_workbook(schemas: Sequence[Schema], tables: Iterable[Iterable[str]], out: IO[bytes]) -> list[int]:
    """Write several tables as the sheets of one workbook to `out`, in order, each sheet titled
    after its table (`sheet_titles`) and written as `write_xlsx` writes one; return the rows of each.

    `tables` gives each schema's records, and is asked for the next table only once the sheet
    before is written, so a caller can hand over one table's read at a time (a generator). Memory
    stays flat: every sheet is spooled to a temporary file of its own until the workbook is put
    together. NotForExcel names the table when there are several.
    """
    counts = []
    with _new_book() as book:
        for schema, title, records in zip(schemas, sheet_titles([s.name for s in schemas]), tables, strict=True):
            try:
                counts.append(_write_sheet(book.create_sheet(title), records, schema))
            except NotForExcel as exc:
                if len(schemas) == 1:
                    raise
                raise NotForExcel(f"Table {schema.name!r}: {exc}") from None
        book.save(out)
    return counts


def _write_sheet(sheet, records: Iterable[str], schema: Schema) -> int:
    """A table's header and records into a write-only sheet, which is then closed; the rows written."""
    cells = [_cell_writer(f) for f in schema.fields]
    count = 0
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
    sheet.close()  # its temporary file is complete: no open file per sheet while the next is written
    return count


@contextlib.contextmanager
def _new_book() -> Iterator[Workbook]:
    """A write-only workbook. When writing fails, the temporary files of its sheets are closed and
    deleted (openpyxl would otherwise keep them until the process ends)."""
    book = Workbook(write_only=True)
    try:
        yield book
    except BaseException:
        for sheet in book.worksheets:
            if sheet._writer is None:
                continue
            if not sheet.closed:
                with contextlib.suppress(OSError, ValueError):
                    sheet.close()
            with contextlib.suppress(OSError, ValueError):
                sheet._writer.cleanup()  # already gone when `save` wrote the sheet before failing
        raise


@contextlib.contextmanager
def _new_sheet(title: str) -> Iterator[tuple[Workbook, Any]]:
    """A write-only workbook with one sheet (cleaned up as `_new_book` says)."""
    with _new_book() as book:
        yield book, book.create_sheet(_sheet_title(title))


def xlsx_file(records: Iterable[str], schema: Schema) -> IO[bytes]:
    """The workbook in a temporary file (in memory while small), rewound for sending."""
    return _spooled(lambda out: write_xlsx(records, schema, out))


def workbook_file(schemas: Sequence[Schema], tables: Iterable[Iterable[str]]) -> IO[bytes]:
    """`write_workbook`'s workbook in a temporary file (in memory while small), rewound for sending."""
    return _spooled(lambda out: write_workbook(schemas, tables, out))


def _spooled(write: Callable[[IO[bytes]], Any]) -> IO[bytes]:
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - the caller sends and closes it
    try:
        write(out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def sheet_titles(names: Sequence[str]) -> list[str]:
    """The sheet title of each table name, unique in the workbook (Excel compares titles
    ignoring case), so that each sheet can be told back to its table.

    A title is the name as `_sheet_title` makes it: the characters Excel refuses in titles
    (`[]:*?/\\`) made spaces, cut to Excel's 31 characters. Titles that needed no cutting are
    kept as they are. A cut title that another table's title already has (two long names that
    share their first 31 characters, or a 31-character name equal to the cut) ends in `~2`,
    `~3`, … instead: the first number free, the title cut further to make room for it. Names
    of schema.json's tables hold no `~` (package.NAME), so such a title never equals a name.

    >>> titles = sheet_titles(["teams", "c" * 40, "c" * 35, "c" * 31])
    >>> titles[0], [(len(t), t[-3:]) for t in titles[1:]]
    ('teams', [(31, 'c~2'), (31, 'c~3'), (31, 'ccc')])
    """
    titles = [_sheet_title(name) for name in names]
    cut = [len(name) > 31 for name in names]
    taken: set[str] = set()
    out = list(titles)
    for i in sorted(range(len(names)), key=lambda i: cut[i]):  # the uncut titles first
        title, number = titles[i], 1
        while out[i].casefold() in taken:
            number += 1
            out[i] = title[: 31 - len(f"~{number}")] + f"~{number}"
        taken.add(out[i].casefold())
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
    """A number cell holding the canonical text itself (openpyxl would write a float's 16 digits:
    0.07 as 0.07000000000000001, which is why such numbers went out as text cells); a number of
    more digits than Excel keeps stays text."""
    if not text:
        return None
    try:
        digits = len(Decimal(text).normalize().as_tuple().digits)
    except InvalidOperation:
        digits = EXCEL_DIGITS + 1
    if digits > EXCEL_DIGITS:
        return _string_cell(sheet, text)
    cell = WriteOnlyCell(sheet, text)
    cell.data_type = "n"  # written as it is: <v>0.07</v>
    return cell


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
