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

from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from records import SEP, Row

# The one mapping of row kinds: a kind of row change as a Diff, summaries, pages and the API name
# it (in that order) → its action, as staged rows, the history and the audit log store it.
ROW_KINDS: dict[str, str] = {"added": "add", "modified": "modify", "deleted": "delete"}
KIND_OF: dict[str, str] = {action: kind for kind, action in ROW_KINDS.items()}  # action → kind
DIFF_CSV_ORDER = ("modified", "added", "deleted")  # the kinds in the order a diff file lists them

__all__ = [
    "Clash",
    "Diff",
    "DuplicateKey",
    "Modified",
    "Row",
    "changed_fields",
    "compare",
    "compare_cells",
    "unique_clashes",
]


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
    bad_lines: dict[int, str] = field(default_factory=dict)  # line → key of each row that could not be parsed

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


def compare_cells(
    current: Mapping[str, str],
    rows: Iterable[tuple[int, list[str]]],
    key_index: int,
    parse: Callable[[int, list[str]], Row | None],
    *,
    full: bool = True,
    sep: str = SEP,
    trust_raw: Callable[[str], bool] | None = None,
) -> Diff:
    """`compare` for raw uploaded rows (line, cells), parsing only the rows that are not unchanged.

    A row whose cells joined by `sep` are exactly the stored record of its key is unchanged without
    being parsed (stored records are canonical: parsing could only give the same text), unless
    `trust_raw(text)` is False (text that means something else, e.g. an escaped formula). Every
    other row goes through `parse(line, cells)`: its canonical Row, or None for a bad row (which
    `parse` reports; it is left out, as `compare` never sees it).

    The result equals `compare(current, <every good row parsed>, full=full)`. An unchanged row
    costs one dictionary operation: stored keys are popped from a copy of `current` as they are
    met, and the rows left over are the deletions (`compare` needs three lookups per row, and
    these dominate the diff of a million rows: docs/PERFORMANCE.md).

    >>> current = {"1": "1|a", "2": "2|b", "3": "3|c"}
    >>> parse = lambda line, cells: Row(line, cells[0], "|".join(c.lower() for c in cells))
    >>> rows = [(2, ["1", "a"]), (3, ["2", "B"]), (4, ["4", "D"]), (5, ["4", "e"])]
    >>> d = compare_cells(current, rows, 0, parse, sep="|")
    >>> d.added, d.deleted, d.unchanged, d.duplicates
    ([Row(line=4, key='4', record='4|d')], [('3', '3|c')], 2, [DuplicateKey(line=5, key='4', first_line=4)])
    """
    result = Diff()
    added, modified = result.added, result.modified
    remaining = dict(current)  # stored rows not met yet; those left at the end are deleted
    pop, join = remaining.pop, sep.join
    met_keys: list[str] = []  # keys met, with their lines, in upload order: to name a duplicate's first line
    met_lines = array("q")
    new_keys: set[str] = set()
    bad_keys: set[str] = set()
    repeated: list[tuple[int, str]] = []
    unchanged = 0
    for line, cells in rows:
        key = cells[key_index]
        if bad_keys and key in bad_keys:  # an earlier row with this key could not be parsed
            parse(line, cells)  # only for what it reports about this row's cells
            result.bad_lines[line] = key
            repeated.append((line, key))
            continue
        before = pop(key, None)
        if before is not None:
            text = join(cells)
            if text == before and (trust_raw is None or trust_raw(text)):
                unchanged += 1
                met_keys.append(key)
                met_lines.append(line)
                continue
        row = parse(line, cells)
        if row is None or row.key != key:
            if before is not None:
                remaining[key] = before  # not met after all (a bad row, or a key that is not canonical)
            if row is None:  # a bad row (`parse` reported it); its key still counts for duplicates
                result.bad_lines[line] = key
                if before is None and (key in current or key in new_keys):
                    repeated.append((line, key))
                elif key.strip():
                    bad_keys.add(key)
                    met_keys.append(key)
                    met_lines.append(line)
                continue
            key = row.key
            before = pop(key, None)
        if before is None:
            if key in current or key in new_keys:  # popped or added by an earlier row
                repeated.append((row.line, key))
                continue
            new_keys.add(key)
            added.append(row)
        elif before == row.record:
            unchanged += 1
        else:
            modified.append(Modified(row.line, key, before, row.record))
        met_keys.append(key)
        met_lines.append(row.line)
    result.unchanged = unchanged
    if repeated:
        first_line: dict[str, int] = {}
        for key, line in zip(met_keys, met_lines, strict=True):
            first_line.setdefault(key, line)
        result.duplicates = [DuplicateKey(line, key, first_line[key]) for line, key in repeated]
    if full:
        result.deleted = list(remaining.items())
    return result


class Clash(NamedTuple):
    """A row an upload adds or changes whose value in a `unique` column another row has too.

    `other_line` is the other row's line when the upload adds or changes it as well, None when it
    is a row of the table the upload leaves alone."""

    line: int
    key: str
    value: str
    other_key: str
    other_line: int | None


def unique_clashes(current: Mapping[str, str], result: Diff, index: int, sep: str = SEP) -> list[Clash]:
    """The rows `result` adds or changes whose value of field `index` another row of the table
    would have after applying it. Empty values never clash (they mean "no value").

    Only values of the added and changed rows are looked for, in one pass over `current`.

    >>> current = {"a": "a|x", "b": "b|y", "c": "c|z"}
    >>> result = Diff(added=[Row(5, "d", "d|y"), Row(6, "e", "e|w"), Row(7, "f", "f|w")],
    ...               modified=[Modified(2, "a", "a|x", "a|z")], deleted=[("c", "c|z")])
    >>> unique_clashes(current, result, 1, sep="|")
    [Clash(line=5, key='d', value='y', other_key='b', other_line=None), Clash(line=7, key='f', value='w', other_key='e', other_line=6)]
    """
    changed = sorted(
        [(r.line, r.key, r.record) for r in result.added] + [(m.line, m.key, m.after) for m in result.modified]
    )
    first: dict[str, tuple[str, int]] = {}  # value → (key, line) of the first added or changed row holding it
    clashes = []
    for line, key, record in changed:
        value = record.split(sep)[index]
        if value == "":
            continue
        if value in first:
            clashes.append(Clash(line, key, value, *first[value]))
        else:
            first[value] = (key, line)
    if first:
        replaced = {m.key for m in result.modified} | {key for key, _ in result.deleted}
        for key, record in current.items():
            value = record.split(sep, index + 1)[index]
            if value in first and key not in replaced:
                clashes.append(Clash(first[value][1], first[value][0], value, key, None))
    return sorted(clashes, key=lambda c: (c.line, c.key))


def changed_fields(before: Sequence[str], after: Sequence[str], names: Sequence[str]) -> list[str]:
    """Names of the fields whose values differ between two unpacked records.

    >>> changed_fields(["1", "a", "x"], ["1", "b", "x"], ["id", "name", "team"])
    ['name']
    """
    return [name for name, old, new in zip(names, before, after, strict=True) if old != new]
