"""One value of a column: per-field parse, check and format, and how a file writes numbers and dates.

Every value that enters the database goes through `Field.canonical`: text in whatever form a
spreadsheet wrote it, out in one canonical text form. Two values are equal exactly when their
canonical texts are equal, which is what lets the diff compare plain strings. The table around the
fields (schema.json, the key, whole rows) is `schema.Schema`.

>>> Field("n", "number").canonical("1.0"), Field("ok", "boolean").canonical("TRUE")
('1', 'true')
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
# Excel and LibreOffice write TRUE/FALSE in the user's language (a CSV re-save keeps the words).
SPREADSHEET_BOOLEANS = {
    "German": ("wahr", "falsch"),
    "French": ("vrai", "faux"),
    "Spanish": ("verdadero", "falso"),
    "Portuguese": ("verdadeiro", "falso"),
    "Italian": ("vero", "falso"),
    "Dutch": ("waar", "onwaar"),
    "Catalan": ("cert", "fals"),
    "Romanian": ("adevărat", "fals"),
    "Swedish": ("sant", "falskt"),
    "Danish": ("sand", "falsk"),
    "Norwegian": ("sann", "usann"),
    "Finnish": ("tosi", "epätosi"),
    "Polish": ("prawda", "fałsz"),
    "Czech": ("pravda", "nepravda"),
    "Slovak": ("pravda", "nepravda"),
    "Hungarian": ("igaz", "hamis"),
    "Turkish": ("doğru", "yanliş"),
    "Russian": ("истина", "ложь"),
    "Ukrainian": ("істина", "хибність"),
    "Bulgarian": ("истина", "неистина"),
    "Greek": ("αληθεσ", "ψευδεσ"),
}
TRUE_WORDS = frozenset({"true", "yes", "y", "t", "1"} | {words[0] for words in SPREADSHEET_BOOLEANS.values()})
FALSE_WORDS = frozenset({"false", "no", "n", "f", "0"} | {words[1] for words in SPREADSHEET_BOOLEANS.values()})
_MONTH_NAMES = ["january", "february", "march", "april", "may", "june",
                "july", "august", "september", "october", "november", "december"]  # fmt: skip
MONTHS = {n: i for i, full in enumerate(_MONTH_NAMES, start=1) for n in (full, full[:3])} | {"sept": 9}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
_INTEGRAL = re.compile(r"[+-]?\d+(?:\.0*)?")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"\s*[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+\s*")  # 1234,5 or 1.234,5
_GROUPED = re.compile(r"\s*[+-]?[1-9]\d{0,2}(?:\.\d{3})+\s*")  # 1.234 or 135.450: thousands dots, or a decimal point?
EXCEL_SCIENTIFIC = re.compile(r"[+-]?\d(?:[.,]\d+)?E[+-]\d{2,3}")  # how Excel shows long numbers: 1.23E+15
SHOW_CHARS = 60


class ValueProblem(ValueError):
    """A cell's text cannot become a value of its field; the message says what is expected."""


class Ambiguous(ValueProblem):
    """A cell reads two ways (`4/2/12`, `135.450`) and nothing in its column says which."""


class Unsettled(Exception):
    """A cell reads two ways and its column's evidence is not gathered yet: `Conventions.settle` first."""


@dataclass(frozen=True)
class Reading:
    """How one column of an uploaded file writes numbers and dates.

    Single cells can be ambiguous (`135.450`: a thousands dot or a decimal point? `4/2/12`: 4 February
    or April 2?), so the whole column decides (files.conventions), and its cells are read that way.

    - `decimal_comma`: True, numbers as European spreadsheets write them (`1.234,5`, `1,5`); False,
      a decimal point (`1234.5`, `1,234.5`; decimal commas refused); None, undecided: each cell as
      it reads (`1,5` and `1.5`).
    - `guessed`: `decimal_comma` is only what the file's separator suggests, no cell of the file
      having shown it. Then a cell that reads two ways (`135.450`, `135,450`, `1.250`: one
      separator and three digits) is Ambiguous (a `;` file may come from Switzerland, where `1.250`
      is 1.25); the table's stored value for its key may still settle it. An integer column never
      reads such a separator as a decimal point (`1.000` is not 1).
    - `day_first`: True, `03/04/2024` is 3 April; False, it is March 4; None, refused as ambiguous.
    - `pending`: the column's evidence is not gathered yet; a cell that reads two ways raises
      Unsettled instead of being refused.
    """

    decimal_comma: bool | None = False
    day_first: bool | None = None
    pending: bool = False
    guessed: bool = False


