"""The record format: a row's canonical values in field order, joined by `SEP`. Pure Python.

Every row of the shared table, every staged row of a change request and every history entry is
stored as a record (schema.py turns cell text into canonical values; docs/ARCHITECTURE.md says
why). Two rows are equal exactly when their records are equal strings.

>>> record = pack(["DS-1", "Sales", ""])
>>> unpack(record), repack(record, ["id", "name", "team"], ["id", "team", "owner"])
(['DS-1', 'Sales', ''], 'DS-1\\x1f\\x1f')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

SEP = "\x1f"  # ASCII unit separator: never valid inside a value (schema refuses control characters)


class Row(NamedTuple):
    """One uploaded row: the physical line it starts on (header = line 1), its key, its record."""

    line: int
    key: str
    record: str


T = TypeVar("T")


@dataclass
class RecordStream(Generic[T]):
    """A table's records as of one version, streamed in key order while a read stays open: the one
    shape of the table now (store.table.open_export), the table as of a version (history.table_at)
    and what a download writes (history.records). `T` is a record, or (key, record) where the
    reader needs the keys. `close()` ends the read (safe twice); `with` closes it too.

    >>> with RecordStream(3, 2, iter([pack(["DS-1", "Sales"]), pack(["DS-2", "HR"])]), lambda: None) as table:
    ...     (table.version, table.row_count, [unpack(r)[1] for r in table.records])
    (3, 2, ['Sales', 'HR'])
    """

    version: int
    row_count: int
    records: Iterator[T]
    close: Callable[[], None]

    def __enter__(self) -> RecordStream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pack(values: Iterable[str]) -> str:
    """Canonical values → record text."""
    return SEP.join(values)


def unpack(record: str) -> list[str]:
    """Record text → canonical values, in the order of the fields it was packed with."""
    return record.split(SEP)


def repack(record: str, old_names: Sequence[str], new_names: Sequence[str]) -> str:
    """A record packed under `old_names` → the same values under `new_names` (new fields empty)."""
    by_name = dict(zip(old_names, unpack(record), strict=False))
    return pack(by_name.get(n, "") for n in new_names)


def changed_marker(before: str, after: str, names: Sequence[str]) -> str:
    """The names of the fields a modification changes, each between SEPs, as pending_changes.changed
    keeps them: `SEP name SEP` is then found with LIKE, whatever the name.

    >>> changed_marker(pack(["1", "a", "x"]), pack(["1", "b", "y"]), ["id", "name", "team"]).split(SEP)
    ['', 'name', 'team', '']
    """
    changed = [name for name, old, new in zip(names, unpack(before), unpack(after), strict=False) if old != new]
    return SEP + SEP.join(changed) + SEP if changed else SEP


def marker_names(marker: str | None) -> list[str]:
    """The field names of a changed marker (changed_marker).

    >>> marker_names("\x1fname\x1fteam\x1f"), marker_names(SEP), marker_names(None)
    (['name', 'team'], [], [])
    """
    return [n for n in (marker or "").split(SEP) if n]


def as_dict(record: str, names: Sequence[str]) -> dict[str, str]:
    """Record text → {field name: canonical value} under the field list it was packed with.

    >>> as_dict("1\\x1fa", ["id", "name"])
    {'id': '1', 'name': 'a'}
    """
    return dict(zip(names, unpack(record), strict=False))
