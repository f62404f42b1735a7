"""Sign-in through a real OpenID Connect provider: the certified `oidc-provider` package (npm),
run with node on loopback by tests/js/oidc_provider.mjs, one client with PKCE and no login form
(the person the test names is signed in). The app talks to it over HTTP with Authlib, as in
production; the browser's part (following redirects) is done with `requests`.

Skipped when node or the package is missing (`npm ci --prefix tests/js`), unless REQUIRE_OIDC=1
or REQUIRE_BROWSER=1 (CI), which fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import accounts
import tables
from models import Event, User, db

JS = Path(__file__).resolve().parent / "js"
SCRIPT = JS / "oidc_provider.mjs"
CLIENT_ID, CLIENT_SECRET = "dataset-tracker", "tracker-secret"
CALLBACK = "http://localhost/login/oidc/callback"


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed (npm ci --prefix tests/js)"
    return None


@pytest.fixture(scope="module")
def provider():
    """The identity provider's issuer URL, running for this module."""
    reason = _missing()
    if reason:
        if os.environ.get("REQUIRE_OIDC") == "1" or os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_OIDC=1 but {reason}")
        pytest.skip(reason)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        ["node", str(SCRIPT), str(port), CLIENT_ID, CLIENT_SECRET, CALLBACK],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(issuer + "/.well-known/openid-configuration", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"the OIDC provider did not start: {process.communicate()[0]}")
    yield issuer
    process.terminate()
    process.communicate(timeout=10)  # closes its output pipe too


@pytest.fixture
def oidc_app(make_app, provider):
    """An app signing in through the provider; `tracker-admins` members are admins."""
    requests.post(provider + "/test/mischief", json={"mode": ""}, timeout=5)
    return make_app(
        OIDC_ISSUER=provider,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_ADMIN_GROUPS=["tracker-admins"],
    )


def events_of(app, type_: str) -> list[tuple[str | None, dict]]:
    """(user, details) of the event log's events of one type, oldest first."""
    with app.app_context():
        found = db.session.scalars(db.select(Event).filter_by(type=type_).order_by(Event.id))
        return [(e.username, json.loads(e.details)) for e in found]


def person(provider: str, username: str, groups=(), sub: str | None = None, email: str | None = None) -> None:
    """The person the provider signs in at its next interaction."""
    body = {
        "sub": sub or f"sub-{username}",
        "preferred_username": username,
        "email": email or f"{username}@example.com",
        "groups": list(groups),
    }
    assert requests.post(provider + "/test/person", json=body, timeout=5).ok


def start(client) -> str:
    """The app's redirect to the provider, followed to the provider's redirect back: the callback URL."""
    response = client.get("/login/oidc?next=/versions")
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]  # PKCE, state, nonce
    browser = requests.Session()
    while not location.startswith(CALLBACK):
        answer = browser.get(location, allow_redirects=False, timeout=10)
        assert answer.status_code in (302, 303), answer.text
        location = requests.compat.urljoin(location, answer.headers["Location"])
    return location


def sign_in(client, provider: str, username: str, groups=()):
    person(provider, username, groups)
    callback = start(client)
    return client.get(callback.removeprefix("http://localhost"))


def test_first_sign_in_creates_the_account_with_email_and_groups(oidc_app, provider):
    client = oidc_app.test_client()
    response = sign_in(client, provider, "carol", ["finance", "sales"])
    assert response.status_code == 302 and response.headers["Location"] == "/versions", response.text
    assert client.get("/versions").status_code == 200  # signed in
    with oidc_app.app_context():
        user = db.session.scalar(db.select(User).filter_by(username="carol"))
        assert (user.email, user.oidc_subject) == ("carol@example.com", "sub-carol")
        assert accounts.groups_of("carol") == ["finance", "sales"]
        assert not accounts.is_admin_name("carol")
    assert ("carol", {"via": "oidc"}) in events_of(oidc_app, "sign-in")
    assert ("carol", {"username": "carol", "by": "identity provider"}) in events_of(oidc_app, "user-created")
    listed = oidc_app.test_cli_runner().invoke(args=["users", "list"]).output
    assert "carol  (from the identity provider)" in listed
    # groups are refreshed at every sign-in
    client = oidc_app.test_client()
    assert sign_in(client, provider, "carol", ["sales"]).status_code == 302
    with oidc_app.app_context():
        assert accounts.groups_of("carol") == ["sales"]


