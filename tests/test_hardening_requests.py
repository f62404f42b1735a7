"""Hardening round 3 (issue 20), requests: no 500 from any query parameter name or value, any key
or any JSON nesting; bodies of requests that take no file limited before they are parsed; the 413
message by its cause; every CSV download formula-safe (one test over the URL map)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from conftest import Api, table

import accounts
from files.formulas import runs_as_formula

HOSTILE_NAMES = "endpoint=x&_method=PUT&_external=1&_anchor=x&_scheme=javascript&table=nope&values=1&from_version=x"


@pytest.fixture
def two_versions(app, api, login):
    """Versions 1 and 2 of the catalog, and a pending request #3; returns (alice's browser, boss's API client)."""
    alice, boss = api("alice"), api("boss")
    from conftest import row

    first = alice.upload(table(row("DS-1", "Sales"), row("DS-2", "HR")))
    boss.post(f"/api/v1/changes/{first.json['id']}/approve")
    second = alice.upload(table(row("DS-1", "Sales 2"), row("DS-2", "HR"), row("DS-3", "New")))
    boss.post(f"/api/v1/changes/{second.json['id']}/approve")
    pending = alice.upload(table(row("DS-1", "Sales 3"), row("DS-2", "HR 2"), row("DS-3", "New")))
    assert pending.status_code == 201, pending.text
    return login("alice"), boss, pending.json["id"]


def test_query_parameter_names_url_for_reads_itself_are_no_500(two_versions):
    browser, _, pending = two_versions
    for path in ("/", "/audit", "/diff?from=1&to=2", f"/changes/{pending}?change_id=x", "/changes", "/versions"):
        joined = "&" if "?" in path else "?"
        r = browser.get(f"{path}{joined}{HOSTILE_NAMES}&page=1")
        assert r.status_code == 200, (path, r.status_code)
        assert "javascript:" not in r.text
        r = browser.get(f"{path}{joined}{HOSTILE_NAMES}&show=modified&cells=all")
        assert r.status_code == 200, (path, r.status_code)


@pytest.mark.parametrize("last", ["\U0010ffff", "\ud7ff", "\U0010ffff\U0010ffff"])
def test_a_key_prefix_ending_in_the_last_characters_is_no_500(two_versions, last):
    browser, boss, _ = two_versions
    from urllib.parse import quote

    prefix = quote(("DS" + last).encode("utf-8", "surrogatepass"))
    assert browser.get(f"/audit?key={prefix}").status_code == 200
    r = browser.get(f"/audit.csv?key={prefix}")
    assert r.status_code == 200 and r.data.decode("utf-8-sig").startswith("id,created_at,")
    assert boss.get(f"/api/v1/audit?key_prefix={prefix}").status_code == 200
    whole = browser.get(f"/audit.csv?key={quote('DS')}").data.decode("utf-8-sig")
    assert whole.count("\r\n") >= 5  # the whole download, not cut


def test_deeply_nested_json_is_a_400(two_versions):
    _, boss, pending = two_versions
    alice = Api(boss.client.application, "alice")
    deep = "[" * 100_000 + "]" * 100_000
    for client, url in ((alice, f"/api/v1/changes/{pending}/resolve"), (boss, f"/api/v1/changes/{pending}/reject")):
        r = client.post(url, data=deep, content_type="application/json")
        assert r.status_code == 400, (url, r.status_code)
        assert "nested too deeply" in r.json["error"]
    r = boss.post(f"/api/v1/changes/{pending}/reject", data="[1]", content_type="application/json")
    assert r.status_code == 422  # a JSON array is no object: no reason given


def test_a_body_for_an_endpoint_without_a_file_is_limited_before_it_is_parsed(two_versions):
    _, boss, pending = two_versions
    alice = Api(boss.client.application, "alice")
    big = json.dumps({"resolutions": [{"key": "x" * 100, "column": None, "take": "yours"}] * 12_000})
    assert len(big) > 1024**2
    r = alice.post(f"/api/v1/changes/{pending}/resolve", data=big, content_type="application/json")
    assert r.status_code == 413
    assert r.json["error"].startswith("The request is larger than the 1 MB this address accepts")
    bob = Api(boss.client.application, "bob")  # not the submitter: refused before the body is parsed
    r = bob.post(f"/api/v1/changes/{pending}/resolve", data="{not json", content_type="application/json")
    assert r.status_code == 403


def test_too_many_form_parts_is_a_413_that_does_not_blame_the_file(two_versions, app, login):
    browser, _, _ = two_versions
    fields = {f"f{i}": "x" for i in range(app.config.get("MAX_FORM_PARTS", 1000) + 10)}
    r = browser.post(
        "/upload", data={"file": (io.BytesIO(b"id\n"), "t.csv"), **fields}, content_type="multipart/form-data"
    )
    assert r.status_code == 413
    assert "The form has too many parts" in r.text and "Your file is" not in r.text
    fields = {f"f{i}": "x" for i in range(200)}
    r = login("boss").post("/changes/1/reject", data=fields, content_type="multipart/form-data")
    assert r.status_code == 413 and "too many form parts" in r.text


