"""Excel workbooks (.xlsx) out: a table as a sheet, several tables as a workbook, an error file.

Pure Python (no Flask, no SQL). Writing goes through openpyxl's write-only mode: memory stays
flat, each sheet is spooled to a temporary file. A workbook holds one table (`write_xlsx`) or
several, a sheet each, titled after the tables (`write_workbook`, `sheet_titles`). Building an
.xlsx takes many times longer than writing the same table as CSV, so CSV is the fast path for big
tables (and the only one past Excel's 1,048,576 rows). Text is written as text cells, with
Excel's quote prefix where Excel would otherwise read a formula, number or date, so that
`files.xlsx.read_xlsx` reads back exactly what was written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from files.formulas import escape_formula, unescape_formula
from files.ooxml import ESCAPED, EXCEL_DIGITS, EXCEL_MAX_CHARS, EXCEL_MAX_ROWS
from records import SEP
from schema import Schema
from values import Field

SPOOL_BYTES = 32 * 1024 * 1024
CHOICES_SHEET = "_choices"  # the hidden sheet of long drop-down lists (no table's name starts with _)
INLINE_LIST_CHARS = 250  # Excel keeps a list written in the validation itself up to 255 characters
WIDTHS = {"integer": 12, "number": 14, "boolean": 9, "date": 12, "datetime": 19}  # characters
_BOLD = Font(bold=True)
_EARLIEST_DATE = dt.date(1900, 3, 1)  # Excel's dates before this are off by one (its 1900 leap year)
# Text Excel would turn into a formula, number, date or boolean when the cell is edited: written
# with the quote prefix (the ' a user types), so Excel keeps it text.
_NEEDS_QUOTE_PREFIX = re.compile(r"[=+\-@'\d.,\s]|(?:true|false)$", re.IGNORECASE)


class NotForExcel(ValueError):
    """The table cannot be written as a workbook without losing data; the message says why."""


# --- writing ---------------------------------------------------------------------------------


Choices = Mapping[str, Sequence[str]]  # {column name: the values a drop-down list offers}


def write_xlsx(records: Iterable[str], schema: Schema, out: IO[bytes], choices: Choices | None = None) -> int:
    """Write the table as a one-sheet workbook to `out`; return the number of rows written.

    `records` are stored records in schema order. Values are typed where Excel keeps them
    exactly (whole numbers and decimals of up to 15 digits, booleans, dates, date-times without
    time zone or fractions of a second) and written as text cells otherwise. Raises NotForExcel
    when a row or a value does not fit in a workbook.

    The sheet prevents mistakes before they are uploaded: a bold header that stays in view, an
    autofilter, column widths by type, and a drop-down list (data validation) on every `enum`
    column and on the columns of `choices` (the keys a reference column may take): written in the
    validation when short, else on a hidden sheet (CHOICES_SHEET).
    """
    return write_workbook([schema], [records], out, [choices or {}])[0]


def column_choices(schema: Schema, extra: Choices | None = None) -> dict[str, Sequence[str]]:
    """The drop-down lists of a table's columns: its `enum` columns, then `extra` (references).

    >>> s = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "f", "constraints": {"enum": ["a", "b"]}}]})
    >>> column_choices(s, {"id": ["x"]})
    {'f': ('a', 'b'), 'id': ['x']}
    """
    found: dict[str, Sequence[str]] = {f.name: f.enum for f in schema.fields if f.enum}
    found.update({name: values for name, values in (extra or {}).items() if name in schema.names})
    return found


class _ListSheet:
    """The hidden sheet of long drop-down lists: one column per list, written once every sheet is."""

    def __init__(self) -> None:
        self.columns: list[Sequence[str]] = []

    def formula(self, values: Sequence[str]) -> str:
        """The validation's list: the values themselves when short and plain, else a range of the hidden sheet."""
        text = ",".join(values)
        if len(text) <= INLINE_LIST_CHARS and not any("," in v or '"' in v for v in values):
            return f'"{text}"'
        self.columns.append(values)
        letter = get_column_letter(len(self.columns))
        return f"'{CHOICES_SHEET}'!${letter}$1:${letter}${max(len(values), 1)}"

    def write(self, book: Workbook) -> None:
        if not self.columns:
            return
        sheet = book.create_sheet(CHOICES_SHEET)
        sheet.sheet_state = "hidden"
        for i in range(max(len(c) for c in self.columns)):
            sheet.append([_string_cell(sheet, c[i]) if i < len(c) else None for c in self.columns])
        sheet.close()


