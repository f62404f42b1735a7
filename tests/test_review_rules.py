"""The rules behind the review pages, without a browser, on SQLite and PostgreSQL: counts per
column kept with the request, filters and page counts, the approval confirmation, held uploads,
error rows and keys, table sorting, the audit key prefix. (tests/test_review_pages.py drives the
same pages in Chromium.)"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import re

import openpyxl
import pytest
import sqlalchemy as sa
from conftest import HEADER, row, table

import store.changes
from app import MIGRATIONS
from models import HeldUpload, db


def stage(client, *rows: str, filename: str = "table.csv", **form) -> int:
    r = client.upload(table(*rows), filename=filename, **form)
    assert r.status_code == 201, r.text
    return r.json["id"]


def approve(boss, change_id: int) -> None:
    assert boss.post(f"/api/v1/changes/{change_id}/approve").status_code == 200


def counts_of(app, change_id: int) -> dict[str, int]:
    with app.app_context():
        return store.changes.get_request(change_id).column_count_map


@pytest.fixture
def ten(app, api):
    """DS-01..DS-10 approved (version 1); returns alice's and the admin's API clients."""
    alice, boss = api("alice"), api("boss")
    approve(boss, stage(alice, *(row(f"DS-{i:02}", f"Set {i}", row_count=str(i)) for i in range(1, 11))))
    return alice, boss


# --- counts per column, kept with the request ---------------------------------------------------


def test_column_counts_are_stored_at_staging(app, ten):
    alice, _ = ten
    change_id = stage(
        alice,
        *(row(f"DS-{i:02}", f"Set {i}", row_count=str(i), owner="new@example.com") for i in range(1, 4)),
        row("DS-04", "Renamed", row_count="4", owner="new@example.com"),
        row("NEW-1"),
        mode="partial",
    )
    assert counts_of(app, change_id) == {"owner": 4, "name": 1}
    with app.app_context():
        markers = dict(
            db.session.execute(
                sa.text("SELECT key, changed FROM pending_changes WHERE change_id = :id"), {"id": change_id}
            ).all()
        )
    assert markers["DS-04"] == "\x1fname\x1fowner\x1f" and markers["DS-01"] == "\x1fowner\x1f"
    assert markers["NEW-1"] is None


def test_column_counts_follow_resolved_conflicts(app, ten, api):
    alice, boss = ten
    bob = api("bob")
    approve(boss, stage(bob, row("DS-01", "Bob's name", row_count="1"), mode="partial"))  # version 2
    change_id = stage(
        alice,
        row("DS-01", "Alice's name", row_count="1"),
        row("DS-02", "Set 2", row_count="2000"),
        filename="datasets-v1.csv",
        mode="partial",
    )
    assert counts_of(app, change_id) == {"row_count": 1}  # DS-01's name is a conflict, not staged yet
    r = alice.post(
        f"/api/v1/changes/{change_id}/resolve",
        json={"resolutions": [{"key": "DS-01", "column": "name", "take": "yours"}]},
    )
    assert r.status_code == 200, r.text
    assert counts_of(app, change_id) == {"row_count": 1, "name": 1}


def test_column_filter_reads_the_stored_count(app, ten, login, monkeypatch):
    """The page's total for a column comes from the request, not from counting its rows again."""
    alice, _ = ten
    change_id = stage(alice, *(row(f"DS-{i:02}", f"New {i}", row_count=str(i)) for i in range(1, 8)), mode="partial")
    with app.app_context():
        db.session.execute(
            sa.text("UPDATE change_requests SET column_counts = :c WHERE id = :id"),
            {"c": json.dumps({"name": 6}), "id": change_id},
        )
        db.session.commit()
    monkeypatch.setattr(store.changes, "pending_count", lambda *a, **k: pytest.fail("counted the rows again"))
    page = login("alice").get(f"/changes/{change_id}?show=modified&column=name")
    assert page.status_code == 200
    assert "6 modified rows changing" in page.text and "Name: 6 rows" in page.text


# --- filters and pages --------------------------------------------------------------------------


