"""Hardening of the pages and the API (issue 11): crafted numbers and file names get 400 / 404,
never 500; no page, download or API answer is kept by a cache; upload quotas; the clean-up of
error files and of the staged rows of old rejected and withdrawn requests. On SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from conftest import Api, add_test_users, row, table
from sqlalchemy import text

import housekeeping
from models import ChangeRequest, ErrorReport, db

HUGE = "9" * 20  # more than any database integer holds
BAD_FILE = table(row("DS-1", row_count="many"))


# --- numbers from requests: 400 from the API, 404 on the pages, never 500 ---------------------

API_BAD = [
    "/api/v1/changes?limit=-1",
    "/api/v1/changes?limit=0",
    "/api/v1/changes?limit=ten",
    "/api/v1/changes?offset=-1",
    f"/api/v1/changes?offset={HUGE}",
    f"/api/v1/changes?limit={HUGE}0",
    "/api/v1/changes/1?limit=-1",
    "/api/v1/changes/1?limit=0",
    "/api/v1/changes/1?offset=-5",
    f"/api/v1/changes/1?offset={HUGE}",
    "/api/v1/audit?limit=-1",
    "/api/v1/audit?limit=0",
    f"/api/v1/audit?before={HUGE}",
    "/api/v1/audit?before=1e5",
    f"/api/v1/audit?change_id={HUGE}",
    "/api/v1/audit?change_id=\u0661",  # an Arabic-Indic digit: a digit to Python, not to us
    "/api/v1/audit?since=0001-01-01T00:00:00%2B01:00",
    "/api/v1/audit?until=9999-12-31",
]

PAGES_BAD = [
    "/?page=0",
    "/?page=-1",
    "/?page=abc",
    f"/?page={HUGE}",
    f"/changes?page={HUGE}",
    "/changes/1?page=0",
    f"/changes/{HUGE}",
    f"/changes/{'9' * 5000}",
    f"/uploads/errors/{HUGE}",
    f"/audit?before={HUGE}",
    f"/audit?change={HUGE}",
]


def test_bad_numbers_get_400_from_the_api(app, seeded):
    """The red team's `limit=-1` read all 300,000 audit entries (and was a 500 on PostgreSQL)."""
    for url in API_BAD:
        r = seeded.get(url)
        assert r.status_code == 400, (url, r.status_code, r.text[:200])
        assert r.is_json and r.json["error"], url


def test_a_negative_limit_does_not_lift_the_cap(app, seeded):
    assert seeded.get("/api/v1/audit?limit=-1").status_code == 400
    assert len(seeded.get("/api/v1/audit?limit=100000").json["items"]) == 3  # capped, not refused


def test_bad_numbers_and_ids_get_404_on_the_pages(app, login, seeded):
    alice = login("alice")
    for url in PAGES_BAD:
        r = alice.get(url)
        assert r.status_code == 404, (url, r.status_code)
        assert "Traceback" not in r.text


def test_ids_past_the_databases_integers_are_not_found_in_the_api(app, seeded):
    for url in (f"/api/v1/changes/{HUGE}", f"/api/v1/uploads/errors/{HUGE}", f"/api/v1/changes/{'9' * 5000}"):
        r = seeded.get(url)
        assert r.status_code == 404 and r.is_json, url
    assert seeded.post(f"/api/v1/changes/{HUGE}/approve").status_code == 404


def test_form_numbers_are_checked_too(app, api, login):
    r = api("alice").upload(table(row("DS-1")), confirm_deletions="²")  # isdigit() said yes; int() said no: a 500
    assert r.status_code == 400 and "confirm_deletions" in r.json["error"]
    alice = login("alice")
    assert alice.post("/tokens", data={"revoke": HUGE}).status_code == 404
    assert alice.post("/tokens", data={"revoke": "all"}).status_code == 302


