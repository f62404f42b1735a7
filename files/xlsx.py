"""Excel workbooks (.xlsx) in, with the same guarantees as CSV.

Pure Python (no Flask, no SQL). `read_xlsx` gives the same kind of object as
`csv_read.read_csv`, so a workbook goes through the same header, blank-row and diff rules, and a
workbook downloaded and uploaded back unchanged stages nothing. The package (zip, XML, the
budget against zip bombs) is `files.ooxml`; cells are converted as openpyxl converts them.

Cells a spreadsheet typed are turned into the text the schema parses to the same value: the
integer 10 → "10", 1.0 in an integer column → "1", TRUE → "true", a date (Excel keeps dates as
datetimes at midnight) → "2024-01-31". Text stays text: "=1+1" or "00123" in a text cell is read
as exactly that (`files.xlsx_write` writes it as a text cell with Excel's quote prefix, never as a
formula or a number), so workbooks need none of the `'` escaping of CSV.

>>> from files.xlsx_write import write_xlsx
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

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from openpyxl.utils import get_column_letter

from files.formulas import unescaper
from files.ooxml import DAMAGED, ESCAPED, EXCEL_MAX_ROWS, UNSAVED, ZIP_MAGIC, Book, damaged, open_book, pick_sheet
from files.problems import FileProblems, Problem, ProblemList, TooLarge
from files.rows import Upload, data_rows, map_header
from schema import Schema

ENCODING = "xlsx"  # what Upload.encoding (and the change request) says for a workbook
MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERROR_FILE_MAX_CELLS = 20_000_000  # cells written back into a refused workbook's error file


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


def open_workbook(stream: IO[bytes]) -> Book:
    """An uploaded workbook's structure (`worksheets`: title, state), date styles and shared
    strings, read once on one budget. Several sheets of one upload are then read with
    `read_sheet` without parsing the shared strings again, and the budget covers them all.
    Raises FileProblems (not a workbook, damaged) or TooLarge as read_xlsx does."""
    return open_book(stream)


def read_sheet(book: Book, schema: Schema, sheet: str | None = None, max_rows: int = EXCEL_MAX_ROWS) -> Upload:
    """`read_xlsx` for a workbook already opened (`open_workbook`)."""
    part = pick_sheet(book, sheet)
    rows = book.rows(part, max_rows)
    problems = ProblemList()
    try:
        number, cells = next(rows)
    except StopIteration:
        if not book.rows_seen:
            raise FileProblems([Problem(None, None, f"the sheet {part.title!r} is empty")]) from None
        number, cells = 0, []
    except DAMAGED as exc:
        raise FileProblems([damaged(exc)]) from None
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
    that really starts with `'` and a formula character was written escaped (`files.xlsx_write._string_cell`)."""
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
    book = open_book(stream)
    rows = book.rows(pick_sheet(book, sheet), EXCEL_MAX_ROWS, merged_ok=True)
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
    except DAMAGED as exc:
        raise FileProblems([damaged(exc)]) from None


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
            except DAMAGED as exc:
                self.problems.add(self.line_num + 1, None, damaged(exc).message)
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
        return ESCAPED.sub(_unescape_one, value) if "_x" in value else value
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
