"""How an uploaded file writes numbers and dates, decided column by column from all of its cells.
Pure Python (no Flask, no SQL).

A single cell can read two ways. `135.450` is 135450 in a German file (a thousands dot) and 135.45
in an English one; `4/2/12` is 4 February in Britain and April 2 in the US. The other cells of
its column usually say which: a column holding `5.840,4` writes decimal commas, one holding
`31/03/19` puts the day first. `decide` reads that evidence from the file's rows and gives each
field its values.Reading; a column without evidence follows the rest of the file, and a file
without any follows its separator.

- Numbers: only files separated by `;`, tab or `|` can hold decimal commas (in a `,` file,
  `1,5` would be two cells), so only their number columns are looked at, before any row is
  parsed. A column with decimal commas and decimal points both is refused, naming a cell of each.
  A `;` file without evidence is read the European way (`;` is what European Excel writes).
- Dates: a column's cells that put the day first (`31/03/19`, and the dotted `31.03.19`, which is
  always day first) or the month first (`03/31/19`) settle its ambiguous cells; a column with
  both, or neither, refuses them as ambiguous, naming both readings.

>>> schema = Schema.from_dict({"primaryKey": "k", "fields": [
...     {"name": "k"}, {"name": "x", "type": "number"}, {"name": "d", "type": "date"}]})
>>> rows = [(2, ["a", "5.840,4", "4/2/12"]), (3, ["b", "135.450", "31/03/19"])]
>>> [(r.decimal_comma, r.day_first) for r in decide(rows, schema, ";")][1:]
[(True, None), (False, True)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from files.problems import ProblemList
from schema import Schema
from values import Reading, show

DECIMAL_COMMA_DELIMITERS = (";", "\t", "|")
NUMERIC = ("number", "integer")
DATES = ("date", "datetime")
_COMMA = re.compile(r"\s*[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+\s*|\s*[+-]?[1-9]\d{0,2}(?:\.\d{3}){2,}\s*")
_GROUPED = re.compile(r"\s*[+-]?[1-9]\d{0,2}\.\d{3}\s*")  # 135.450: says nothing
_ONE_GROUP = re.compile(r"[+-]?[1-9]\d{0,2}[.,]\d{3}")  # 135.450, 135,450: says nothing
_THOUSANDS_COMMAS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+\.\d+|[+-]?[1-9]\d{0,2}(?:,\d{3}){2,}")
_POINT = re.compile(r"\s*[+-]?\d*\.\d+(?:[eE][+-]?\d+)?\s*")
_SEPARATORS = frozenset("/.-")  # after one or two digits: a date that may say which comes first
_DAY_MONTH = re.compile(r"\s*(\d{1,2})([/.-])(\d{1,2})([/.-])(?:\d{4}|\d{2})(?!\d)")


def scans_numbers(schema: Schema, delimiter: str) -> bool:
    """Must the file's number columns be looked at before its rows are parsed?"""
    return delimiter in DECIMAL_COMMA_DELIMITERS and any(f.type in NUMERIC for f in schema.fields)


def initial(schema: Schema, delimiter: str) -> list[Reading]:
    """The readings before any evidence: decimal points in a `,` file, decimal commas in a `;` file,
    either in a tab or `|` file; date columns pending (their evidence is gathered when needed)."""
    comma = {";": True, "\t": None, "|": None}.get(delimiter, False)
    return [
        Reading(decimal_comma=comma, guessed=True, pending=True)
        if f.type in NUMERIC
        else Reading(pending=f.type in DATES)
        for f in schema.fields
    ]


def number_kind(text: str) -> str | None:
    """'comma' or 'point' when a number cell shows which decimal separator its file uses, else None.

    >>> [number_kind(t) for t in ("5.840,4", "12,5", "1.234.567", "0.25", "1234.5", "1,234.5", "135.450", "135,450", "3")]
    ['comma', 'comma', 'comma', 'point', 'point', 'point', None, None, None]
    """
    if _ONE_GROUP.fullmatch(text.strip()):
        return None  # 135,450 like 135.450: a thousands separator, or a decimal one?
    if _THOUSANDS_COMMAS.fullmatch(text.strip()):
        return "point"  # 1,234.5 and 1,234,567
    if "," in text or text.count(".") > 1:
        return "comma" if _COMMA.fullmatch(text) else None
    if "." in text and not _GROUPED.fullmatch(text) and _POINT.fullmatch(text):
        return "point"
    return None


