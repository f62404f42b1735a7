"""The event log over HTTP: the /events page, `GET /api/v1/events`, `/api/v1/events.csv` and
`/api/v1/events/head` (admins and AUDITORS only, checked by events.py), and the download event
each table download writes (`downloaded`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from flask_login import current_user

import events
from store.events import EventFilter
from web import downloads
from web.params import int_arg, limit_arg, parse_when, refuse

bp = Blueprint("event_log", __name__)


def event_filter() -> EventFilter:
    """The filters of the query string: type, user, table, since, until (ISO dates or date-times)."""
    kind = request.args.get("type", "").strip() or None
    if kind is not None and kind not in events.TYPES:
        refuse(f"type {kind[:40]!r} is not an event type; use one of {', '.join(events.TYPES)}.")
    return EventFilter(
        type=kind,
        user=request.args.get("user", "").strip() or None,
        table=request.args.get("table", "").strip() or None,
        since=parse_when(request.args.get("since")),
        until=parse_when(request.args.get("until"), end=True),
    )


def event_json(event) -> dict[str, Any]:
    """An event as the API shows it: what its hash covers, and the hash."""
    return events.as_dict(event) | {"hash": event.hash}


@bp.route("/api/v1/events")
def api_events():
    """Events newest first: ?type, user, table, since, until, limit (≤1000), before (the answer's `next`)."""
    found = events.page(current_user.username, event_filter(), int_arg("before", None, low=1), limit_arg(100, 1000))
    return jsonify({"items": [event_json(e) for e in found.items], "next": found.next})


@bp.route("/api/v1/events.csv")
def api_events_csv():
    """The events matching the same filters as /api/v1/events, as a streamed, formula-safe CSV."""
    return downloads.csv_stream("events.csv", events.csv_chunks(current_user.username, event_filter()))


@bp.route("/api/v1/events/head")
def api_head():
    """The last event's id and hash, for anchoring the chain outside the app."""
    events.require_reader(current_user.username)
    return jsonify(events.head())


@bp.route("/events")
def page():
    """The event log page (admins and auditors): filters, newest first, older pages by `before`."""
    found = events.page(current_user.username, event_filter(), int_arg("before", None, low=1), 50)
    return render_template(
        "events.html",
        items=[event_json(e) for e in found.items],
        next_before=found.next,
        args=request.args,
        types=events.TYPES,
        head=events.head(),
    )


def downloaded(response: Response, type_: str, table: str | None, fmt: str) -> Response:
    """Write the download (page) or export (API) event of a table or the whole database: which
    version, which format; returns the response."""
    version = response.headers.get("X-Dataset-Version")
    details = {"version": int(version) if version and version.isdigit() else None, "format": fmt}
    events.record_now(type_, table=table, details=details)
    return response
