"""Roles per table (schema.json's `viewers`, `editors`, `approvers`): for a viewer, an editor, an
approver and an outsider, every route of the URL map (app.url_map) on a table they may or may not
use, pages and API alike; lists that leave out what one may not view; uploads spanning tables;
token scopes and expiry; the access review; `flask users groups`.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import zipfile

import pytest
from openpyxl import load_workbook

import access
import accounts
import changes
import tables
import uploads
from models import ApiToken, db
from tests.conftest import Api, Browser

# "secret" is the first table: the plain paths (/download, /api/v1/export.csv, …) serve it too.
PACKAGE = {
    "name": "company",
    "resources": [
        {
            "name": "secret",
            "viewers": ["vera"],
            "editors": ["group:writers"],
            "approvers": ["abe"],
            "schema": {"primaryKey": "id", "fields": [{"name": "id"}, {"name": "name"}]},
        },
        {"name": "open", "schema": {"primaryKey": "id", "fields": [{"name": "id"}, {"name": "name"}]}},
    ],
}
PEOPLE = ("vera", "eddie", "abe", "otto")
ROLE_OF = {"vera": "viewer", "eddie": "editor", "abe": "approver", "otto": "outsider"}
MAY = {
    "viewer": {access.VIEW},
    "editor": {access.VIEW, access.EDIT},
    "approver": {access.VIEW, access.EDIT, access.DECIDE},
    "outsider": set(),
}


@pytest.fixture
def roles_app(make_app, tmp_path):
    """Two tables (secret, with roles; open, without), the four people, and on secret an approved
    request (row K1) and a pending one (row K2, by eddie)."""
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(PACKAGE))
    app = make_app(SCHEMA_PATH=path)
    with app.app_context():
        accounts.set_password("boss", "boss-password")
        for name in PEOPLE:
            accounts.create_user(name, f"{name}-password")
        accounts.change_groups("eddie", add=["writers"])
        secret, opened = tables.get("secret"), tables.get("open")
        first = uploads.submit(secret, io.BytesIO(b"id,name\nK1,one\n"), uploads.UploadOptions("eddie"))
        changes.approve(first.change.id, "boss")
        options = uploads.UploadOptions("eddie", mode="partial")
        pending = uploads.submit(secret, io.BytesIO(b"id,name\nK2,two\n"), options)
        uploads.submit(opened, io.BytesIO(b"id,name\nO1,open\n"), uploads.UploadOptions("otto"))
        app.config["ids"] = {"approved": first.change.id, "pending": pending.change.id}
    return app


def _text(response) -> str:
    return html.unescape(response.data.decode("utf-8", "replace"))


def _denied(response) -> str | None:
    """'404' or '403' when the roles refused the call, else None (whatever else it answered)."""
    if response.status_code == 404 and re.search(
        r"no table 'secret'|no table to show here|no change request #\d+\.", _text(response)
    ):
        return "404"
    if response.status_code == 403 and re.search(r"role on table .secret.", _text(response)):
        return "403"
    return None


def _routes(app):
    """(method, URL, endpoint, role needed on table secret) for every route that names a table or request."""
    from web.roles import ENDPOINT_ROLES

    ids = app.config["ids"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "healthz") or rule.endpoint.startswith(("oidc.", "auth.")):
            continue
        assert rule.endpoint in ENDPOINT_ROLES, f"{rule.endpoint} has no access rule"
        role = ENDPOINT_ROLES[rule.endpoint]
        if "report_id" in rule.arguments:
            continue  # the owner's error file: no table
        change = ids["approved"] if rule.endpoint.endswith("revert") else ids["pending"]
        url = rule.rule.replace("<table>", "secret").replace("<id:change_id>", str(change))
        url = url.replace("<path:key>", "K1").replace("<id:comment_id>", "1")
        if rule.endpoint.endswith("diff") or rule.endpoint.endswith("diff_csv"):
            url += "?from=0&to=1" if "change_id" not in rule.arguments else ""
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url, rule.endpoint, role


ACROSS = {"/", "/download.xlsx", "/changes", "/api/v1/changes", "/api/v1/tables"}


@pytest.mark.parametrize("name", PEOPLE)
def test_every_route_for_each_role(roles_app, name):
    """Each person, every route: allowed where their role reaches, else 404 (may not view) or a 403
    naming the table and the role; the routes across tables answer everyone (filtered)."""
    role = ROLE_OF[name]
    page, api = Browser(roles_app, name), Api(roles_app, name)
    checked = 0
    for method, url, endpoint, needed in _routes(roles_app):
        client = api if url.startswith("/api/") else page
        if method in ("PATCH", "DELETE"):  # the API's comment edits
            response = client.client.open(url, method=method, headers=client.headers, json={"text": "x"})
        else:
            response = client.post(url) if method == "POST" else client.get(url)
        refused = _denied(response)
        where = f"{name} ({role}) {method} {url} → {response.status_code} {_text(response)[:200]}"
        if endpoint.startswith("access"):
            assert response.status_code == 403, where  # admins only
        elif needed is None or (url in ACROSS and method == "GET") or needed in MAY[role]:
            assert refused is None and response.status_code < 500, where
        elif needed == access.DECIDE:
            # who approves no table is refused before the request is looked up (any id: no hint)
            assert response.status_code == 403 and "approvers can approve" in _text(response), where
        elif not MAY[role]:
            assert refused == "404", where
            if "secret" not in url:  # a plain path or a request's URL: the answer does not name the hidden table
                assert "secret" not in _text(response), where
        else:
            assert refused == "403", where
            assert {"edit": "editor", "approve": "approver"}[needed] in _text(response), where
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("name", ["otto", "vera"])
def test_lists_leave_out_what_one_may_not_view(roles_app, name):
    api, page = Api(roles_app, name), Browser(roles_app, name)
    unknown = api.get("/api/v1/tables/nope/versions")
    assert unknown.status_code == 404 and unknown.json["error"].endswith(
        "Tables: open." if name == "otto" else "Tables: secret, open."
    )
    listed = [t["name"] for t in api.get("/api/v1/tables").json["items"]]
    assert listed == (["open"] if name == "otto" else ["secret", "open"])
    overview = page.get("/").text
    assert ("/t/secret/" in overview) == (name == "vera")
    requests = api.get("/api/v1/changes").json
    assert {c["table"] for c in requests["items"]} == ({"open"} if name == "otto" else {"secret", "open"})
    assert requests["total"] == len(requests["items"])
    workbook = load_workbook(io.BytesIO(page.get("/download.xlsx").data), read_only=True)
    assert workbook.sheetnames == (["open"] if name == "otto" else ["secret", "open"])
    same = load_workbook(io.BytesIO(api.get("/api/v1/export.xlsx?all=1").data), read_only=True)
    assert same.sheetnames == workbook.sheetnames
    seen = {"open"} if name == "otto" else {"secret", "open"}
    versions = api.get("/api/v1/tables/open/versions?all=1").json
    assert {v["table"] for v in versions["items"]} <= seen and versions["total"] == len(versions["items"])
    assert ("secret" in {v["table"] for v in versions["items"]}) == (name != "otto")
    audit = api.get("/api/v1/tables/open/audit?all=1").json["items"]
    assert {a["table"] for a in audit} <= seen and ("secret" in {a["table"] for a in audit}) == (name != "otto")
    assert ("/t/secret/" in page.get("/t/open/audit?all=1").text) == (name != "otto")
    assert b"secret" not in page.get("/t/open/audit.csv?all=1").data or name != "otto"


def _zip(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def _post_zip(app, client: Api, data: bytes):
    headers = client.headers | {"Content-Type": "application/zip"}
    return app.test_client().post("/api/v1/tables/open/changes", data=data, headers=headers)


def test_a_zip_touching_a_table_one_may_not_edit_is_refused_naming_it(roles_app):
    both = _zip({"secret.csv": "id,name\nK1,one\nK3,three\n", "open.csv": "id,name\nO1,open\nO2,two\n"})
    vera = Api(roles_app, "vera")  # may edit open (no editors), may only view secret
    response = _post_zip(roles_app, vera, both)
    assert response.status_code == 403 and "editor role on table 'secret'" in response.json["error"]
    otto = Api(roles_app, "otto")  # may not even view secret: it stays unknown
    response = _post_zip(roles_app, otto, both)
    assert response.status_code == 404 and "secret" in response.json["error"]
    eddie = Api(roles_app, "eddie")  # editor of secret, and of open like everyone
    response = _post_zip(roles_app, eddie, both)
    assert response.status_code == 201, response.text
    # the batch is shown and decided whole: the part in open is hidden from who may not view secret
    part = {r["table"]: r["id"] for r in response.json["requests"]}["open"]
    assert vera.get(f"/api/v1/changes/{part}").status_code == 200
    assert otto.get(f"/api/v1/changes/{part}").status_code == 404
    assert Browser(roles_app, "otto").get(f"/changes/{part}").status_code == 404
    assert vera.post(f"/api/v1/changes/{part}/approve").status_code == 403  # vera approves neither
    abe = Api(roles_app, "abe")  # approver of secret; open has no approvers but the admins
    refused = abe.post(f"/api/v1/changes/{part}/approve")
    assert refused.status_code == 403 and "approver role on table 'open'" in refused.json["error"]
    assert Api(roles_app, "boss").post(f"/api/v1/changes/{part}/approve").status_code == 200


def test_approvers_and_editors_named_through_groups(roles_app, runner_for):
    runner = runner_for(roles_app)
    result = runner.invoke(args=["users", "groups", "otto", "--add", "writers", "--add", "x"])
    assert result.exit_code == 0 and "Groups of 'otto': writers, x" in result.output
    assert Api(roles_app, "otto").get("/api/v1/tables/secret/versions").status_code == 200  # editors may view
    result = runner.invoke(args=["users", "groups", "otto", "--remove", "writers"])
    assert "Groups of 'otto': x" in result.output
    assert Api(roles_app, "otto").get("/api/v1/tables/secret/versions").status_code == 404
    result = runner.invoke(args=["users", "groups", "nobody", "--add", "x"])
    assert result.exit_code != 0 and "There is no user 'nobody'" in result.output


@pytest.fixture
def runner_for():
    return lambda app: app.test_cli_runner()


def test_the_access_review_lists_exactly_the_resolved_people(roles_app):
    boss = Api(roles_app, "boss")
    items = boss.get("/api/v1/access").json["items"]
    secret = {(i["role"], i["who"], i["via"]) for i in items if i["table"] == "secret"}
    assert secret == {
        ("viewer", "boss", "admin"),
        ("editor", "boss", "admin"),
        ("approver", "boss", "admin"),
        ("viewer", "vera", "name"),
        ("viewer", "eddie", "group:writers"),
        ("editor", "eddie", "group:writers"),
        ("viewer", "abe", "name"),
        ("editor", "abe", "name"),
        ("approver", "abe", "name"),
    }
    opened = {(i["role"], i["who"]) for i in items if i["table"] == "open"}
    everyone = {"boss", "vera", "eddie", "abe", "otto"}
    assert opened == {("viewer", n) for n in everyone} | {("editor", n) for n in everyone} | {("approver", "boss")}
    csv_text = boss.get("/api/v1/access.csv").data.decode("utf-8-sig")
    assert csv_text.startswith("table,role,who,via\r\n") and "secret,viewer,eddie,group:writers\r\n" in csv_text
    assert csv_text.count("\r\n") == len(items) + 1
    assert Api(roles_app, "abe").get("/api/v1/access").status_code == 403
    with roles_app.app_context():
        accounts.set_disabled("vera", True)
    assert ("viewer", "vera", "name") not in {
        (i["role"], i["who"], i["via"]) for i in boss.get("/api/v1/access").json["items"]
    }


def test_without_viewers_and_editors_everyone_signed_in_may_view_and_edit(roles_app):
    otto = Api(roles_app, "otto")
    assert otto.get("/api/v1/tables/open/export.csv").status_code == 200
    response = roles_app.test_client().post(
        "/api/v1/tables/open/changes?mode=partial",
        data=b"id,name\nO9,nine\n",
        headers=otto.headers | {"Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text


# --- token scopes and expiry -----------------------------------------------------------------


def _token(app, name: str, **options) -> dict[str, str]:
    with app.app_context():
        return {"Authorization": "Bearer " + accounts.create_token(name, **options)}


def test_a_read_token_reads_but_may_not_upload_and_a_submit_token_may_not_decide(roles_app):
    client, ids = roles_app.test_client(), roles_app.config["ids"]
    read = _token(roles_app, "abe", scope="read")
    assert client.get("/api/v1/tables/secret/export.csv", headers=read).status_code == 200
    response = client.post(
        "/api/v1/tables/secret/changes", data=b"id,name\nK5,five\n", headers=read | {"Content-Type": "text/csv"}
    )
    assert response.status_code == 403 and "scope is 'read'" in response.json["error"]
    submit = _token(roles_app, "abe", scope="submit")
    assert client.post(f"/api/v1/changes/{ids['pending']}/approve", headers=submit).status_code == 403
    response = client.post(
        "/api/v1/tables/secret/changes?mode=partial",
        data=b"id,name\nK5,five\n",
        headers=submit | {"Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    decide = _token(roles_app, "abe", scope="decide")
    assert client.post(f"/api/v1/changes/{ids['pending']}/approve", headers=decide).status_code == 200


def test_an_expired_token_gets_401_saying_so(roles_app):
    client = roles_app.test_client()
    headers = _token(roles_app, "vera", expires_days=1)
    assert client.get("/api/v1/tables", headers=headers).status_code == 200
    with roles_app.app_context():
        token = db.session.scalars(db.select(ApiToken).order_by(ApiToken.id.desc())).first()
        token.expires_at = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=1)
        db.session.commit()
    response = client.get("/api/v1/tables", headers=headers)
    assert response.status_code == 401 and "expired" in response.json["error"]


def test_tokens_create_with_scope_and_expiry_and_list_shows_them(roles_app):
    runner = roles_app.test_cli_runner()
    result = runner.invoke(args=["tokens", "create", "vera", "--scope", "read", "--expires", "30"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    client = roles_app.test_client()
    assert client.get("/api/v1/tables", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    result = runner.invoke(args=["tokens", "create", "vera"])
    listed = runner.invoke(args=["tokens", "list", "vera"]).output.splitlines()
    assert "scope read" in listed[0] and "expires " in listed[0] and "never expires" not in listed[0]
    assert "scope decide" in listed[1] and "never expires" in listed[1]
    assert runner.invoke(args=["tokens", "create", "vera", "--scope", "all"]).exit_code != 0
    assert runner.invoke(args=["tokens", "create", "vera", "--expires", "0"]).exit_code != 0


def test_the_tokens_page_creates_a_scoped_expiring_token(roles_app):
    vera = Browser(roles_app, "vera")
    page = vera.post("/tokens", data={"scope": "read", "expires": "7"})
    assert page.status_code == 200 and "dt_" in page.text
    with roles_app.app_context():
        token = db.session.scalars(db.select(ApiToken).order_by(ApiToken.id.desc())).first()
        assert token.scope == "read" and token.expires_at is not None
        assert dt.timedelta(days=6) < token.expires_at - token.created_at <= dt.timedelta(days=7)
    assert vera.post("/tokens", data={"scope": "everything"}).status_code == 400
    assert (
        vera.post("/tokens", data={"scope": "read", "expires": "0"}).status_code == 404
    )  # a bad field, as pages answer it


def _table(**roles):
    from package import Package
    from tables import TableRef

    resource = {"name": "t", "schema": {"primaryKey": "id", "fields": [{"name": "id"}]}} | roles
    return TableRef(1, Package.from_dict({"resources": [resource]}).first)


ANN, BOB = access.Person("ann", frozenset({"hr"})), access.Person("bob", frozenset({"it"}))
ADMIN = access.Person("root", admin=True)


@pytest.mark.parametrize(
    ("roles", "who", "expected"),
    [
        ({}, BOB, {"view", "edit"}),  # no roles: everyone signed in views and edits, as before
        ({}, ADMIN, {"view", "edit", "approve"}),
        ({"viewers": ["group:hr"]}, ANN, {"view", "edit"}),  # no editors: the viewers edit
        ({"viewers": ["group:hr"]}, BOB, set()),
        ({"editors": ["ann"]}, BOB, {"view"}),  # no viewers: everyone views
        ({"editors": ["ann"]}, ANN, {"view", "edit"}),
        ({"viewers": ["bob"], "editors": ["group:hr"]}, ANN, {"view", "edit"}),  # editors view
        ({"viewers": ["bob"], "editors": ["group:hr"]}, BOB, {"view"}),
        ({"viewers": [], "editors": [], "approvers": ["group:it"]}, BOB, {"view", "edit", "approve"}),
        ({"viewers": [], "editors": [], "approvers": ["group:it"]}, ANN, set()),
        ({"viewers": [], "approvers": ["bob"]}, ADMIN, {"view", "edit", "approve"}),
        (
            {"viewers": ["group:hr"]},
            None,  # nobody signed in
            set(),
        ),
    ],
)
def test_who_may_what(roles, who, expected):
    table = _table(**roles)
    assert {role for role in access.ROLES if access.may(who, table, role)} == expected


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({"viewers": "ann"}, '"viewers" must be a list of user names and "group:NAME" entries'),
        ({"editors": ["ann", ""]}, '"editors" must be a list'),
        ({"editors": ["group: "]}, '"editors" has "group:" without a group name'),
    ],
)
def test_bad_roles_in_schema_json_are_refused_naming_the_table(roles, message):
    from schema import SchemaError

    with pytest.raises(SchemaError, match=re.escape(message)) as refused:
        _table(**roles)
    assert "resource 't'" in str(refused.value)


def test_auditors_see_the_access_review_too(make_app, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(PACKAGE))
    app = make_app(SCHEMA_PATH=path, AUDITORS=["audrey"])
    with app.app_context():
        accounts.create_user("audrey", "audrey-password")
        accounts.create_user("vera", "vera-password")
    audrey, vera = Browser(app, "audrey"), Browser(app, "vera")
    page = audrey.get("/access")
    assert page.status_code == 200 and 'href="/access"' in page.text
    assert Api(app, "audrey").get("/api/v1/access.csv").status_code == 200
    refused = vera.get("/access")
    assert refused.status_code == 403 and 'href="/access"' not in vera.get("/tokens").text