PLAIN = Reading()


class Conventions:
    """How one uploaded file writes numbers and dates: a Reading per field, in schema order (fields
    without one read PLAIN). `gather`, when given, is called once, the first time a cell cannot be
    read without its column's evidence, and returns the settled readings.

    >>> later = Conventions([PLAIN, Reading(pending=True)], gather=lambda: [PLAIN, Reading(day_first=True)])
    >>> from schema import Schema
    >>> schema = Schema.from_dict({"primaryKey": "k", "fields": [{"name": "k"}, {"name": "d", "type": "date"}]})
    >>> schema.canonical_row(["a", "4/2/12"], later)[0], later.at(1)
    ('a\\x1f2012-02-04', Reading(decimal_comma=False, day_first=True, pending=False, guessed=False))
    """

    def __init__(self, readings: Sequence[Reading] = (), gather: Callable[[], Sequence[Reading]] | None = None):
        self.readings = tuple(readings)
        self._gather = gather

    def __repr__(self) -> str:
        return f"Conventions({list(self.readings)!r})"

    def at(self, index: int) -> Reading:
        """The reading of the field at `index`."""
        return self.readings[index] if index < len(self.readings) else PLAIN

    def settle(self) -> None:
        """Gather the evidence (once); afterwards no reading is pending."""
        gather, self._gather = self._gather, None
        readings = gather() if gather is not None else self.readings
        self.readings = tuple(replace(r, pending=False) for r in readings)

    @property
    def groups_thousands(self) -> bool:
        """May a cell like `1.234` mean something other than its text (1234, with a thousands dot)?"""
        return any(r.decimal_comma is not False for r in self.readings)


def show(text: str, limit: int = SHOW_CHARS) -> str:
    """A value quoted for a message, shortened when long (a 5 MB cell must not become a 5 MB message).

    >>> show("abc"), show("x" * 100, 5)
    ("'abc'", "'xxxxx…' (100 characters)")
    """
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}"[:-1] + f"…' ({len(text):,} characters)"


@dataclass(frozen=True)
class Field:
    """One column: its name, type and constraints, and how its values are parsed and written."""

    name: str
    type: str = "string"
    title: str = ""
    description: str = ""
    format: str = "default"
    required: bool = False
    unique: bool = False
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    minimum: Any = None
    maximum: Any = None
    min_length: int | None = None
    max_length: int | None = None
    missing_values: frozenset[str] = frozenset({""})
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return self.title or self.name

    def parse(self, text: str, reading: Reading = PLAIN) -> Any:
        """Text as a spreadsheet wrote it → a Python value (None for an empty cell).

        >>> Field("n", "number").parse("1,5")
        Traceback (most recent call last):
        ...
        values.ValueProblem: '1,5' is not a number (expected digits with a decimal point, e.g. 1234.5)
        """
        if text in self.missing_values or (self.type != "string" and text.strip() == ""):
            return None
        return _PARSERS[self.type](self, text, reading)

    def format_value(self, value: Any) -> str:
        """A Python value → its canonical text."""
        if value is None:
            return ""
        return _FORMATTERS[self.type](value)

    def canonical(self, text: str, reading: Reading = PLAIN) -> str:
        """Parse, check constraints, format: the one text this value is stored and compared as.

        `reading` says how the cell's column writes numbers and dates (Reading).

        >>> Field("n", "number").canonical("1.234,50", Reading(decimal_comma=True))
        '1234.5'
        >>> Field("n", "number").canonical("135.450", Reading(decimal_comma=True))
        '135450'
        """
        if self.type in ("number", "integer") and ("," in text or "." in text) and text not in self.missing_values:
            text = _decimal_point(text, reading, self.type == "integer")
        value = self.parse(text, reading)
        self.check(value)
        return self.format_value(value)

    def readings(self, text: str, reading: Reading = PLAIN) -> set[str]:
        """The canonical texts an ambiguous cell can mean (`135.450`: 135450 or 135.45; `4/2/12`:
        4 February or April 2), each checked against the field's constraints; an integer column
        never reads a thousands separator as a decimal point.

        >>> sorted(Field("n", "number").readings("135.450")), sorted(Field("d", "date").readings("4/2/12"))
        (['135.45', '135450'], ['2012-02-04', '2012-04-02'])
        >>> Field("i", "integer").readings("1.000")
        {'1000'}
        """
        found = set()
        for other in (
            replace(reading, day_first=True, pending=False),
            replace(reading, day_first=False, pending=False),
            replace(reading, decimal_comma=True, guessed=False, pending=False),
            replace(reading, decimal_comma=False, guessed=False, pending=False),
        ):
            with contextlib.suppress(ValueProblem):
                found.add(self.canonical(text, other))
        return found

    def check(self, value: Any) -> None:
        """Raise ValueProblem when a parsed value breaks one of the field's constraints."""
        if value is None:
            if self.required:
                raise ValueProblem("is required but empty")
            return
        if self.max_length is not None and len(value) > self.max_length:
            raise ValueProblem(f"is {len(value):,} characters long, at most {self.max_length:,} allowed")
        if self.min_length is not None and len(value) < self.min_length:
            raise ValueProblem(f"is {len(value)} characters long, at least {self.min_length} needed")
        if self.enum and self.format_value(value) not in self.enum:
            allowed = ", ".join(self.enum)
            raise ValueProblem(f"{show(self.format_value(value))} is not one of the allowed values: {allowed}")
        if self._pattern is not None and not self._pattern.fullmatch(value):
            raise ValueProblem(f"{show(value)} does not match the pattern {self.pattern}")
        if self.minimum is not None or self.maximum is not None:
            self._check_range(value)

    def _check_range(self, value: Any) -> None:
        try:
            if self.minimum is not None and value < self.minimum:
                raise ValueProblem(f"{self.format_value(value)} is below the minimum {self.format_value(self.minimum)}")
            if self.maximum is not None and value > self.maximum:
                raise ValueProblem(f"{self.format_value(value)} is above the maximum {self.format_value(self.maximum)}")
        except TypeError:  # a date-time with a time zone against a bound without one, or the reverse
            raise ValueProblem(
                f"{self.format_value(value)} cannot be compared with the limits of this column"
                " (write it with a time zone exactly when the limits have one)"
            ) from None

    def to_json(self, text: str) -> Any:
        """Canonical text → the JSON value the API shows (numbers and booleans typed)."""
        if text == "":
            return None
        if self.type == "integer":
            return int(text)
        if self.type == "number":
            return float(text) if "." in text else int(text)
        if self.type == "boolean":
            return text == "true"
        return text