def test_an_admin_group_makes_an_admin(oidc_app, provider):
    client = oidc_app.test_client()
    assert sign_in(client, provider, "root", ["tracker-admins"]).status_code == 302
    assert client.get("/access").status_code == 200  # admins only
    with oidc_app.app_context():
        assert accounts.is_admin_name("root")
    other = oidc_app.test_client()
    assert sign_in(other, provider, "dave", ["staff"]).status_code == 302
    assert other.get("/access").status_code == 403


def test_a_bad_state_is_refused(oidc_app, provider):
    client = oidc_app.test_client()
    person(provider, "erin")
    callback = start(client)
    tampered = callback.replace("state=", "state=x")
    response = client.get(tampered.removeprefix("http://localhost"))
    assert response.status_code == 401 and "state mismatch" in response.text
    (user, details), *_ = events_of(oidc_app, "sign-in-failed")
    assert user is None and details["via"] == "oidc" and "state mismatch" in details["reason"]
    assert client.get("/versions").status_code == 302  # not signed in


def test_a_replayed_code_is_refused(oidc_app, provider):
    first = oidc_app.test_client()
    person(provider, "frank")
    callback = start(first)
    assert first.get(callback.removeprefix("http://localhost")).status_code == 302
    # the same code again, with a fresh sign-in's state in another session
    second = oidc_app.test_client()
    fresh = parse_qs(urlsplit(second.get("/login/oidc").headers["Location"]).query)["state"][0]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = second.get(f"/login/oidc/callback?code={code}&state={fresh}")
    assert response.status_code == 401 and "code was refused" in response.text
    assert second.get("/versions").status_code == 302
    # and in the first session, whose state was used up
    response = first.get(callback.removeprefix("http://localhost"))
    assert response.status_code == 401


@pytest.mark.parametrize("mode", ["wrong-audience", "expired"])
def test_an_id_token_for_another_app_or_expired_is_refused(oidc_app, provider, mode):
    requests.post(provider + "/test/mischief", json={"mode": mode}, timeout=5)
    client = oidc_app.test_client()
    try:
        response = sign_in(client, provider, "gina")
    finally:
        requests.post(provider + "/test/mischief", json={"mode": ""}, timeout=5)
    assert response.status_code == 401 and "identity token did not verify" in response.text, response.text
    assert client.get("/versions").status_code == 302
    with oidc_app.app_context():
        assert accounts.find_user("gina") is None


def test_a_disabled_account_stays_out(oidc_app, provider):
    client = oidc_app.test_client()
    assert sign_in(client, provider, "hank").status_code == 302
    with oidc_app.app_context():
        accounts.set_disabled("hank", True)
    client = oidc_app.test_client()
    response = sign_in(client, provider, "hank")
    assert response.status_code == 403 and "disabled" in response.text
    assert ("hank", {"via": "oidc", "reason": "This account is disabled. Ask an admin to enable it."}) in events_of(
        oidc_app, "sign-in-failed"
    )


def test_password_login_false_refuses_the_password_form(make_app, provider):
    app = make_app(
        OIDC_ISSUER=provider, OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET=CLIENT_SECRET, PASSWORD_LOGIN=False
    )
    with app.app_context():
        accounts.set_password("boss", "boss-password")
    client = app.test_client()
    page = client.get("/login")
    assert (
        page.status_code == 200 and 'name="password"' not in page.text and "Sign in with company account" in page.text
    )
    response = client.post("/login", data={"username": "boss", "password": "boss-password"})
    assert response.status_code == 403 and "turned off" in response.text
    assert client.get("/versions").status_code == 302
    with app.app_context():
        assert tables.every()  # the app itself works


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"OIDC_ISSUER": "http://127.0.0.1:1"}, "OIDC_CLIENT_ID is not"),
        ({"PASSWORD_LOGIN": False}, "nobody could sign in"),
    ],
)
def test_settings_that_would_lock_everyone_out_stop_start_up(make_app, settings, message, capsys):
    with pytest.raises(SystemExit):
        make_app(**settings)
    assert message in capsys.readouterr().err


def test_without_oidc_the_sign_in_page_has_no_button_and_its_urls_are_404(app):
    client = app.test_client()
    assert "Sign in with" not in client.get("/login").text
    assert client.get("/login/oidc").status_code == 404
    assert client.get("/login/oidc/callback?code=x&state=y").status_code == 404