def test_review_page_filters_by_column_and_key_with_page_counts(app, ten, login):
    alice, _ = ten
    change_id = stage(
        alice,
        *(row(f"DS-{i:02}", f"Set {i}", row_count=str(i), owner="x@example.com") for i in range(1, 9)),
        row("DS-09", "Renamed", row_count="9"),
        mode="partial",
    )
    browser = login("boss")
    page = browser.get(f"/changes/{change_id}")  # PAGE_SIZE is 5 in the tests
    assert "Page 1 of 2" in page.text and "Owner: 8 rows" in page.text and "Name: 1 row" in page.text
    page = browser.get(f"/changes/{change_id}?show=modified&column=name")
    assert re.findall(r'class="key" href="/records/([^"]+)"', page.text) == ["DS-09"]
    assert "Page 1 of 1" in page.text
    page = browser.get(f"/changes/{change_id}?show=modified&q=ds-0")  # any case, any part of the key
    assert "9 modified rows" in page.text and "Page 1 of 2" in page.text
    page = browser.get(f"/changes/{change_id}?show=modified&column=owner&q=7")
    assert re.findall(r'class="key" href="/records/([^"]+)"', page.text) == ["DS-07"]
    assert browser.get(f"/changes/{change_id}?page=2").status_code == 200
    missing = browser.get(f"/changes/{change_id}?page=3")
    assert missing.status_code == 404 and "There is no page 3" in missing.text


def test_flagged_rows_filter(app, ten, api, login):
    alice, boss = ten
    approve(boss, stage(api("bob"), row("DS-01", "Bob's name", row_count="1"), mode="partial"))
    # unknown base: DS-01's name back to its old value undoes bob's approval
    change_id = stage(alice, row("DS-01", "Set 1", row_count="1"), row("DS-02", "Other", row_count="2"), mode="partial")
    browser = login("boss")
    page = browser.get(f"/changes/{change_id}")
    assert "1 flagged" in page.text
    page = browser.get(f"/changes/{change_id}?show=flagged")
    assert re.findall(r'class="key" href="/records/([^"]+)"', page.text) == ["DS-01"]
    assert "undoing change request #2" in page.text


def test_version_diff_pages_filters_and_404(app, ten, login):
    alice, boss = ten
    approve(
        boss, stage(alice, *(row(f"DS-{i:02}", f"Set {i}", row_count=str(i * 10)) for i in range(1, 8)), mode="partial")
    )
    browser = login("alice")
    page = browser.get("/diff?from=1&to=2")
    assert "Page 1 of 2" in page.text and "Row count: 7 rows" in page.text
    page = browser.get("/diff?from=1&to=2&q=ds-03")
    assert re.findall(r'class="key" href="/records/([^"]+)"', page.text) == ["DS-03"]
    assert browser.get("/diff?from=1&to=2&column=name").text.count('class="key"') == 0
    assert browser.get("/diff?from=1&to=2&page=3").status_code == 404


# --- approving more than 1,000 changes ---------------------------------------------------------


def test_approving_over_1000_changes_in_the_page_needs_the_exact_number(app, ten, login, api):
    alice, _ = ten
    change_id = stage(alice, *(row(f"N-{i:04}") for i in range(1001)), mode="partial")
    boss = login("boss")
    page = boss.get(f"/changes/{change_id}")
    assert 'name="confirm" id="confirm-approval" value="1001" required' in page.text
    assert "Yes, apply all 1,001 changes: 1,001 added, 0 modified, 0 deleted" in page.text
    for form in ({}, {"confirm": "1000"}):
        r = boss.post(f"/changes/{change_id}/approve", data=form, follow_redirects=True)
        assert "Confirm that you want to apply all 1,001 changes" in r.text
        assert api("alice").get(f"/api/v1/changes/{change_id}").json["status"] == "pending"
    r = boss.post(f"/changes/{change_id}/approve", data={"confirm": "1001"}, follow_redirects=True)
    assert "the table is now version 2" in r.text


def test_small_requests_and_the_api_need_no_confirmation(app, ten, login):
    alice, boss_api = ten
    small = stage(alice, row("N-1"), mode="partial")
    page = login("boss").get(f"/changes/{small}")
    assert "confirm-approval" not in page.text
    assert re.search(r'<textarea id="reason" [^>]*name="reason" [^>]*rows="3"', page.text)  # a multi-line reason
    big = stage(alice, *(row(f"M-{i:04}") for i in range(1001)), mode="partial")
    assert boss_api.post(f"/api/v1/changes/{big}/approve").status_code == 200  # scripts: as before


