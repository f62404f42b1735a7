"""The pages, through a signed-in browser: table, download, upload, review, decide, lists, audit, history."""

from __future__ import annotations

import datetime as dt
import io
import re
from html.parser import HTMLParser

import pytest
from conftest import HEADER, row, table


class Tables(HTMLParser):
    """The body rows of every <table> on a page, keyed by its class: [[(text, class), ...], ...]."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str]]]] = {}
        self._table: list | None = None
        self._cell: list[str] | None = None
        self._in_body = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("class") or "", [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self._table.append([])
        elif tag == "td" and self._in_body and self._table is not None:
            self._cell = []
            self._table[-1].append(("", attrs.get("class") or ""))

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self._table[-1][-1] = (text, self._table[-1][-1][1])
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def keys_on(page) -> list[str]:
    return [r[0][0] for r in Tables(page.text).tables["data"]]


def change_id_of(response) -> int:
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def approve(login, change_id: int) -> None:
    r = login("boss").post(f"/changes/{change_id}/approve")
    assert r.status_code == 302


# --- home ------------------------------------------------------------------------------------


def test_home_shows_version_rows_pending_and_actions(app, seeded, login):
    alice = login("alice")
    alice.upload(table(row("DS-9", "Waiting")), mode="partial")
    page = alice.get("/")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Version 1" in text and "3 rows" in text and "1 pending change request" in text
    assert 'href="/download"' in page.text and 'href="/upload"' in page.text
    assert "Download CSV" in text and "Upload CSV" in text
    assert keys_on(page) == ["DS-1", "DS-2", "DS-3"]
    assert "Waiting" not in text  # pending changes are not in the table yet


def test_home_of_an_empty_table(app, login):
    text = text_of(login("alice").get("/").text)
    assert "Version 0" in text and "0 rows" in text and "0 pending change requests" in text
    assert "The table is empty" in text


@pytest.fixture
def twelve(app, api):
    """A table with DS-01..DS-12, the odd ones on team 'Ops'."""
    rows = [row(f"DS-{i:02}", f"Set {i}", team="Ops" if i % 2 else "Data") for i in range(1, 13)]
    alice, boss = api("alice"), api("boss")
    r = alice.upload(table(*rows))
    boss.post(f"/api/v1/changes/{r.json['id']}/approve")
    return rows


def test_home_paginates(app, twelve, login):
    alice = login("alice")
    first, second, third = (alice.get(f"/?page={n}") for n in (1, 2, 3))
    assert keys_on(first) == [f"DS-{i:02}" for i in range(1, 6)]
    assert keys_on(second) == [f"DS-{i:02}" for i in range(6, 11)]
    assert keys_on(third) == ["DS-11", "DS-12"]
    assert "page=2" in first.text and "Previous" not in text_of(first.text)
    assert "page=1" in second.text and "page=3" in second.text
    assert "Next" not in text_of(third.text)


@pytest.mark.parametrize(
    "q, keys",
    [
        ("DS-03", ["DS-03"]),
        ("ds-1", ["DS-10", "DS-11", "DS-12"]),  # the key, case-insensitively
        ("set 7", ["DS-07"]),  # any text
        ("OPS", ["DS-01", "DS-03", "DS-05", "DS-07", "DS-09"]),  # paged: the first five of six
        ("100%", []),  # % and _ are literal
        ("nothing like it", []),
    ],
)
def test_home_search(app, twelve, login, q, keys):
    page = login("alice").get("/", query_string={"q": q})
    assert page.status_code == 200
    if keys:
        assert keys_on(page) == keys
    else:
        assert "No row matches" in page.text
    assert f'value="{q}"' in page.text


def test_search_keeps_the_query_when_paging(app, twelve, login):
    alice = login("alice")
    first = alice.get("/?q=ops")
    assert re.search(r'href="[^"]*q=ops[^"]*page=2|href="[^"]*page=2[^"]*q=ops', first.text)
    assert keys_on(alice.get("/?q=ops&page=2")) == ["DS-11"]


# --- download --------------------------------------------------------------------------------


def test_download_page_equals_api_export(app, seeded, login, api):
    page = login("bob").get("/download")
    assert page.status_code == 200
    assert page.headers["Content-Disposition"] == 'attachment; filename="datasets-v1.csv"'
    assert page.headers["X-Dataset-Version"] == "1"
    assert page.data == api("bob").get("/api/v1/export.csv").data
    assert page.data.startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")


# --- upload ----------------------------------------------------------------------------------


def test_upload_page_has_the_form(app, login):
    page = login("alice").get("/upload")
    assert page.status_code == 200
    for name in ('name="file"', 'name="comment"', 'name="mode"', 'value="full"', 'value="partial"'):
        assert name in page.text
    assert 'enctype="multipart/form-data"' in page.text


def test_upload_goes_to_the_review_page(app, seeded, login):
    alice = login("alice")
    r = alice.upload(table(row("DS-1", "Sales EMEA")), mode="partial", comment="rename")
    change_id = change_id_of(r)
    assert r.headers["Location"] == f"/changes/{change_id}"
    page = alice.get(r.headers["Location"])
    assert f"Change request #{change_id} is waiting" in page.text


def test_upload_problems_are_listed_with_line_and_column(app, seeded, login):
    alice = login("alice")
    bad = table(row("DS-1", row_count="many"), row("DS-2"), row("DS-2"), row("DS-4", created="someday"))
    r = alice.upload(bad)
    assert r.status_code == 422
    problems = Tables(r.text).tables["problem-list"]
    # row, key, column, problem, line
    assert [(cells[0][0], cells[1][0], cells[2][0], cells[4][0]) for cells in problems] == [
        ("2", "DS-1", "row_count", "2"),
        ("4", "DS-2", "id", "4"),
        ("5", "DS-4", "created", "5"),
    ]
    assert "'many' is not a whole number" in problems[0][3][0]
    assert "3 problems" in text_of(r.text) and "Nothing was changed" in r.text
    assert "0 pending" in text_of(alice.get("/").text)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04\x14\x00garbage", "CSV UTF-8"),
        ((HEADER + ",colour\n").encode(), "unknown column"),
    ],
    ids=["empty", "zip", "unknown column"],
)
def test_upload_of_a_bad_file_is_422(app, login, content, message):
    r = login("alice").upload(content)
    assert r.status_code == 422
    assert message in r.text


def test_upload_without_a_file_shows_the_field_error(app, login):
    r = login("alice").post("/upload", data={"mode": "full"}, content_type="multipart/form-data")
    assert r.status_code == 400
    assert "Choose the file to upload." in r.text


def test_oversized_upload_is_a_friendly_413(make_app):
    app = make_app(MAX_CONTENT_LENGTH=2048)
    with app.app_context():
        import accounts
        from models import db

        accounts.create_user("alice", "alice-password")
        db.session.commit()
    client = app.test_client()
    client.post("/login", data={"username": "alice", "password": "alice-password"})
    big = table(*(row(f"DS-{i}", "x" * 50) for i in range(100))).encode()
    r = client.post("/upload", data={"file": (io.BytesIO(big), "big.csv"), "mode": "full"},
                    content_type="multipart/form-data")  # fmt: skip
    assert r.status_code == 413
    assert r.mimetype == "text/html"
    assert "File too large" in r.text and "upload limit" in r.text and "Traceback" not in r.text
    # It says how big the file was and leads back to the upload form; configuration is the README's.
    assert "Your file is 13 KB" in r.text and "upload limit of 2 KB" in r.text
    assert '<a href="/upload">Back to the upload form</a>' in r.text and "MAX_UPLOAD_MB" not in r.text


# --- the review page -------------------------------------------------------------------------


def test_review_page_shows_who_when_comment_base_and_counts(app, seeded, login):
    alice = login("alice")
    change_id = change_id_of(
        alice.upload(
            table(row("DS-1", "Sales EMEA"), row("DS-2", "HR"), row("DS-4", "New")),
            comment="EMEA rename <b>now</b>",
            confirm_deletions="1",
        )
    )
    page = login("bob").get(f"/changes/{change_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert f"Change request #{change_id}" in text and "pending" in text
    assert "Uploaded by alice, " + today in text
    assert "EMEA rename &lt;b&gt;now&lt;/b&gt;" in page.text  # escaped
    assert "Based on version 1" in text
    assert "1 modified" in text and "1 added" in text and "1 deleted" in text and "1 unchanged" in text


def test_review_page_highlights_changed_cells(app, seeded, login):
    alice = login("alice")
    change_id = change_id_of(alice.upload(table(row("DS-1", "Sales EMEA", row_count="12")), mode="partial"))
    page = alice.get(f"/changes/{change_id}?show=modified")
    # By default: the key and only the changed cells, each old → new.
    [cells] = Tables(page.text).tables["diff diff-compact diff-modified"]
    assert cells[1] == ("DS-1", "key-cell")
    assert cells[2] == ("Name Sales → Sales EMEA Row count 10 → 12", "changes")
    assert "Data" not in cells[2][0]  # unchanged cells are left out
    assert "<del>Sales</del>" in page.text and "<ins>Sales EMEA</ins>" in page.text
    # ?cells=all: every column, the changed ones highlighted.
    page = alice.get(f"/changes/{change_id}?show=modified&cells=all")
    [cells] = Tables(page.text).tables["diff diff-modified"]
    changed = [(t, c) for t, c in cells if c == "changed"]
    assert changed == [("Sales → Sales EMEA", "changed"), ("10 → 12", "changed")]
    assert ("DS-1", "key-cell modified") in cells and ("Data", "") in cells  # unchanged cells plain


def test_review_page_shows_added_and_deleted_rows(app, seeded, login):
    alice = login("alice")
    change_id = change_id_of(
        alice.upload(table(row("DS-1", "Sales"), row("DS-2", "HR"), row("DS-4", "New")), confirm_deletions="1")
    )
    added = Tables(alice.get(f"/changes/{change_id}?show=added").text).tables["diff diff-added"]
    assert [c[:3] for c in added] == [[("4", "line"), ("DS-4", "key-cell added"), ("New", "added")]]
    deleted = Tables(alice.get(f"/changes/{change_id}?show=deleted").text).tables["diff diff-deleted"]
    assert [c[1:3] for c in deleted] == [[("DS-3", "key-cell deleted"), ("Finance", "deleted")]]


def test_review_page_pages_through_many_rows(app, seeded, login):
    alice = login("alice")
    rows = [row(f"N-{i:02}", f"New {i}") for i in range(12)]
    change_id = change_id_of(alice.upload(table(*rows), mode="partial"))
    seen = []
    for page_number in (1, 2, 3):
        page = alice.get(f"/changes/{change_id}?show=added&page={page_number}")
        seen.append([c[1][0] for c in Tables(page.text).tables["diff diff-added"]])
    assert seen == [[f"N-{i:02}" for i in range(5)], [f"N-{i:02}" for i in range(5, 10)], ["N-10", "N-11"]]
    assert "12 added" in text_of(page.text)


def test_review_page_actions_by_role(app, seeded, login):
    alice = login("alice")
    change_id = change_id_of(alice.upload(table(row("DS-1", "Sales EMEA")), mode="partial"))
    url = f"/changes/{change_id}"
    admin_page, submitter_page, other_page = (login(u).get(url).text for u in ("boss", "alice", "bob"))
    assert f'action="{url}/approve"' in admin_page and f'action="{url}/reject"' in admin_page
    assert f'action="{url}/withdraw"' not in admin_page
    assert f'action="{url}/withdraw"' in submitter_page
    for page in (submitter_page, other_page):
        assert "/approve" not in page and "/reject" not in page
    assert f'action="{url}/withdraw"' not in other_page


def test_non_admins_get_403_on_decisions(app, seeded, login):
    alice = login("alice")
    change_id = change_id_of(alice.upload(table(row("DS-1", "Sales EMEA")), mode="partial"))
    for user in ("alice", "bob"):
        client = login(user)
        assert client.post(f"/changes/{change_id}/approve").status_code == 403
        assert client.post(f"/changes/{change_id}/reject", data={"reason": "no"}).status_code == 403
    assert login("bob").post(f"/changes/{change_id}/withdraw").status_code == 403
    assert "Sales EMEA" not in alice.get("/download").data.decode("utf-8-sig")
    assert "pending" in text_of(alice.get(f"/changes/{change_id}").text)


def test_approve_in_the_page(app, seeded, login):
    alice = login("alice")
    change_id = change_id_of(alice.upload(table(row("DS-1", "Sales EMEA")), mode="partial"))
    r = login("boss").post(f"/changes/{change_id}/approve", follow_redirects=True)
    text = text_of(r.text)
    assert "Approved and applied: the table is now version 2" in text
    assert "approved" in text and "Approve and apply" not in text
    assert "Sales EMEA" in alice.get("/download").data.decode("utf-8-sig")
    assert "Version 2" in text_of(alice.get("/").text)


def test_reject_in_the_page_needs_a_reason(app, seeded, login):
    alice, boss = login("alice"), login("boss")
    change_id = change_id_of(alice.upload(table(row("DS-1", "Sales EMEA")), mode="partial"))
    r = boss.post(f"/changes/{change_id}/reject", data={"reason": ""}, follow_redirects=True)
    assert "Give a reason" in r.text and "pending" in text_of(r.text)
    r = boss.post(f"/changes/{change_id}/reject", data={"reason": "Wrong region"}, follow_redirects=True)
    text = text_of(r.text)
    assert f"Change request #{change_id} rejected" in text and "Reason Wrong region" in text


def test_withdraw_in_the_page(app, seeded, login):
    alice = login("alice")
    change_id = change_id_of(alice.upload(table(row("DS-1", "Sales EMEA")), mode="partial"))
    r = alice.post(f"/changes/{change_id}/withdraw", follow_redirects=True)
    assert f"Change request #{change_id} withdrawn" in r.text
    assert "withdrawn" in text_of(r.text) and "/withdraw" not in r.text


def test_unknown_change_request_is_404(app, login):
    r = login("alice").get("/changes/4242")
    assert r.status_code == 404 and "#4242" in r.text


# --- change list -----------------------------------------------------------------------------


def test_change_list_by_status(app, seeded, login, api):
    alice = login("alice")
    pending = change_id_of(alice.upload(table(row("DS-1", "A")), mode="partial"))
    rejected = change_id_of(alice.upload(table(row("DS-2", "B")), mode="partial"))
    withdrawn = change_id_of(alice.upload(table(row("DS-3", "C")), mode="partial"))
    api("boss").post(f"/api/v1/changes/{rejected}/reject", json={"reason": "no"})
    alice.post(f"/changes/{withdrawn}/withdraw")

    def listed(status: str | None) -> list[int]:
        page = alice.get("/changes" + (f"?status={status}" if status else ""))
        return [int(cells[0][0].lstrip("#")) for cells in Tables(page.text).tables.get("list", [])]

    assert listed(None) == [pending]  # pending is the default
    assert listed("pending") == [pending]
    assert listed("approved") == [1]
    assert listed("rejected") == [rejected]
    assert listed("withdrawn") == [withdrawn]
    assert listed("all") == [withdrawn, rejected, pending, 1]


# --- audit and history -----------------------------------------------------------------------


@pytest.fixture
def history(app, seeded, api):
    """After the seed (alice, approved by boss): bob renames DS-2 and deletes DS-3 (approved)."""
    bob = api("bob")
    r = bob.upload(table(row("DS-1", "Sales"), row("DS-2", "HR Global")), confirm_deletions="1")
    seeded.post(f"/api/v1/changes/{r.json['id']}/approve")


def audit_rows(page) -> list[tuple[str, str, str, str]]:
    """(action, key, submitter, approver) of each row of the audit table."""
    return [(c[1][0], c[2][0], c[4][0], c[5][0]) for c in Tables(page.text).tables.get("list audit", [])]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", [("delete", "DS-3"), ("modify", "DS-2"), ("add", "DS-3"), ("add", "DS-2"), ("add", "DS-1")]),
        ("key=DS-2", [("modify", "DS-2"), ("add", "DS-2")]),
        ("user=bob", [("delete", "DS-3"), ("modify", "DS-2")]),
        ("user=alice", [("add", "DS-3"), ("add", "DS-2"), ("add", "DS-1")]),
        ("user=bob&key=DS-2", [("modify", "DS-2")]),
        (
            "since=2000-01-01&until={today}",
            [("delete", "DS-3"), ("modify", "DS-2"), ("add", "DS-3"), ("add", "DS-2"), ("add", "DS-1")],
        ),
        ("since={tomorrow}", []),
        ("until=2000-01-01", []),
    ],
)
def test_audit_page_filters(app, history, login, query, expected):
    today = dt.datetime.now(dt.UTC).date()
    query = query.format(today=today, tomorrow=today + dt.timedelta(days=1))
    page = login("alice").get("/audit?" + query)
    assert page.status_code == 200
    rows = audit_rows(page)
    assert [(a, k) for a, k, _, _ in rows] == expected
    if not expected:
        assert "No audit entries match" in page.text


def test_audit_page_shows_people_and_changes(app, history, login):
    page = login("alice").get("/audit?key=DS-2")
    assert audit_rows(page) == [("modify", "DS-2", "bob", "boss"), ("add", "DS-2", "alice", "boss")]
    assert "<del>HR</del>" in page.text and "<ins>HR Global</ins>" in page.text


def test_audit_page_pages(app, twelve, login):
    alice = login("alice")
    first = alice.get("/audit")
    assert len(audit_rows(first)) == 5
    older = re.search(r'href="(/audit\?[^"]*before=\d+[^"]*)"', first.text)
    assert older
    second = alice.get(older.group(1).replace("&amp;", "&"))
    keys = [k for _, k, _, _ in audit_rows(first) + audit_rows(second)]
    assert len(keys) == 10 and len(set(keys)) == 10


def test_audit_page_rejects_a_bad_date(app, login):
    r = login("alice").get("/audit?since=last+week")
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text


def record_versions(page) -> list[tuple[str, str, list[str]]]:
    """(version, what happened, the changed cells' texts) of each row of a record's versions table."""
    return [
        (c[0][0], c[1][0].split()[-1], [text for text, cls in c[4:] if cls == "changed"])
        for c in Tables(page.text).tables.get("list record-versions", [])
    ]


def test_record_history_page(app, history, login):
    alice = login("alice")
    page = alice.get("/records/DS-2")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Record DS-2" in text and "HR Global" in text
    versions = record_versions(page)
    assert [(v, what) for v, what, _ in versions] == [("2", "modified"), ("1", "added")]
    assert versions[0][2] == ["HR Global"]  # only the cell version 2 changed is highlighted
    blame = {c[0][0]: c[1][0] for c in Tables(page.text).tables["record"]}
    assert blame["HR Global"].startswith("version 2, #2 by bob") and blame["owner@example.com"].startswith(
        "version 1, #1 by alice"
    )
    deleted = alice.get("/records/DS-3")
    assert "not in the table any more" in deleted.text and "Its last values were" in deleted.text
    assert "Finance" in text_of(deleted.text)  # the last values of a deleted record
    assert [(v, what) for v, what, _ in record_versions(deleted)] == [("2", "deleted"), ("1", "added")]
    assert alice.get("/records/NOPE").status_code == 404


def test_home_links_each_row_to_its_history(app, seeded, login):
    page = login("alice").get("/")
    assert 'href="/records/DS-1"' in page.text
