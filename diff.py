"""Keyed diff of an uploaded table against the current one. Pure Python: no Flask, no SQL.

Rows on both sides are *records*: each row's values already parsed to their schema types and
written in canonical text (see schema.py), so two rows are equal exactly when their records
are equal strings. That keeps the comparison of a million rows a dictionary lookup and a string
compare per row.

>>> current = {"1": "1|a", "2": "2|b", "3": "3|c"}
>>> d = compare(current, [Row(2, "1", "1|a"), Row(3, "2", "2|B"), Row(4, "4", "4|d")])
>>> [r.key for r in d.added], [m.key for m in d.modified], [k for k, _ in d.deleted], d.unchanged
(['4'], ['2'], ['3'], 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple


class Row(NamedTuple):
    """One uploaded row: the physical line it starts on (header = line 1), its key, its record."""

    line: int
    key: str
    record: str


class Modified(NamedTuple):
    """A row whose key exists on both sides with different values."""

    line: int
    key: str
    before: str
    after: str


class DuplicateKey(NamedTuple):
    """A key that appears on more than one line of the upload."""

    line: int
    key: str
    first_line: int


@dataclass
class Diff:
    """What an upload would change: rows to add, modify and delete, and how many are the same."""

    added: list[Row] = field(default_factory=list)
    modified: list[Modified] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)  # (key, record before)
    unchanged: int = 0
    duplicates: list[DuplicateKey] = field(default_factory=list)

    @property
    def changed(self) -> int:
        """Rows this diff would add, modify or delete."""
        return len(self.added) + len(self.modified) + len(self.deleted)


def compare(current: Mapping[str, str], uploaded: Iterable[Row], *, full: bool = True) -> Diff:
    """Compare uploaded rows with the current table by key.

    `full=True`: the upload is the whole table, so current keys it lacks are deletions.
    `full=False` (a partial upload): only additions and modifications.
    A key seen twice is reported in `duplicates` (its later lines are not compared).
    """
    result = Diff()
    first_line: dict[str, int] = {}
    added, modified = result.added, result.modified
    unchanged = 0
    for row in uploaded:
        key = row.key
        if key in first_line:
            result.duplicates.append(DuplicateKey(row.line, key, first_line[key]))
            continue
        first_line[key] = row.line
        before = current.get(key)
        if before is None:
            added.append(row)
        elif before == row.record:
            unchanged += 1
        else:
            modified.append(Modified(row.line, key, before, row.record))
    result.unchanged = unchanged
    if full and len(first_line) - len(added) < len(current):
        result.deleted = [(key, record) for key, record in current.items() if key not in first_line]
    return result


def changed_fields(before: Sequence[str], after: Sequence[str], names: Sequence[str]) -> list[str]:
    """Names of the fields whose values differ between two unpacked records.

    >>> changed_fields(["1", "a", "x"], ["1", "b", "x"], ["id", "name", "team"])
    ['name']
    """
    return [name for name, old, new in zip(names, before, after, strict=True) if old != new]
