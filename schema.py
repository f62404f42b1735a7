"""The table: schema.json (a Frictionless Table Schema) read and checked, its key, and whole rows.

A row is stored as a *record*: its canonical values in schema order joined by `SEP`. One value of
one column (parse, check, format; how a file writes numbers and dates) is `values.Field`; its
names are importable from here too, as they were before the split.

>>> schema = Schema.from_dict({"primaryKey": "id", "fields": [
...     {"name": "id", "type": "integer"}, {"name": "ok", "type": "boolean"}]})
>>> schema.canonical_row(["1.0", "TRUE"])
('1\\x1ftrue', [])
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from records import SEP, Row, pack, repack, unpack
from values import (
    EXCEL_SCIENTIFIC,
    PLAIN,
    TYPES,
    Ambiguous,
    Conventions,
    Field,
    Reading,
    Unsettled,
    ValueProblem,
    fast_check,
    plain_at,
    scientific_hint,
    show,
)

__all__ = [
    "PLAIN",
    "SEP",
    "TYPES",
    "Ambiguous",
    "Conventions",
    "Field",
    "Reading",
    "Row",
    "Schema",
    "SchemaError",
    "Unsettled",
    "ValueProblem",
    "load_descriptor",
    "pack",
    "show",
    "unpack",
]

# The longest key, in UTF-8 bytes: PostgreSQL's btree index holds entries of at most 2,704 bytes
# (a longer key was a 500 at upload), and the key is indexed with the table id and a request id.
MAX_KEY_BYTES = 2000
CONSTRAINTS = ("required", "unique", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength")


class SchemaError(Exception):
    """schema.json is missing, not JSON, or describes an impossible table."""


T = TypeVar("T")


def load_descriptor(path: str | Path, build: Callable[[Any], T]) -> T:
    """`build` the parsed JSON of a descriptor file (schema.json); SchemaError names the file and
    the problem (missing, not JSON, or what `build` refused)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    try:
        return build(data)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None


# --- the schema -----------------------------------------------------------------------------