def test_good_numbers_still_work(app, seeded, login):
    assert seeded.get("/api/v1/changes?limit=1&offset=0").json["total"] == 1
    assert len(seeded.get("/api/v1/changes/1?limit=2&offset=1").json["added"]) == 2
    assert seeded.get("/api/v1/audit?before=3&limit=5&change_id=1").status_code == 200
    alice = login("alice")
    for url in ("/?page=1", "/changes?page=1&status=all", "/changes/1?page=1", "/audit?before=2&change=1"):
        assert alice.get(url).status_code == 200, url


def test_nul_characters_are_refused_not_a_database_error(app, seeded, login, api):
    """PostgreSQL refuses NUL in text: a key, a search or a filter holding one was a 500 there."""
    alice = login("alice")
    for url in ("/records/a%00b", "/?q=%00", "/audit?key=%00", "/audit?user=x%00", "/changes?status=%00"):
        assert alice.get(url).status_code == 400, url
    for url in ("/api/v1/audit?key=%00", "/api/v1/records/a%00b/history", "/api/v1/changes?status=%00"):
        r = seeded.get(url)
        assert r.status_code == 400 and r.is_json, url
    pending = api("alice").upload(table(row("DS-9")), mode="partial", comment="a\x00b")
    assert pending.status_code == 400
    pending = api("alice").upload(table(row("DS-9")), mode="partial").json["id"]
    assert seeded.post(f"/api/v1/changes/{pending}/reject", json={"reason": "no\x00"}).status_code == 400
    assert seeded.get(f"/api/v1/changes/{pending}").json["status"] == "pending"
    assert alice.post("/login", data={"username": "x\x00", "password": "y"}).status_code == 400


# --- file names: no control characters in a Content-Disposition -------------------------------


