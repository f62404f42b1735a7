"""Upload bodies (web/body.py): a file sent as the raw request body, and multipart bodies split in
place, with werkzeug's parser taking whatever is not shaped as browsers send it."""

from __future__ import annotations

import io

import pytest
from conftest import HEADER, Api, row, table
from openpyxl import Workbook

from web import body

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def raw_upload(api_client, data: bytes | str, content_type: str = "text/csv", **query):
    """POST /api/v1/changes with the file as the body and the options in the query string."""
    data = data.encode() if isinstance(data, str) else data
    return api_client.post("/api/v1/changes", data=data, content_type=content_type, query_string=query)


def staged(api_client, change_id: int) -> dict:
    detail = api_client.get(f"/api/v1/changes/{change_id}").json
    return {
        kind: sorted(item.get("key") or item["id"] for item in detail[kind])
        for kind in ("added", "modified", "deleted")
    }


# --- a file as the request body ---------------------------------------------------------------


def test_a_csv_body_is_staged_with_the_options_of_its_query_string(app, seeded, api):
    alice = api("alice")
    r = raw_upload(alice, table(row("DS-1", "Sales EMEA"), row("DS-9", "New")), mode="partial", comment="by script")
    assert r.status_code == 201, r.text
    assert r.json["summary"] | {"unchanged": 0} == {
        "added": 1,
        "modified": 1,
        "deleted": 0,
        "unchanged": 0,
        "conflicts": 0,
    }
    change = alice.get(f"/api/v1/changes/{r.json['id']}").json
    assert change["comment"] == "by script" and change["mode"] == "partial"
    assert staged(alice, r.json["id"]) == {"added": ["DS-9"], "modified": ["DS-1"], "deleted": []}


def test_a_csv_body_in_full_mode_deletes_the_rows_it_lacks(app, seeded, api):
    r = raw_upload(api("alice"), table(row("DS-1", "Sales"), row("DS-2", "HR")), confirm_deletions="1")
    assert r.status_code == 201, r.text
    assert staged(api("alice"), r.json["id"]) == {"added": [], "modified": [], "deleted": ["DS-3"]}


def test_a_workbook_body_is_read_as_a_workbook(app, seeded, api):
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(["DS-7", "From Excel", "", "x@example.com", "Data", "SAP", "daily", False, 3, "2024-02-01", ""])
    data = io.BytesIO()
    book.save(data)
    r = raw_upload(api("alice"), data.getvalue(), content_type=XLSX, mode="partial")
    assert r.status_code == 201, r.text
    assert r.json["encoding"] == "xlsx" and r.json["summary"]["added"] == 1


def test_the_base_version_of_a_body_comes_from_the_query_or_the_file_name(app, seeded, api):
    alice, boss = api("alice"), api("boss")
    r = raw_upload(alice, table(row("DS-2", "HR", description="later")), mode="partial")
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200  # version 2
    edit = table(row("DS-1", "Sales", description="mine"))
    by_name = raw_upload(alice, edit, mode="partial", filename="datasets-v1 (2).csv")
    assert by_name.status_code == 201 and by_name.json["base_version"] == 1
    by_field = raw_upload(alice, edit, mode="partial", base_version="1", filename="datasets-v2.csv")
    assert by_field.status_code == 201 and by_field.json["base_version"] == 1
    assert alice.get(f"/api/v1/changes/{by_name.json['id']}").json["filename"] == "datasets-v1 (2).csv"


@pytest.mark.parametrize(
    "query, message",
    [
        ({"base_version": "v3"}, "base_version must be a whole number"),
        ({"confirm_deletions": "all"}, "confirm_deletions must be a whole number"),
    ],
)
def test_bad_options_of_a_body_are_400(app, seeded, api, query, message):
    r = raw_upload(api("alice"), table(row("DS-1")), **query)
    assert r.status_code == 400 and message in r.json["error"]


def test_a_body_of_another_type_is_told_both_ways_to_send_a_file(app, seeded, api):
    r = api("alice").post("/api/v1/changes", json={"rows": []})
    assert r.status_code == 400
    assert "multipart form field named 'file'" in r.json["error"] and "text/csv" in r.json["error"]


def test_an_empty_or_refused_body_is_422_with_its_error_file(app, seeded, api):
    alice = api("alice")
    empty = raw_upload(alice, b"")
    assert empty.status_code == 422 and "empty" in empty.json["errors"][0]["message"]
    refused = raw_upload(alice, table(row("DS-1", "Sales", row_count="many")), mode="partial")
    assert refused.status_code == 422 and refused.json["errors"][0]["column"] == "row_count"
    errors = alice.get(refused.json["error_file"].replace("/uploads/", "/api/v1/uploads/"))
    assert errors.status_code == 200 and b"many" in errors.data and b"errors" in errors.data.splitlines()[0]


def test_an_oversized_body_is_a_json_413(make_app):
    app = make_app(MAX_CONTENT_LENGTH=2048)
    big = table(*(row(f"DS-{i}", "x" * 50) for i in range(100)))
    r = raw_upload(Api(app, "boss"), big)
    assert r.status_code == 413 and r.is_json and "upload limit" in r.json["error"]


