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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

MAX_PROBLEMS = 200


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


class FileProblems(Exception):
    """The file cannot be staged; `problems` lists why (at most MAX_PROBLEMS), `total` counts all."""

    def __init__(self, problems: Sequence[Problem], total: int | None = None):
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

    def add(self, line: int | None, column: str | None, message: str, key: str | None = None) -> None:
        self.total += 1
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
            raise FileProblems(self.located(), self.total)
