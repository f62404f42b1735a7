"""The tables of a deployment, read from schema.json: one Frictionless Table Schema (one table), or
a Frictionless Data Package (several tables, with references between them). Pure Python.

>>> package = Package.from_dict({"name": "catalog", "resources": [
...     {"name": "teams", "schema": {"primaryKey": "name", "fields": [{"name": "name"}]}},
...     {"name": "datasets", "approvers": ["dora"], "schema": {"primaryKey": "id",
...      "fields": [{"name": "id"}, {"name": "team"}],
...      "foreignKeys": [{"fields": "team", "reference": {"resource": "teams", "fields": "name"}}]}}]})
>>> [t.name for t in package.tables], package.first.name, package.table("datasets").foreign_keys
(['teams', 'datasets'], 'teams', (ForeignKey(field='team', resource='teams', target='name'),))
>>> [(t.name, fk.field) for t, fk in package.references_to("teams")]
[('datasets', 'team')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from approval_policy import DEFAULT_POLICY, Policy, PolicyError
from schema import Schema, SchemaError, load_descriptor

# Frictionless resource names: lower case, digits, - _ . (letters of any alphabet: `übersicht`, `таблица`)
NAME = re.compile(r"[^\W_][\w.-]{0,62}")
NAME_RULE = "lower-case letters, digits, '-', '_' or '.', starting with a letter or digit, at most 63"
DEFAULT_NAME = "datasets"


@dataclass(frozen=True)
class ForeignKey:
    """A column whose values must be keys of a table (`resource`; its primary key `target`)."""

    field: str
    resource: str
    target: str


@dataclass(frozen=True)
class Table:
    """One table of the deployment: its name (URLs, sheet and file names), title, columns, references,
    and the people who may approve requests touching only it (besides ADMIN_USER)."""

    name: str
    title: str
    description: str
    schema: Schema
    approvers: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    approval: Policy = DEFAULT_POLICY  # who may approve, how many, with a reason or a signature ("approval")
    # Who may read and who may change the table: user names and `group:NAME` entries. None (the key
    # absent from schema.json): everyone signed in, as before roles existed.
    viewers: tuple[str, ...] | None = None
    editors: tuple[str, ...] | None = None


class Package:
    """The deployment's tables in schema.json's order; the first one is the default table."""

    def __init__(self, tables: list[Table], name: str = "", title: str = "", is_package: bool = False):
        self.tables = tuple(tables)
        self.name = name
        self.title = title
        self.is_package = is_package  # a Data Package (several tables possible), not a lone Table Schema
        self._by_name = {t.name: t for t in self.tables}

    @property
    def first(self) -> Table:
        return self.tables[0]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def table(self, name: str) -> Table:
        """The table called `name` (KeyError when there is none)."""
        return self._by_name[name]

    def references_to(self, name: str) -> list[tuple[Table, ForeignKey]]:
        """(table, foreign key) of every column that refers to table `name`."""
        return [(t, fk) for t in self.tables for fk in t.foreign_keys if fk.resource == name]

    def load_order(self) -> list[tuple[Table, list[str]]]:
        """The tables in the order a first load must take them, each with the tables it refers to:
        a referenced table before the tables that refer to it (references are checked on upload,
        so a catalog loaded before its teams is refused row by row). schema.json's order among
        equals; a circle of references (which only a load of several tables at once can fill)
        keeps schema.json's order.

        >>> package = Package.from_dict({"resources": [
        ...     {"name": "datasets", "schema": {"primaryKey": "id", "fields": [{"name": "id"}, {"name": "team"}],
        ...      "foreignKeys": [{"fields": "team", "reference": {"resource": "teams", "fields": "name"}}]}},
        ...     {"name": "teams", "schema": {"primaryKey": "name", "fields": [{"name": "name"}]}}]})
        >>> [(t.name, refers) for t, refers in package.load_order()]
        [('teams', []), ('datasets', ['teams'])]
        """
        needs = {
            t.name: list(dict.fromkeys(fk.resource for fk in t.foreign_keys if fk.resource not in ("", t.name)))
            for t in self.tables
        }
        order: list[Table] = []
        placed: set[str] = set()
        while len(order) < len(self.tables):
            ready = [t for t in self.tables if t.name not in placed and all(n in placed for n in needs[t.name])]
            if not ready:  # a circle: the rest in schema.json's order
                ready = [t for t in self.tables if t.name not in placed][:1]
            order.append(ready[0])
            placed.add(ready[0].name)
        return [(t, needs[t.name]) for t in order]

    @classmethod
    def load(cls, path: str | Path) -> Package:
        """Read and check schema.json; SchemaError names the file, the resource and the field."""
        return load_descriptor(path, cls.from_dict)

    @classmethod
    def from_dict(cls, data: Any) -> Package:
        """A Data Package descriptor (with "resources"), or a lone Table Schema as a one-table package."""
        if not isinstance(data, dict):
            raise SchemaError("must be a JSON object: a Table Schema or a Data Package")
        if "resources" not in data:
            name = data.get("name") or DEFAULT_NAME
            if not is_name(name):
                raise SchemaError(f'"name" must be {NAME_RULE}, as a Data Package\'s resource names (got {name!r})')
            table = _table(name, data.get("title"), data.get("description"), data, [], data.get("approval"))
            package = cls([table], name, table.title)
        else:
            resources = data["resources"]
            if not isinstance(resources, list) or not resources:
                raise SchemaError('"resources" must be a non-empty list of tables')
            tables, seen = [], set()
            for position, resource in enumerate(resources, start=1):
                table = _resource(position, resource)
                if table.name in seen:
                    raise SchemaError(f"resource {table.name!r}: the name is used twice")
                seen.add(table.name)
                tables.append(table)
            package = cls(tables, str(data.get("name") or ""), str(data.get("title") or ""), is_package=True)
        _check_references(package)
        return package


def is_name(name: Any) -> bool:
    """Is `name` fit to name a table (its URLs `/t/NAME/`, its sheet, its file names)?

    >>> [is_name(n) for n in ("teams", "übersicht", "v1.2_x", "Teams", "my table", "a/b", "", "-x", None)]
    [True, True, True, False, False, False, False, False, False]
    """
    return isinstance(name, str) and NAME.fullmatch(name) is not None and name == name.lower()


def _resource(position: int, data: Any) -> Table:
    if not isinstance(data, dict):
        raise SchemaError(f"resource {position}: must be an object with a name and a schema")
    name = data.get("name")
    if not is_name(name):
        raise SchemaError(f'resource {position}: needs a "name" of {NAME_RULE} (got {name!r})')
    if not isinstance(data.get("schema"), dict):
        raise SchemaError(f'resource {name!r}: needs a "schema" (a Table Schema object)')
    approvers = data.get("approvers", [])
    if not isinstance(approvers, list) or not all(isinstance(a, str) and a.strip() for a in approvers):
        raise SchemaError(f'resource {name!r}: "approvers" must be a list of user names')
    table = _table(name, data.get("title"), data.get("description"), data["schema"], approvers, data.get("approval"))
    return replace(table, viewers=_people(name, data, "viewers"), editors=_people(name, data, "editors"))


def _people(table: str, data: dict, role: str) -> tuple[str, ...] | None:
    """A role's list (`viewers`, `editors`): user names and `group:NAME` entries; None when absent.

    >>> _people("t", {"editors": ["ann", " group:finance "]}, "editors"), _people("t", {}, "viewers")
    (('ann', 'group:finance'), None)
    """
    if role not in data:
        return None
    entries = data[role]
    if not isinstance(entries, list) or not all(isinstance(e, str) and e.strip() for e in entries):
        raise SchemaError(f'resource {table!r}: "{role}" must be a list of user names and "group:NAME" entries')
    out = tuple(e.strip() for e in entries)
    for entry in out:
        if entry.startswith("group:") and not entry[6:].strip():
            raise SchemaError(f'resource {table!r}: "{role}" has "group:" without a group name')
    return out


def _table(name: str, title: Any, description: Any, schema: dict, approvers: list[str], approval: Any = None) -> Table:
    where = f"resource {name!r}"
    try:
        policy = Policy.from_dict(approval)
    except PolicyError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    try:
        parsed = Schema.from_dict(schema | {"name": name, "title": title or schema.get("title") or name})
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    return Table(
        name=name,
        title=parsed.title,
        description=str(description or schema.get("description") or ""),
        schema=parsed,
        approvers=tuple(a.strip() for a in approvers),
        foreign_keys=tuple(_foreign_keys(name, parsed, schema.get("foreignKeys", []))),
        approval=policy,
    )


def _foreign_keys(name: str, schema: Schema, data: Any) -> list[ForeignKey]:
    where = f"resource {name!r}"
    if not isinstance(data, list):
        raise SchemaError(f'{where}: "foreignKeys" must be a list')
    out = []
    for entry in data:
        fields = entry.get("fields") if isinstance(entry, dict) else None
        reference = entry.get("reference") if isinstance(entry, dict) else None
        if isinstance(fields, list) and len(fields) == 1:
            fields = fields[0]
        target = reference.get("fields") if isinstance(reference, dict) else None
        if isinstance(target, list) and len(target) == 1:
            target = target[0]
        if not isinstance(fields, str) or not isinstance(target, str) or not isinstance(reference.get("resource"), str):
            raise SchemaError(
                f'{where}: each foreign key needs "fields" (one column) and "reference": {{"resource", "fields"}}'
                " (composite keys are not supported)"
            )
        if fields not in schema.names:
            raise SchemaError(f"{where}, field {fields!r}: the foreign key names a column this table does not have")
        out.append(ForeignKey(fields, reference["resource"] or name, target))
    return out


def _check_references(package: Package) -> None:
    for table in package.tables:
        for fk in table.foreign_keys:
            where = f"resource {table.name!r}, field {fk.field!r}"
            if fk.resource not in package:
                raise SchemaError(f"{where}: refers to a table {fk.resource!r} that the package does not have")
            target = package.table(fk.resource).schema
            if fk.target != target.key:
                raise SchemaError(
                    f"{where}: must refer to the primary key of {fk.resource!r} ({target.key!r}), not {fk.target!r}"
                )
