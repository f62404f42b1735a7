"""Warnings for changes that look like spreadsheet damage rather than edits. Pure Python.

Excel silently rewrites some values when a CSV is opened and saved: it drops leading zeros,
turns dates into serial numbers and long numbers into scientific notation (or rounds them to 15
significant digits). Those show up as modifications (or as a delete plus an add) that nobody
meant to make; the review page warns, so the admin can send the file back instead of approving.

Values that cannot be parsed at all (`1.23E+15` in an integer column, `45322` in a date
column) never get this far: schema.py rejects them with a message saying what Excel did.

>>> from diff import Diff, Modified, Row
>>> from schema import Schema
>>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "code"}]})
>>> d = Diff(added=[Row(2, "123", "123\\x1f")], deleted=[("00123", "00123\\x1f")],
...          modified=[Modified(3, "a", "a\\x1f2024-01-31", "a\\x1f45322")])
>>> for w in warnings(d, schema): print(w)
key '00123' looks deleted and '123' added (line 2): Excel drops leading zeros; format the key column as Text before saving
line 3, code: date '2024-01-31' became '45322', which looks like an Excel date serial number
"""

from __future__ import annotations

import re

from diff import Diff
from files.xlsx import EXCEL_DIGITS
from records import unpack
from schema import Schema, show

MAX_WARNINGS = 20
_DIGITS = re.compile(r"\d+")
_LONG_DIGITS = re.compile(r"[+-]?\d{12,}")  # Excel's General format shows 12+ digits as 1.23457E+11
_SCIENTIFIC = re.compile(r"[+-]?\d(?:[.,]\d+)?[eE][+-]?\d+")
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}[ -][A-Za-z]{3,9}[ -]\d{2,4}")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")


def warnings(result: Diff, schema: Schema) -> list[str]:
    """Human-readable warnings about likely Excel damage in a diff (at most MAX_WARNINGS, then a note)."""
    out = _lost_leading_zeros(result, schema)
    labels = [f.label if f.label == f.name else f"{f.label} ({f.name})" for f in schema.fields]
    for m in result.modified:
        if len(out) > MAX_WARNINGS:
            break
        for i, (old, new) in enumerate(zip(unpack(m.before), unpack(m.after), strict=False)):
            if old != new and (what := _damage(old, new)):
                out.append(f"line {m.line}, {labels[i]}: {what}")
    if len(out) > MAX_WARNINGS:
        out = [*out[:MAX_WARNINGS], f"… and more changes like these; only the first {MAX_WARNINGS} are listed."]
    return out


def _damage(old: str, new: str) -> str | None:
    """What Excel seems to have done to a value, or None when the change looks like an edit.

    >>> _damage("1234567890123456789", "1.23457E+18")
    "long number '1234567890123456789' became '1.23457E+18', which looks rounded by Excel; format the column as Text"
    >>> _damage("1234567890123456789", "1234567890123460000") is not None, _damage("12", "13")
    (True, None)
    """
    if _DATE_LIKE.fullmatch(old) and _SERIAL.fullmatch(new):
        return f"date {show(old)} became {show(new)}, which looks like an Excel date serial number"
    if _LONG_DIGITS.fullmatch(old) and (_SCIENTIFIC.fullmatch(new) or _rounded(old, new)):
        return f"long number {show(old)} became {show(new)}, which looks rounded by Excel; format the column as Text"
    if _DIGITS.fullmatch(old) and old.startswith("0") and new and new == old.lstrip("0"):
        return f"{show(old)} lost its leading zeros (now {show(new)})"
    return None


def _rounded(old: str, new: str) -> bool:
    """`new` is `old` with its last digits rounded to zeros, as Excel does to long numbers.

    >>> _rounded("1234567890123456789", "1234567890123460000"), _rounded("1234567890123456", "1234570000000000")
    (True, True)
    >>> _rounded("1234567890123456", "1234567890123999"), _rounded("1234567890123456", "9234567890123450")
    (False, False)
    """
    if len(old) != len(new) or not _LONG_DIGITS.fullmatch(new):
        return False
    zeros = len(new) - len(new.rstrip("0"))
    significant = len(new.lstrip("+-")) - zeros
    return (
        zeros > 0
        and significant <= EXCEL_DIGITS
        and significant < len(old.lstrip("+-").rstrip("0"))
        and abs(int(old) - int(new)) <= 5 * 10 ** (zeros - 1)
    )


def _lost_leading_zeros(result: Diff, schema: Schema) -> list[str]:
    """A deleted key `00123` and an added key `123`: Excel read the key column as numbers."""
    if not result.deleted or not result.added or schema.key_field.type != "string":
        return []
    added = {row.key: row.line for row in result.added}
    out = []
    for key, _ in result.deleted:
        if key.startswith("0") and _DIGITS.fullmatch(key) and (stripped := key.lstrip("0") or "0") in added:
            out.append(
                f"key {show(key)} looks deleted and {show(stripped)} added (line {added[stripped]}): "
                "Excel drops leading zeros; format the key column as Text before saving"
            )
            if len(out) > MAX_WARNINGS:
                break
    return out
