"""Hardening: sign-in throttling, API tokens, cookies, headers, redirects, CSRF, error pages, escaping, SSO."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import row, table

import accounts
import config
import store.audit
from models import LoginFailure, db

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TRACE_MARKERS = ("Traceback", 'File "', "most recent call last", "sqlalchemy.", "RuntimeError")


def no_traceback(text: str) -> None:
    for marker in TRACE_MARKERS:
        assert marker not in text, marker


def sign_in(client, username: str, password: str | None = None, **kwargs):
    return client.post("/login", data={"username": username, "password": password or f"{username}-password"}, **kwargs)


# --- sign-in throttling ----------------------------------------------------------------------


@pytest.fixture
def throttled_app(app):
    app.config["LOGIN_MAX_FAILURES"] = 3
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 5
    return app


@pytest.fixture
def pauses(monkeypatch):
    """The slow-downs sign-in asked for, in seconds (none taken: the tests do not wait)."""
    asked: list[float] = []
    monkeypatch.setattr(accounts, "pause", asked.append)
    return asked


def test_failures_for_a_user_name_from_one_address_throttle_that_address(throttled_app, pauses):
    client = throttled_app.test_client()
    here = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(3):
        r = sign_in(client, "alice", "wrong", environ_base=here)
        assert r.status_code == 401 and "Wrong user name or password" in r.text
    r = sign_in(client, "alice", environ_base=here)  # even the right password, from there
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.text and "15 minutes" in r.text
    no_traceback(r.text)
    with client.session_transaction() as session:
        assert "_user_id" not in session
    # alice herself, from her own address, is slowed down but not locked out
    assert sign_in(throttled_app.test_client(), "alice", environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 302
    assert pauses and pauses[-1] >= 1
    # other users are not affected at all
    pauses.clear()
    assert sign_in(client, "bob", environ_base={"REMOTE_ADDR": "10.0.0.98"}).status_code == 302
    assert pauses == []


def test_a_name_guessed_from_many_addresses_is_slowed_down_not_locked_out(throttled_app, pauses):
    """The red team's lock-out: wrong passwords for the admin's name from many addresses must not
    refuse the admin everywhere; they only slow sign-in for that name down."""
    for i in range(9):
        r = sign_in(throttled_app.test_client(), "boss", "guess", environ_base={"REMOTE_ADDR": f"10.9.0.{i}"})
        assert r.status_code == 401
    assert len(pauses) == 9 - 3 and all(0 < p <= accounts.MAX_SLOWDOWN_SECONDS for p in pauses)
    assert pauses == sorted(pauses)  # the more guesses, the slower
    r = sign_in(throttled_app.test_client(), "boss", environ_base={"REMOTE_ADDR": "10.0.0.50"})
    assert r.status_code == 302  # the admin, from elsewhere: in, after a pause
    assert pauses[-1] >= 1


def test_failures_per_address_throttle_every_user_name(throttled_app):
    client = throttled_app.test_client()
    for name in ("v", "w", "x", "y", "z"):
        assert sign_in(client, name, "guess", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 401
    assert sign_in(client, "bob", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 429
    assert sign_in(client, "bob", environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 302


def test_existing_and_missing_names_cost_one_password_check_each(throttled_app, monkeypatch):
    """Unknown names are checked against a dummy hash: response times do not tell names apart."""
    checks: list[str] = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda h, p: checks.append(h) or real(h, p))
    client = throttled_app.test_client()
    for name in ("alice", "nobody-here", "alice", "nobody-here"):
        assert sign_in(client, name, "wrong", environ_base={"REMOTE_ADDR": f"10.3.0.{len(checks)}"}).status_code == 401
    assert len(checks) == 4
    assert len({h.split("$")[0] for h in checks}) == 1  # the same method and cost for both


def test_failures_older_than_the_window_do_not_count(throttled_app):
    with throttled_app.app_context():
        old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=16)
        db.session.add_all([LoginFailure(username="alice", address="10.1.1.1", created_at=old) for _ in range(5)])
        db.session.commit()
    client = throttled_app.test_client()
    assert sign_in(client, "alice", environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code == 302


def test_below_the_limit_the_right_password_works(throttled_app):
    client = throttled_app.test_client()
    for _ in range(2):
        assert sign_in(client, "alice", "wrong").status_code == 401
    assert sign_in(client, "alice").status_code == 302


# --- API tokens ------------------------------------------------------------------------------


def database_text() -> str:
    """Every value of every table, as one string."""
    parts = []
    for name in db.metadata.tables:
        for values in db.session.execute(sa.text(f"SELECT * FROM {name}")):
            parts.extend(str(v) for v in values)
    return "\n".join(parts)


def test_tokens_are_stored_hashed(app, login):
    alice = login("alice")
    page = alice.post("/tokens")
    token = re.search(r'<pre class="token">([^<]+)</pre>', page.text).group(1)
    assert alice.client.get("/api/v1/changes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with app.app_context():
        stored = database_text()
    assert token not in stored
    assert token[:10] in stored  # the prefix, to tell tokens apart
    # shown once: the page does not show it again
    assert token not in alice.get("/tokens").text


def test_cli_lists_and_revokes_all_tokens_of_a_user(app, runner, api):
    alice1, alice2, bob = api("alice"), api("alice"), api("bob")
    listing = runner.invoke(args=["tokens", "list"])
    assert listing.exit_code == 0
    lines = listing.output.strip().splitlines()
    assert sum("\talice\t" in line for line in lines) == 2 and sum("\tbob\t" in line for line in lines) == 1
    assert all(line.endswith("active") for line in lines)
    assert alice1.token[:10] in listing.output and alice1.token not in listing.output

    result = runner.invoke(args=["tokens", "revoke", "alice"])
    assert result.exit_code == 0 and "Revoked 2 token(s) of 'alice'" in result.output
    for client in (alice1, alice2):
        r = client.get("/api/v1/changes")
        assert r.status_code == 401 and "error" in r.json
    assert bob.get("/api/v1/changes").status_code == 200
    listing = runner.invoke(args=["tokens", "list", "alice"]).output.strip().splitlines()
    assert len(listing) == 2 and all("revoked" in line for line in listing)


def test_cli_revoke_of_an_unknown_user_fails_clearly(runner):
    result = runner.invoke(args=["tokens", "revoke", "nobody"])
    assert result.exit_code != 0 and "no user 'nobody'" in result.output


def token_id(app, token: str) -> int:
    with app.app_context():
        return next(t.id for t, _ in accounts.list_tokens() if token.startswith(t.prefix))


def test_tokens_page_revokes_your_own_token_only(app, login, api):
    alice_api, bob_api = api("alice"), api("bob")
    alice = login("alice")
    # alice tries to revoke bob's token by its id: nothing happens to it
    r = alice.post("/tokens", data={"revoke": token_id(app, bob_api.token)})
    assert r.status_code == 302
    assert "Revoked 0 token(s)" in alice.get("/tokens").text
    assert bob_api.get("/api/v1/changes").status_code == 200
    # her own works
    alice.post("/tokens", data={"revoke": token_id(app, alice_api.token)})
    assert alice_api.get("/api/v1/changes").status_code == 401
    assert bob_api.get("/api/v1/changes").status_code == 200
    page = alice.get("/tokens").text
    assert "revoked" in page and bob_api.token[:10] not in page


def test_tokens_page_revoke_all_is_your_own_only(app, login, api):
    a1, a2, bob_api = api("alice"), api("alice"), api("bob")
    login("alice").post("/tokens", data={"revoke": "all"})
    assert a1.get("/api/v1/changes").status_code == 401 and a2.get("/api/v1/changes").status_code == 401
    assert bob_api.get("/api/v1/changes").status_code == 200


# --- cookies ---------------------------------------------------------------------------------


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return cookies[-1]


def test_session_cookie_is_httponly_and_lax(app):
    cookie = session_cookie(sign_in(app.test_client(), "alice"))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development: plain http on localhost works


def test_session_cookie_is_secure_in_production(make_app, monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-production-secret")
    app = make_app(PASSWORD_HASH_METHOD="scrypt")
    assert app.config["APP_ENV"] == "production" and app.config["SECRET_KEY"] == "a-production-secret"
    with app.app_context():
        accounts.set_password("boss", "boss-password")
        db.session.commit()
    cookie = session_cookie(sign_in(app.test_client(), "boss", base_url="https://localhost"))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_refuses_to_start_without_secret_key(make_app, monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(SystemExit, match="SECRET_KEY"):
        make_app()


# --- headers and templates -------------------------------------------------------------------


def test_security_headers(app, login):
    alice = login("alice")
    for path in ("/login", "/", "/upload", "/audit", "/tokens", "/no-such-page", "/healthz", "/static/style.css"):
        response = alice.get(path)
        csp = response.headers["Content-Security-Policy"]
        directives = {name: value for name, _, value in (d.strip().partition(" ") for d in csp.split(";"))}
        script = directives.get("script-src", directives.get("default-src"))
        assert script and "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, path
        assert directives["frame-ancestors"] == "'none'", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        response.close()


def test_security_headers_on_api_and_error_pages(app, api):
    for response in (api("alice").get("/api/v1/changes"), app.test_client().get("/api/v1/changes")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


TEMPLATE_FILES = sorted(TEMPLATES.rglob("*.html"))
TEMPLATE_RULES = {
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "script body": re.compile(r"<script\b[^>]*>(?!\s*</script>)", re.IGNORECASE),
    "on*= handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "inline style (CSP style-src 'self')": re.compile(r"<[^>]*\sstyle\s*=|<style\b", re.IGNORECASE),
    "POST form without csrf_token": re.compile(
        r"<form\b[^>]*method=\"post\"(?:(?!csrf_token).)*?</form>", re.IGNORECASE | re.DOTALL
    ),
}


def template_problems(text: str) -> list[str]:
    return [name for name, rule in TEMPLATE_RULES.items() if rule.search(text)]


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_inline_script_and_csrf_in_every_form(path):
    assert template_problems(path.read_text()) == []


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        ("<script>alert(1)</script>", "inline <script>"),
        ('<script src="/static/a.js">alert(1)</script>', "script body"),
        ('<button type="button" onclick="go()">x</button>', "on*= handler"),
        ("<body\nonload='x()'>", "on*= handler"),
        ('<a href="javascript:go()">x</a>', "javascript: URL"),
        ('<p style="color: red">x</p>', "inline style (CSP style-src 'self')"),
        ('<form method="post"><button>x</button></form>', "POST form without csrf_token"),
    ],
)
def test_the_template_scan_catches(snippet, problem):
    assert problem in template_problems(snippet)


def test_the_template_scan_accepts_the_safe_forms():
    safe = (
        "<script src=\"{{ url_for('static', filename='upload.js') }}\"></script>"
        '<form method="post">{{ form.csrf_token }}<button>x</button></form><form method="get"></form>'
        '<p class="online">Owner: {{ owner }}</p>'
    )
    assert template_problems(safe) == []


# --- open redirects --------------------------------------------------------------------------

EVIL_NEXT = [
    "//evil.com",
    "https://evil.com",
    "http://evil.com/",
    "/\\evil.com",
    "\\\\evil.com",
    "javascript:alert(1)",
    "/\t/evil.com",
    "///evil.com",
    "https:evil.com",
    "evil.com",
    " //evil.com",
]


def is_local(location: str) -> bool:
    cleaned = re.sub(r"[\t\r\n ]", "", location)
    return cleaned.startswith("/") and not cleaned.startswith("//") and "\\" not in cleaned and ":" not in cleaned


def test_no_open_redirect_after_sign_in(app):
    for target in EVIL_NEXT:
        client = app.test_client()
        r = sign_in(client, "alice", query_string={"next": target})
        assert r.status_code == 302 and r.headers["Location"] == "/", target
        # and when already signed in
        r = client.get("/login", query_string={"next": target})
        assert r.status_code == 302 and r.headers["Location"] == "/", target


def test_local_next_is_followed(app):
    for target in ("/audit?key=DS-1", "/changes/1", "/upload"):
        r = sign_in(app.test_client(), "alice", query_string={"next": target})
        assert r.headers["Location"] == target and is_local(target)


def test_sign_in_link_keeps_the_page_asked_for(app):
    r = app.test_client().get("/audit?key=DS-1")
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/login?next=")
    assert all(not is_local(t) for t in EVIL_NEXT)


# --- CSRF ------------------------------------------------------------------------------------


def token_in(html: str) -> str:
    match = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html)
    assert match, "no csrf_token field"
    return re.search(r'value="([^"]+)"', match.group(0)).group(1)


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def csrf_sign_in(app, username: str):
    client = app.test_client()
    token = token_in(client.get("/login").text)
    r = client.post("/login", data={"username": username, "password": f"{username}-password", "csrf_token": token})
    assert r.status_code == 302, r.text
    return client


def example_url(rule, change_id: int) -> str:
    values = {
        name: change_id if name == "change_id" else 1 if name.endswith("_id") else "DS-1" for name in rule.arguments
    }
    return rule.build(values, append_unknown=False)[1]


def web_post_rules(app):
    return [r for r in app.url_map.iter_rules() if "POST" in r.methods and not r.endpoint.startswith("api.")]


def test_every_web_post_route_rejects_a_missing_csrf_token(csrf_app, seeded, api):
    pending = api("boss").upload(table(row("DS-1", "Changed")), mode="partial")
    assert pending.status_code == 201
    change_id = pending.json["id"]
    rules = web_post_rules(csrf_app)
    assert {"auth.login", "auth.logout", "pages.upload", "pages.approve", "pages.tokens"} <= {r.endpoint for r in rules}
    client = csrf_sign_in(csrf_app, "boss")
    form = {"reason": "x", "revoke": "all", "username": "boss", "password": "boss-password"}
    for rule in rules:
        url = example_url(rule, change_id)
        for data in (form, form | {"csrf_token": "forged"}):
            r = client.post(url, data=data)
            assert r.status_code == 400, (url, r.status_code)
            assert "CSRF" in r.text, url
            no_traceback(r.text)
    # nothing happened: still signed in, the request still pending, the tokens still active
    assert client.get("/").status_code == 200
    assert seeded.get(f"/api/v1/changes/{change_id}").json["status"] == "pending"
    with csrf_app.app_context():
        tokens = accounts.list_tokens("boss")
        assert tokens and all(t.revoked_at is None for t, _ in tokens)


def test_forms_work_with_their_token(csrf_app):
    client = csrf_sign_in(csrf_app, "alice")
    page = client.get("/tokens").text
    r = client.post("/tokens", data={"csrf_token": token_in(page)})
    assert r.status_code == 200 and '<pre class="token">' in r.text
    upload_page = client.get("/upload").text
    r = client.post(
        "/upload",
        data={"csrf_token": token_in(upload_page), "file": (io.BytesIO(table(row("DS-9")).encode()), "t.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302 and "/changes/" in r.headers["Location"]


def test_api_is_csrf_exempt_but_needs_a_bearer_token(csrf_app, api):
    body = {"file": (io.BytesIO(table(row("DS-9")).encode()), "t.csv")}
    anonymous = csrf_app.test_client().post("/api/v1/changes", data=body, content_type="multipart/form-data")
    assert anonymous.status_code == 401 and "Bearer" in anonymous.json["error"]
    r = api("alice").upload(table(row("DS-9")))
    assert r.status_code == 201, r.text


def test_api_ignores_the_session_cookie(csrf_app):
    """A signed-in browser cannot be driven through the CSRF-exempt API by another site."""
    client = csrf_sign_in(csrf_app, "alice")
    body = {"file": (io.BytesIO(table(row("DS-9")).encode()), "t.csv")}
    r = client.post("/api/v1/changes", data=body, content_type="multipart/form-data")
    assert r.status_code == 401


# --- error pages -----------------------------------------------------------------------------


@pytest.fixture
def failing_store(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(store.audit, "events", boom)


def error_cases(app, login, api):
    """(status, HTML response, JSON response) for every friendly error."""
    alice, bob = login("alice"), login("bob")
    alice_api, bob_api = api("alice"), api("bob")
    app.config["MAX_CONTENT_LENGTH"] = 100_000  # below the test client's 500 kB spooling to a temporary file
    big = table(*(row(f"DS-{i}", "x" * 200) for i in range(600)))
    return {
        400: (alice.get("/audit?since=yesterday"), alice_api.get("/api/v1/audit?since=yesterday")),
        403: (bob.post("/changes/1/approve"), bob_api.post("/api/v1/changes/1/approve")),
        404: (alice.get("/no/such/page"), alice_api.get("/api/v1/no/such")),
        405: (alice.get("/logout"), alice_api.get("/api/v1/changes/1/approve")),
        413: (alice.upload(big), alice_api.upload(big)),
    }


def test_friendly_error_pages_and_json_under_api(app, login, api):
    for status, (page, payload) in error_cases(app, login, api).items():
        assert page.status_code == status, (status, page.text[:300])
        assert page.mimetype == "text/html", status
        assert f"({status})" in page.text and "Back to the table" in page.text
        no_traceback(page.text)
        assert payload.status_code == status, (status, payload.text[:300])
        assert payload.is_json and isinstance(payload.json["error"], str) and payload.json["error"], status
        no_traceback(payload.text)


def test_friendly_429_page(app):
    app.config["LOGIN_MAX_FAILURES"] = 1
    client = app.test_client()
    sign_in(client, "alice", "wrong")
    page = sign_in(client, "alice")
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Too many attempts" in page.text and "(429)" in page.text
    no_traceback(page.text)


def test_unexpected_error_is_a_friendly_500(app, login, api, failing_store):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # TESTING would re-raise instead of answering
    page = login("alice").get("/audit")
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert "Something went wrong" in page.text
    assert "secret internal detail" not in page.text
    no_traceback(page.text)
    payload = api("alice").get("/api/v1/audit")
    assert payload.status_code == 500 and payload.is_json
    assert "secret internal detail" not in payload.text
    no_traceback(payload.text)


# --- escaping --------------------------------------------------------------------------------


def test_values_are_escaped_on_every_page(app, login, api, seeded):
    alice = api("alice")
    evil = table(row("DS-1", XSS), row("DS-4", "New", description=f'"><img src=x onerror=alert(2)>{XSS}'))
    r = alice.upload(evil, mode="partial", comment=XSS)
    assert r.status_code == 201, r.text
    change_id = r.json["id"]
    browser = login("alice")
    review = browser.get(f"/changes/{change_id}")  # shows the modified row first
    added = browser.get(f"/changes/{change_id}?show=added")
    changes_list = browser.get("/changes")
    assert seeded.post(f"/api/v1/changes/{change_id}/approve").status_code == 200
    pages = {
        "review": review,
        "review added": added,
        "changes": changes_list,
        "home": browser.get("/"),
        "search": browser.get("/", query_string={"q": XSS}),
        "record": browser.get("/records/DS-1"),
        "audit": browser.get("/audit"),
        "audit filter": browser.get("/audit", query_string={"key": XSS, "user": XSS}),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert XSS not in page.text, name
        assert "<img src=x" not in page.text, name
    for name in ("review", "review added", "home", "search", "record", "audit"):
        assert ESCAPED in pages[name].text, name


def test_error_messages_are_escaped(app, login):
    page = login("alice").get(f"/records/{XSS}")
    assert page.status_code == 404
    assert XSS not in page.text and ESCAPED in page.text


# --- single sign-on header -------------------------------------------------------------------


def test_auth_header_is_ignored_unless_configured(app):
    client = app.test_client()
    r = client.get("/", headers={"X-Forwarded-User": "boss", "Remote-User": "boss"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_auth_header_signs_in_when_configured(app):
    app.config["AUTH_HEADER"] = "X-Forwarded-User"
    app.config["AUTH_PROXY_IPS"] = config.proxy_networks("127.0.0.1")  # the test client's address
    client = app.test_client()
    r = client.get("/", headers={"X-Forwarded-User": "boss"})
    assert r.status_code == 200 and "admin" in r.text
    assert client.get("/", headers={"Remote-User": "boss"}).status_code == 302  # only the configured header
    r = client.get("/", headers={"X-Forwarded-User": "dora"})  # a new name gets an account without a password
    assert r.status_code == 200 and "dora" in r.text
    with app.app_context():
        user = accounts.find_user("dora")
        assert user is not None and user.password_hash == ""
    # no password means no password sign-in for that account
    assert sign_in(client, "dora", "").status_code != 302


def test_auth_header_is_not_trusted_by_the_api(app):
    app.config["AUTH_HEADER"] = "X-Forwarded-User"
    app.config["AUTH_PROXY_IPS"] = config.proxy_networks("127.0.0.1")
    r = app.test_client().get("/api/v1/changes", headers={"X-Forwarded-User": "boss"})
    assert r.status_code == 401
