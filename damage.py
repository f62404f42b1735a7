"""Warnings for changes that look like spreadsheet damage rather than edits. Pure Python.

Excel silently rewrites some values when a CSV is opened and saved: it drops leading zeros,
turns dates into serial numbers and long numbers into scientific notation. Those show up as
modifications (or as a delete plus an add) that nobody meant to make; the review page warns.
"""

from __future__ import annotations

import re

from diff import Diff
from schema import Schema, unpack

MAX_WARNINGS = 20
_DIGITS = re.compile(r"\d+")
_LONG_DIGITS = re.compile(r"[+-]?\d{12,}")
_SCIENTIFIC = re.compile(r"[+-]?\d(?:[.,]\d+)?[eE][+-]?\d+")
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")


def warnings(result: Diff, schema: Schema) -> list[str]:
    """Human-readable warnings about likely Excel damage in a diff (at most MAX_WARNINGS)."""
    out: list[str] = []
    out.extend(_lost_leading_zeros(result, schema))
    names, labels = schema.names, [f.label for f in schema.fields]
    for m in result.modified:
        for i, (old, new) in enumerate(zip(unpack(m.before), unpack(m.after), strict=False)):
            if old == new:
                continue
            where = f"line {m.line}, {labels[i]} ({names[i]})"
            if _DATE_LIKE.fullmatch(old) and _SERIAL.fullmatch(new):
                out.append(f"{where}: date {old!r} became {new!r}, which looks like an Excel date serial number")
            elif _LONG_DIGITS.fullmatch(old) and (_SCIENTIFIC.fullmatch(new) or _rounded(old, new)):
                out.append(f"{where}: long number {old!r} became {new!r}; Excel rounds numbers over 15 digits")
            elif _DIGITS.fullmatch(old) and old.startswith("0") and new == old.lstrip("0"):
                out.append(f"{where}: {old!r} lost its leading zeros (now {new!r})")
        if len(out) >= MAX_WARNINGS:
            break
    return out[:MAX_WARNINGS]


def _rounded(old: str, new: str) -> bool:
    """`new` is `old` with its trailing digits zeroed, as Excel's 15-digit precision does."""
    return len(old) == len(new) and new.endswith("0") and old[:15] == new[:15] and old != new


def _lost_leading_zeros(result: Diff, schema: Schema) -> list[str]:
    if not result.deleted or not result.added or schema.key_field.type != "string":
        return []
    added = {row.key: row.line for row in result.added}
    out = []
    for key, _ in result.deleted:
        if key.startswith("0") and _DIGITS.fullmatch(key) and key.lstrip("0") in added:
            stripped = key.lstrip("0")
            out.append(
                f"key {key!r} looks deleted and {stripped!r} added (line {added[stripped]}): "
                "Excel drops leading zeros; format the key column as Text before saving"
            )
            if len(out) >= MAX_WARNINGS:
                break
    return out