# --- parsers: text → value ------------------------------------------------------------------


def _check_text(text: str) -> None:
    if found := _CONTROL.search(text):
        raise ValueProblem(f"contains an invisible control character (U+{ord(found.group()):04X}); delete it")


def _parse_string(f: Field, text: str, reading: Reading = PLAIN) -> str:
    _check_text(text)
    return text


def scientific_hint(text: str) -> str:
    return (
        f"{show(text)} looks like a number Excel turned into scientific notation, which loses digits;"
        " format the column as Text in Excel and type the full value"
    )


MAX_DIGITS = 300  # longer numbers are not data a spreadsheet holds (and int() refuses over 4300)


def _parse_integer(f: Field, text: str, reading: Reading = PLAIN) -> int:
    t = text.strip()
    if _INTEGRAL.fullmatch(t):
        whole = t.split(".")[0]
        if len(whole) > MAX_DIGITS:
            raise ValueProblem(
                f"{show(text)} has more than {MAX_DIGITS} digits; that is not a number this column holds"
            )
        return int(whole)
    if _SCIENTIFIC.fullmatch(t):
        raise ValueProblem(scientific_hint(t))
    raise ValueProblem(f"{show(text)} is not a whole number (expected digits only, e.g. 1234)")


def _decimal_point(text: str, reading: Reading, integer: bool = False) -> str:
    """A number as its column writes it → the same number with a decimal point and no thousands
    separators (`1.234,5` → `1234.5`, `1,234.5` → `1234.5`); other text is returned as it is.

    A cell with one separator and three digits after it reads two ways; the column's evidence
    decides, else (`reading.guessed`, or no decimal mark decided) it is Ambiguous (Unsettled while
    the evidence is pending).
    `integer`: an integer column, which never takes such a separator for a decimal point.

    >>> european = Reading(decimal_comma=True)
    >>> [_decimal_point(t, european) for t in ("1.234,5", "135.450", "1.5", "-0,25", "135,450")]
    ['1234.5', '135450', '1.5', '-0.25', '135.450']
    >>> [_decimal_point(t, Reading()) for t in ("135.450", "1,234.5", "135,450")]
    ['135.450', '1234.5', '135450']
    >>> _decimal_point("135.450", Reading(decimal_comma=True, guessed=True))
    Traceback (most recent call last):
    ...
    values.Ambiguous: '135.450' is ambiguous: 135450 with a thousands separator, or 135.45 with a decimal point? Nothing else in its column says which; write it as 135450 or 135.45
    >>> _decimal_point("1.000", Reading(), integer=True)
    Traceback (most recent call last):
    ...
    values.Ambiguous: '1.000' is ambiguous: 1000 with a thousands separator, or 1 with a decimal point? Nothing else in its column says which; write it as 1000 or 1
    """
    t = text.strip()
    comma, evidence = reading.decimal_comma, not reading.guessed
    if _ONE_GROUP.fullmatch(t):  # 135.450 or 135,450
        mark = "," if "," in t else "."
        decimal_mark = "," if comma else "."  # the mark the column's evidence makes a decimal one
        if evidence and comma is not None and not (integer and mark == decimal_mark):
            return t.replace(mark, ".") if mark == decimal_mark else t.replace(mark, "")
        if reading.pending:
            raise Unsettled
        whole, point = t.replace(mark, ""), _format_number(Decimal(t.replace(mark, ".")))
        name = "decimal point" if mark == "." else "decimal comma"
        raise Ambiguous(
            f"{show(text)} is ambiguous: {whole} with a thousands separator, or {point} with a {name}?"
            f" Nothing else in its column says which; write it as {whole} or {point}"
        )
    if "," in t:
        if _THOUSANDS_COMMAS.fullmatch(t) and not (comma and evidence):
            return t.replace(",", "")  # 1,234.5 or 1,234,567: thousands commas, English style
        if comma is False:
            raise ValueProblem(
                f"{show(text)} is not a number here: it has a decimal comma, and this column's numbers have"
                " decimal points (a file separated by commas must: a comma there starts a new cell); write"
                " 1234.5, or save the file separated by semicolons or as an Excel workbook"
            )
        if not _DECIMAL_COMMA.fullmatch(t):
            raise ValueProblem(f"{show(text)} is not a number (expected digits with a decimal comma, e.g. 1234,5)")
        return t.replace(".", "").replace(",", ".")
    if _GROUPED.fullmatch(t) and t.count(".") > 1:
        return t.replace(".", "")  # 1.234.567: thousands dots, whatever the column
    return text


