"""The mass-deletion guard: a full upload deleting more than MASS_DELETE_PERCENT of the table, or a
header-only file, is staged only when the uploader confirms the exact number of deletions."""

import re

import pytest
from conftest import HEADER, row, table

from models import ChangeRequest, db

KEYS = [f"DS-{n}" for n in range(1, 11)]


def keeping(n: int) -> str:
    """The 10-row table with only its first n rows (so 10 - n deletions)."""
    return table(*(row(k, f"Name {k}") for k in KEYS[:n]))


@pytest.fixture
def ten(app, api):
    """A table of ten approved rows; returns alice's API client."""
    alice, boss = api("alice"), api("boss")
    r = alice.upload(keeping(10))
    assert r.status_code == 201, r.text
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    return alice


def pending(app) -> int:
    with app.app_context():
        return db.session.query(ChangeRequest).filter_by(status="pending").count()


HEADER_ONLY = {
    "LF": HEADER + "\n",
    "no newline": HEADER,
    "CRLF with Excel's empty lines": HEADER + "\r\n,,,,,,,,,,\r\n\r\n",
}


# --- API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kept", "percent", "deletions", "guarded"),
    [
        (10, 20, 0, False),  # nothing deleted
        (8, 20, 2, False),  # exactly 20% is not "more than"
        (7, 20, 3, True),
        (1, 20, 9, True),
        (7, 30, 3, False),  # the setting is honoured
        (9, 0, 1, True),  # 0%: every deletion needs confirming
    ],
)
def test_api_guard_threshold(make_app, app, ten, kept, percent, deletions, guarded):
    app.config["MASS_DELETE_PERCENT"] = percent
    r = ten.upload(keeping(kept) + row("DS-NEW") + "\n")  # an addition, so the upload always changes something
    if guarded:
        assert r.status_code == 422, r.text
        assert r.json["deletions"] == deletions
        assert f"delete {deletions:,} of 10 rows" in r.json["error"]
        assert f"confirm the deletion of exactly {deletions:,} rows" in r.json["error"]
        assert pending(app) == 0
    else:
        assert r.status_code == 201, r.text
        assert r.json["summary"]["deleted"] == deletions


@pytest.mark.parametrize(("confirm", "staged"), [("3", True), ("2", False), ("4", False), ("0", False), (" 3 ", True)])
def test_api_confirmation_must_match_exactly(app, ten, confirm, staged):
    r = ten.upload(keeping(7), confirm_deletions=confirm)
    if staged:
        assert r.status_code == 201, r.text
        assert r.json["summary"] == {"added": 0, "modified": 0, "deleted": 3, "unchanged": 7, "conflicts": 0}
        assert pending(app) == 1
    else:
        assert r.status_code == 422, r.text
        assert r.json["deletions"] == 3
        assert f"You confirmed {int(confirm)} deletions" in r.json["error"]
        assert pending(app) == 0


@pytest.mark.parametrize("confirm", ["-3", "three", "3.0"])
def test_api_confirmation_not_a_number(app, ten, confirm):
    r = ten.upload(keeping(7), confirm_deletions=confirm)
    assert r.status_code == 400
    assert "confirm_deletions" in r.json["error"]
    assert pending(app) == 0


@pytest.mark.parametrize("text", HEADER_ONLY.values(), ids=HEADER_ONLY.keys())
@pytest.mark.parametrize("percent", [20, 100])
def test_api_header_only_file_always_needs_confirmation(app, ten, text, percent):
    app.config["MASS_DELETE_PERCENT"] = percent  # 100%: the share alone would never trigger the guard
    r = ten.upload(text)
    assert r.status_code == 422, r.text
    assert r.json["deletions"] == 10
    assert "no data rows" in r.json["error"]
    assert pending(app) == 0
    r = ten.upload(text, confirm_deletions="10")
    assert r.status_code == 201, r.text
    assert r.json["summary"]["deleted"] == 10


def test_api_header_only_on_empty_table_changes_nothing(app, api):
    r = api("alice").upload(HEADER + "\n")
    assert r.status_code == 200, r.text
    assert r.json["status"] == "unchanged"


def test_api_partial_upload_is_never_guarded(app, ten):
    r = ten.upload(keeping(1).replace("Name DS-1", "Renamed"), mode="partial")
    assert r.status_code == 201, r.text
    assert r.json["summary"]["deleted"] == 0
    r = ten.upload(HEADER + "\n", mode="partial")
    assert r.status_code == 200 and r.json["status"] == "unchanged"


def test_api_file_problems_come_before_the_guard(app, ten):
    r = ten.upload(HEADER + "\n" + row("DS-1", contains_pii="maybe") + "\n")
    assert r.status_code == 422
    assert r.json["errors"] and "deletions" not in r.json


def test_confirmed_mass_deletion_applies(app, ten, api):
    r = ten.upload(keeping(2), confirm_deletions="8")
    assert r.status_code == 201, r.text
    assert api("boss").post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    body = ten.get("/api/v1/export.csv").data.decode("utf-8-sig")
    assert [line.split(",")[0] for line in body.splitlines()[1:]] == ["DS-1", "DS-2"]


# --- web pages ---------------------------------------------------------------------------------


def checkbox(page: str) -> re.Match | None:
    return re.search(r'<input type="checkbox" name="confirm_deletions" value="(\d+)"', page)


def test_web_refusal_shows_checkbox_and_keeps_the_form(app, login, ten):
    alice = login("alice")
    r = alice.upload(keeping(5), comment="dropping the retired datasets")
    assert r.status_code == 422
    page = r.text
    assert checkbox(page) and checkbox(page).group(1) == "5"
    assert "would delete 5 of 10 rows" in page
    assert "Yes, delete exactly 5 rows" in page
    assert "is kept for an hour" in page and re.search(r'<input id="held" name="held" type="hidden" value="\d+">', page)
    assert "dropping the retired datasets</textarea>" in page
    assert re.search(r'<input checked id="mode-0" name="mode" type="radio" value="full">', page)
    assert pending(app) == 0


def test_web_header_only_refused(app, login, ten):
    r = login("alice").upload(HEADER + "\n", mode="full", comment="x")
    assert r.status_code == 422 and checkbox(r.text).group(1) == "10"
    assert "no data rows" in r.text


@pytest.mark.parametrize(("confirm", "status"), [("5", 302), ("4", 422), ("6", 422), ("", 422)])
def test_web_confirmation(app, login, ten, confirm, status):
    alice = login("alice")
    r = alice.upload(keeping(5), comment="cleanup", confirm_deletions=confirm)
    assert r.status_code == status, r.text
    if status == 302:
        assert re.fullmatch(r"/changes/\d+", r.headers["Location"])
        review = alice.get(r.headers["Location"]).text
        assert "5 deleted" in review and "cleanup" in review
        assert pending(app) == 1
    else:
        assert checkbox(r.text).group(1) == "5"
        assert pending(app) == 0
        if confirm:
            assert f"You confirmed {confirm} deletions" in r.text


def test_web_header_only_confirmed(app, login, ten):
    r = login("alice").upload(HEADER + "\r\n", confirm_deletions="10")
    assert r.status_code == 302
    assert pending(app) == 1


def test_web_confirmation_not_a_number(app, login, ten):
    r = login("alice").upload(keeping(5), confirm_deletions="five")
    assert r.status_code == 400
    assert "field-error" in r.text
    assert pending(app) == 0
