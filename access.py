"""Who may view, edit and approve each table (schema.json's `viewers`, `editors`, `approvers`), and
the access review that lists it.

Roles grow: a viewer reads a table (pages, downloads, API, history, blame, audit rows); an editor
may also upload and revert; an approver may also approve and reject; admins may do everything.
`viewers`/`editors` absent from schema.json mean everyone signed in, as before roles existed (absent
`editors` beside `viewers`: the viewers may edit); an editor or approver of a table may view it,
an approver may edit it. Entries are user names or
`group:NAME`, the groups coming from the identity provider's claim or `flask users groups`.

A table the person may not view is not theirs to know about: it is left out of every list and its
URLs answer 404 (`NotFound`); a role missing on a table they may view is a 403 naming the table and
the role (`Forbidden`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask import g, has_request_context
from flask_login import current_user

import accounts
import tables
from errors import Forbidden, NotFound

VIEW, EDIT, DECIDE = "view", "edit", "approve"
ROLES = (VIEW, EDIT, DECIDE)
ROLE_NAMES = {VIEW: "viewer", EDIT: "editor", DECIDE: "approver"}


@dataclass(frozen=True)
class Person:
    """Someone asking: their user name, their groups, and whether they are an admin."""

    username: str
    groups: frozenset[str] = frozenset()
    admin: bool = False


def person(username: str) -> Person:
    """A user by name, with their groups (local and from the identity provider)."""
    return Person(username, frozenset(accounts.groups_of(username)), accounts.is_admin_name(username))


CONSOLE = Person("(console)", admin=True)  # flask commands: the break-glass admin at the console


def current() -> Person | None:
    """The signed-in person of this request (None when nobody is); CONSOLE outside a request."""
    if not has_request_context():
        return CONSOLE
    if not getattr(current_user, "is_authenticated", False):
        return None
    if "access_person" not in g:
        g.access_person = person(current_user.username)
    return g.access_person


def may(who: Person | None, table: tables.TableRef, role: str) -> bool:
    """May `who` act on `table` in `role` (VIEW, EDIT or DECIDE)? Higher roles include lower ones."""
    return who is not None and (who.admin or any(_via(entries, who) for entries in _lists(table, role)))


def _lists(table: tables.TableRef, role: str) -> list[Sequence[str] | None]:
    """The lists of schema.json that give `role` on `table`: its own and those of the roles above it."""
    spec = table.spec
    # Absent `editors`: whoever may view may edit (everyone, when `viewers` is absent too).
    editors = spec.editors if spec.editors is not None else spec.viewers
    lists = {VIEW: [spec.viewers, spec.editors or (), spec.approvers], EDIT: [editors, spec.approvers]}
    return lists.get(role, [spec.approvers])


def require(table: tables.TableRef, role: str, who: Person | None = None) -> None:
    """NotFound when the person may not view the table (it stays unknown to them); Forbidden
    naming the table and the role when they may view it but not act in `role`."""
    who = who if who is not None else current()
    if not may(who, table, VIEW):
        raise NotFound(f"There is no table {table.name!r}.")
    if role != VIEW and not may(who, table, role):
        raise Forbidden(
            f"You need the {ROLE_NAMES[role]} role on table {table.name!r} to do this"
            f" (ask an admin to add you to its {'approvers' if role == DECIDE else 'editors'} in schema.json)."
        )


def visible(who: Person | None = None) -> list[tables.TableRef]:
    """The tables the person may view, in schema.json's order."""
    who = who if who is not None else current()
    return [t for t in tables.every() if may(who, t, VIEW)]


def visible_ids(who: Person | None = None) -> list[int] | None:
    """Ids of the tables the person may view; None when that is every table (no filter needed)."""
    every = tables.every()
    seen = visible(who)
    return None if len(seen) == len(every) else [t.id for t in seen]


def overview() -> list[tables.Overview]:
    """The tables overview (`/`, `GET /api/v1/tables`) without the tables the person may not view."""
    names = {t.name for t in visible()}
    return [line for line in tables.overview() if line.name in names]


def require_edit_all(names: Iterable[str], who: Person | None = None) -> None:
    """A workbook or zip touching several tables: refused (naming the table) unless the person may edit every one."""
    for name in names:
        require(tables.get(name), EDIT, who)


# --- the access review -------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One line of the access review: `who` may act on `table` in `role`, `via` what (`everyone
    signed in`, `admin`, `name`, `group:NAME`)."""

    table: str
    role: str
    who: str
    via: str


def _via(entries: Sequence[str] | None, who: Person) -> str | None:
    """How a role's list names this person (None: it does not): everyone (the list is absent), by
    name, or through a group."""
    if entries is None:
        return "everyone signed in"
    for entry in entries:
        if entry == who.username:
            return "name"
        if entry.startswith("group:") and entry[6:].strip() in who.groups:
            return entry
    return None


def review() -> list[Grant]:
    """Who may view, edit and approve each table, every account resolved through its groups
    (disabled ones left out), in schema.json's order of tables, then role, then user name."""
    people = [person(u.username) for u in accounts.list_users() if u.is_active]
    people.sort(key=lambda p: p.username)
    out = []
    for table in tables.every():
        for role in ROLES:
            for who in people:
                via = "admin" if who.admin else next(filter(None, (_via(e, who) for e in _lists(table, role))), None)
                if via:
                    out.append(Grant(table.name, ROLE_NAMES[role], who.username, via))
    return out