_ONE_GROUP = re.compile(r"[+-]?[1-9]\d{0,2}[.,]\d{3}")  # 135.450, 135,450, 1.000: a thousands separator, or not?
_THOUSANDS_COMMAS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")  # 1,234.5 and 1,234,567


def _parse_number(f: Field, text: str, reading: Reading = PLAIN) -> Decimal:
    t = text.strip()
    if not _NUMBER.fullmatch(t):
        raise ValueProblem(f"{show(text)} is not a number (expected digits with a decimal point, e.g. 1234.5)")
    try:
        value = Decimal(t)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise ValueProblem(f"{show(text)} is not a number") from None
    if len(t) > MAX_DIGITS or abs(value.adjusted()) > MAX_DIGITS:  # 1e999999999 would be written out in full
        raise ValueProblem(f"{show(text)} is too large or too small a number for this column")
    return value


def _parse_boolean(f: Field, text: str, reading: Reading = PLAIN) -> bool:
    t = _boolean_word(text)
    if t in TRUE_WORDS:
        return True
    if t in FALSE_WORDS:
        return False
    raise ValueProblem(f"{show(text)} is not a yes/no value (expected TRUE or FALSE)")


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_YMD_SLASH = re.compile(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})")
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})([/.-])(\d{1,2})([/.-])(\d{4}|\d{2})")  # 31/03/2024, 3/31/19, 31.03.19
_DAY_MONTH_NAME = re.compile(r"(\d{1,2})[ -]([A-Za-z]{3,9})\.?[ ,-]+(\d{4}|\d{2})")  # 5 Jan 2024, 31-Jan-24
_MONTH_NAME_DAY = re.compile(r"([A-Za-z]{3,9})\.?[ -](\d{1,2}),?[ -](\d{4}|\d{2})")  # Jan 5, 2024
_WITH_TIME = re.compile(  # a date, then a time of day: 2024-03-31 17:30, 5/19/2006 0:00:00, 3/31/19 5:30 PM
    r"(.*?\d)(?:T|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?\s*([AaPp][Mm])?"
)
_SERIAL = re.compile(r"\d{4,6}(?:\.\d+)?")
DATE_FORMAT_HINT = "YYYY-MM-DD, e.g. 2024-03-31"
DATETIME_FORMAT_HINT = "YYYY-MM-DDTHH:MM:SS, e.g. 2024-03-31T17:30:00"


