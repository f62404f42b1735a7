"""Formula escaping (OWASP "CSV injection"): text a spreadsheet would run as a formula is written
with a leading `'`, and the `'` is taken off again on upload, so the round trip is exact.

A spreadsheet runs a cell as a formula when its first character other than spaces (also the
no-break space and the ideographic space U+3000) is `=`, `+`, `-` or `@`, or their full-width
forms `＝ ＋ － ＠` (which Excel in East Asian locales takes for the same), or when it starts with
a tab or a carriage return.

>>> escape_formula("=1+1"), escape_formula("'=1+1"), escape_formula("it's"), escape_formula(" \u3000＝1")
("'=1+1", "''=1+1", "it's", "' \u3000＝1")
>>> [unescape_formula(escape_formula(v)) for v in ("=1+1", "'=1+1", "it's", " \u3000＝1")]
['=1+1', "'=1+1", "it's", ' \u3000＝1']
"""

from __future__ import annotations

import re
from collections.abc import Callable

from schema import Schema

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
BLANKS = " \u00a0\u3000"  # skipped before the first character that counts
# A cell that escape_formula may change starts like this (a regular expression, for the export's fast path).
MAY_NEED_ESCAPE = "(?:'|[" + BLANKS + "]*[=+\\-@\t\r\uff1d\uff0b\uff0d\uff20])"
FIRST_CHARACTERS = frozenset("'" + BLANKS + "".join(FORMULA_TRIGGERS))  # what such a cell starts with
_MAYBE_ESCAPED = re.compile("(?:^|\x1f)'")


def runs_as_formula(value: str) -> bool:
    """Would a spreadsheet run this text as a formula?

    >>> [runs_as_formula(v) for v in ("=1", "  -2", "\u00a0@x", "\u3000＋1", "a=1", "'=1")]
    [True, True, True, True, False, False]
    """
    return value.lstrip(BLANKS).startswith(FORMULA_TRIGGERS)


def _needs_escape(value: str) -> bool:
    """Would a spreadsheet run this text as a formula (or is it already an escaped one)?"""
    while value.startswith("'"):
        value = value[1:]
        if runs_as_formula(value):
            return True
    return runs_as_formula(value)


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