class Schema:
    """The table's fields in order, its primary key, and the row-level conversions."""

    def __init__(self, fields: Sequence[Field], key: str, title: str = "", name: str = "datasets"):
        self.fields = tuple(fields)
        self.names = tuple(f.name for f in self.fields)
        self.key = key
        self.key_index = self.names.index(key)
        self.key_field = self.fields[self.key_index]
        self.title = title or "Records"
        self.name = name
        self.string_indexes = tuple(i for i, f in enumerate(self.fields) if f.type == "string")
        # `unique` columns besides the key (which is unique by being the key)
        self.unique_indexes = tuple(i for i, f in enumerate(self.fields) if f.unique and i != self.key_index)

    def __repr__(self) -> str:
        return f"Schema(key={self.key!r}, names={self.names!r})"

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read and check schema.json; SchemaError names the file and the problem."""
        return load_descriptor(path, cls.from_dict)

    @classmethod
    def from_dict(cls, data: Any) -> Schema:
        """Build from the parsed JSON of a Frictionless Table Schema."""
        if not isinstance(data, dict) or not isinstance(data.get("fields"), list) or not data["fields"]:
            raise SchemaError('needs a non-empty "fields" list')
        missing = data.get("missingValues", [""])
        if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
            raise SchemaError('"missingValues" must be a list of texts, e.g. ["", "NA"]')
        missing_values = frozenset(["", *missing])
        fields = [_field_from_dict(i, f, missing_values) for i, f in enumerate(data["fields"], start=1)]
        names = [f.name for f in fields]
        seen: set[str] = set()
        for name in names:
            if name.casefold() in seen:
                raise SchemaError(f"field name {name!r} is used twice")
            seen.add(name.casefold())
        key = data.get("primaryKey")
        if isinstance(key, list):
            if len(key) != 1:
                raise SchemaError(f'"primaryKey" must name exactly one field (composite keys are not supported): {key}')
            key = key[0]
        if not isinstance(key, str) or key not in names:
            raise SchemaError(f'"primaryKey" must name one of the fields {names}, got {key!r}')
        key_field = fields[names.index(key)]
        if key_field.type not in ("string", "integer"):
            raise SchemaError(f"the primary key {key!r} must be of type string or integer, not {key_field.type}")
        return cls(fields, key, title=str(data.get("title") or ""), name=str(data.get("name") or "datasets"))

    # rows ------------------------------------------------------------------------------------

    def canonical_row(
        self, values: Sequence[str], conventions: Conventions | None = None, stored: Sequence[str] | None = None
    ) -> tuple[str, list[tuple[str, str]]]:
        """Raw cell texts in schema order → (record, problems as (field name, message)).

        `conventions` says how the file writes numbers and dates; a cell that reads two ways while
        its column's evidence is pending settles the conventions first. `stored`: the table's values
        for the row's key (schema order), which settle a cell that still reads two ways when one
        reading is the stored value (a round trip of the table's own download reads back unchanged).

        >>> schema = Schema.from_dict({"primaryKey": "k", "fields": [{"name": "k"}, {"name": "n", "type": "number"}]})
        >>> guessed = Conventions([PLAIN, Reading(decimal_comma=True, guessed=True)])
        >>> schema.canonical_row(["a", "1.250"], guessed, ["a", "1.25"])[0], schema.canonical_row(["a", "1.250"], guessed)[1]
        ('a\\x1f1.25', [('n', "'1.250' is ambiguous: 1250 with a thousands separator, or 1.25 with a decimal point? Nothing else in its column says which; write it as 1250 or 1.25")])

        >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "n", "type": "integer"}]})
        >>> schema.canonical_row(["1.23E+15", "x"])[1]  # doctest: +ELLIPSIS
        [('id', "key '1.23E+15' looks like a number Excel turned into scientific notation..."), ('n', "'x' is not a whole number...")]
        """
        try:
            return self._canonical_row(values, conventions, stored)
        except Unsettled:
            assert conventions is not None  # only a pending Reading raises Unsettled
            conventions.settle()
            return self._canonical_row(values, conventions, stored)

    def _canonical_row(
        self, values: Sequence[str], conventions: Conventions | None, stored: Sequence[str] | None = None
    ) -> tuple[str, list[tuple[str, str]]]:
        out: list[str] = []
        problems: list[tuple[str, str]] = []
        ki = self.key_index
        key_problem = self.key_problem(values[ki])
        at = conventions.at if conventions is not None else plain_at
        for i, (f, text) in enumerate(zip(self.fields, values, strict=True)):
            try:
                if i == ki and key_problem:
                    raise ValueProblem(key_problem)
                out.append(f.canonical(text, at(i)))
            except Ambiguous as exc:
                if stored is not None and i < len(stored) and stored[i] in f.readings(text, at(i)):
                    out.append(stored[i])  # the reading the table holds for this key: nothing changed
                else:
                    problems.append((f.name, str(exc)))
                    out.append(text)
            except ValueProblem as exc:
                problems.append((f.name, str(exc)))
                out.append(text)
        return pack(out), problems

    def key_problem(self, key: str) -> str | None:
        """What spreadsheets do to keys: leave them empty, pad them with spaces, write them as 1.23E+15."""
        stripped = key.strip()
        if not stripped:
            return "key is empty; every row needs one"
        if key in self.key_field.missing_values:
            return f"key {show(key)} means “no value” in this table (missingValues); every row needs a key"
        if EXCEL_SCIENTIFIC.fullmatch(stripped):
            return "key " + scientific_hint(stripped)
        if key != stripped and self.key_field.type == "string":
            return (
                f"key {show(key)} has spaces around it, which would make it a different key from {show(stripped)};"
                " remove the spaces"
            )
        if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            return (
                f"key is {len(key.encode('utf-8', 'surrogatepass')):,} bytes long; a key may be at most"
                f" {MAX_KEY_BYTES:,} bytes (UTF-8), the most the database's index holds"
            )
        return None

    def row_parser(
        self,
        report: Callable[[int, str, str], None],
        conventions: Conventions | None = None,
        clean: Callable[[list[str]], list[str]] | None = None,
        stored: Callable[[str], str | None] | None = None,
    ) -> Callable[[int, list[str]], Row | None]:
        """A function: one raw row (line, cells in schema order) → its canonical diff Row, or None
        after telling `report(line, field, message)` about each bad cell. `clean` runs first;
        `conventions` say how the file writes numbers and dates; `stored(key)`: the table's record
        for a key (or None), whose values settle cells that read two ways (`canonical_row`)."""
        fast, ki = self.fast_canonical(conventions), self.key_index

        def parse(line: int, values: list[str]) -> Row | None:
            if clean is not None:
                values = clean(values)
            parsed = fast(values)
            if parsed is None:
                record = stored(values[ki]) if stored is not None else None
                record, problems = self.canonical_row(values, conventions, unpack(record) if record else None)
                if problems:
                    for name, message in problems:
                        report(line, name, message)
                    return None
                parsed = record.split(SEP)[ki], record
            return Row(line, *parsed)

        return parse

    def fast_canonical(
        self, conventions: Conventions | None = None
    ) -> Callable[[Sequence[str]], tuple[str, str] | None]:
        """A shortcut for `canonical_row` on a row without problems: cells → (key, record), or None.

        Each field checks its cell in a few cheap steps (text within its limits, digits, `true`,
        `2024-01-31`, …) and otherwise gives up, or takes the general path for that cell alone
        (`31/03/2024` in a date column); a row on which any field gives up (or that has a control
        character) returns None and goes through `canonical_row`, which then says what is wrong. So the shortcut never accepts what `canonical_row` would refuse, and never
        gives a different record (tests/test_fast_paths.py checks both); it is 5–10× faster.

        >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "n", "type": "integer"}]})
        >>> fast = schema.fast_canonical()
        >>> fast(["a", "007"]), fast(["a", "x"]), fast([" a", "1"])
        (('a', 'a\\x1f7'), None, None)
        """
        checks = [fast_check(f, i, conventions) for i, f in enumerate(self.fields)]
        ki, seps, key_problem, join = self.key_index, len(self.fields) - 1, self.key_problem, SEP.join
        control = _CONTROL_BUT_SEP.search

        def canonical(values: Sequence[str]) -> tuple[str, str] | None:
            if key_problem(values[ki]) is not None:
                return None
            out = [check(text) for check, text in zip(checks, values, strict=True)]
            if None in out:
                return None
            record = join(out)  # type: ignore[arg-type]
            if control(record) or record.count(SEP) != seps:  # a control character, or SEP inside a cell
                return None
            return out[ki], record  # type: ignore[return-value]

        return canonical

    def to_dict(self, record: str, names: Sequence[str] | None = None) -> dict[str, Any]:
        """Record → {field: JSON value}, for the API and the audit; `names` = the fields it was packed with."""
        values = unpack(record)
        by_name = dict(zip(names or self.names, values, strict=False))
        return {f.name: f.to_json(by_name.get(f.name, "")) for f in self.fields} | {
            n: v for n, v in by_name.items() if n not in self.names
        }

    def repack(self, record: str, old_names: Sequence[str]) -> str:
        """A record packed under an older field list → the same values under this schema (new fields empty)."""
        return repack(record, old_names, self.names)


_CONTROL_BUT_SEP = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1e\x7f]")


def _field_from_dict(position: int, data: Any, missing_values: frozenset[str] = frozenset({""})) -> Field:
    where = f"field {position}"
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
        raise SchemaError(f'{where}: needs a "name"')
    name = data["name"]
    where = f"field {position} ({name!r})"
    if name != name.strip() or SEP in name or "," in name:
        raise SchemaError(f"{where}: a name may not have surrounding spaces or commas")
    ftype = data.get("type", "string")
    if ftype not in TYPES:
        raise SchemaError(f"{where}: unknown type {ftype!r} (use one of {', '.join(TYPES)})")
    constraints = data.get("constraints", {})
    if not isinstance(constraints, dict):
        raise SchemaError(f'{where}: "constraints" must be an object')
    unknown = set(constraints) - set(CONSTRAINTS)
    if unknown:
        raise SchemaError(f"{where}: unknown constraint {sorted(unknown)[0]!r} (use {', '.join(CONSTRAINTS)})")
    probe = Field(name, ftype)
    try:
        bounds = {k: probe.parse(str(constraints[k])) for k in ("minimum", "maximum") if k in constraints}
        enum = constraints.get("enum", [])
        if not isinstance(enum, list):
            raise SchemaError(f'{where}: "enum" must be a list')
        enum_texts = tuple(
            probe.format_value(probe.parse(str(v).lower() if isinstance(v, bool) else str(v))) for v in enum
        )
    except ValueProblem as exc:
        raise SchemaError(f"{where}: constraint value {exc}") from None
    pattern = constraints.get("pattern")
    compiled = None
    if pattern is not None:
        if ftype != "string":
            raise SchemaError(f'{where}: "pattern" applies to string fields only')
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise SchemaError(f"{where}: invalid pattern {pattern!r}: {exc}") from None
    for k in ("minLength", "maxLength"):
        if k in constraints and (not isinstance(constraints[k], int) or constraints[k] < 0):
            raise SchemaError(f'{where}: "{k}" must be a whole number ≥ 0')
    return Field(
        name=name,
        type=ftype,
        title=str(data.get("title") or ""),
        description=str(data.get("description") or ""),
        format=str(data.get("format") or "default"),
        required=bool(constraints.get("required", False)),
        unique=bool(constraints.get("unique", False)),
        enum=enum_texts,
        pattern=pattern,
        minimum=bounds.get("minimum"),
        maximum=bounds.get("maximum"),
        min_length=constraints.get("minLength"),
        max_length=constraints.get("maxLength"),
        missing_values=missing_values,
        _pattern=compiled,
    )
