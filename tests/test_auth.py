"""Sign-in: every page needs it (except /login and /healthz), passwords and tokens hashed, admins by name."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Api, row, table
from sqlalchemy import select

import accounts
from models import ApiToken, User, db

PAGES = ["/", "/download", "/upload", "/changes", "/changes?status=approved", "/changes/1", "/audit",
         "/audit?key=DS-1", "/records/DS-1", "/tokens"]  # fmt: skip


@pytest.mark.parametrize("url", PAGES)
def test_every_page_redirects_to_sign_in(shared_app, url):
    r = shared_app.test_client().get(url)
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [url]


@pytest.mark.parametrize(
    "url", ["/upload", "/changes/1/approve", "/changes/1/reject", "/changes/1/withdraw", "/tokens"]
)
def test_posts_need_sign_in_too(shared_app, url):
    r = shared_app.test_client().post(url, data={"reason": "x"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_healthz_is_public(shared_app):
    r = shared_app.test_client().get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "database": "ok"}


def test_static_files_are_public(app):
    r = app.test_client().get("/static/style.css")
    r.close()
    assert r.status_code == 200


def test_sign_in_form_and_redirect_back(app):
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'name="password"' in page.text
    r = client.post("/login?next=/audit", data={"username": "alice", "password": "alice-password"})
    assert r.status_code == 302 and r.headers["Location"] == "/audit"
    assert client.get("/audit").status_code == 200


@pytest.mark.parametrize(
    "username, password", [("alice", "wrong"), ("alice", ""), ("nobody", "alice-password"), ("ALICE", "alice-password")]
)
def test_wrong_credentials_are_refused(app, username, password):
    client = app.test_client()
    r = client.post("/login", data={"username": username, "password": password})
    assert r.status_code in (400, 401)
    assert client.get("/").status_code == 302


def test_wrong_password_says_so(app):
    r = app.test_client().post("/login", data={"username": "alice", "password": "nope"})
    assert r.status_code == 401 and "Wrong user name or password." in r.text


@pytest.mark.parametrize("target", ["http://evil.example/", "//evil.example/x", "https:/evil", "\\\\evil"])
def test_no_open_redirect_after_sign_in(app, target):
    r = app.test_client().post("/login", query_string={"next": target},
                               data={"username": "alice", "password": "alice-password"})  # fmt: skip
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_sign_out(app, login):
    alice = login("alice")
    assert alice.get("/").status_code == 200
    assert alice.get("/logout").status_code == 405  # a link elsewhere cannot sign you out
    r = alice.post("/logout")
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert alice.get("/").status_code == 302


def test_passwords_and_tokens_are_stored_hashed(app, api):
    token = api("alice").token
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "alice"))
        assert "alice-password" not in user.password_hash and user.password_hash.startswith(("scrypt:", "pbkdf2:"))
        stored = db.session.scalars(select(ApiToken.token_hash)).all()
        assert token not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_session_cookie_is_httponly_and_lax(app):
    r = app.test_client().post("/login", data={"username": "alice", "password": "alice-password"})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development; production is tested in test_startup


def test_admins_are_the_configured_names(make_app):
    app = make_app(ADMIN_USERS=["boss", "chief"])
    with app.app_context():
        accounts.create_user("alice", "alice-password")
        db.session.commit()
    alice, boss, chief = Api(app, "alice"), Api(app, "boss"), Api(app, "chief")
    ids = []
    for _ in range(3):
        r = alice.upload(table(row(f"DS-{len(ids)}")), mode="partial")
        ids.append(r.json["id"])
    assert alice.post(f"/api/v1/changes/{ids[0]}/approve").status_code == 403
    assert boss.post(f"/api/v1/changes/{ids[0]}/approve").status_code == 200
    assert chief.post(f"/api/v1/changes/{ids[1]}/approve").status_code == 200
    assert chief.post(f"/api/v1/changes/{ids[2]}/reject", json={"reason": "no"}).status_code == 200


def test_admin_badge_only_for_admins(app, login):
    assert 'badge">admin' in login("boss").get("/").text
    assert 'badge">admin' not in login("alice").get("/").text


# --- single sign-on through a trusted proxy header -------------------------------------------


def test_proxy_header_is_ignored_by_default(app):
    r = app.test_client().get("/", headers={"X-Forwarded-User": "alice"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_proxy_header_signs_in_when_configured(make_app):
    app = make_app(AUTH_HEADER="X-Forwarded-User", AUTH_PROXY_IPS="127.0.0.1")
    client = app.test_client()
    r = client.get("/", headers={"X-Forwarded-User": "carol"})
    assert r.status_code == 200 and "carol" in r.text
    with app.app_context():
        assert accounts.find_user("carol") is not None  # an account (without a password) now exists
    assert client.get("/", headers={"X-Forwarded-User": "boss"}).text.count('badge">admin') == 1
    assert app.test_client().get("/").status_code == 302  # no header, no session: sign in
    assert app.test_client().get("/api/v1/changes", headers={"X-Forwarded-User": "boss"}).status_code == 401
