"""The event log's SQL: the chain head (`event_chain`, locked by the first statement of every
write), appending events, and reading them filtered and paged. Nothing here updates or deletes
an event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select, text

from models import Event, db


def advance_head() -> tuple[int, str]:
    """Take the chain head for this transaction and the next event id: (id, previous hash).

    The UPDATE comes first: on PostgreSQL it locks the head row until commit (another process's
    writer waits, then reads the head this one leaves); on SQLite it takes the database's write
    lock. Either way no two events ever chain to the same predecessor."""
    db.session.execute(text("UPDATE event_chain SET last_id = last_id + 1 WHERE id = 1"))
    last_id, previous = db.session.execute(text("SELECT last_id, hash FROM event_chain WHERE id = 1")).one()
    return last_id, previous


def append(event: Event) -> None:
    """Add the event (its id and hash from the head) and move the head's hash to it."""
    db.session.add(event)
    db.session.execute(text("UPDATE event_chain SET hash = :hash WHERE id = 1"), {"hash": event.hash})


def head() -> tuple[int, str]:
    """(last event id, its hash): (0, the genesis hash) for an empty log."""
    return tuple(db.session.execute(text("SELECT last_id, hash FROM event_chain WHERE id = 1")).one())  # type: ignore[return-value]


def in_order(batch: int = 2000) -> Iterator[Event]:
    """Every event from the first, for verification (read in batches, not all at once)."""
    after = 0
    while True:
        found = list(db.session.scalars(select(Event).where(Event.id > after).order_by(Event.id).limit(batch)))
        yield from found
        if len(found) < batch:
            return
        after = found[-1].id
        db.session.expunge_all()


@dataclass(frozen=True)
class EventFilter:
    """What /api/v1/events and /events filter by (None: anything)."""

    type: str | None = None
    user: str | None = None
    table: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def page(where: EventFilter, before: int | None, limit: int) -> list[Event]:
    """Events matching the filter, newest first, with an id below `before`; one more than `limit`
    tells the caller there is a next page."""
    query = select(Event).order_by(Event.id.desc()).limit(limit + 1)
    query = _filtered(query, where)
    if before is not None:
        query = query.where(Event.id < before)
    return list(db.session.scalars(query))


def all_matching(where: EventFilter, batch: int = 2000) -> Iterator[list[Event]]:
    """Every matching event newest first, in batches (the CSV export)."""
    before = None
    while True:
        found = page(where, before, batch - 1)[:batch]
        if found:
            yield found
        if len(found) < batch:
            return
        before = found[-1].id


def _filtered(query, where: EventFilter):
    if where.type:
        query = query.where(Event.type == where.type)
    if where.user:
        query = query.where(Event.username == where.user)
    if where.table:
        query = query.where(Event.table_name == where.table)
    if where.since:
        query = query.where(Event.at >= where.since)
    if where.until:
        query = query.where(Event.at < where.until)
    return query
