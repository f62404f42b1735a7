"""Hardening round 3 (issue 20), per-person limits: reverts count against MAX_PENDING_PER_USER;
uploads held for the mass-deletion question are capped per person (HELD_UPLOADS_PER_USER),
expire after their hour and are cleaned up."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import Api, add_test_users, row, table

import housekeeping
from models import HeldUpload, db

KEYS = [f"DS-{n}" for n in range(1, 11)]


@pytest.fixture
def limited(make_app):
    app = add_test_users(make_app(MAX_PENDING_PER_USER=2, HELD_UPLOADS_PER_USER=2))
    alice, boss = Api(app, "alice"), Api(app, "boss")
    r = alice.upload(table(*(row(k) for k in KEYS)))
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    return app, alice, boss, r.json["id"]


def test_reverts_count_against_the_pending_limit(limited):
    _, alice, boss, approved = limited
    assert alice.upload(table(*(row(k, "Changed") for k in KEYS)), mode="partial").status_code == 201
    assert alice.post(f"/api/v1/changes/{approved}/revert").status_code == 201
    r = alice.post(f"/api/v1/changes/{approved}/revert")
    assert r.status_code == 429, r.text
    assert "the limit is 2 (MAX_PENDING_PER_USER)" in r.json["error"]
    assert boss.post(f"/api/v1/changes/{approved}/revert").status_code == 201  # per person


def held_uploads(app) -> list[HeldUpload]:
    with app.app_context():
        return list(db.session.scalars(db.select(HeldUpload).order_by(HeldUpload.id)))


def ask(app) -> None:
    """alice's page upload deleting 9 of 10 rows: the mass-deletion question keeps the file."""
    browser = app.test_client()
    browser.post("/login", data={"username": "alice", "password": "alice-password"})
    import io

    data = {"file": (io.BytesIO(table(row("DS-1")).encode()), "t.csv"), "mode": "full"}
    r = browser.post("/upload", data=data, content_type="multipart/form-data")
    assert r.status_code == 422 and "is kept for an hour" in r.text


def test_held_uploads_are_capped_per_person(limited):
    app = limited[0]
    for _ in range(5):
        ask(app)
    kept = held_uploads(app)
    assert len(kept) == 2 and {h.owner for h in kept} == {"alice"}


def test_held_uploads_expire_and_the_clean_up_deletes_them(limited):
    app = limited[0]
    ask(app)
    ask(app)
    with app.app_context():
        first = db.session.scalars(db.select(HeldUpload).order_by(HeldUpload.id)).first()
        first.created_at -= dt.timedelta(hours=2)
        db.session.commit()
        done = housekeeping.clean_up()
    assert done.held_uploads == 1 and len(held_uploads(app)) == 1
    result = app.test_cli_runner().invoke(args=["cleanup"])
    assert "0 expired held upload(s)" in result.output
