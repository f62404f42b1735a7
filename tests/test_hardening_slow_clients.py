"""Hardening round 3 (issue 20), against real gunicorn with gunicorn.conf.py and one worker, over
raw sockets: an anonymous request is answered from its headers, its body never read; a client
that stops sending holds the worker no longer than CLIENT_TIMEOUT_SECONDS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import CATALOG_SCHEMA

ROOT = Path(__file__).resolve().parent.parent
CLIENT_TIMEOUT = 2  # seconds, set for this test (the default is 15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """gunicorn with ONE sync worker (so a held worker holds the whole app), on an SQLite file."""
    tmp = tmp_path_factory.mktemp("slow")
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp / 'tracker.db'}",
        "SECRET_KEY": "slow-client-test",
        "ADMIN_USER": "boss",
        "SCHEMA_PATH": str(CATALOG_SCHEMA),
        "CLIENT_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT),
        "MAX_UPLOAD_MB": "256",
    }
    log_path = tmp / "gunicorn.log"
    log = log_path.open("wb")
    cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "app:app"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail("gunicorn exited:\n" + log_path.read_text())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not answer in time:\n" + log_path.read_text())
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def healthz_seconds(port: int) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as response:
        assert response.status == 200
    return time.monotonic() - started


@pytest.mark.parametrize(
    "path, content_type, status",
    [
        ("/api/v1/changes", "multipart/form-data; boundary=x", b" 401 "),
        ("/upload", "multipart/form-data; boundary=x", b" 302 "),
        ("/api/v1/changes/1/resolve", "application/json", b" 401 "),
        ("/changes/1/reject", "application/x-www-form-urlencoded", b" 302 "),
    ],
)
def test_an_anonymous_request_is_answered_from_its_headers_its_body_never_read(gunicorn, path, content_type, status):
    with socket.create_connection(("127.0.0.1", gunicorn), timeout=CLIENT_TIMEOUT * 3) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {200 * 1024**2}\r\n\r\n".encode()
        )
        sock.sendall(b"--x\r\n")  # a first piece of a body announced as 200 MB; the rest never comes
        started = time.monotonic()
        reply = answer(sock)  # a server that read the body would wait for it until the client timeout
    assert time.monotonic() - started < CLIENT_TIMEOUT / 2, reply[:200]
    assert reply.startswith(b"HTTP/1.1" + status), reply[:200]
    assert healthz_seconds(gunicorn) < 1  # the worker is free again at once


def test_a_client_that_stops_sending_headers_holds_the_worker_no_longer_than_the_client_timeout(gunicorn):
    with socket.create_connection(("127.0.0.1", gunicorn), timeout=60) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: localhost\r\n")  # and then nothing
        time.sleep(0.2)  # the one worker is now reading this connection's headers
        waited = healthz_seconds(gunicorn)  # queued behind it until the worker gives up on it
        assert waited < CLIENT_TIMEOUT + 2, waited  # not gunicorn's `timeout` (300 s)
        assert answer(sock) == b""  # the server dropped the silent connection
