"""The JSON API contract of /api/v1, and the CSV rules seen through it, on both databases."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile

import pytest
from conftest import HEADER, row, table

FIELDS = HEADER.split(",")


def export_text(client) -> str:
    r = client.get("/api/v1/export.csv")
    assert r.status_code == 200, r.text
    return r.data.decode("utf-8-sig")


def approve(boss, change_id: int) -> int:
    r = boss.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 200, r.text
    return r.json["version"]


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="},
    ],
    ids=["none", "unknown", "empty", "basic"],
)
@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/api/v1/export.csv"),
        ("get", "/api/v1/changes"),
        ("post", "/api/v1/changes"),
        ("get", "/api/v1/changes/1"),
        ("post", "/api/v1/changes/1/approve"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/records/DS-1/history"),
    ],
)
def test_api_needs_a_valid_token(shared_app, headers, method, url):
    r = getattr(shared_app.test_client(), method)(url, headers=headers)
    assert r.status_code == 401
    assert r.is_json and "token" in r.json["error"].lower()


def test_a_signed_in_browser_session_is_not_enough_for_the_api(app, login):
    alice = login("alice")
    assert alice.get("/api/v1/changes").status_code == 401


# --- export ----------------------------------------------------------------------------------


def test_export_csv_bytes(app, seeded, api):
    r = api("alice").get("/api/v1/export.csv")
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert r.headers["X-Dataset-Version"] == "1"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert 'filename="datasets-v1.csv"' in disposition
    assert r.data.startswith(codecs.BOM_UTF8)
    body = r.data[len(codecs.BOM_UTF8) :]
    assert body == (
        (HEADER + "\r\n").encode()
        + (row("DS-1", "Sales") + "\r\n").encode()
        + (row("DS-2", "HR") + "\r\n").encode()
        + (row("DS-3", "Finance") + "\r\n").encode()
    )


def test_export_of_an_empty_table_is_the_header_at_version_0(app, api):
    r = api("bob").get("/api/v1/export.csv")
    assert r.headers["X-Dataset-Version"] == "0"
    assert 'filename="datasets-v0.csv"' in r.headers["Content-Disposition"]
    assert r.data == codecs.BOM_UTF8 + (HEADER + "\r\n").encode()


def test_export_version_and_filename_follow_approvals(app, seeded, api):
    alice = api("alice")
    r = alice.upload(table(row("DS-4", "New")), mode="partial")
    approve(seeded, r.json["id"])
    r = alice.get("/api/v1/export.csv")
    assert r.headers["X-Dataset-Version"] == "2"
    assert 'filename="datasets-v2.csv"' in r.headers["Content-Disposition"]
    assert "DS-4,New," in r.data.decode("utf-8-sig")


# --- upload ----------------------------------------------------------------------------------


def test_upload_stages_a_pending_change(app, seeded, api):
    text = table(
        row("DS-1", "Sales EMEA"),  # modified
        row("DS-2", "HR"),  # unchanged
        row("DS-4", "Logistics"),  # added; DS-3 deleted
    )
    r = api("alice").upload(text, comment="rename", confirm_deletions="1")
    assert r.status_code == 201, r.text
    body = r.json
    assert isinstance(body["id"], int)
    assert body["status"] == "pending"
    assert body["base_version"] == 1
    assert body["summary"] == {"added": 1, "modified": 1, "deleted": 1, "unchanged": 1, "conflicts": 0}


def test_identical_upload_is_200_with_no_id(app, seeded, api):
    alice = api("alice")
    r = alice.upload(alice.get("/api/v1/export.csv").data)
    assert r.status_code == 200, r.text
    assert r.json["id"] is None
    assert r.json["summary"] == {"added": 0, "modified": 0, "deleted": 0, "unchanged": 3, "conflicts": 0}
    assert alice.get("/api/v1/changes?status=pending").json["total"] == 0


def test_upload_without_file_field_is_a_json_400(app, api):
    r = api("alice").post("/api/v1/changes", data={"comment": "x"}, content_type="multipart/form-data")
    assert r.status_code == 400
    assert "file" in r.json["error"]


def test_upload_with_unknown_mode_is_refused(app, seeded, api):
    r = api("alice").upload(table(row("DS-9")), mode="everything")
    assert r.status_code == 400
    assert "mode" in r.json["error"]


# --- invalid files: 422 with line and column -------------------------------------------------


def _xlsx_like() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _without(name: str) -> str:
    i = FIELDS.index(name)
    lines = [",".join(FIELDS[:i] + FIELDS[i + 1 :])]
    cells = row("DS-1").split(",")
    lines.append(",".join(cells[:i] + cells[i + 1 :]))
    return "\n".join(lines) + "\n"


BAD_FILES = [
    # (id, file content, expected (line, column) pairs, a word the first message contains)
    ("duplicate key", table(row("DS-1"), row("DS-2"), row("DS-1")), [(4, "id")], "duplicate"),
    ("empty key", table(row("DS-1"), row("", "No key")), [(3, "id")], "empty"),
    ("bad integer", table(row("DS-1", row_count="12a")), [(2, "row_count")], "whole number"),
    ("negative count", table(row("DS-1", row_count="-1")), [(2, "row_count")], "minimum"),
    ("bad boolean", table(row("DS-1", contains_pii="maybe")), [(2, "contains_pii")], "yes/no"),
    ("bad date", table(row("DS-1", created="2024-02-30")), [(2, "created")], "date"),
    ("bad enum", table(row("DS-1", update_frequency="sometimes")), [(2, "update_frequency")], "allowed"),
    ("missing required", table(row("DS-1", "")), [(2, "name")], "required"),
    ("unknown column", HEADER + ",extra\n" + row("DS-1") + ",x\n", [(1, "column 12")], "unknown column 'extra'"),
    ("missing column", _without("url"), [(1, "url")], "missing"),
    ("missing key column", _without("id"), [(1, "id")], "missing"),
    (
        "line after a multi-line cell",
        table(row("DS-1", description="first\nsecond\nthird"), row("DS-2", row_count="x")),
        [(5, "row_count")],
        "whole number",
    ),
    (
        "all problems at once",
        table(row("DS-1", row_count="x"), row("DS-2", created="soon"), row("DS-3"), row("DS-3")),
        [(2, "row_count"), (3, "created"), (5, "id")],
        "whole number",
    ),
    (
        "duplicate of a bad row",
        table(row("DS-7", row_count="x"), row("DS-7"), row("DS-1"), row("DS-1", created="soon")),
        [(2, "row_count"), (3, "id"), (5, "created"), (5, "id")],
        "whole number",
    ),
]


@pytest.mark.parametrize("content, where, word", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_invalid_file_is_422_naming_line_and_column(app, seeded, api, content, where, word):
    alice = api("alice")
    before = export_text(alice)
    r = alice.upload(content, mode="partial")
    assert r.status_code == 422, r.text
    body = r.json
    assert body["error"]
    assert [(e["line"], e["column"]) for e in body["errors"]] == where
    assert all(set(e) >= {"line", "column", "message"} for e in body["errors"])
    assert word in body["errors"][0]["message"].lower()
    assert alice.get("/api/v1/changes").json["total"] == 1  # only the seed's: nothing staged
    assert export_text(alice) == before


@pytest.mark.parametrize(
    "content, word",
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (_xlsx_like()[:40] + b"\x00garbage", "csv"),
        (b"%PDF-1.4\n%binary", "pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png"),
    ],
    ids=["empty", "blank lines", "zip", "pdf", "png"],
)
def test_files_that_are_not_csv_text_are_422(app, seeded, api, content, word):
    r = api("alice").upload(content, filename="table.csv")
    assert r.status_code == 422, r.text
    assert r.json["errors"], r.json
    assert word in (r.json["error"] + " ".join(e["message"] for e in r.json["errors"])).lower()


def test_xlsx_that_is_not_a_workbook_is_422(app, seeded, api):
    r = api("alice").upload(_xlsx_like(), filename="table.xlsx")
    assert r.status_code == 422, r.text
    assert r.json["errors"]


# --- listing and reading change requests ------------------------------------------------------


def test_change_list_by_status(app, seeded, api):
    alice = api("alice")
    first = alice.upload(table(row("DS-5")), mode="partial").json["id"]
    second = alice.upload(table(row("DS-6")), mode="partial").json["id"]
    pending = alice.get("/api/v1/changes?status=pending").json
    assert pending["total"] == 2
    assert [c["id"] for c in pending["items"]] == [second, first]
    assert all(c["status"] == "pending" and c["submitter"] == "alice" for c in pending["items"])
    approved = alice.get("/api/v1/changes?status=approved").json
    assert approved["total"] == 1 and approved["items"][0]["status"] == "approved"
    assert alice.get("/api/v1/changes").json["total"] == 3
    assert alice.get("/api/v1/changes?status=rejected").json == {"items": [], "total": 0}


def test_change_detail_has_typed_rows(app, seeded, api):
    text = table(
        row("DS-1", "Sales EMEA", row_count="99", contains_pii="TRUE"),
        row("DS-2", "HR"),
        row("DS-4", "Logistics", row_count="", contains_pii="no"),
    )
    alice = api("alice")
    change_id = alice.upload(text, confirm_deletions="1").json["id"]
    r = alice.get(f"/api/v1/changes/{change_id}")
    assert r.status_code == 200
    body = r.json
    assert body["id"] == change_id and body["status"] == "pending" and body["base_version"] == 1
    assert body["summary"] == {"added": 1, "modified": 1, "deleted": 1, "unchanged": 1, "conflicts": 0}
    [added] = body["added"]
    assert added["id"] == "DS-4" and added["name"] == "Logistics"
    assert added["row_count"] is None and added["contains_pii"] is False
    assert list(added) == FIELDS
    [deleted] = body["deleted"]
    assert deleted["id"] == "DS-3" and deleted["row_count"] == 10 and deleted["contains_pii"] is False
    [modified] = body["modified"]
    assert modified["key"] == "DS-1"
    assert modified["before"]["name"] == "Sales" and modified["after"]["name"] == "Sales EMEA"
    assert modified["before"]["row_count"] == 10 and modified["after"]["row_count"] == 99
    assert modified["after"]["contains_pii"] is True
    assert modified["after"]["created"] == "2024-01-31"
    assert sorted(modified["changed"]) == ["contains_pii", "name", "row_count"]


def test_unknown_change_is_a_json_404(app, api):
    alice = api("alice")
    for method, url in [
        ("get", "/api/v1/changes/999"),
        ("post", "/api/v1/changes/999/approve"),
        ("post", "/api/v1/changes/999/withdraw"),
    ]:
        client = alice if method == "get" or "withdraw" in url else api("boss")
        r = getattr(client, method)(url)
        assert r.status_code == 404, (url, r.text)
        assert r.is_json and "999" in r.json["error"]


def test_unknown_api_address_is_a_json_404(app, api):
    r = api("alice").get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.is_json


# --- approve, reject, withdraw ---------------------------------------------------------------


def test_approve_applies_and_returns_the_version(app, seeded, api):
    alice = api("alice")
    change_id = alice.upload(table(row("DS-1", "Sales EMEA"), row("DS-5", "New")), mode="partial").json["id"]
    r = seeded.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 200
    assert r.json["status"] == "approved" and r.json["version"] == 2
    assert alice.get(f"/api/v1/changes/{change_id}").json["status"] == "approved"
    text = export_text(alice)
    assert "DS-1,Sales EMEA," in text and "DS-5,New," in text and "DS-2,HR," in text


def test_non_admin_cannot_approve_or_reject(app, seeded, api):
    alice, bob = api("alice"), api("bob")
    change_id = alice.upload(table(row("DS-5")), mode="partial").json["id"]
    for client in (alice, bob):
        assert client.post(f"/api/v1/changes/{change_id}/approve").status_code == 403
        r = client.post(f"/api/v1/changes/{change_id}/reject", json={"reason": "no"})
        assert r.status_code == 403 and r.is_json
    assert alice.get(f"/api/v1/changes/{change_id}").json["status"] == "pending"
    assert "DS-5" not in export_text(alice)


def test_approve_twice_is_409(app, seeded, api):
    change_id = api("alice").upload(table(row("DS-5")), mode="partial").json["id"]
    approve(seeded, change_id)
    r = seeded.post(f"/api/v1/changes/{change_id}/approve")
    assert r.status_code == 409
    assert "approved" in r.json["error"]


def test_reject_with_a_reason(app, seeded, api):
    alice = api("alice")
    change_id = alice.upload(table(row("DS-5")), mode="partial").json["id"]
    r = seeded.post(f"/api/v1/changes/{change_id}/reject", json={"reason": "wrong team"})
    assert r.status_code == 200
    assert r.json["status"] == "rejected"
    detail = alice.get(f"/api/v1/changes/{change_id}").json
    assert detail["status"] == "rejected" and detail["reason"] == "wrong team" and detail["decided_by"] == "boss"
    assert "DS-5" not in export_text(alice)
    assert seeded.post(f"/api/v1/changes/{change_id}/approve").status_code == 409
    assert seeded.post(f"/api/v1/changes/{change_id}/reject", json={"reason": "again"}).status_code == 409


def test_detail_pages_each_list_with_limit_and_offset(app, seeded, api):
    alice = api("alice")
    change_id = alice.upload(table(*(row(f"DS-{i}") for i in range(4, 9))), mode="partial").json["id"]
    first = alice.get(f"/api/v1/changes/{change_id}?limit=2").json
    rest = alice.get(f"/api/v1/changes/{change_id}?limit=2&offset=4").json
    everything = alice.get(f"/api/v1/changes/{change_id}").json
    assert [r["id"] for r in first["added"]] == ["DS-4", "DS-5"]
    assert [r["id"] for r in rest["added"]] == ["DS-8"]
    assert len(everything["added"]) == 5 and first["summary"]["added"] == 5
    assert alice.get(f"/api/v1/changes/{change_id}?limit=0").status_code == 400


def test_reject_needs_a_reason(app, seeded, api):
    change_id = api("alice").upload(table(row("DS-9")), mode="partial").json["id"]
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        r = seeded.post(f"/api/v1/changes/{change_id}/reject", json=body)
        assert r.status_code == 422 and "why" in r.json["error"]
    assert seeded.get(f"/api/v1/changes/{change_id}").json["status"] == "pending"


def test_withdraw_is_for_the_submitter_only(app, seeded, api):
    alice, bob = api("alice"), api("bob")
    change_id = alice.upload(table(row("DS-5")), mode="partial").json["id"]
    for other in (bob, seeded):
        r = other.post(f"/api/v1/changes/{change_id}/withdraw")
        assert r.status_code == 403 and r.is_json
    r = alice.post(f"/api/v1/changes/{change_id}/withdraw")
    assert r.status_code == 200 and r.json["status"] == "withdrawn"
    assert alice.get(f"/api/v1/changes/{change_id}").json["status"] == "withdrawn"
    assert alice.post(f"/api/v1/changes/{change_id}/withdraw").status_code == 409
    assert seeded.post(f"/api/v1/changes/{change_id}/approve").status_code == 409


# --- partial and full mode; comparing parsed values ------------------------------------------


def test_partial_mode_never_deletes(app, seeded, api):
    r = api("alice").upload(table(row("DS-2", "HR Global")), mode="partial")
    assert r.status_code == 201
    assert r.json["summary"] == {"added": 0, "modified": 1, "deleted": 0, "unchanged": 0, "conflicts": 0}


def test_full_mode_deletes_rows_missing_from_the_file(app, seeded, api):
    alice = api("alice")
    r = alice.upload(table(row("DS-1", "Sales"), row("DS-2", "HR")), confirm_deletions="1")
    assert r.status_code == 201
    assert r.json["summary"] == {"added": 0, "modified": 0, "deleted": 1, "unchanged": 2, "conflicts": 0}
    [deleted] = alice.get(f"/api/v1/changes/{r.json['id']}").json["deleted"]
    assert deleted["id"] == "DS-3"
    approve(seeded, r.json["id"])
    assert "DS-3" not in export_text(alice)


def test_full_is_the_default_mode(app, seeded, api):
    r = api("alice").upload(table(row("DS-1", "Sales"), row("DS-2", "HR")), confirm_deletions="1")
    assert r.json["summary"]["deleted"] == 1


@pytest.mark.parametrize(
    "values",
    [
        {"row_count": "10.0"},
        {"row_count": " 10 "},
        {"row_count": "+10"},
        {"contains_pii": "FALSE"},
        {"contains_pii": "no"},
        {"contains_pii": "0"},
        {"created": "2024/01/31"},
        {"created": "31 Jan 2024"},
        {"created": "2024-01-31 00:00:00"},
    ],
    ids=lambda v: "=".join(next(iter(v.items()))),
)
def test_values_are_compared_after_parsing(app, seeded, api, values):
    text = table(row("DS-1", "Sales", **values), row("DS-2", "HR"), row("DS-3", "Finance"))
    r = api("alice").upload(text)
    assert r.status_code == 200, r.text
    assert r.json["id"] is None
    assert r.json["summary"]["modified"] == 0


def test_yes_is_stored_as_true(app, seeded, api):
    alice = api("alice")
    r = alice.upload(table(row("DS-1", "Sales", contains_pii="yes")), mode="partial")
    assert r.status_code == 201
    [m] = alice.get(f"/api/v1/changes/{r.json['id']}").json["modified"]
    assert m["changed"] == ["contains_pii"] and m["after"]["contains_pii"] is True
    approve(seeded, r.json["id"])
    assert row("DS-1", "Sales", contains_pii="true") in export_text(alice)
    r = alice.upload(table(row("DS-1", "Sales", contains_pii="TRUE")), mode="partial")
    assert r.status_code == 200 and r.json["id"] is None


def _resaved(text: str, *, crlf=False, bom=False, quote_all=False, reverse=False) -> bytes:
    rows = list(csv.reader(io.StringIO(text)))
    if reverse:
        rows = [list(reversed(r)) for r in rows]
    out = io.StringIO()
    writer = csv.writer(
        out, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    return codecs.BOM_UTF8 + data if bom else data


@pytest.mark.parametrize(
    "how",
    [
        {},
        {"crlf": True},
        {"bom": True},
        {"crlf": True, "bom": True},
        {"quote_all": True},
        {"reverse": True},
        {"crlf": True, "bom": True, "quote_all": True, "reverse": True},
    ],
    ids=lambda h: "+".join(h) or "lf",
)
def test_resaved_file_is_no_change(app, seeded, api, how):
    alice = api("alice")
    text = export_text(alice).replace("\r\n", "\n")
    r = alice.upload(_resaved(text, **how))
    assert r.status_code == 200, r.text
    assert r.json["id"] is None
    assert r.json["summary"] == {"added": 0, "modified": 0, "deleted": 0, "unchanged": 3, "conflicts": 0}


def test_columns_in_another_order_are_matched_by_name(app, seeded, api):
    alice = api("alice")
    text = export_text(alice).replace("\r\n", "\n").replace("DS-1,Sales,", "DS-1,Sales Global,")
    r = alice.upload(_resaved(text, reverse=True))
    assert r.status_code == 201
    [m] = alice.get(f"/api/v1/changes/{r.json['id']}").json["modified"]
    assert m["key"] == "DS-1" and m["changed"] == ["name"] and m["after"]["name"] == "Sales Global"


# --- formula escaping round trip -------------------------------------------------------------

FORMULAS = [
    # (cell in the uploaded file, value stored, cell in the export)
    ("=SUM(A1)", "=SUM(A1)", "'=SUM(A1)"),
    ("+1", "+1", "'+1"),
    ("-x", "-x", "'-x"),
    ("@x", "@x", "'@x"),
    ("'already-quoted", "'already-quoted", "'already-quoted"),
    ("it's", "it's", "it's"),
    ("''=x", "'=x", "''=x"),  # a stored leading quote before a formula survives too
    ("'=SUM(A2)", "=SUM(A2)", "'=SUM(A2)"),  # an upload of an exported, escaped cell
    ("\tx", "\tx", "'\tx"),
    ("\rx", "\rx", "'\rx"),
]


def test_formulas_round_trip_losslessly(app, seeded, api):
    alice = api("alice")
    out = io.StringIO()
    writer = csv.writer(out)  # quotes the cell with a CR
    writer.writerow(FIELDS)
    for i, (cell, _, _) in enumerate(FORMULAS):
        writer.writerow([f"F-{i}", "Formula", cell, *row("x").split(",")[3:]])
    r = alice.upload(out.getvalue(), mode="partial")
    assert r.status_code == 201, r.text
    added = alice.get(f"/api/v1/changes/{r.json['id']}").json["added"]
    assert [a["description"] for a in added] == [stored for _, stored, _ in FORMULAS]
    approve(seeded, r.json["id"])

    exported = export_text(alice)
    cells = {r[0]: r for r in csv.reader(io.StringIO(exported, newline=""))}
    assert [cells[f"F-{i}"][2] for i in range(len(FORMULAS))] == [out for _, _, out in FORMULAS]

    history = alice.get("/api/v1/records/F-0/history").json["items"]
    assert history[0]["after"]["description"] == "=SUM(A1)"
    r = alice.upload(exported)
    assert r.status_code == 200, r.text
    assert r.json["id"] is None and r.json["summary"]["unchanged"] == 3 + len(FORMULAS)


def test_formula_escaped_name_in_an_edited_export(app, seeded, api):
    """A user who edits another cell of an escaped row does not change the escaped one."""
    alice = api("alice")
    r = alice.upload(table(row("DS-9", "=HYPERLINK(x)")), mode="partial")
    approve(seeded, r.json["id"])
    text = export_text(alice)
    assert "DS-9,'=HYPERLINK(x),," in text
    r = alice.upload(text.replace("DS-9,'=HYPERLINK(x),,", "DS-9,'=HYPERLINK(x),edited,"), mode="partial")
    [m] = alice.get(f"/api/v1/changes/{r.json['id']}").json["modified"]
    assert m["changed"] == ["description"] and m["after"]["name"] == "=HYPERLINK(x)"


# --- audit and history -----------------------------------------------------------------------


def test_audit_filters(app, seeded, api):
    alice, bob = api("alice"), api("bob")
    change_id = bob.upload(table(row("DS-2", "HR Global"), row("DS-7", "New")), mode="partial").json["id"]
    approve(seeded, change_id)
    everything = alice.get("/api/v1/audit").json["items"]
    assert len(everything) == 5  # 3 seeded additions, 1 modification, 1 addition
    by_key = alice.get("/api/v1/audit?key=DS-2").json["items"]
    assert [(e["action"], e["change_id"]) for e in by_key] == [("modify", change_id), ("add", 1)]
    assert {e["key"] for e in alice.get("/api/v1/audit?user=bob").json["items"]} == {"DS-2", "DS-7"}
    assert len(alice.get("/api/v1/audit?user=alice").json["items"]) == 3
    assert len(alice.get("/api/v1/audit?user=boss").json["items"]) == 5  # the approver of all
    assert alice.get("/api/v1/audit?user=nobody").json["items"] == []
    assert alice.get("/api/v1/audit?key=DS-7&user=alice").json["items"] == []

    today = everything[0]["created_at"][:10]
    assert len(alice.get(f"/api/v1/audit?since={today}").json["items"]) == 5
    assert len(alice.get("/api/v1/audit?since=2000-01-01T00:00:00").json["items"]) == 5
    assert alice.get("/api/v1/audit?since=2999-01-01").json["items"] == []
    assert alice.get("/api/v1/audit?since=2999-01-01T10:00:00Z").json["items"] == []
    r = alice.get("/api/v1/audit?since=yesterday")
    assert r.status_code == 400 and r.is_json


def test_audit_entry_shape(app, seeded, api):
    alice = api("alice")
    change_id = alice.upload(table(row("DS-1", "Sales EMEA")), mode="partial").json["id"]
    approve(seeded, change_id)
    [entry] = alice.get("/api/v1/audit?key=DS-1").json["items"][:1]
    assert entry["action"] == "modify" and entry["key"] == "DS-1" and entry["change_id"] == change_id
    assert entry["before"]["name"] == "Sales" and entry["after"]["name"] == "Sales EMEA"
    assert entry["after"]["row_count"] == 10
    assert entry["submitter"] == "alice" and entry["approver"] == "boss"
    assert entry["submitted_at"] and entry["created_at"] and entry["submitted_at"] <= entry["created_at"]


def test_record_history(app, seeded, api):
    alice = api("alice")
    approve(seeded, alice.upload(table(row("DS-1", "Sales EMEA")), mode="partial").json["id"])
    approve(seeded, alice.upload(table(row("DS-1", "Sales EMEA"), row("DS-2", "HR")), confirm_deletions="1").json["id"])
    items = alice.get("/api/v1/records/DS-1/history").json["items"]
    assert [e["action"] for e in items] == ["modify", "add"]
    deleted = alice.get("/api/v1/records/DS-3/history").json["items"]
    assert [e["action"] for e in deleted] == ["delete", "add"]
    assert deleted[0]["before"]["name"] == "Finance" and deleted[0]["after"] is None
    assert alice.get("/api/v1/records/NOPE/history").json == {"items": []}


def test_oversized_upload_is_a_json_413(make_app):
    app = make_app(MAX_CONTENT_LENGTH=2048)
    with app.app_context():
        import accounts
        from models import db

        token = accounts.create_token("boss")
        db.session.commit()
    big = table(*(row(f"DS-{i}", "x" * 50) for i in range(100))).encode()
    r = app.test_client().post(
        "/api/v1/changes",
        headers={"Authorization": f"Bearer {token}"},
        data={"file": (io.BytesIO(big), "big.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 413
    assert r.is_json and "upload limit" in r.json["error"]
