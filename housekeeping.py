"""Clean-up of what is kept only for a while: expired error files, the staged rows of old rejected
and withdrawn requests, expired failed sign-ins, uploads held for a mass-deletion question past
their hour, finished notifications.

It runs at start-up (bootstrap), with `flask --app app cleanup` (for cron), and every
CLEANUP_INTERVAL_MINUTES in each app process, in a background thread started by the first request
after the interval, so no one's request waits for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass

from flask import Flask, current_app

import accounts
import changes
import notifications
import store.accounts
import uploads
from models import db, utcnow

log = logging.getLogger(__name__)
_lock = threading.Lock()
_last_run: dict[int, float] = {}  # id of the app → time.monotonic() of its last clean-up in this process


@dataclass
class CleanUp:
    """What one clean-up deleted."""

    error_files: int
    purged_requests: int
    login_failures: int
    held_uploads: int = 0

    def __add__(self, other: CleanUp) -> CleanUp:
        return CleanUp(
            self.error_files + other.error_files,
            self.purged_requests + other.purged_requests,
            self.login_failures + other.login_failures,
            self.held_uploads + other.held_uploads,
        )


def clean_up() -> CleanUp:
    """Delete what has expired (see the module's docstring); returns how much of each."""
    files, purged = changes.expire_kept()
    notifications.expire_finished()
    return CleanUp(files, purged, accounts.expire_failures(), expire_held_uploads())


def expire_held_uploads() -> int:
    """Delete the uploads kept for a mass-deletion question whose hour is over (whether or not
    their owner ever came back to it); returns how many."""
    expired = store.accounts.delete_held_uploads_before(utcnow() - dt.timedelta(hours=uploads.HELD_UPLOAD_HOURS))
    db.session.commit()
    return expired


def started(app: Flask) -> None:
    """Note that the app ran its clean-up at start-up: the next is due an interval later."""
    _last_run[id(app)] = time.monotonic()


def maybe_clean_up() -> None:
    """before_request: start a clean-up in the background when the last one in this process is
    CLEANUP_INTERVAL_MINUTES old (0: never here, only at start-up and by the CLI)."""
    minutes = current_app.config["CLEANUP_INTERVAL_MINUTES"]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if minutes <= 0 or time.monotonic() - _last_run.get(id(app), 0.0) < minutes * 60:
        return
    with _lock:
        if time.monotonic() - _last_run.get(id(app), 0.0) < minutes * 60:
            return  # another thread was first
        _last_run[id(app)] = time.monotonic()
    threading.Thread(target=_run, args=(app,), name="clean-up", daemon=True).start()


def _run(app: Flask) -> None:
    with app.app_context():
        try:
            done = clean_up()
        except Exception:  # a failed clean-up is logged and tried again after the next interval
            log.exception("clean-up failed")
            return
        if done.error_files or done.purged_requests:
            log.info(
                "clean-up: deleted %d expired error file(s) and the staged rows of %d old request(s)",
                done.error_files,
                done.purged_requests,
            )