def upload_named(client: Api, content: str, encoded_name: str):
    """An upload whose file name is sent RFC 5987-encoded (filename*=UTF-8''…), as the red team sent a CRLF."""
    boundary = "hardening-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''{encoded_name}\r\n"
        f"Content-Type: text/csv\r\n\r\n{content}\r\n--{boundary}--\r\n"
    ).encode()
    headers = client.headers | {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return client.client.post("/api/v1/changes", data=body, headers=headers)


def test_a_crlf_in_an_uploads_file_name_is_no_500(app, api, login):
    alice = api("alice")
    r = upload_named(alice, BAD_FILE, "evil%0D%0ASet-Cookie%3A%20stolen%3D1%0D%0A.csv")
    assert r.status_code == 422 and r.json["error_file"]
    download = login("alice").get(r.json["error_file"])
    assert download.status_code == 200
    disposition = download.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "Set-Cookie: stolen" in disposition
    assert "stolen" not in " ".join(download.headers.getlist("Set-Cookie"))
    staged = upload_named(alice, table(row("DS-1")), "tab%09here%00.csv")
    assert staged.status_code == 201, staged.text
    assert alice.get(f"/api/v1/changes/{staged.json['id']}").json["filename"] == "tabhere.csv"


# --- Cache-Control: no-store on everything but the static files -------------------------------


def test_nothing_with_table_data_or_a_token_is_cached(app, seeded, login):
    alice = login("alice")
    refused = seeded.upload(BAD_FILE)
    pages = {
        "table": alice.get("/"),
        "record": alice.get("/records/DS-1"),
        "download": alice.get("/download"),
        "download.xlsx": alice.get("/download.xlsx"),
        "review": alice.get("/changes/1"),
        "audit": alice.get("/audit"),
        "tokens": alice.post("/tokens"),
        "error page": alice.get("/no-such-page"),
        "sign-in": app.test_client().get("/login"),
        "api export": seeded.get("/api/v1/export.csv"),
        "api export.xlsx": seeded.get("/api/v1/export.xlsx"),
        "api change": seeded.get("/api/v1/changes/1"),
        "api audit": seeded.get("/api/v1/audit"),
        "api error file": seeded.get("/api/v1" + refused.json["error_file"]),
    }
    for name, response in pages.items():
        assert response.status_code < 500, name
        assert response.headers.get("Cache-Control") == "no-store", name
        response.close()
    static = alice.get("/static/style.css")
    assert static.headers.get("Cache-Control") != "no-store"
    static.close()


# --- quotas -----------------------------------------------------------------------------------


@pytest.fixture
def quota_app(make_app):
    return add_test_users(make_app(MAX_PENDING_PER_USER=2, ERROR_FILES_PER_USER=2))


def test_pending_requests_per_person_are_capped(quota_app):
    alice, bob = Api(quota_app, "alice"), Api(quota_app, "bob")
    first = alice.upload(table(row("DS-1"))).json["id"]
    second = alice.upload(table(row("DS-2"))).json["id"]
    r = alice.upload(table(row("DS-3")))
    assert r.status_code == 429
    assert "the limit is 2" in r.json["error"] and f"#{first}, #{second}" in r.json["error"]
    assert r.json["pending"] == [first, second]
    assert bob.upload(table(row("DS-4"))).status_code == 201  # per person
    page = quota_app.test_client()
    page.post("/login", data={"username": "alice", "password": "alice-password"})
    from io import BytesIO

    refused = page.post(
        "/upload", data={"file": (BytesIO(table(row("DS-5")).encode()), "t.csv")}, content_type="multipart/form-data"
    )
    assert refused.status_code == 429 and "the limit is 2" in refused.text
    assert alice.post(f"/api/v1/changes/{first}/withdraw").status_code == 200
    assert alice.upload(table(row("DS-3"))).status_code == 201


def test_error_files_per_person_are_capped(quota_app):
    alice, bob = Api(quota_app, "alice"), Api(quota_app, "bob")
    bobs = bob.upload(BAD_FILE).json["error_file"]
    links = [alice.upload(BAD_FILE).json["error_file"] for _ in range(3)]
    page = quota_app.test_client()
    page.post("/login", data={"username": "alice", "password": "alice-password"})
    assert [page.get(link).status_code for link in links] == [404, 200, 200]  # the newest two are kept
    bob_page = quota_app.test_client()
    bob_page.post("/login", data={"username": "bob", "password": "bob-password"})
    assert bob_page.get(bobs).status_code == 200
    with quota_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ErrorReport)) == 3


# --- clean-up: expired error files, staged rows of old rejected and withdrawn requests --------


def age(app, model, ident: int, column: str, days: float) -> None:
    with app.app_context():
        item = db.session.get(model, ident)
        setattr(item, column, getattr(item, column) - dt.timedelta(days=days))
        db.session.commit()


def staged_count(app, change_id: int) -> int:
    with app.app_context():
        return db.session.execute(
            text("SELECT count(*) FROM pending_changes WHERE change_id = :id"), {"id": change_id}
        ).scalar()


@pytest.fixture
def decided(app, api):
    """Four requests of two rows each: approved, rejected, withdrawn, pending; ids by status."""
    alice, boss = api("alice"), api("boss")
    ids = {}
    for status, keys in (("approved", "AB"), ("rejected", "CD"), ("withdrawn", "EF"), ("pending", "GH")):
        r = alice.upload(table(*(row(f"DS-{k}") for k in keys)), mode="partial")
        assert r.status_code == 201, r.text
        ids[status] = r.json["id"]
    assert boss.post(f"/api/v1/changes/{ids['approved']}/approve").status_code == 200
    assert boss.post(f"/api/v1/changes/{ids['rejected']}/reject", json={"reason": "no"}).status_code == 200
    assert alice.post(f"/api/v1/changes/{ids['withdrawn']}/withdraw").status_code == 200
    return ids


