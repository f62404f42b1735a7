"""Which table a URL names. Every table's pages live under `/t/NAME/…` and its API under
`/api/v1/tables/NAME/…`; the same paths without that prefix serve the first table, as they did
when a deployment had one table, so existing links and scripts keep working.

`route` registers a view under both rules. The table's name is taken out of the URL before the
view runs (the view asks `current()`), and put back into every `url_for` of a page or API call
that has a table rule while a table's URL is being served, so links stay within that table.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app, g

import accounts
import tables


def route(bp: Blueprint, prefix: str, rule: str, **options) -> Callable:
    """`@route(bp, "/t/<table>", "/download")`: the view answers `/download` (first table) and
    `/t/NAME/download` (table NAME)."""

    def decorate(view: Callable) -> Callable:
        bp.add_url_rule(rule, view_func=view, **options)
        bp.add_url_rule(prefix + rule, view_func=view, **options)
        return view

    return decorate


def register(bp: Blueprint) -> None:
    """Take the table's name out of the URL values of `bp`'s views, and give it to their links."""
    bp.url_value_preprocessor(_take_table)
    bp.url_defaults(_give_table)


def _take_table(endpoint: str | None, values: dict | None) -> None:
    if values and "table" in values:
        g.table_name = values.pop("table")


def _give_table(endpoint: str, values: dict) -> None:
    name = g.get("table_name")
    if name and "table" not in values and current_app.url_map.is_endpoint_expecting(endpoint, "table"):
        values["table"] = name


def current() -> tables.TableRef:
    """The table this request's URL names (the first table when it names none); NotFound for an unknown name."""
    return tables.get(g.get("table_name"))


def named() -> bool:
    """Whether this request's URL names its table (`/t/NAME/…`), not the first table's plain path."""
    return bool(g.get("table_name"))


def named_table() -> tables.TableRef | None:
    """The table this request's URL names, or None on a plain path (lists of every table's requests)."""
    return current() if named() else None


def whole_database() -> bool:
    """A plain path in a deployment of several tables: the overview `/`, the whole database's workbook."""
    return not named() and len(tables.package().tables) > 1


def template_values() -> dict:
    """What every page's template knows: the title of the table it shows (of the tables, on the
    overview), and whether there are several tables. Safe on error pages (an unknown table's name)."""
    package, name = tables.package(), g.get("table_name")
    several = len(package.tables) > 1
    if name in package:
        title = package.table(name).title
    elif several:
        title = package.title or "Tables"
    else:
        title = package.first.title
    return {"is_admin": accounts.is_admin, "table_title": title, "several_tables": several}