def _month(name: str) -> int | None:
    return MONTHS.get(name.lower())


def _year(digits: str) -> int:
    """A year as written: two digits are 2000–2029 for 00–29 and 1930–1999 for 30–99 (Excel's rule)."""
    year = int(digits)
    return year if len(digits) > 2 else year + (2000 if year < 30 else 1900)


def _parse_date(f: Field, text: str, reading: Reading = PLAIN) -> dt.date:
    t = text.strip()
    if ":" in t and (m := _WITH_TIME.fullmatch(t)):  # a date with a time: spreadsheets append midnight
        clock = _clock(m, text, DATE_FORMAT_HINT)
        if clock != dt.time(0):
            raise ValueProblem(
                f"{show(text)} is not a date: it has a time of day ({clock.isoformat()}); this column holds dates"
                f" only, written {DATE_FORMAT_HINT}"
            )
        t = m[1]
    return _make_date(_date_parts(t, text, reading, "dates", DATE_FORMAT_HINT), text)


def _make_date(parts: tuple[int, int, int], text: str) -> dt.date:
    try:
        return dt.date(*parts)
    except ValueError as exc:
        raise ValueProblem(f"{show(text)} is not a real date ({exc})") from None


def _date_parts(t: str, text: str, reading: Reading, what: str, hint: str) -> tuple[int, int, int]:
    """(year, month, day) of a date in any form the guide lists; `reading.day_first` settles
    `03/04/2024` (else it is Ambiguous, or Unsettled while the column's evidence is pending)."""
    if m := _ISO_DATE.fullmatch(t) or _YMD_SLASH.fullmatch(t):
        return int(m[1]), int(m[2]), int(m[3])
    if m := _DAY_MONTH_YEAR.fullmatch(t):
        a, b, year = int(m[1]), int(m[3]), _year(m[5])
        if m[2] == m[4] == ".":  # 31.01.2024: the dotted form is day first wherever it is used
            return year, b, a
        if a > 12 >= b:
            return year, b, a
        if b > 12 >= a or a == b or not (1 <= a <= 12 and 1 <= b <= 12):
            return year, a, b  # month first; or not a real date either way, and dt.date says why
        if reading.day_first is not None:
            return (year, b, a) if reading.day_first else (year, a, b)
        if reading.pending:
            raise Unsettled
        first, second = dt.date(2000, b, 1).strftime("%B"), dt.date(2000, a, 1).strftime("%B")
        raise Ambiguous(f"{show(text)} is ambiguous: {a} {first} or {second} {b}? Write {what} as {hint}")
    if (m := _DAY_MONTH_NAME.fullmatch(t)) and _month(m[2]):
        return _year(m[3]), _month(m[2]), int(m[1])  # type: ignore[return-value]
    if (m := _MONTH_NAME_DAY.fullmatch(t)) and _month(m[1]):
        return _year(m[3]), _month(m[1]), int(m[2])  # type: ignore[return-value]
    if _SERIAL.fullmatch(t):
        serial = float(t)
        as_date = dt.date(1899, 12, 30) + dt.timedelta(days=int(serial))
        raise ValueProblem(
            f"{show(text)} looks like an Excel date serial number ({as_date.isoformat()}?);"
            f" format the column as a date and write {DATE_FORMAT_HINT}"
        )
    raise ValueProblem(f"{show(text)} is not a date (expected {DATE_FORMAT_HINT})")


def _clock(m: re.Match[str], text: str, hint: str) -> dt.time:
    """The time of day matched by _WITH_TIME (groups 2–6: hours, minutes, seconds, fraction, AM/PM)."""
    hour, minute, second = int(m[2]), int(m[3]), int(m[4] or 0)
    if m[6]:
        if not 1 <= hour <= 12:
            raise ValueProblem(f"{show(text)} has no such time of day (expected {hint})")
        hour = hour % 12 + (12 if m[6].lower() == "pm" else 0)
    try:
        return dt.time(hour, minute, second, int((m[5] or "0").ljust(6, "0")))
    except ValueError:
        raise ValueProblem(f"{show(text)} has no such time of day (expected {hint})") from None