def test_a_body_too_big_for_memory_is_spooled_to_a_file(app, seeded, api, monkeypatch):
    monkeypatch.setattr(body, "IN_MEMORY_BYTES", 100)
    r = raw_upload(api("alice"), table(row("DS-1", "Sales"), row("DS-2", "HR"), row("DS-3", "Finance X")))
    assert r.status_code == 201, r.text
    assert staged(api("alice"), r.json["id"]) == {"added": [], "modified": ["DS-3"], "deleted": []}


# --- multipart bodies split in place ---------------------------------------------------------

BOUNDARY = "b0undary"


def multipart(*parts: tuple[str, str | None, bytes], newline: bytes = b"\r\n", preamble: bytes = b"") -> bytes:
    """A multipart/form-data body of (name, filename or None, content) parts."""
    out = [preamble]
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += [
            f"--{BOUNDARY}".encode(),
            newline,
            f"Content-Disposition: {disposition}".encode(),
            newline,
            newline,
            content,
            newline,
        ]
    out += [f"--{BOUNDARY}--".encode(), newline]
    return b"".join(out)


def post_multipart(api_client, data: bytes):
    return api_client.post("/api/v1/changes", data=data, content_type=f"multipart/form-data; boundary={BOUNDARY}")


@pytest.mark.parametrize(
    "newline, preamble",
    [(b"\r\n", b""), (b"\r\n", b"a preamble\r\n"), (b"\n", b"")],  # LF only: werkzeug's parser reads it
)
def test_multipart_uploads_as_clients_send_them(app, seeded, api, newline, preamble):
    data = multipart(
        ("mode", None, b"partial"),
        ("comment", None, "naïve ✓".encode()),
        ("file", "edit.csv", table(row("DS-2", "HR Global")).encode()),
        newline=newline,
        preamble=preamble,
    )
    alice = api("alice")
    r = post_multipart(alice, data)
    assert r.status_code == 201, r.text
    change = alice.get(f"/api/v1/changes/{r.json['id']}").json
    assert change["comment"] == "naïve ✓" and change["mode"] == "partial" and change["filename"] == "edit.csv"
    assert staged(alice, r.json["id"]) == {"added": [], "modified": ["DS-2"], "deleted": []}


def test_the_file_part_is_a_view_of_the_body_not_a_copy():
    data = bytearray(multipart(("a", None, b"1"), ("", None, b""), ("file", "t.csv", b"id\r\nDS-1\r\n")))
    (_, h1, v1), (_, h2, v2), (_, h3, v3) = body.multipart_parts(data, b"b0undary", None)
    assert bytes(data[h1:v1]) == b"1" and h2 == v2 and bytes(data[h3:v3]) == b"id\r\nDS-1\r\n"
    parser = body.BodyFormParser(max_form_memory_size=1000, max_form_parts=10)
    form, files = parser._split(data, BOUNDARY.encode())
    stream = files["file"].stream
    assert stream.read() == b"id\r\nDS-1\r\n" and stream.seek(0) == 0 and stream.read(2) == b"id"
    data[h3] = ord("X")  # the same memory
    assert stream.seek(0) == 0 and stream.read(2) == b"Xd"
    assert form["a"] == "1"


@pytest.mark.parametrize(
    "data, problem",
    [
        (b'--b0undary\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n', "no closing boundary"),
        (b"no boundary here", "no boundary"),
        (b'--b0undary\r\nContent-Disposition: form-data; name="a"\r\n1\r\n--b0undary--\r\n', "headers"),
    ],
)
def test_malformed_multipart_bodies_are_left_to_werkzeug(data, problem):
    with pytest.raises(ValueError, match=problem):
        body.multipart_parts(bytearray(data), b"b0undary", None)


def test_multipart_limits_are_werkzeugs(app, seeded, api):
    app.config["MAX_FORM_PARTS"] = 3
    many = multipart(*((f"f{i}", None, b"x") for i in range(4)), ("file", "t.csv", table(row("DS-1")).encode()))
    assert post_multipart(api("alice"), many).status_code == 413
    app.config["MAX_FORM_PARTS"] = 1000
    app.config["MAX_FORM_MEMORY_SIZE"] = 10
    long_comment = multipart(("comment", None, b"y" * 11), ("file", "t.csv", table(row("DS-1")).encode()))
    assert post_multipart(api("alice"), long_comment).status_code == 413
    big_file = multipart(
        ("mode", None, b"partial"), ("file", "t.csv", table(row("DS-1", "Sales " + "z" * 40)).encode())
    )
    assert post_multipart(api("alice"), big_file).status_code == 201  # a file part may be larger


def test_the_upload_page_takes_a_multipart_body_split_in_place(app, seeded, login):
    alice = login("alice")
    r = alice.upload(table(row("DS-3", "Finance", description="split in place")), mode="partial", comment="page")
    assert r.status_code == 302 and "/changes/" in r.headers["Location"]
    assert "split in place" in alice.get(r.headers["Location"]).text
