"""What can be wrong with an uploaded file, and where: a line (the header is line 1) and a column,
the spreadsheet row (the header is row 1; a record that runs over several lines is one row) and
the row's key when it has one.

>>> problems = ProblemList()
>>> problems.add(3, "owner", "is required but empty")
>>> str(problems[0]), problems.total
('line 3, owner: is required but empty', 1)
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

MAX_PROBLEMS = 200
MAX_GROUP_VALUES = 1000  # distinct values counted one by one per group; the rest are counted together
MAX_SUGGEST_KEYS = 20_000  # "did you mean …?" only looks through tables up to this many keys
SHOWN_VALUES = 20  # values a group shows, the most frequent first
LEADING_VALUE = re.compile(r"""^('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")(?: \(\d[\d,]* characters\))? (.+)$""")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an uploaded file, and where."""

    line: int | None
    column: str | None
    message: str
    row: int | None = None  # the row a spreadsheet shows: differs from `line` after a multi-line cell
    key: str | None = None

    @property
    def sheet_row(self) -> int | None:
        """The spreadsheet row; the line itself where none was worked out (rows and lines part only
        after a record over several lines, which data_rows notes)."""
        return self.row if self.row is not None else self.line

    def as_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "row": self.sheet_row,
            "key": self.key,
            "column": self.column,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = ", ".join(p for p in (f"line {self.line}" if self.line else "", self.column or "") if p)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class ValueCount:
    """One value of a group of problems: how many rows have it, where it first is, and the nearest
    existing key when the problem is a reference to no key ("did you mean Finance?")."""

    value: str | None
    rows: int = 0
    first_line: int | None = None
    suggestion: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "rows": self.rows, "first_line": self.first_line, "suggestion": self.suggestion}


@dataclass
class Group:
    """Every problem of one kind in one column (`what`: the message without its value), counted
    per value: the summary a person reads before the row list, so 97,522 rows that name 30
    missing teams read as 30 names."""

    column: str | None
    what: str
    rows: int = 0
    values: dict[str | None, ValueCount] = field(default_factory=dict)
    other_rows: int = 0  # rows whose value came after MAX_GROUP_VALUES distinct ones

    def count(self, value: str | None, line: int | None, rows: int = 1) -> ValueCount | None:
        self.rows += rows
        found = self.values.get(value)
        if found is None:
            if len(self.values) >= MAX_GROUP_VALUES:
                self.other_rows += rows
                return None
            found = self.values[value] = ValueCount(value, first_line=line)
        found.rows += rows
        return found

    @property
    def distinct(self) -> int:
        """How many different values (at least: those past MAX_GROUP_VALUES are not told apart)."""
        return len(self.values) + (1 if self.other_rows else 0)

    def shown(self, most: int = SHOWN_VALUES) -> list[ValueCount]:
        """The most frequent values first (ties: the first met first)."""
        return sorted(self.values.values(), key=lambda v: (-v.rows, v.first_line or 0))[:most]

    def as_dict(self) -> dict[str, object]:
        return {
            "column": self.column,
            "problem": self.what,
            "rows": self.rows,
            "values": [v.as_dict() for v in self.shown()],
            "distinct_values": self.distinct,
        }


def split_message(message: str) -> tuple[str | None, str]:
    """A cell problem's message as (its value, what is wrong); (None, message) when it names no value first.

    >>> split_message("'two' is not a whole number")
    ("'two'", 'is not a whole number')
    >>> split_message("the header is empty")
    (None, 'the header is empty')
    """
    found = LEADING_VALUE.match(message)
    return (found.group(1), found.group(2)) if found else (None, message)