def _parse_datetime(f: Field, text: str, reading: Reading = PLAIN) -> dt.datetime:
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(t)
    except ValueError:
        pass
    m = _WITH_TIME.fullmatch(t) if ":" in t else None
    try:
        parts = _date_parts(m[1] if m else t, text, reading, "dates and times", DATETIME_FORMAT_HINT)
        return dt.datetime.combine(_make_date(parts, text), _clock(m, text, DATETIME_FORMAT_HINT) if m else dt.time(0))
    except Ambiguous:
        raise
    except ValueProblem:
        pass
    raise ValueProblem(f"{show(text)} is not a date and time (expected {DATETIME_FORMAT_HINT})")


_PARSERS = {
    "string": _parse_string,
    "integer": _parse_integer,
    "number": _parse_number,
    "boolean": _parse_boolean,
    "date": _parse_date,
    "datetime": _parse_datetime,
}


def _format_number(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value != 0 else "0"
    return text


def _format_datetime(value: dt.datetime) -> str:
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")


_FORMATTERS = {
    "string": str,
    "integer": str,
    "number": _format_number,
    "boolean": lambda v: "true" if v else "false",
    "date": dt.date.isoformat,
    "datetime": _format_datetime,
}


_BOOLEAN_TEXT = dict.fromkeys(TRUE_WORDS, "true") | dict.fromkeys(FALSE_WORDS, "false")


def _boolean_word(text: str) -> str:
    """A yes/no cell as the word lists hold it: lower case, Turkish ı and İ as i, Greek without
    accents and with σ for a final ς.

    >>> [_boolean_word(w) for w in ("VERDADEIRO", "ИСТИНА", "ΑΛΗΘΈΣ", "ψευδές", "YANLIŞ", "Doğru")]
    ['verdadeiro', 'истина', 'αληθεσ', 'ψευδεσ', 'yanliş', 'doğru']
    """
    t = text.strip().lower()
    if t.isascii():
        return t
    t = t.replace("ı", "i").replace("i\u0307", "i")
    if any("\u0370" <= c <= "\u03ff" for c in t):
        t = "".join(c for c in unicodedata.normalize("NFD", t) if not unicodedata.combining(c)).replace("ς", "σ")
    return unicodedata.normalize("NFC", t)


def plain_at(index: int) -> Reading:
    return PLAIN


def fast_check(f: Field, index: int, conventions: Conventions | None) -> Callable[[str], str | None]:
    """For `Schema.fast_canonical`: cell text → its canonical text, or None when unsure (then `canonical_row` decides).

    Only the general path (`slow`) depends on the column's Reading, and looks it up when called:
    the conventions may settle while the file is read."""
    missing, empty = f.missing_values, (None if f.required else "")
    enum = frozenset(f.enum) if f.enum else None
    low, high = f.minimum, f.maximum
    at = conventions.at if conventions is not None else plain_at

    def slow(text: str) -> str | None:
        try:
            return f.canonical(text, at(index))
        except (ValueProblem, Unsettled):
            return None

    if f.type == "string" and low is None and high is None:
        max_length, min_length = f.max_length, f.min_length
        pattern = f._pattern.fullmatch if f._pattern is not None else None

        def string(text: str) -> str | None:  # control characters: checked on the whole row
            if text in missing:
                return empty
            if max_length is not None and len(text) > max_length:
                return None
            if min_length is not None and len(text) < min_length:
                return None
            if (enum is not None and text not in enum) or (pattern is not None and not pattern(text)):
                return None
            return text

        return string
    if f.type == "integer" and f.max_length is None and f.min_length is None:

        def integer(text: str) -> str | None:
            if text in missing:
                return empty
            if not (text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS):
                return slow(text)  # 1.0, or 1.200 in a file with thousands dots
            value = int(text)
            if (low is not None and value < low) or (high is not None and value > high):
                return None
            out = str(value)
            return None if enum is not None and out not in enum else out

        return integer
    if f.type == "boolean" and low is None and high is None and f.max_length is None and f.min_length is None:

        def boolean(text: str) -> str | None:
            if text in missing:
                return empty
            out = _BOOLEAN_TEXT.get(text) or _BOOLEAN_TEXT.get(text.lower())
            return None if out is None or (enum is not None and out not in enum) else out

        return boolean
    if f.type == "date" and f.max_length is None and f.min_length is None:

        def date(text: str) -> str | None:
            if text in missing:
                return empty
            if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.isascii():
                return slow(text)  # 31/03/2024, 3/30/12: only this cell takes the general path
            try:
                value = dt.date.fromisoformat(text)
            except ValueError:
                return None
            if value.isoformat() != text or (low is not None and value < low) or (high is not None and value > high):
                return None
            return None if enum is not None and text not in enum else text

        return date
    return slow
