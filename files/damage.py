"""Warnings for changes that look like spreadsheet damage rather than edits. Pure Python.

Excel and LibreOffice silently rewrite some values when a CSV is opened and saved: they drop
leading zeros (`00123` → `123`, `00` → `0`), read text as numbers (`1e5` → `100000`, `1.50` →
`1.5`), turn dates into serial numbers and long numbers into scientific notation, keep only 15
significant digits, cut fractions of seconds, and translate TRUE into the user's language
(`WAHR`). Those show up as modifications (or as a delete plus an add) that nobody meant to make;
the review page warns, each warning naming the line, the column, the value before and after, so
the admin can send the file back instead of approving. A mass-deletion refusal caused by damaged
keys says so too (`damaged_keys`, used by changes.py).

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

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NamedTuple

from diff import Diff
from files.ooxml import EXCEL_DIGITS
from records import unpack
from schema import Schema
from values import show

MAX_WARNINGS = 20
_DIGITS = re.compile(r"\d+")
_LONG_DIGITS = re.compile(r"[+-]?\d{12,}")  # Excel's General format shows 12+ digits as 1.23457E+11
_SCIENTIFIC = re.compile(r"[+-]?\d(?:[.,]\d+)?[eE][+-]?\d+")
_SCIENTIFIC_TEXT = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+")  # 1e5, 2E-3: text a spreadsheet reads as a number
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_FRACTION = re.compile(r"[+-]?\d+\.\d+")
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}[ -][A-Za-z]{3,9}[ -]\d{2,4}")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
# TRUE and FALSE as Excel writes them in English, German, French, Spanish, Italian and Dutch.
_EXCEL_BOOLEANS = {"true": True, "false": False, "wahr": True, "falsch": False, "vrai": True, "faux": False,
                   "verdadero": True, "falso": False, "vero": True, "waar": True, "onwaar": False}  # fmt: skip
_TIME_UNITS = ((dt.timedelta(milliseconds=1), "microseconds"), (dt.timedelta(seconds=1), "fractions of a second"),
               (dt.timedelta(minutes=1), "seconds"))  # finest first  # fmt: skip


class DamagedKey(NamedTuple):
    """A deleted key that comes back damaged as an added key: the same row, not a delete and an add."""

    before: str
    after: str
    line: int
    why: str


def warnings(result: Diff, schema: Schema) -> list[str]:
    """Human-readable warnings about likely Excel damage in a diff (at most MAX_WARNINGS, then a note)."""
    out = [
        f"key {show(k.before)} looks deleted and {show(k.after)} added (line {k.line}): {k.why};"
        " format the key column as Text before saving"
        for k in damaged_keys(result, schema, MAX_WARNINGS + 1)
    ]
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


def damaged_keys(result: Diff, schema: Schema, limit: int | None = None) -> list[DamagedKey]:
    """Deleted keys whose damaged form is an added key (`00123` → `123`; 19 digits rounded to 15).

    >>> from diff import Row
    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}]})
    >>> d = Diff(added=[Row(2, "123", "123"), Row(3, "1234567890123460000", "")],
    ...          deleted=[("00123", ""), ("1234567890123456789", ""), ("DS-1", "")])
    >>> [(k.before, k.after, k.line) for k in damaged_keys(d, schema)]
    [('00123', '123', 2), ('1234567890123456789', '1234567890123460000', 3)]
    """
    if not result.deleted or not result.added:
        return []
    added = {row.key: row.line for row in result.added}
    text_keys = schema.key_field.type == "string"
    out = []
    for key, _ in result.deleted:
        if text_keys and key.startswith("0") and len(key) > 1 and _DIGITS.fullmatch(key):
            if (stripped := key.lstrip("0") or "0") in added:
                out.append(DamagedKey(key, stripped, added[stripped], "Excel drops leading zeros"))
        elif (
            _LONG_DIGITS.fullmatch(key)
            and len(key.lstrip("+-")) > EXCEL_DIGITS
            and (rounded := _excel_rounded(key)) in added
        ):
            out.append(DamagedKey(key, rounded, added[rounded], "Excel keeps only 15 digits of a number"))
        if limit is not None and len(out) >= limit:
            break
    return out


def _excel_rounded(digits: str) -> str:
    """A long whole number as Excel keeps it: 15 significant digits, the rest zeros."""
    value = Decimal(digits)
    return str(int(value.quantize(Decimal(1).scaleb(value.adjusted() - EXCEL_DIGITS + 1), rounding=ROUND_HALF_UP)))


def _damage(old: str, new: str) -> str | None:
    """What Excel seems to have done to a value, or None when the change looks like an edit.

    >>> _damage("1234567890123456789", "1.23457E+18")
    "long number '1234567890123456789' became '1.23457E+18', which looks rounded by Excel; format the column as Text"
    >>> _damage("1234567890123456789", "1234567890123460000") is not None, _damage("12", "13")
    (True, None)
    >>> print(_damage("1e5", "100000"))
    text '1e5' became '100000': the spreadsheet read it as a number in scientific notation; format the column as Text
    >>> print(_damage("TRUE", "WAHR"))
    yes/no text 'TRUE' became 'WAHR': the spreadsheet wrote it in another language; format the column as Text
    """
    if _DATE_LIKE.fullmatch(old) and _SERIAL.fullmatch(new):
        return f"date {show(old)} became {show(new)}, which looks like an Excel date serial number"
    if _SCIENTIFIC_TEXT.fullmatch(old) and _same_number(old, new):
        return (
            f"text {show(old)} became {show(new)}: the spreadsheet read it as a number in scientific notation;"
            " format the column as Text"
        )
    if (_LONG_DIGITS.fullmatch(old) or _FRACTION.fullmatch(old)) and (_SCIENTIFIC.fullmatch(new) or _rounded(old, new)):
        return f"long number {show(old)} became {show(new)}, which looks rounded by Excel; format the column as Text"
    if _DIGITS.fullmatch(old) and old.startswith("0") and len(old) > 1 and new == (old.lstrip("0") or "0"):
        return f"{show(old)} lost its leading zeros (now {show(new)})"
    if _PLAIN_NUMBER.fullmatch(old) and _same_number(old, new) and new == _plain(Decimal(old)):
        return (
            f"{show(old)} became {show(new)}, the same number written differently: the spreadsheet read the text"
            " as a number; format the column as Text"
        )
    if (cut := _time_cut(old, new)) is not None:
        return f"{show(old)} became {show(new)}: the spreadsheet cut the {cut} of the time; format the column as Text"
    truth = _EXCEL_BOOLEANS.get(old.lower())
    if truth is not None and _EXCEL_BOOLEANS.get(new.lower()) is truth and old.lower() != new.lower():
        return (
            f"yes/no text {show(old)} became {show(new)}: the spreadsheet wrote it in another language;"
            " format the column as Text"
        )
    return None


def _same_number(old: str, new: str) -> bool:
    try:
        return Decimal(old) == Decimal(new.replace(",", ".") if new.count(",") == 1 else new)
    except InvalidOperation:
        return False


def _plain(value: Decimal) -> str:
    """A number as a spreadsheet writes it in General format: no leading or trailing zeros, no `+`."""
    return format(value.normalize(), "f") if value else "0"


def _rounded(old: str, new: str) -> bool:
    """`new` is `old` with its last digits rounded off, as Excel does past 15 significant digits.

    >>> _rounded("1234567890123456789", "1234567890123460000"), _rounded("1234567890123456", "1234570000000000")
    (True, True)
    >>> _rounded("1234567890123456", "1234567890123999"), _rounded("1234567890123456", "9234567890123450000")
    (False, False)
    >>> _rounded("3.14159265358979323846", "3.14159265358979"), _rounded("3.1415", "3.14")
    (True, False)
    """
    if _LONG_DIGITS.fullmatch(old):
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
    if not (_FRACTION.fullmatch(old) and _PLAIN_NUMBER.fullmatch(new)):
        return False
    before, after = Decimal(old).normalize(), Decimal(new).normalize()
    if len(before.as_tuple().digits) <= EXCEL_DIGITS or len(after.as_tuple().digits) > EXCEL_DIGITS:
        return False
    return before != after and abs(before - after) <= Decimal(5).scaleb(after.as_tuple().exponent - 1)


def _time_cut(old: str, new: str) -> str | None:
    """What a date-time lost when `new` is `old` cut to whole minutes, seconds or milliseconds.

    >>> _time_cut("2024-01-31T10:00:00.123456", "2024-01-31T10:00:00.123000")
    'microseconds'
    >>> _time_cut("2024-01-31T10:00:00.5", "2024-01-31T10:00:00"), _time_cut("2024-01-31T10:00:00", "2024-01-31T10:00:01")
    ('fractions of a second', None)
    """
    if ":" not in old or ":" not in new:
        return None
    try:
        before, after = dt.datetime.fromisoformat(old), dt.datetime.fromisoformat(new)
        difference = abs(before - after)
    except (ValueError, TypeError):
        return None
    zero = before.replace(hour=0, minute=0, second=0, microsecond=0)
    for unit, lost in _TIME_UNITS:
        if (after - zero) % unit == dt.timedelta(0) and (before - zero) % unit and difference < unit:
            return lost
    return None