class Groups(dict[tuple[str | None, str], Group]):
    """The groups of a file's problems by (column, what), counted as they are found (all of them,
    not only the MAX_PROBLEMS rows listed).

    >>> groups = Groups()
    >>> for line, team in [(2, "Finanse"), (3, "Procurement"), (4, "Finanse")]:
    ...     groups.add(line, "team", f'"{team}" is not a key of table "teams"', value=team, what='is not a key of table "teams"')
    >>> groups.suggest("team", 'is not a key of table "teams"', ["Finance", "Sales"])
    >>> [(v.value, v.rows, v.suggestion) for v in groups.ordered()[0].shown()]
    [('Finanse', 2, 'Finance'), ('Procurement', 1, None)]
    """

    def add(
        self, line: int | None, column: str | None, message: str, value: str | None = None, what: str | None = None
    ) -> None:
        if what is None:
            value, what = split_message(message)
        group = self.get((column, what))
        if group is None:
            group = self[column, what] = Group(column, what)
        group.count(value, line)

    def suggest(self, column: str | None, what: str, keys: Iterable[str] | Collection[str]) -> None:
        """Name the nearest of `keys` for each value of the group (difflib; nothing for tables over
        MAX_SUGGEST_KEYS keys, where looking would cost more than the answer is worth)."""
        group = self.get((column, what))
        if group is None:
            return
        choices = []
        for key in keys:
            choices.append(key)
            if len(choices) > MAX_SUGGEST_KEYS:
                return
        folded = {c.casefold(): c for c in choices}
        for found in group.shown():
            if found.value is None:
                continue
            near = difflib.get_close_matches(found.value.casefold(), list(folded), n=1, cutoff=0.75)
            found.suggestion = folded[near[0]] if near else None

    def ordered(self) -> list[Group]:
        """The groups, the most rows first."""
        return sorted(self.values(), key=lambda g: -g.rows)

    def extend(self, other: Groups, label: str = "") -> None:
        """Add the groups of another part of the upload (`label`: which sheet or file)."""
        for (column, what), group in other.items():
            what = f"{label}: {what}" if label else what
            mine = self.get((column, what))
            if mine is None:
                self[column, what] = replace(group, what=what)
                continue
            mine.rows += group.rows
            mine.other_rows += group.other_rows
            for value, found in group.values.items():
                mine.values.setdefault(
                    value, ValueCount(value, 0, found.first_line, found.suggestion)
                ).rows += found.rows


def group_problems(problems: Iterable[Problem]) -> Groups:
    """Groups of problems known one by one (every one of them)."""
    groups = Groups()
    for p in problems:
        groups.add(p.line, p.column, p.message)
    return groups


class FileProblems(Exception):
    """The file cannot be staged; `problems` lists why (at most MAX_PROBLEMS), `total` counts all,
    `groups` sums all of them up per column and value."""

    def __init__(self, problems: Sequence[Problem], total: int | None = None, groups: Groups | None = None):
        self.groups = groups if groups is not None else group_problems(problems)
        self.problems = list(problems)[:MAX_PROBLEMS]
        self.total = total if total is not None else len(problems)
        super().__init__("; ".join(str(p) for p in self.problems[:3]))


class TooLarge(FileProblems):
    """The file holds more than the app reads (too many rows, or a workbook that unpacks to far more
    than its size): refused as a whole, as soon as that is known, without reading the rest."""

    def __init__(self, message: str):
        super().__init__([Problem(None, None, message)])


class ProblemList(list[Problem]):
    """Collects problems, keeping the first MAX_PROBLEMS but counting all of them.

    Where records ran over several lines, `spans` holds (first line after such a record, lines
    over one per record so far), so a line's row is known (`row_of`); `keys` maps lines to the
    key of the row starting there, for the problems that do not name it themselves.

    >>> problems = ProblemList()
    >>> problems.spans.append((5, 2))  # a record on lines 2-4 is row 2; line 5 is row 3
    >>> problems.keys[5] = "DS-9"
    >>> problems.add(5, "owner", "is required but empty")
    >>> problems.located()[0].as_dict()
    {'line': 5, 'row': 3, 'key': 'DS-9', 'column': 'owner', 'message': 'is required but empty'}
    """

    total = 0

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.spans: list[tuple[int, int]] = []
        self.keys: dict[int, str] = {}
        self.groups = Groups()

    def add(
        self,
        line: int | None,
        column: str | None,
        message: str,
        key: str | None = None,
        *,
        value: str | None = None,
        what: str | None = None,
    ) -> None:
        self.total += 1
        self.groups.add(line, column, message, value, what)
        if len(self) < MAX_PROBLEMS:
            self.append(Problem(line, column, message, key=key))

    def row_of(self, line: int | None) -> int | None:
        """The spreadsheet row that starts on physical `line`."""
        if line is None:
            return None
        i = bisect.bisect_right(self.spans, (line, float("inf")))
        return line - (self.spans[i - 1][1] if i else 0)

    def located(self, keys: Mapping[int, str] | None = None) -> list[Problem]:
        """The problems with their rows, and their keys from `keys` (else `self.keys`) by line."""
        keys = self.keys if keys is None else keys
        return [
            replace(p, row=self.row_of(p.line), key=p.key if p.key is not None else keys.get(p.line or 0)) for p in self
        ]

    def raise_if_any(self) -> None:
        if self.total:
            raise FileProblems(self.located(), self.total, self.groups)