def test_staged_rows_of_old_rejected_and_withdrawn_requests_are_purged(app, api, login, decided, runner):
    """The red team's two withdrawn 1M-row uploads kept 2,000,000 staged rows for ever."""
    for status in ("approved", "rejected", "withdrawn"):
        age(app, ChangeRequest, decided[status], "decided_at", 31)
    age(app, ChangeRequest, decided["pending"], "created_at", 31)
    boss = api("boss")
    audit_before = boss.get("/api/v1/audit?limit=5000").json["items"]
    result = runner.invoke(args=["cleanup"])
    assert result.exit_code == 0 and "the staged rows of 2 rejected or withdrawn request(s)" in result.output
    assert staged_count(app, decided["rejected"]) == staged_count(app, decided["withdrawn"]) == 0
    assert staged_count(app, decided["approved"]) == 2  # never: they are what was applied
    assert staged_count(app, decided["pending"]) == 2
    assert boss.get("/api/v1/audit?limit=5000").json["items"] == audit_before  # the audit stays
    for status in ("rejected", "withdrawn"):
        detail = boss.get(f"/api/v1/changes/{decided[status]}").json
        assert detail["status"] == status and detail["summary"]["added"] == 2  # the request and its counts stay
        assert detail["rows_purged"] is True and detail["rows_purged_at"].endswith("Z")
        assert detail["added"] == []
        page = login("alice").get(f"/changes/{decided[status]}?show=added")
        assert page.status_code == 200 and "staged rows of this request were deleted" in page.text
        assert "No added rows" not in page.text
    approved = boss.get(f"/api/v1/changes/{decided['approved']}").json
    assert approved["rows_purged"] is False and len(approved["added"]) == 2
    assert runner.invoke(args=["cleanup"]).output.count("of 0 rejected") == 1  # nothing left to do


def test_recent_decisions_keep_their_rows(app, decided):
    age(app, ChangeRequest, decided["rejected"], "decided_at", 29)
    with app.app_context():
        assert housekeeping.clean_up().purged_requests == 0
    assert staged_count(app, decided["rejected"]) == 2


def test_expired_error_files_are_deleted_without_another_refused_upload(app, api, login):
    """They were deleted only when the next refused upload was saved."""
    link = api("alice").upload(BAD_FILE).json["error_file"]
    report_id = int(link.rsplit("/", 1)[1])
    age(app, ErrorReport, report_id, "created_at", 1.1)
    with app.app_context():
        assert housekeeping.clean_up().error_files == 1
        assert db.session.get(ErrorReport, report_id) is None


def test_the_clean_up_runs_at_start_up(app, api, make_app):
    link = api("alice").upload(BAD_FILE).json["error_file"]
    report_id = int(link.rsplit("/", 1)[1])
    age(app, ErrorReport, report_id, "created_at", 1.1)
    restarted = make_app()
    with restarted.app_context():
        assert db.session.get(ErrorReport, report_id) is None


def test_the_clean_up_runs_periodically_in_the_background(app, api, login, monkeypatch):
    link = api("alice").upload(BAD_FILE).json["error_file"]
    report_id = int(link.rsplit("/", 1)[1])
    age(app, ErrorReport, report_id, "created_at", 1.1)
    browser = login("bob")
    browser.get("/")  # within the interval: nothing happens
    with app.app_context():
        assert db.session.get(ErrorReport, report_id) is not None
    # as if the last clean-up were long ago (not 0.0: the monotonic clock may start near zero at boot)
    monkeypatch.setitem(housekeeping._last_run, id(app), float("-inf"))
    started = []
    real_thread = threading.Thread

    def watched(*args, **kwargs):
        thread = real_thread(*args, **kwargs)
        started.append(thread)
        return thread

    monkeypatch.setattr(housekeeping.threading, "Thread", watched)
    browser.get("/")
    assert len(started) == 1
    started[0].join(timeout=60)
    with app.app_context():
        db.session.expire_all()
        assert db.session.get(ErrorReport, report_id) is None
    browser.get("/")
    assert len(started) == 1  # and not again before the next interval
