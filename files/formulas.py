"""Formula escaping (OWASP "CSV injection"): text a spreadsheet would run as a formula is written
with a leading `'`, and the `'` is taken off again on upload, so the round trip is exact.

>>> escape_formula("=1+1"), escape_formula("'=1+1"), escape_formula("it's")
("'=1+1", "''=1+1", "it's")
>>> [unescape_formula(escape_formula(v)) for v in ("=1+1", "'=1+1", "it's")]
['=1+1', "'=1+1", "it's"]
"""

from __future__ import annotations

import re
from collections.abc import Callable

from schema import Schema

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_MAYBE_ESCAPED = re.compile("(?:^|\x1f)'")


def _needs_escape(value: str) -> bool:
    """Would a spreadsheet run this text as a formula (or is it already an escaped one)?"""
    while value.startswith("'"):
        value = value[1:]
        if value.startswith(FORMULA_TRIGGERS):
            return True
    return value.startswith(FORMULA_TRIGGERS)


def escape_formula(value: str) -> str:
    """Prefix `'` to text a spreadsheet would run as a formula; `unescape_formula` reverses it exactly."""
    return "'" + value if _needs_escape(value) else value


def unescape_formula(value: str) -> str:
    """Undo `escape_formula`: strip one `'` only where escape_formula would have added it."""
    if value.startswith("'") and _needs_escape(value[1:]):
        return value[1:]
    return value


def unescaper(schema: Schema) -> Callable[[list[str]], list[str]]:
    """A function that unescapes the string cells of a row (cells in schema order)."""
    indexes = schema.string_indexes

    def unescape_row(cells: list[str]) -> list[str]:
        for i in indexes:
            if cells[i].startswith("'"):
                cells[i] = unescape_formula(cells[i])
        return cells

    return unescape_row


def unescaped_as_is(record: str) -> bool:
    """False when a cell of this raw row (cells joined by SEP) starts with `'`: unescaping may change it.

    >>> unescaped_as_is("1\\x1fit's"), unescaped_as_is("1\\x1f'=1+1")
    (True, False)
    """
    return "'" not in record or _MAYBE_ESCAPED.search(record) is None
