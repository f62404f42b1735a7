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
from values import SPREADSHEET_BOOLEANS, show

MAX_WARNINGS = 20
_DIGITS = re.compile(r"\d+")
_LONG_DIGITS = re.compile(r"[+-]?\d{12,}")  # Excel's General format shows 12+ digits as 1.23457E+11
_SCIENTIFIC = re.compile(r"[+-]?\d(?:[.,]\d+)?[eE][+-]?\d+")
_SCIENTIFIC_TEXT = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+")  # 1e5, 2E-3: text a spreadsheet reads as a number
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_FRACTION = re.compile(r"[+-]?\d+\.\d+")
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}[ -][A-Za-z]{3,9}[ -]\d{2,4}")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
# TRUE and FALSE as Excel and LibreOffice write them in English and the languages schema.py knows.
_EXCEL_BOOLEANS = {"true": True, "false": False} | {
    word: truth for words in SPREADSHEET_BOOLEANS.values() for word, truth in zip(words, (True, False), strict=True)
}
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


# Characters a person cannot see on the page: what they are called in a warning, and how the
# review page shows them. A spreadsheet writes a non-breaking space for a space (pasted from the
# web, or a French number format), line ends inside a cell as LF, and keeps or drops trailing spaces.
INVISIBLE = {
    "\u00a0": ("a non-breaking space", "⍽"),
    "\u202f": ("a narrow non-breaking space", "⍽"),
    "\u2007": ("a figure space", "⍽"),
    "\u2009": ("a thin space", "⍽"),
    "\u200b": ("a zero-width space", "⟨ZWSP⟩"),
    "\u200c": ("a zero-width non-joiner", "⟨ZWNJ⟩"),
    "\u200d": ("a zero-width joiner", "⟨ZWJ⟩"),
    "\u2060": ("a word joiner", "⟨WJ⟩"),
    "\ufeff": ("a byte order mark", "⟨BOM⟩"),
    "\u00ad": ("a soft hyphen", "⟨SHY⟩"),
    "\t": ("a tab", "⇥"),
}
_AS_SPACE = str.maketrans(
    dict.fromkeys("\xa0\u202f\u2007\u2009", " ") | dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
)


def _plain_text(text: str) -> str:
    """The text as a person sees it: invisible characters as what they look like, CR LF as LF, no
    spaces at the ends of its lines."""
    lines = text.translate(_AS_SPACE).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip(" \t") for line in lines)


def invisible_only(old: str, new: str) -> bool:
    """Do two texts differ only in characters a person cannot see (NBSP for a space, CR LF for LF,
    trailing spaces)? Then the review page shows them made visible (`visible`).

    >>> invisible_only("Rue de la Paix", "Rue de la\\u00a0Paix"), invisible_only("a\\r\\nb", "a\\nb"), invisible_only("a", "b")
    (True, True, False)
    """
    return old != new and _plain_text(old) == _plain_text(new)


def visible(text: str) -> str:
    """The text with its invisible characters shown: ⍽ for a non-breaking space, ␍ and ␊ for line
    ends, · for a space at the end of a line.

    >>> visible("Rue de la\\u00a0Paix "), visible("a\\r\\nb")
    ('Rue de la⍽Paix·', 'a␍␊\\nb')
    """
    out = "".join(INVISIBLE[c][1] if c in INVISIBLE else c for c in text)
    out = out.replace("\r\n", "␍␊\n").replace("\r", "␍").replace("\n", "␊\n").replace("␍␊␊\n", "␍␊\n")
    return "\n".join(
        line[: len(line.rstrip(" "))] + "·" * (len(line) - len(line.rstrip(" "))) for line in out.split("\n")
    )


def _invisible_change(old: str, new: str) -> str:
    """What changed between two texts that look the same."""
    what = []
    for c, (name, _) in INVISIBLE.items():
        if new.count(c) > old.count(c):
            what.append(f"{name} where there was {'a space' if name.endswith('space') else 'nothing'}")
        elif old.count(c) > new.count(c):
            what.append(f"no {name.split(' ', 1)[1]} where there was one")
    if "\r\n" in old and "\r\n" not in new:
        what.append("its line breaks rewritten from CR LF to LF")
    elif "\r\n" in new and "\r\n" not in old:
        what.append("its line breaks rewritten from LF to CR LF")
    if not what:
        what.append("spaces added or removed at the end of a line")
    return "; ".join(what)


