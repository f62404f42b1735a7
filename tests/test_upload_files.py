"""Real files through the real upload path (page and API), on SQLite and PostgreSQL.

Good files of every kind stage the same rows and the review page says how the file was read; bad
files get 422 with line, column and a clear message, and nothing is staged; Excel damage is
warned about on the review page and in the API.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from files.problems import MAX_PROBLEMS
from models import ChangeRequest, PendingChange, db

DATA = Path(__file__).resolve().parent / "data"

# Every good file holds these three rows (see tests/data/make_files.py), as the API shows them.
ROWS = {
    "DS-1": {"id": "DS-1", "name": "Café Müller", "description": "Señor's ledger, 5 € per row",
             "owner": "zoë@example.com", "team": "Finance", "source_system": "SAP", "update_frequency": "daily",
             "contains_pii": True, "row_count": 1200, "created": "2024-01-31", "url": "https://example.com/a"},
    "DS-2": {"id": "DS-2", "name": "Ñandú report", "description": None, "owner": "jose@example.com",
             "team": "Sales", "source_system": "Salesforce", "update_frequency": "weekly", "contains_pii": False,
             "row_count": 0, "created": "2023-12-15", "url": "https://example.com/b"},
    "DS-3": {"id": "DS-3", "name": "Plain", "description": None, "owner": "ops@example.com", "team": None,
             "source_system": None, "update_frequency": None, "contains_pii": None, "row_count": None,
             "created": None, "url": None},
}  # fmt: skip


def staged(app) -> tuple[int, int]:
    """(change requests, staged rows) in the database."""
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(ChangeRequest)),
            db.session.scalar(select(func.count()).select_from(PendingChange)),
        )


def multipart(data: bytes, **fields: str) -> dict:
    """A pre-encoded upload form: for bodies over 500 KB the test client's own encoder spools to a
    temporary file that it never closes (a ResourceWarning, an error under filterwarnings)."""
    file = FileStorage(io.BytesIO(data), filename="big.csv", name="file", content_type="text/csv")
    boundary, body = encode_multipart({"file": file, **fields})
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def page_problems(text: str) -> list[tuple[str, str, str]]:
    """The (line, column, message) rows of the upload page's problem table (row, key, column, problem, line)."""
    cells = re.findall(
        r'<tr><td class="num">.*?</td><td class="key-cell">.*?</td><td>(.*?)</td><td>(.*?)</td><td class="num line">(.*?)</td></tr>',
        text,
        flags=re.S,
    )
    return [tuple(html.unescape(c) for c in (line, column, message)) for column, message, line in cells]


# --- good files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoding", "label"),
    [
        ("utf8.csv", "utf-8", "UTF-8"),
        ("utf8_bom.csv", "utf-8-sig", "UTF-8 with BOM"),
        ("utf16le.txt", "utf-16", "UTF-16"),
        ("utf16be.txt", "utf-16", "UTF-16"),
        ("cp1252.csv", "cp1252", "Windows-1252"),
        ("semicolon_cp1252.csv", "cp1252", "Windows-1252"),
        ("tab.tsv", "utf-8", "UTF-8"),
        ("pipe.csv", "utf-8", "UTF-8"),
        ("mac_cr.csv", "utf-8", "UTF-8"),
        ("mac_roman.csv", "mac_roman", "Mac Roman"),
        ("reordered_titles.csv", "utf-8", "UTF-8"),
        ("excel_trailing.csv", "utf-8-sig", "UTF-8 with BOM"),
    ],
)
def test_every_kind_of_file_stages_the_same_rows(app, api, login, name, encoding, label):
    r = api("alice").upload((DATA / name).read_bytes(), filename=name)
    assert r.status_code == 201, r.text
    assert r.json["summary"] == {"added": 3, "modified": 0, "deleted": 0, "unchanged": 0, "conflicts": 0}
    assert r.json["encoding"] == encoding
    detail = api("alice").get(f"/api/v1/changes/{r.json['id']}").json
    assert detail["encoding"] == encoding
    assert {row["id"]: row for row in detail["added"]} == ROWS
    review = html.unescape(login("alice").get(f"/changes/{r.json['id']}").text)
    assert f"{name} (read as {label}" in review


