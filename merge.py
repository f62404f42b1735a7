"""Three-way merge of records by key and by cell. Pure Python: no Flask, no SQL.

A file downloaded at version B and uploaded when the table is at version C is merged, not
diffed: for every row, *base* is the row at B, *theirs* the row now, *yours* the row in the file
(None where a row is absent). What you did not change is never staged, whatever others did to it;
what only you changed is staged; where both changed the same thing differently, there is a
conflict for a person to resolve.

>>> names = ["id", "name", "team"]
>>> merge_row("1", "1|a|x", "1|A|x", "1|a|y", names, sep="|")  # others renamed it, you moved it
Merged(action='modify', before='1|A|x', after='1|A|y', conflicts=[])
>>> merge_row("1", "1|a|x", "1|A|x", "1|b|x", names, sep="|").conflicts
[Conflict(key='1', column='name', base='a', theirs='A', yours='b')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from diff import Diff, Modified, Row
from records import SEP


class Conflict(NamedTuple):
    """Both sides changed the same thing differently since the base.

    A cell conflict names its `column` and holds the three cell values; a row conflict (`column`
    None: you changed a row others deleted, you deleted a row others changed, both added the key
    with different values) holds the three records, None where the row is absent.
    """

    key: str
    column: str | None
    base: str | None
    theirs: str | None
    yours: str | None


class Merged(NamedTuple):
    """What to stage for one key: `action` (None: nothing) turning `before` (theirs) into `after`,
    and the conflicts left for a person. Conflicting cells keep their value in `after`."""

    action: str | None
    before: str | None
    after: str | None
    conflicts: list[Conflict]


NOTHING = Merged(None, None, None, [])


def merge_row(
    key: str, base: str | None, theirs: str | None, yours: str | None, names: Sequence[str], sep: str = SEP
) -> Merged:
    """Merge one row: base (the row at the file's version), theirs (the row now), yours (the file's).

    >>> names = ["id", "v"]
    >>> merge_row("1", "1|a", None, None, names, sep="|")  # deleted by both
    Merged(action=None, before=None, after=None, conflicts=[])
    >>> merge_row("1", None, "1|a", None, names, sep="|")  # added by others, not in your older file
    Merged(action=None, before=None, after=None, conflicts=[])
    >>> merge_row("1", "1|a", None, "1|a", names, sep="|")  # deleted by others, unchanged in your file
    Merged(action=None, before=None, after=None, conflicts=[])
    >>> merge_row("1", "1|a", "1|a", None, names, sep="|")  # deleted by you
    Merged(action='delete', before='1|a', after=None, conflicts=[])
    >>> merge_row("1", "1|a", None, "1|b", names, sep="|").conflicts  # you changed what others deleted
    [Conflict(key='1', column=None, base='1|a', theirs=None, yours='1|b')]
    """
    if yours in (theirs, base):
        return NOTHING  # nothing left to do, or you did not change it: theirs stands
    if theirs == base:  # only you changed it
        if theirs is None:
            return Merged("add", None, yours, [])
        if yours is None:
            return Merged("delete", theirs, None, [])
        return Merged("modify", theirs, yours, [])
    if base is None or theirs is None or yours is None:
        return Merged(None, None, None, [Conflict(key, None, base, theirs, yours)])
    return _merge_cells(key, base, theirs, yours, names, sep)


def _merge_cells(key: str, base: str, theirs: str, yours: str, names: Sequence[str], sep: str) -> Merged:
    """Both changed the row: take each cell from whoever changed it; a cell both changed differently conflicts."""
    merged, conflicts = [], []
    for name, b, t, y in zip(names, base.split(sep), theirs.split(sep), yours.split(sep), strict=True):
        if y in (b, t):
            merged.append(t)
        elif t == b:
            merged.append(y)
        else:
            merged.append(t)
            conflicts.append(Conflict(key, name, b, t, y))
    after = sep.join(merged)
    if after == theirs:
        return Merged(None, None, None, conflicts)
    return Merged("modify", theirs, after, conflicts)


@dataclass
class MergeResult:
    """A diff after merging: what to stage, the conflicts, and how many rows of the file changed nothing."""

    diff: Diff
    conflicts: list[Conflict] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # key → line in the file, for the conflicts

    @property
    def changed(self) -> int:
        return self.diff.changed


def rebase(
    two_way: Diff, base: Mapping[str, str | None], current: Mapping[str, str], names: Sequence[str], sep: str = SEP
) -> MergeResult:
    """Turn a diff of the file against the table now into the three-way merge against `base`.

    `base` holds only the keys others changed since the file's version (their record then, None
    when they did not exist), so the cost grows with what changed since, not with the table; every
    other key's base is its current record, and the two-way diff is already the merge for it.

    >>> current = {"1": "1|A", "3": "3|c"}
    >>> two_way = Diff(modified=[Modified(2, "1", "1|A", "1|a")], deleted=[("3", "3|c")], added=[Row(3, "2", "2|b")])
    >>> merged = rebase(two_way, {"1": "1|a", "2": "2|b", "3": None}, current, ["id", "v"], sep="|")
    >>> merged.diff.changed, merged.diff.unchanged, merged.conflicts  # nothing of yours is left
    (0, 2, [])
    """
    if not base:
        return MergeResult(two_way)
    out = Diff(unchanged=two_way.unchanged, duplicates=two_way.duplicates)
    result = MergeResult(out)

    def add(line: int | None, key: str, yours: str | None, in_file: bool) -> None:
        merged = merge_row(key, base[key], current.get(key), yours, names, sep)
        result.conflicts.extend(merged.conflicts)
        if merged.conflicts and line is not None:
            result.lines[key] = line
        if merged.action == "add":
            out.added.append(Row(line or 0, key, merged.after))  # type: ignore[arg-type]
        elif merged.action == "modify":
            out.modified.append(Modified(line or 0, key, merged.before, merged.after))  # type: ignore[arg-type]
        elif merged.action == "delete":
            out.deleted.append((key, merged.before))  # type: ignore[arg-type]
        elif in_file and not merged.conflicts:
            out.unchanged += 1

    for row in two_way.added:
        if row.key in base:
            add(row.line, row.key, row.record, True)
        else:
            out.added.append(row)
    for m in two_way.modified:
        if m.key in base:
            add(m.line, m.key, m.after, True)
        else:
            out.modified.append(m)
    for key, record in two_way.deleted:
        if key in base:
            add(None, key, None, False)
        else:
            out.deleted.append((key, record))
    return result