_DAY_MONTH_TEXT = re.compile(r"(\d{1,2})[/.-](\d{1,2})")  # 1/2, 3-4: a date to a spreadsheet
_MONTH_ABBREVIATIONS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CLOCK_TEXT = re.compile(r"(\d{1,2}):(\d{2})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?")
_PERCENT = re.compile(r"\s*([+-]?\d+(?:[.,]\d+)?)\s*%\s*")
_ONE_DOT_GROUP = re.compile(r"[+-]?\d{1,3}\.\d{3}")


def _as_date(old: str, new: str) -> bool:
    """Is `new` the text `old` (`1/2`, `3-4`) read as a date of this year (`01/02/26`, `2026-01-02`, `2-Jan`)?"""
    m = _DAY_MONTH_TEXT.fullmatch(old)
    if m is None or new == old:
        return False
    a, b = int(m[1]), int(m[2])
    numbers = [int(n) for n in re.findall(r"\d+", new)]
    months = [i + 1 for i, name in enumerate(_MONTH_ABBREVIATIONS) if name in new.lower()]
    if months:
        return any(month in (a, b) and day in (a, b) for month in months for day in numbers)
    return len(numbers) >= 3 and (numbers[:2] in ([a, b], [b, a]) or numbers[1:3] in ([a, b], [b, a]))


def _as_time(old: str, new: str) -> bool:
    """Is `new` the text `old` (`10:30`) read as a time of day (`10:30:00 AM`, `10:30:00`)?"""
    m, n = _CLOCK_TEXT.fullmatch(old), _CLOCK.fullmatch(new)
    if m is None or n is None or new == old:
        return False
    hour = int(n[1]) % 12 + (12 if (n[4] or "").lower() == "pm" else 0) if n[4] else int(n[1])
    return (hour, int(n[2])) == (int(m[1]), int(m[2])) and (n[3] or "00") == "00"


def _as_percentage(old: str, new: str) -> bool:
    """Is `new` the text `old` (`50%`) read as a percentage (`0.5`)?"""
    m = _PERCENT.fullmatch(old)
    if m is None or new == old:
        return False
    try:
        value = Decimal(m[1].replace(",", "."))
        if n := _PERCENT.fullmatch(new):  # 50% → 50.00%: read as a percentage, written back as one
            return value == Decimal(n[1].replace(",", "."))
        return value / 100 == Decimal(new.replace(",", "."))
    except InvalidOperation:
        return False


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
    >>> for old, new in (("1/2", "01/02/26"), ("10:30", "10:30:00 AM"), ("50%", "0.5"), ("0.125", "125")):
    ...     print(_damage(old, new))
    text '1/2' became '01/02/26': the spreadsheet read it as a date; format the column as Text
    text '10:30' became '10:30:00 AM': the spreadsheet read it as a time; format the column as Text
    text '50%' became '0.5': the spreadsheet read it as a percentage; format the column as Text
    '0.125' became '125': a spreadsheet that writes thousands dots (German, say) read its decimal point as one; save the file with the table's own decimal points, or as an Excel workbook
    >>> print(_damage("Rue de la Paix", "Rue de la\\u00a0Paix"))
    'Rue de la Paix' became 'Rue de la\xa0Paix', which looks the same: a non-breaking space where there was a space
    """
    if invisible_only(old, new):
        return f"{show(old)} became {show(new)}, which looks the same: {_invisible_change(old, new)}"
    if _as_date(old, new):
        return f"text {show(old)} became {show(new)}: the spreadsheet read it as a date; format the column as Text"
    if _as_time(old, new):
        return f"text {show(old)} became {show(new)}: the spreadsheet read it as a time; format the column as Text"
    if _as_percentage(old, new):
        return (
            f"text {show(old)} became {show(new)}: the spreadsheet read it as a percentage; format the column as Text"
        )
    if _ONE_DOT_GROUP.fullmatch(old) and old.replace(".", "").lstrip("+-0") == new.lstrip("+-0") and new:
        return (
            f"{show(old)} became {show(new)}: a spreadsheet that writes thousands dots (German, say) read its decimal"
            " point as one; save the file with the table's own decimal points, or as an Excel workbook"
        )
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
