"""An upload's rows, whatever the file format: the header matched to the schema's fields, then
each data row as (line, cells in schema order), blank rows skipped and ragged rows reported.

CSV (csv_read.py) and workbooks (xlsx.py) both end here, so they follow the same header and row
rules.
"""

from __future__ import annotations

import csv
import operator
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from files.formulas import unescaped_as_is
from files.problems import FileProblems, Problem, ProblemList, TooLarge
from schema import Schema
from values import Conventions, show

_GROUPED_CELL = re.compile(r"(?:^|\x1f)\s*[+-]?[1-9]\d{0,2}(?:\.\d{3})+\s*(?:\x1f|$)")


@dataclass
class Upload:
    """An opened upload (CSV or workbook): how it was read, and its data rows as (line, cells in schema order).

    `conventions` say how the file writes numbers and dates (values.Conventions); `warnings` are
    for the review page (e.g. an encoding that is a guess), complete once the rows are read.
    """

    encoding: str
    delimiter: str
    rows: Iterator[tuple[int, list[str]]]
    problems: ProblemList = field(default_factory=ProblemList)
    conventions: Conventions = field(default_factory=Conventions)
    warnings: list[str] = field(default_factory=list)

    def trust_raw(self, text: str) -> bool:
        """May a raw row whose cells joined by SEP equal a stored record count as unchanged without
        being parsed (diff.compare_cells)? Not when a cell may be an escaped formula (`'=x`), nor,
        when the file writes thousands dots, a cell like `1.234` (1234 there, 1.234 when stored).

        >>> from values import Reading
        >>> upload = Upload("utf-8", ";", iter(()), conventions=Conventions([Reading(decimal_comma=True)]))
        >>> upload.trust_raw("a\x1f1.5"), upload.trust_raw("a\x1f1.234"), upload.trust_raw("'=x")
        (True, False, False)
        """
        if not unescaped_as_is(text):
            return False
        return not (self.conventions.groups_thousands and "." in text and _GROUPED_CELL.search(text))


def normalise(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).casefold()


def header_lookup(schema: Schema) -> dict[str, str]:
    """Normalised header text → field name, by name and by title."""
    lookup = {normalise(f.title): f.name for f in schema.fields if f.title}
    lookup.update({normalise(f.name): f.name for f in schema.fields})
    return lookup


MAX_UNKNOWN_LISTED = 10


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
    lookup = header_lookup(schema)
    expected = ", ".join(schema.names)
    position: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    for i, cell in enumerate(cells):
        if not cell.strip():
            problems.add(1, f"column {i + 1}", "header cell is empty; every column needs a name")
            continue
        name = lookup.get(normalise(cell))
        if name is None and normalise(cell) == "errors":
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


def data_rows(
    reader,
    order: list[int],
    width: int,
    problems: ProblemList,
    names: Sequence[str] = (),
    max_rows: int | None = None,
) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, cells in schema order); skip blank rows; report ragged ones.

    `names` are the field names by position in the file, for naming the column of a short row.
    More than `max_rows` rows after the header, blank ones included, raise TooLarge: a file of
    empty lines costs as much to read as one of rows.
    This is the per-row hot path of an upload: a well-formed row costs a length check, `any`
    and (when the file's columns are not in schema order) one itemgetter call. A record that runs
    over several lines is noted in `problems.spans`, so problems can name the spreadsheet row.
    """
    limit = sys.maxsize if max_rows is None else max_rows
    pick: Callable[[list[str]], list[str]]
    if order == list(range(width)):
        pick = _identity
    else:
        getter = operator.itemgetter(*order)
        pick = (lambda cells: [getter(cells)]) if len(order) == 1 else (lambda cells: list(getter(cells)))
    previous_end = reader.line_num
    extra = previous_end - 1  # lines beyond one per record so far (a header over several lines)
    if extra:
        problems.spans.append((previous_end + 1, extra))
    try:
        for count, cells in enumerate(reader, 1):
            if count > limit:
                raise TooLarge(
                    f"the file has more than {limit:,} rows, more than one upload may hold (MAX_UPLOAD_ROWS);"
                    " upload the rows you changed as a partial upload, or ask the administrator"
                )
            line = previous_end + 1
            previous_end = reader.line_num
            if previous_end != line:  # a quoted value ran over several lines: still one row
                extra += previous_end - line
                problems.spans.append((previous_end + 1, extra))
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