# --- mass deletion: the file is kept ------------------------------------------------------------


def test_confirming_mass_deletion_needs_no_second_upload(app, ten, login):
    alice = login("alice")
    r = alice.upload(table(row("DS-01", "Set 1", row_count="1")), comment="keep one")
    assert r.status_code == 422
    held = int(re.search(r'name="held" type="hidden" value="(\d+)"', r.text)[1])
    assert re.findall(r'<span class="key">([^<]+)</span>', r.text) == [f"DS-{i:02}" for i in range(2, 11)]
    # Another person cannot use it.
    other = login("bob").post("/upload", data={"held": held, "confirm_deletions": "9", "mode": "full"})
    assert other.status_code == 404
    r = alice.post("/upload", data={"held": held, "confirm_deletions": "9", "mode": "full", "comment": "keep one"})
    assert r.status_code == 302, r.text
    review = alice.get(r.headers["Location"]).text
    assert "9 deleted" in review and "keep one" in review
    with app.app_context():
        assert db.session.get(HeldUpload, held) is None  # used once, then forgotten


def test_held_upload_expires(app, ten, login):
    alice = login("alice")
    r = alice.upload(table(row("DS-01", "Set 1", row_count="1")))
    held = int(re.search(r'name="held" type="hidden" value="(\d+)"', r.text)[1])
    with app.app_context():
        db.session.get(HeldUpload, held).created_at -= dt.timedelta(hours=2)
        db.session.commit()
    r = alice.post("/upload", data={"held": held, "confirm_deletions": "9", "mode": "full"})
    assert r.status_code == 404 and "no longer kept" in r.text


def test_api_refusal_names_the_first_rows_it_would_delete(app, ten):
    alice, _ = ten
    r = alice.upload(table(row("DS-01", "Set 1", row_count="1")))
    assert r.status_code == 422 and r.json["deletions"] == 9
    assert r.json["first_deleted"] == [f"DS-{i:02}" for i in range(2, 11)]


# --- errors: the spreadsheet row and the key ----------------------------------------------------


def test_errors_name_the_spreadsheet_row_and_the_key(app, api):
    # The first row's description runs over three lines: the second row starts on line 5, row 3.
    text = table(row("DS-1", description="one\ntwo\nthree"), row("DS-2", row_count="many"), row("DS-2"))
    r = api("alice").upload(text)
    assert r.status_code == 422
    first, duplicate = r.json["errors"]
    assert first == {
        "line": 5,
        "row": 3,
        "key": "DS-2",
        "column": "row_count",
        "message": first["message"],
    }
    assert (duplicate["line"], duplicate["row"], duplicate["key"]) == (6, 4, "DS-2")


def test_workbook_errors_rows_are_lines(app, api):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    values = [c.strip('"') for c in row("DS-1", description="one\ntwo").split(",")]
    sheet.append(values)
    bad = [c.strip('"') for c in row("DS-2").split(",")]
    bad[8] = "many"
    sheet.append(bad)
    out = io.BytesIO()
    book.save(out)
    r = api("alice").upload(out.getvalue(), filename="table.xlsx")
    assert r.status_code == 422
    [problem] = r.json["errors"]
    assert (problem["line"], problem["row"], problem["key"]) == (3, 3, "DS-2")


# --- the table page -----------------------------------------------------------------------------


def keys_of(page) -> list[str]:
    return re.findall(r'<span class="key">([^<]+)</span>', page.text)


def test_table_sorts_by_any_column_on_the_server(app, api, login):
    alice, boss = api("alice"), api("boss")
    counts = {"A": "30", "B": "4", "C": "", "D": "1000", "E": "200", "F": "5", "G": "6"}
    names = {"A": "pear", "B": "Apple", "C": "fig", "D": "banana", "E": "cherry", "F": "date", "G": "elder"}
    approve(boss, stage(alice, *(row(k, names[k], row_count=v) for k, v in counts.items())))
    browser = login("alice")
    assert keys_of(browser.get("/?sort=row_count")) == ["B", "F", "G", "A", "E"]  # numbers as numbers; PAGE_SIZE 5
    assert keys_of(browser.get("/?sort=row_count&page=2")) == ["D", "C"]  # empty cells last
    assert keys_of(browser.get("/?sort=row_count&dir=desc")) == ["D", "E", "A", "G", "F"]
    assert keys_of(browser.get("/?sort=name")) == ["B", "D", "E", "F", "G"]  # any case
    assert keys_of(browser.get("/?sort=id&dir=desc")) == ["G", "F", "E", "D", "C"]
    page = browser.get("/?sort=name&q=an")  # only banana's row has "an"
    assert keys_of(page) == ["D"] and "Page 1 of 1" in page.text
    assert 'aria-sort="ascending"' in page.text
    assert browser.get("/?sort=nonsense").status_code == 404


