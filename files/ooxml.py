"""The OOXML package of a workbook (.xlsx): the zip and its XML parts, read on a budget.

Pure Python (no Flask, no SQL). `open_book` opens an upload as a `Book`: its sheets, shared
strings and date styles, read once; `Book.rows` then streams one sheet as (row number, cells), each
cell a value as openpyxl would give it. Everything is parsed with the standard library's expat
parser on a budget, never as a tree (see "reading" below), and whatever a damaged or hostile file
makes zipfile or expat raise (`DAMAGED`) becomes a `damaged` problem. Turning cells into the texts
of a table is `files.xlsx`; writing workbooks is `files.xlsx_write`. What an Excel sheet holds
(`EXCEL_MAX_ROWS`, …) is declared here, for both.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator, Sized
from dataclasses import dataclass
from typing import IO, Any, TypeVar
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH, from_excel, from_ISO8601
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.xml.constants import REL_NS, SHARED_STRINGS, SHEET_MAIN_NS, XLSM, XLSX, XLTM, XLTX

from files import zipmember
from files.problems import FileProblems, Problem, TooLarge

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
CHUNK_BYTES = 64 * 1024
ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")  # OOXML's escape for characters XML cannot hold
DAMAGED = (
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


# --- reading: the package, on a budget -------------------------------------------------------
#
# The package is read with a streaming XML parser (expat) and a budget, never as a tree: a
# workbook of 150 KB can unpack to gigabytes of tiny elements (millions of empty `<row/>` or
# `<c/>`), and building an object per element would hold a worker for minutes and gigabytes.
# Only the parts needed are read: the content types, the workbook and its relationships, the
# date formats of styles.xml, the shared strings and the one sheet. Rows are counted while the
# sheet streams (more than `max_rows` → TooLarge); an empty row costs a counter, no object.

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
class SheetPart:
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


class Book:
    """An opened workbook: its sheets, shared strings and date styles; `rows` streams one sheet."""

    def __init__(self, archive: zipfile.ZipFile, upload_size: int):
        self.archive = archive
        self.names = set(archive.namelist())
        self.budget = _Budget(upload_size)
        self.worksheets: list[SheetPart] = []
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
        with zipmember.open_checked(self.archive, info, "workbook") as src:
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
                self.worksheets.append(SheetPart(title, state, target))
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
        self, part: SheetPart, max_rows: int, merged_ok: bool = False
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

    def __init__(self, book: Book, title: str, max_rows: int) -> None:
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


def open_book(stream: IO[bytes]) -> Book:
    """The workbook's structure, read on a budget, or FileProblems saying what the file is instead."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
        members = archive.infolist()
    except DAMAGED as exc:
        raise FileProblems([damaged(exc)]) from None
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
    zipmember.check_members(members, "workbook")  # bzip2 or LZMA would unpack whole in one read
    book = Book(archive, size)
    try:
        if _is_strict(archive, names):
            raise FileProblems([Problem(None, None, STRICT)])
        book.read()
    except DAMAGED as exc:
        raise FileProblems([damaged(exc)]) from None
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


def damaged(exc: BaseException) -> Problem:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return Problem(
        None,
        None,
        f"the Excel workbook is damaged and cannot be read ({detail}); open it in Excel, save it again"
        " as an Excel Workbook (.xlsx) or as CSV UTF-8, and upload that",
    )


def pick_sheet(book: Book, sheet: str | None) -> SheetPart:
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
