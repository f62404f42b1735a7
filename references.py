"""References between tables (Table Schema `foreignKeys`), checked on records. Pure Python: no Flask, no SQL.

Two checks keep every reference pointing at a row that exists:

- `check_references`: the rows an upload adds or changes must point at keys of the referenced
  table *as it will be* after the request (`keys_after`: rows the same request adds count, rows it
  deletes do not).
- `referencing_rows`: the keys a request deletes must not be pointed at by rows the request
  leaves in place (`untouched`); the rows it adds or changes were checked by `check_references`.

An empty value is no reference (Table Schema: a foreign key cell may be empty unless the field is
`required`, which schema.py checks). Values are compared as canonical text, as records hold them.

The results are plain tuples with their own words for the user (`message`); the caller turns them
into `files.problems.Problem`s (files/ is a floor above this one) or a conflict.

>>> from package import Package
>>> from records import Row
>>> package = Package.from_dict({"resources": [
...     {"name": "teams", "schema": {"primaryKey": "name", "fields": [{"name": "name"}]}},
...     {"name": "datasets", "schema": {"primaryKey": "id", "fields": [{"name": "id"}, {"name": "team"}],
...      "foreignKeys": [{"fields": "team", "reference": {"resource": "teams", "fields": "name"}}]}}]})
>>> upload = Diff(added=[Row(2, "1", "1\\x1fSales"), Row(3, "2", "2\\x1fFinanse"), Row(4, "3", "3\\x1f")])
>>> teams = keys_after({"Sales", "Finance"}, None)
>>> [d.message for d in check_references(package.table("datasets"), upload, lambda name: teams)]
['team "Finanse" is not a key of table "teams"']
>>> found = referencing_rows({"Sales"}, [Referring("datasets", "team", 1, [("1", "1\\x1fSales"), ("2", "2\\x1f")])])
>>> found.total, [r.message for r in found.rows]
(1, ['row "1" of table "datasets" still refers to it in team'])
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from diff import Diff
from package import Table
from records import SEP

__all__ = [
    "MAX_REFERENCING",
    "Dangling",
    "KeysAfter",
    "Reference",
    "References",
    "Referring",
    "check_references",
    "keys_after",
    "referencing_rows",
    "untouched",
]

MAX_REFERENCING = 20  # referencing rows named when a deletion is refused; the total is always given


class Dangling(NamedTuple):
    """A cell of an added or changed row whose value is no key of the table its column refers to."""

    line: int  # the row's line in the upload (the header is line 1)
    key: str  # the row's key
    column: str  # the foreign key's field
    value: str
    resource: str  # the table the column refers to

    @property
    def message(self) -> str:
        """What to tell the person who uploaded the file (the line and column are given separately)."""
        return f'{self.column} "{self.value}" is not a key of table "{self.resource}"'


@dataclass(frozen=True)
class KeysAfter:
    """The keys of a table as they will be once a request is applied: its current keys, plus the
    keys the request adds, minus the keys it deletes (a modification never changes a key).

    A view, not a copy: `current` is usually the `{key: record}` the upload is diffed against
    already, and copying a large table's keys into a new set would cost more than the check.
    """

    current: Container[str]
    added: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()

    def __contains__(self, key: object) -> bool:
        return key in self.added or (key in self.current and key not in self.deleted)


def keys_after(current: Container[str], result: Diff | None) -> Container[str]:
    """The keys of the referenced table after the request: `current` with `result`'s additions and
    without its deletions (`result` None, or one that adds and deletes nothing: `current` itself).

    >>> from records import Row
    >>> keys = keys_after({"a", "b"}, Diff(added=[Row(2, "c", "c")], deleted=[("b", "b")]))
    >>> ["a" in keys, "b" in keys, "c" in keys, "d" in keys]
    [True, False, True, False]
    """
    if result is None or not (result.added or result.deleted):
        return current
    return KeysAfter(current, frozenset(r.key for r in result.added), frozenset(k for k, _ in result.deleted))


def check_references(
    table: Table, result: Diff, keys_of: Callable[[str], Container[str]], sep: str = SEP
) -> list[Dangling]:
    """The references of `table`'s added and changed rows (`result`) that point at no key, in line
    order (within a line, in the order of the foreign keys). `keys_of(name)` gives the keys of the
    referenced table `name` after the request (`keys_after`); it is called once per referenced table.

    Added rows: every non-empty foreign key cell is checked. Modified rows: only the cells the
    upload changes. A value already in the table that the user did not touch is not theirs to fix
    (the row may predate the foreign key in schema.json, or its target may have been deleted
    before references were enforced), and refusing it would block every later upload of the
    table until someone else repaired it; a changed cell is checked whatever it changes to. Keys
    this request deletes from the referenced table while untouched rows still point at them are
    `referencing_rows`' business.

    Cost: per foreign key, one split of each added or changed record up to that field and one
    lookup in the keys.
    """
    if not table.foreign_keys:
        return []
    names = table.schema.names
    checks = [(names.index(fk.field), fk.field, fk.resource, keys_of(fk.resource)) for fk in table.foreign_keys]
    found: list[Dangling] = []
    for position, column, resource, keys in checks:
        for row in result.added:
            value = row.record.split(sep, position + 1)[position]
            if value and value not in keys:
                found.append(Dangling(row.line, row.key, column, value, resource))
        for m in result.modified:
            value = m.after.split(sep, position + 1)[position]
            if value and value not in keys and m.before.split(sep, position + 1)[position] != value:
                found.append(Dangling(m.line, m.key, column, value, resource))
    found.sort(key=_line)  # stable: within a line, the foreign keys stay in the schema's order
    return found


def _line(found: Dangling) -> int:
    return found.line


class Referring(NamedTuple):
    """One column referring to the table whose rows are deleted: its table, field name, position
    in the record, and that table's rows as (key, record): any iterable, so it can stream from the
    database. Give only the rows the request leaves in place (`untouched`)."""

    table: str
    field: str
    position: int
    rows: Iterable[tuple[str, str]]


class Reference(NamedTuple):
    """A row that still points at a key being deleted."""

    table: str
    key: str  # the referring row's key
    field: str
    value: str  # the deleted key it points at

    @property
    def message(self) -> str:
        """Words for the key being deleted, e.g. on the review page next to that deletion."""
        return f'row "{self.key}" of table "{self.table}" still refers to it in {self.field}'


class References(NamedTuple):
    """The first referencing rows found (at most the limit asked for) and how many there are."""

    rows: list[Reference]
    total: int

    def message(self, table: str) -> str:
        """One sentence for a refused deletion from `table`, naming the first referencing rows.

        >>> References([Reference("datasets", "7", "team", "Sales")], 3).message("teams")
        'rows of table "teams" cannot be deleted while 3 rows refer to them: datasets "7" (team "Sales"), …'
        """
        named = ", ".join(f'{r.table} "{r.key}" ({r.field} "{r.value}")' for r in self.rows)
        more = ", …" if self.total > len(self.rows) else ""
        rows = "1 row refers" if self.total == 1 else f"{self.total:,} rows refer"
        return f'rows of table "{table}" cannot be deleted while {rows} to them: {named}{more}'


def referencing_rows(
    deleted: Container[str], referring: Iterable[Referring], limit: int = MAX_REFERENCING, sep: str = SEP
) -> References:
    """The rows of `referring` whose value in its column is one of the `deleted` keys: the first
    `limit` found, in the order given, and the total (every row is read, to count them).

    Rows stream through once and are not kept, so a caller can pass a database cursor.
    """
    found: list[Reference] = []
    total = 0
    for table, field, position, rows in referring:
        for key, record in rows:
            value = record.split(sep, position + 1)[position]
            if value and value in deleted:
                total += 1
                if len(found) < limit:
                    found.append(Reference(table, key, field, value))
    return References(found, total)


def untouched(rows: Iterable[tuple[str, str]], result: Diff | None) -> Iterator[tuple[str, str]]:
    """The (key, record) rows a request leaves as they are: not modified, not deleted by `result`
    (its added and changed rows are `check_references`' business, against the keys after it).

    >>> list(untouched([("1", "a"), ("2", "b"), ("3", "c")], Diff(modified=[], deleted=[("3", "c")])))
    [('1', 'a'), ('2', 'b')]
    """
    if result is None or not (result.modified or result.deleted):
        yield from rows
        return
    touched = {m.key for m in result.modified} | {key for key, _ in result.deleted}
    for row in rows:
        if row[0] not in touched:
            yield row