def test_a_key_too_long_for_the_index_is_refused_with_a_message(app, api, make_app, tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "name"}]}))
    loose = make_app(SCHEMA_PATH=schema)
    with loose.app_context():
        accounts.create_user("carol", "a long passphrase for carol 2026")
    carol = Api(loose, "carol")
    r = carol.upload(f"id,name\n{'k' * 3000},too long\nok,fine\n")
    assert r.status_code == 422, r.text
    assert r.json["errors"][0]["line"] == 2 and r.json["errors"][0]["column"] == "id"
    assert "key is 3,000 bytes long; a key may be at most 2,000 bytes" in r.json["errors"][0]["message"]
    assert carol.upload(f"id,name\n{'k' * 2000},just fits\n").status_code == 201


# --- every CSV download, formula-safe ----------------------------------------------------------

FORMULAS = ('=HYPERLINK("http://x")', "+1+2", "-3+4", "@SUM(1)", "\t=1", "\r=1")
KEYS = FORMULAS[:4]  # a key has no spaces around it: tab and CR go into values only
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_DAFF_TAGS = re.compile(r"@@|\+\+\+|---|-+>")


@pytest.fixture
def formula_data(make_app, tmp_path):
    """A loose schema (no key pattern) with formula-looking keys, values, comments, reasons and a
    user named like a formula; every kind of audit entry; a refused upload's error file."""
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "name"}]}))
    # =evil audits too, so the event log's CSV (/api/v1/events.csv, admins and AUDITORS only) is checked as well
    instance = make_app(SCHEMA_PATH=schema, ADMIN_USERS=["=boss"], AUDITORS=["=evil"])
    with instance.app_context():
        accounts.create_user("=evil", "a long passphrase for evil 2026")
        accounts.set_password("=boss", "a long passphrase for boss 2026")  # start-up made the admin
    evil, boss = Api(instance, "=evil"), Api(instance, "=boss")

    def rows(*pairs: tuple[str, str]) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "name"])
        writer.writerows(pairs)
        return out.getvalue()

    first = evil.upload(rows(*((f, f) for f in KEYS), *((f"k{i}", f) for i, f in enumerate(FORMULAS))), comment="=c")
    assert first.status_code == 201, first.text
    assert boss.post(f"/api/v1/changes/{first.json['id']}/approve").status_code == 200
    second = evil.upload(rows(*((f, "=changed" + f) for f in KEYS[:2]), ("k0", "\t=tab")), mode="partial")
    assert boss.post(f"/api/v1/changes/{second.json['id']}/approve").status_code == 200
    third = evil.upload(rows(*((f, "@x") for f in KEYS[2:])), mode="partial")
    r = boss.post(f"/api/v1/changes/{third.json['id']}/reject", json={"reason": '=HYPERLINK("evil")'})
    assert r.status_code == 200
    pending = evil.upload(rows((FORMULAS[0], "-pending")), mode="partial")
    refused = evil.upload("id,name\n=bad,\n" + "\n".join(f"{f},x" for f in KEYS) + "\n,=oops\n")
    assert refused.status_code == 422 and refused.json["error_file"], refused.text
    return instance, evil, pending.json["id"], refused.json["error_file"]


def unsafe_cells(text: str, delimiter: str, is_diff: bool) -> list[str]:
    """The cells a spreadsheet would run as a formula (plain numbers and daff's tags aside)."""
    found = []
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        for i, cell in enumerate(row):
            if not runs_as_formula(cell) or _NUMBER.fullmatch(cell.strip()):
                continue
            if is_diff and i == 0 and _DAFF_TAGS.fullmatch(cell):
                continue
            found.append(cell)
    return found


def test_every_csv_download_of_the_url_map_is_formula_safe(formula_data):
    instance, evil, pending, error_file = formula_data
    browser = instance.test_client()
    r = browser.post("/login", data={"username": "=evil", "password": "a long passphrase for evil 2026"})
    assert r.status_code == 302
    admin = instance.test_client()  # the access review (/access.csv) is the admins'
    assert (
        admin.post("/login", data={"username": "=boss", "password": "a long passphrase for boss 2026"}).status_code
        == 302
    )
    admin_api = Api(instance, "=boss")
    values = {"change_id": pending - 2, "report_id": int(error_file.rsplit("/", 1)[1]), "table": "datasets"}
    query = "?from=1&to=2&version=2&all=1"
    checked, csv_rules = set(), set()
    for rule in instance.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        if set(rule.arguments) - set(values):
            continue  # a record's pages (a key in the path): no CSV among them
        path = rule.build(values, append_unknown=False)[1]
        client = evil if path.startswith("/api/") else browser
        if rule.endpoint.startswith("access"):
            client = admin_api if path.startswith("/api/") else admin
        r = client.get(path + query)
        disposition = r.headers.get("Content-Disposition", "")
        if rule.rule.endswith(".csv"):
            csv_rules.add(rule.rule)
        if r.mimetype != "text/csv":
            continue
        assert r.status_code == 200, (path, r.status_code)
        text = r.data.decode("utf-8-sig")
        delimiter = "\t" if disposition.endswith('.txt"') or disposition.endswith(".txt") else ","
        assert unsafe_cells(text, delimiter, "diff" in path) == [], path
        assert any(f in text for f in ("'=HYPERLINK", "'+1+2", "'-3+4", "'@SUM(1)", "'=evil", "'=boss")), path
        checked.add(rule.rule)
    assert csv_rules <= checked, csv_rules - checked  # every .csv route was fetched and checked
    assert {"/audit.csv", "/api/v1/audit.csv", "/download", "/uploads/errors/<id:report_id>"} <= checked