def write_workbook(
    schemas: Sequence[Schema],
    tables: Iterable[Iterable[str]],
    out: IO[bytes],
    choices: Sequence[Choices] | None = None,
) -> list[int]:
    """Write several tables as the sheets of one workbook to `out`, in order, each sheet titled
    after its table (`sheet_titles`) and written as `write_xlsx` writes one; return the rows of each.

    `tables` gives each schema's records, and is asked for the next table only once the sheet
    before is written, so a caller can hand over one table's read at a time (a generator). Memory
    stays flat: every sheet is spooled to a temporary file of its own until the workbook is put
    together. NotForExcel names the table when there are several.
    """
    counts = []
    lists = _ListSheet()
    extra = list(choices) if choices is not None else [{}] * len(schemas)
    with _new_book() as book:
        for schema, title, records, more in zip(
            schemas, sheet_titles([s.name for s in schemas]), tables, extra, strict=True
        ):
            try:
                counts.append(
                    _write_sheet(book.create_sheet(title), records, schema, column_choices(schema, more), lists)
                )
            except NotForExcel as exc:
                if len(schemas) == 1:
                    raise
                raise NotForExcel(f"Table {schema.name!r}: {exc}") from None
        lists.write(book)
        book.save(out)
    return counts


def column_width(f: Field) -> float:
    """A column's width in characters, from its type and longest allowed value (rows stay one line
    or two; the download is streamed, so its values are not measured first)."""
    if f.type in WIDTHS:
        return max(WIDTHS[f.type], len(f.name) + 3)
    if f.enum:
        return max(len(f.name) + 3, max(len(v) for v in f.enum) + 4)
    longest = f.max_length or 60
    return float(max(len(f.name) + 3, min(12 + longest // 8, 60)))


def _write_sheet(
    sheet,
    records: Iterable[str],
    schema: Schema,
    choices: Choices | None = None,
    lists: _ListSheet | None = None,
) -> int:
    """A table's header and records into a write-only sheet, which is then closed; the rows written."""
    cells = [_cell_writer(f) for f in schema.fields]
    count = 0
    sheet.freeze_panes = "A2"
    for i, f in enumerate(schema.fields, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = column_width(f)
    for name, values in (choices or {}).items():
        letter = get_column_letter(schema.names.index(name) + 1)
        check = DataValidation(
            type="list",
            formula1=(lists or _ListSheet()).formula(list(values)),
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=f"Not a value of {name}",
            error=f"Choose a value of {name} from the list.",
        )
        check.add(f"{letter}2:{letter}{EXCEL_MAX_ROWS}")
        sheet.data_validations.append(check)
    header = []
    for name in schema.names:
        cell = WriteOnlyCell(sheet, name)
        cell.font = _BOLD
        header.append(cell)
    sheet.append(header)
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
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(schema.names))}{count + 1}"
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


def xlsx_file(records: Iterable[str], schema: Schema, choices: Choices | None = None) -> IO[bytes]:
    """The workbook in a temporary file (in memory while small), rewound for sending."""
    return _spooled(lambda out: write_xlsx(records, schema, out, choices))


def workbook_file(
    schemas: Sequence[Schema], tables: Iterable[Iterable[str]], choices: Sequence[Choices] | None = None
) -> IO[bytes]:
    """`write_workbook`'s workbook in a temporary file (in memory while small), rewound for sending."""
    return _spooled(lambda out: write_workbook(schemas, tables, out, choices))


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


# --- an error file: a sheet's cell values written back as they were ---------------------------


def _escape(text: str) -> str:
    """Text → the form OOXML stores it in: `_xHHHH_` look-alikes escaped, carriage returns encoded
    (an XML reader would turn them into line feeds)."""
    if "_x" in text:
        text = ESCAPED.sub(lambda m: "_x005F" + m[0], text)
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