def test_table_page_counts_pages_and_404s_past_the_end(app, api, login):
    alice, boss = api("alice"), api("boss")
    approve(boss, stage(alice, *(row(f"DS-{i:02}", description="x" * 200, row_count="1234567") for i in range(1, 12))))
    browser = login("alice")
    page = browser.get("/")
    assert "Page 1 of 3" in page.text
    assert "1,234,567" in page.text and '<a href="https://example.com/d" rel="noopener noreferrer">' in page.text
    assert '<details class="long">' in page.text and 'title="Human-readable name."' in page.text
    assert "Page 3 of 3" in browser.get("/?page=3").text
    assert browser.get("/?page=4").status_code == 404
    assert "Page 1 of 1" in browser.get("/?q=DS-11").text
    assert browser.get("/?q=DS-11&page=2").status_code == 404


# --- the audit log's key filter -----------------------------------------------------------------


def test_audit_key_filter_takes_a_beginning_in_any_case(app, ten, login):
    browser = login("alice")
    page = browser.get("/audit?key=ds-0")  # PAGE_SIZE 5: the newest five of DS-01..DS-09
    assert set(re.findall(r'class="key" href="/records/([^"]+)"', page.text)) == {f"DS-0{i}" for i in range(5, 10)}
    page = browser.get("/audit?key=dS-1")
    assert set(re.findall(r'class="key" href="/records/([^"]+)"', page.text)) == {"DS-10"}
    # Additions show the row's values.
    assert "added with" in page.text and "Set 10" in page.text


def test_api_audit_key_stays_exact_and_key_prefix_is_new(app, ten):
    alice, _ = ten
    exact = alice.get("/api/v1/audit?key=DS-1").json["items"]
    assert exact == []
    prefixed = alice.get("/api/v1/audit?key_prefix=ds-1").json["items"]
    assert [i["key"] for i in prefixed] == ["DS-10"]
    assert [i["key"] for i in alice.get("/api/v1/audit?key=DS-10").json["items"]] == ["DS-10"]


# --- the migration fills in what older requests lack --------------------------------------------


def test_migration_0005_counts_the_columns_of_existing_requests(app, ten):
    alice, _ = ten
    change_id = stage(alice, row("DS-01", "Renamed", row_count="1", owner="x@example.com"), mode="partial")
    spec = importlib.util.spec_from_file_location("m0005", MIGRATIONS / "versions" / "0005_review_pages.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with app.app_context():
        # as a request staged before the migration has them
        db.session.execute(sa.text("UPDATE pending_changes SET changed = NULL"))
        db.session.execute(sa.text("UPDATE change_requests SET column_counts = '{}'"))
        migration.backfill(db.session.connection())
        db.session.commit()
        assert store.changes.get_request(change_id).column_count_map == {"name": 1, "owner": 1}
        marker = db.session.execute(
            sa.text("SELECT changed FROM pending_changes WHERE change_id = :id"), {"id": change_id}
        ).scalar_one()
        assert marker == "\x1fname\x1fowner\x1f"


def test_a_common_search_counts_its_matches_no_further_than_a_limit(app, api, login, monkeypatch):
    import tables

    alice, boss = api("alice"), api("boss")
    approve(boss, stage(alice, *(row(f"DS-{i:02}") for i in range(1, 13))))
    monkeypatch.setattr(tables, "SEARCH_COUNT_MOST", 3)
    browser = login("alice")
    page = browser.get("/?q=ds")
    assert "More than 5 rows" in page.text and "Next ›" in page.text and "Last »" not in page.text
    assert keys_of(browser.get("/?q=ds&page=3")) == ["DS-11", "DS-12"]
    assert browser.get("/?q=ds&page=4").status_code == 404