def test_a_file_saved_by_excel_in_another_encoding_is_no_change(app, api):
    """Upload as UTF-8, approve; the same table from European Excel (cp1252, `;`) changes nothing."""
    alice, boss = api("alice"), api("boss")
    r = alice.upload((DATA / "utf8.csv").read_bytes())
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    for name in ("semicolon_cp1252.csv", "utf16le.txt", "reordered_titles.csv", "excel_trailing.csv"):
        r = alice.upload((DATA / name).read_bytes(), filename=name)
        assert r.status_code == 200 and r.json["id"] is None, (name, r.text)
        assert r.json["summary"]["unchanged"] == 3


def test_quoted_values_survive_the_round_trip(app, api):
    alice, boss = api("alice"), api("boss")
    r = alice.upload((DATA / "quoted.csv").read_bytes())
    assert r.status_code == 201, r.text
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    export = alice.get("/api/v1/export.csv").data
    assert 'Say ""hi"", then go' in export.decode("utf-8-sig")
    r = alice.upload(export)
    assert r.status_code == 200 and r.json["summary"]["unchanged"] == 3


# --- bad files ------------------------------------------------------------------------------

ENUM = "realtime, hourly, daily, weekly, monthly, quarterly, yearly, ad hoc, never"
BAD = [
    ("ragged_long.csv", 3, "column 12", "has 12 cells but the header has 11; check for a stray separator"),
    ("ragged_short.csv", 3, "team", "has 4 cells but the header has 11 (no value for 'team' or the columns after it)"),
    ("unclosed_quote.csv", 3, "name", 'the quote (") that opens this value is never closed'),
    ("duplicate_header.csv", 1, "name", "column 'name' appears twice (columns 2 and 4)"),
    ("empty_header.csv", 1, "column 3", "header cell is empty; every column needs a name"),
    ("wide_header.csv", 1, "column 1", "the header has 10,000 columns and 10,000 of them are not columns of this table"),
    ("nul_byte.csv", 3, "description", "contains an invisible control character (U+0000); delete it"),
    ("over_max_length.csv", 3, "name", "is 201 characters long, at most 200 allowed"),
    ("enum_violation.csv", 2, "update_frequency", f"'fortnightly' is not one of the allowed values: {ENUM}"),
    ("pattern_failure.csv", 3, "url", "'ftp://example.com/file' does not match the pattern https?://\\S+"),
    ("space_keys.csv", 3, "id", "key 'DS-1 ' has spaces around it, which would make it a different key from 'DS-1'"),
    ("scientific_keys.csv", 2, "id", "key '1.23457E+15' looks like a number Excel turned into scientific notation"),
    ("ambiguous_date.csv", 2, "created", "'03/04/2024' is ambiguous: 3 April or March 4? Write dates as YYYY-MM-DD"),
    ("date_serial.csv", 2, "created", "'45322' looks like an Excel date serial number (2024-01-31?)"),
    ("duplicate_keys.csv", 4, "id", "duplicate key 'DS-1': it is also on line 2"),
    ("required_empty.csv", 2, "owner", "is required but empty"),
    # the file as a whole is wrong: there is no column to name
    ("binary_garbage.csv", 1, None, "this is a binary file, not CSV text"),
    ("pdf_renamed.csv", 1, None, "this is a PDF document, not a CSV file"),
    ("png_renamed.csv", 1, None, "this is a PNG image, not a CSV file"),
    ("not_text.csv", 3, None, "is neither UTF-8 nor Windows-1252 text from this line on"),
    ("empty.csv", None, None, "the file is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "line", "column", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_file(app, api, login, name, line, column, message):
    data = (DATA / name).read_bytes()
    r = api("alice").upload(data, filename=name)
    assert r.status_code == 422, r.text
    first = r.json["errors"][0]
    assert (first["line"], first["column"]) == (line, column)
    assert first["message"].startswith(message), first["message"]
    assert r.json["error"].startswith("The file was not staged")
    assert staged(app) == (0, 0)

    page = login("alice").upload(data, filename=name)
    assert page.status_code == 422
    first = page_problems(page.text)[0]
    assert first[:2] == (str(line or "—"), column or "—")
    assert first[2].startswith(message), first[2]
    assert staged(app) == (0, 0)


def test_a_5_mb_cell(app, api, login):
    """One cell of 5 MB is read (no CSV field limit trips) and refused by its maxLength, quoted briefly."""
    cell = "x" * 5_000_000
    body = (
        "id,name,description,owner,team,source_system,update_frequency,contains_pii,row_count,created,url\r\n"
        f"DS-1,Name,{cell},o@example.com,,,,,,,\r\n"
        f"DS-2,Name,,o@example.com,,,{cell},,,,\r\n"
    ).encode()
    r = api("alice").post("/api/v1/changes", **multipart(body))
    assert r.status_code == 422
    assert r.json["errors"] == [
        {
            "line": 2,
            "row": 2,
            "key": "DS-1",
            "column": "description",
            "message": "is 5,000,000 characters long, at most 10,000 allowed",
        },
        {
            "line": 3,
            "row": 3,
            "key": "DS-2",
            "column": "update_frequency",
            "message": f"'{'x' * 60}…' (5,000,000 characters) is not one of the allowed values: {ENUM}",
        },
    ]
    assert len(r.data) < 2000  # the message quotes the cell briefly, not in full
    page = login("alice").post("/upload", **multipart(body, mode="full", comment=""))
    assert page.status_code == 422 and len(page.data) < 50_000
    assert staged(app) == (0, 0)


def test_all_problems_at_once_capped_with_the_total(app, api, login):
    data = (DATA / "many_errors.csv").read_bytes()
    r = api("alice").upload(data)
    assert r.status_code == 422
    assert r.json["total_errors"] == 300 and len(r.json["errors"]) == MAX_PROBLEMS
    assert r.json["error"] == "The file was not staged: 300 problems found."
    assert [e["line"] for e in r.json["errors"][:3]] == [2, 3, 4]
    page = login("alice").upload(data)
    assert page.status_code == 422 and len(page_problems(page.text)) == MAX_PROBLEMS
    assert "300 problems" in page.text and f"The first {MAX_PROBLEMS} are shown" in page.text
    assert staged(app) == (0, 0)


def test_a_bad_file_stages_nothing_next_to_existing_requests(app, api, seeded):
    before = staged(app)
    r = api("alice").upload((DATA / "ragged_long.csv").read_bytes())
    assert r.status_code == 422 and staged(app) == before


# --- Excel damage ---------------------------------------------------------------------------


def test_excel_damage_is_warned_about_on_the_review_page_and_in_the_api(app, api, login):
    alice, boss = api("alice"), api("boss")
    r = alice.upload((DATA / "damage_base.csv").read_bytes())
    assert r.status_code == 201, r.text
    assert r.json["warnings"] == []
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200

    r = alice.upload((DATA / "damage_excel.csv").read_bytes())
    assert r.status_code == 201, r.text
    assert r.json["summary"] == {"added": 1, "modified": 1, "deleted": 1, "unchanged": 8, "conflicts": 0}
    expected = [
        "key '00123' looks deleted and '123' added (line 2): Excel drops leading zeros;"
        " format the key column as Text before saving",
        "line 3, Row count (row_count): long number '1234567890123456789' became '1234567890123460000',"
        " which looks rounded by Excel; format the column as Text",
    ]
    assert r.json["warnings"] == expected
    assert api("boss").get(f"/api/v1/changes/{r.json['id']}").json["warnings"] == expected
    review = html.unescape(login("boss").get(f"/changes/{r.json['id']}").text)
    assert "they look like spreadsheet damage, not edits" in review
    assert all(w in review for w in expected)
