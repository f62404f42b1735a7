"""Hardening round 3 (issue 20), sign-in throttling behind a reverse proxy: failures are counted
against the client address the trusted proxy reports (AUTH_PROXY_IPS, or PROXY_FIX), never the
proxy's own; a name failing from many addresses is slowed, never locked out; the header is
ignored from anyone but the proxy."""

from __future__ import annotations

import pytest
from conftest import add_test_users

import accounts

PROXY = "10.0.0.1"


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(accounts, "pause", waited.append)
    return waited


@pytest.fixture(params=["AUTH_PROXY_IPS", "PROXY_FIX"])
def behind_proxy(request, make_app, pauses):
    """The app behind one proxy at 10.0.0.1, trusted by either setting; returns a sign-in function
    (user, password, client address as the proxy reports it) → status."""
    trust = {"AUTH_PROXY_IPS": PROXY} if request.param == "AUTH_PROXY_IPS" else {"PROXY_FIX": 1}
    app = add_test_users(make_app(LOGIN_MAX_FAILURES=3, LOGIN_MAX_FAILURES_PER_ADDRESS=5, **trust))

    def sign_in(user: str, password: str, client: str, peer: str = PROXY) -> int:
        return (
            app.test_client()
            .post(
                "/login",
                data={"username": user, "password": password},
                headers={"X-Forwarded-For": client},
                environ_base={"REMOTE_ADDR": peer},
            )
            .status_code
        )

    return sign_in


def test_guessing_from_one_client_does_not_lock_out_the_others_behind_the_proxy(behind_proxy, pauses):
    for _ in range(3):
        assert behind_proxy("boss", "wrong", "198.51.100.7") == 401
    assert behind_proxy("boss", "wrong", "198.51.100.7") == 429  # that client, for that name
    assert behind_proxy("boss", "boss-password", "203.0.113.5") == 302  # the admin elsewhere: slowed, not refused
    assert pauses and pauses[-1] >= 1.0


def test_a_name_failing_from_many_clients_is_slowed_never_locked_out(behind_proxy, pauses):
    for i in range(12):
        assert behind_proxy("boss", "wrong", f"198.51.100.{i}") == 401
    assert behind_proxy("boss", "boss-password", "203.0.113.5") == 302
    assert max(pauses) <= accounts.MAX_SLOWDOWN_SECONDS and pauses[-1] > 1.0


def test_one_client_failing_for_many_names_is_refused_and_no_one_else(behind_proxy):
    for i in range(5):
        assert behind_proxy(f"nobody{i}", "wrong", "198.51.100.7") == 401
    assert behind_proxy("alice", "alice-password", "198.51.100.7") == 429
    assert behind_proxy("alice", "alice-password", "203.0.113.5") == 302


def test_the_forwarded_header_is_ignored_from_anyone_but_the_proxy(make_app):
    app = add_test_users(make_app(LOGIN_MAX_FAILURES=3, AUTH_PROXY_IPS=PROXY))
    stranger = {"REMOTE_ADDR": "192.0.2.9"}
    for i in range(3):  # a different spoofed client address each time: all counted against 192.0.2.9
        r = app.test_client().post(
            "/login",
            data={"username": "boss", "password": "wrong"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
            environ_base=stranger,
        )
        assert r.status_code == 401
    r = app.test_client().post(
        "/login",
        data={"username": "boss", "password": "wrong"},
        headers={"X-Forwarded-For": "198.51.100.99"},
        environ_base=stranger,
    )
    assert r.status_code == 429


def test_a_client_cannot_pose_as_another_by_writing_the_header_itself(make_app, pauses):
    """The proxy appends the connecting address; what the client wrote stays on the left."""
    app = add_test_users(make_app(LOGIN_MAX_FAILURES=3, AUTH_PROXY_IPS=PROXY))

    def attempt(forwarded: str) -> int:
        return (
            app.test_client()
            .post(
                "/login",
                data={"username": "boss", "password": "wrong"},
                headers={"X-Forwarded-For": forwarded},
                environ_base={"REMOTE_ADDR": PROXY},
            )
            .status_code
        )

    for i in range(3):
        assert attempt(f"203.0.113.{i}, 198.51.100.7") == 401
    assert attempt("203.0.113.200, 198.51.100.7") == 429  # still 198.51.100.7, whatever it writes