def date_kind(text: str) -> str | None:
    """'day' or 'month' when a date cell shows which comes first in its column, else None.

    >>> [date_kind(t) for t in ("31/03/19", "03/31/2019 0:00", "31.03.19", "04.02.12", "4/2/12", "2024-03-31")]
    ['day', 'month', 'day', 'day', None, None]
    """
    m = _DAY_MONTH.match(text)
    if m is None:
        return None
    a, b = int(m[1]), int(m[3])
    if m[2] == m[4] == "." or (a > 12 and 1 <= b <= 12):
        return "day"
    if b > 12 and 1 <= a <= 12:
        return "month"
    return None


def decide(
    rows: Iterable[tuple[int, list[str]]], schema: Schema, delimiter: str, problems: ProblemList | None = None
) -> list[Reading]:
    """Each field's Reading from the evidence in `rows` (line, cells in schema order).

    A number column that mixes decimal commas and decimal points is reported to `problems` (once,
    at a cell of the rarer kind) and refuses its ambiguous cells.
    """
    fields = schema.fields
    numeric = [i for i, f in enumerate(fields) if f.type in NUMERIC]
    dated = [i for i, f in enumerate(fields) if f.type in DATES]
    evidence: dict[int, dict[str, list]] = {i: {} for i in numeric + dated}  # field → kind → [count, line, cell]
    for line, cells in rows:
        for i in numeric:
            cell = cells[i]
            if ("," in cell or "." in cell) and (kind := number_kind(cell)):
                _note(evidence[i], kind, line, cell)
        for i in dated:
            cell = cells[i]
            if (cell[1:2] in _SEPARATORS or cell[2:3] in _SEPARATORS) and (kind := date_kind(cell)):
                _note(evidence[i], kind, line, cell)
    if delimiter not in DECIMAL_COMMA_DELIMITERS:
        for i in numeric:  # a decimal comma in a `,` file is refused with a hint, and shows nothing
            evidence[i].pop("comma", None)
    if problems is not None:
        for i in numeric:
            if len(evidence[i]) == 2:
                _report_mixed(problems, fields[i].name, evidence[i])
    numbers = _fallback([evidence[i] for i in numeric])
    dates = _fallback([evidence[i] for i in dated])
    default_comma = {";": True, "\t": None, "|": None}.get(delimiter, False)
    readings = []
    for i, f in enumerate(fields):
        if f.type in NUMERIC:
            comma = _choice(evidence[i], "comma", "point")
            if comma is _UNDECIDED:
                comma = numbers
            if comma is _UNDECIDED:  # no cell of the file shows it: only its separator suggests it
                readings.append(Reading(decimal_comma=default_comma, guessed=True))
            else:
                readings.append(Reading(decimal_comma=comma))  # type: ignore[arg-type]
        elif f.type in DATES:
            readings.append(Reading(day_first=_or(_choice(evidence[i], "day", "month"), dates, None)))
        else:
            readings.append(Reading())
    return readings


_UNDECIDED = object()


def _note(kinds: dict[str, list], kind: str, line: int, cell: str) -> None:
    if kind in kinds:
        kinds[kind][0] += 1
    else:
        kinds[kind] = [1, line, cell]


def _choice(kinds: dict[str, list], yes: str, no: str) -> object:
    """True, False, None (both kinds: mixed) or _UNDECIDED (no evidence)."""
    if yes in kinds and no in kinds:
        return None
    if yes in kinds:
        return True
    return False if no in kinds else _UNDECIDED


def _fallback(columns: list[dict[str, list]]) -> object:
    """The file's choice, for columns without evidence of their own: the one kind its columns show."""
    seen = {kind for kinds in columns for kind in kinds}
    if len(seen) != 1:
        return _UNDECIDED
    return next(iter(seen)) in ("comma", "day")


def _or(*choices: object) -> bool | None:
    for choice in choices:
        if choice is not _UNDECIDED:
            return choice  # type: ignore[return-value]
    return None


def _report_mixed(problems: ProblemList, name: str, kinds: dict[str, list]) -> None:
    """One problem for a column with decimal commas and decimal points, at the first cell of the rarer kind."""
    (count_c, line_c, cell_c), (count_p, line_p, cell_p) = kinds["comma"], kinds["point"]
    if (count_p, -line_p) <= (count_c, -line_c):
        problems.add(
            line_p,
            name,
            f"{show(cell_p)} has a decimal point, but this column writes decimal commas (line {line_c}:"
            f" {show(cell_c)}); write every number of a column the same way",
        )
    else:
        problems.add(
            line_c,
            name,
            f"{show(cell_c)} has a decimal comma, but this column writes decimal points (line {line_p}:"
            f" {show(cell_p)}); write every number of a column the same way",
        )
