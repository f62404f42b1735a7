"""What can be wrong with an uploaded file, and where: a line (the header is line 1) and a column.

>>> problems = ProblemList()
>>> problems.add(3, "owner", "is required but empty")
>>> str(problems[0]), problems.total
('line 3, owner: is required but empty', 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_PROBLEMS = 200


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


class TooLarge(FileProblems):
    """The file holds more than the app reads (too many rows, or a workbook that unpacks to far more
    than its size): refused as a whole, as soon as that is known, without reading the rest."""

    def __init__(self, message: str):
        super().__init__([Problem(None, None, message)])


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
