"""The whole loop in a real browser: Debian's Chromium driven by Playwright against gunicorn.

Sign in through the form, download the CSV, edit one cell, upload it through the page (its
script shows progress), review the highlighted change, sign out, approve as admin, and find the
new version on the home page and in the audit log, with no console errors (CSP violations
appear there) on any page. Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

Never downloads a browser: it uses Debian's chromium (`apt-get install chromium`). Without it
the test is skipped, or fails when REQUIRE_BROWSER=1 (CI) (conftest.need_browser).
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import CATALOG_SCHEMA, need_browser
from playwright.sync_api import ConsoleMessage, Page, Route, expect, sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Reports every text the upload page's status line shows, through the console (which outlives the
# document.write that replaces the page when the upload answers).
WATCH_UPLOAD_STATUS = """
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("upload-status");
  if (!status) { return; }
  new MutationObserver(() => console.info("upload-status: " + status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
});
"""


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (skipped, or failed with REQUIRE_BROWSER=1, without it)."""
    chromium = need_browser()
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        yield instance
        instance.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(seeded, database_url, tmp_path):
    """gunicorn (2 workers) on a free loopback port, on the seeded test database; yields its base URL."""
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "browser-test-secret",
        "ADMIN_USER": "boss",
        "APP_ENV": "development",
        "PAGE_SIZE": "50",
        "SCHEMA_PATH": str(CATALOG_SCHEMA),
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    cmd = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "app:app"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not answer /healthz in time:\n" + (tmp_path / "gunicorn.log").read_text())
        if proc.poll() is not None:
            pytest.fail("gunicorn exited:\n" + (tmp_path / "gunicorn.log").read_text())
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser context; collects console errors and uncaught page errors."""
    context = browser.new_context(base_url=server, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.add_init_script(WATCH_UPLOAD_STATUS)
    page.console_errors = []  # type: ignore[attr-defined]
    page.upload_statuses = []  # type: ignore[attr-defined]

    def on_console(message: ConsoleMessage) -> None:
        if message.text.startswith("upload-status: "):
            page.upload_statuses.append(message.text.removeprefix("upload-status: "))  # type: ignore[attr-defined]
        elif message.type == "error":
            page.console_errors.append(f"{page.url}: {message.text} ({message.location.get('url')})")  # type: ignore[attr-defined]

    page.on("console", on_console)
    page.on("pageerror", lambda exc: page.console_errors.append(f"{page.url}: uncaught {exc}"))  # type: ignore[attr-defined]
    yield page
    context.close()


def sign_in(page: Page, username: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("#username", username)
    page.fill("#password", f"{username}-password")
    page.click("button:has-text('Sign in')")
    expect(page.locator(".who")).to_contain_text(username)


def sign_out(page: Page) -> None:
    page.click("button:has-text('Sign out')")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator(".flash")).to_contain_text("signed out")


def edit_cell(data: bytes, key: str, column: str, value: str) -> tuple[bytes, str]:
    """Change one cell of a downloaded CSV the way a spreadsheet would; returns the file and the old value."""
    bom = data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    col = rows[0].index(column)
    (target,) = [r for r in rows[1:] if r[0] == key]
    old, target[col] = target[col], value
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode("utf-8"), old


def test_download_edit_upload_review_approve(page: Page, tmp_path):
    # Sign in through the form and see the home page.
    sign_in(page, "alice")
    expect(page.locator("h1")).to_be_visible()
    meta = page.locator("p.meta")
    expect(meta).to_contain_text("3 rows")
    version = int(re.search(r"Version (\d+)", meta.inner_text()).group(1))
    expect(page.locator("table.data")).to_contain_text("Sales")

    # Download the CSV.
    with page.expect_download() as info:
        page.click("a:has-text('Download CSV')")
    download = info.value
    assert download.suggested_filename.endswith(f"-v{version}.csv")
    original = Path(download.path()).read_bytes()
    assert b"DS-1" in original and b"DS-3" in original

    # Edit one cell, as in a spreadsheet.
    edited, old = edit_cell(original, "DS-1", "name", "Sales EMEA")
    assert old == "Sales"
    path = tmp_path / "datasets-edited.csv"
    path.write_bytes(edited)

    # Upload it through the form. Hold the POST so the page's progress display can be seen.
    held: list[Route] = []
    page.route("**/upload", lambda route: held.append(route) if route.request.method == "POST" else route.continue_())
    page.click("nav >> text=Upload")
    expect(page.locator("h1")).to_have_text("Upload a table")
    expect(page.locator("#upload-progress")).to_be_hidden()
    page.set_input_files("#file", str(path))
    page.fill("#comment", "DS-1 is now EMEA only")
    page.click("button:has-text('Upload and compare')")
    expect(page.locator("#upload-progress")).to_be_visible()
    expect(page.locator("#upload-status")).to_have_text(re.compile(r"^Uploading…"))
    expect(page.locator("button:has-text('Upload and compare')")).to_be_disabled()
    assert len(held) == 1
    held[0].continue_()
    page.unroute("**/upload")

    # The review page: the changed cell highlighted old → new, nothing else.
    expect(page).to_have_url(re.compile(r"/changes/\d+$"))
    statuses = page.upload_statuses  # type: ignore[attr-defined]
    assert statuses[0] == "Uploading…", statuses
    assert statuses[-1].startswith("Comparing with the table"), statuses
    review_url = page.url
    expect(page.locator("h1")).to_contain_text("Change request #")
    expect(page.locator(".flash-success")).to_contain_text("waiting for an admin")
    expect(page.locator(".comment")).to_have_text("DS-1 is now EMEA only")
    changed = page.locator("table.diff-compact .change")
    expect(changed).to_have_count(1)
    expect(changed.locator("del")).to_have_text("Sales")
    expect(changed.locator("ins")).to_have_text("Sales EMEA")
    expect(page.locator("nav.tabs")).to_contain_text("1 modified")
    expect(page.locator("nav.tabs")).to_contain_text("2 unchanged")
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)  # for a failure's post-mortem
    sign_out(page)

    # The admin approves.
    sign_in(page, "boss")
    page.goto(review_url)
    page.click("button:has-text('Approve and apply 1 change')")
    expect(page.locator(".flash-success")).to_contain_text(f"the table is now version {version + 1}")
    expect(page.locator("h1 .status")).to_have_text("approved")

    # The new version on the home page, and the entry in the audit log.
    page.click("nav >> text=Table")
    expect(page.locator("p.meta")).to_contain_text(f"Version {version + 1}")
    expect(page.locator("table.data")).to_contain_text("Sales EMEA")
    page.click("nav >> text=Audit log")
    expect(page.locator("h1")).to_have_text("Audit log")
    entries = page.locator("main table tbody tr", has_text="DS-1")
    expect(entries.first).to_contain_text("Sales EMEA")
    expect(entries.first).to_contain_text("boss")
    expect(entries.first).to_contain_text("alice")

    assert page.console_errors == []  # type: ignore[attr-defined]


def test_mass_deletion_needs_the_checkbox(page: Page, tmp_path):
    """A header-only file is refused with a checkbox; the comment survives; ticking it stages the deletions."""
    sign_in(page, "alice")
    with page.expect_download() as info:
        page.click("a:has-text('Download CSV')")
    header = Path(info.value.path()).read_bytes().splitlines(keepends=True)[0]
    path = tmp_path / "header-only.csv"
    path.write_bytes(header)

    page.click("nav >> text=Upload")
    page.set_input_files("#file", str(path))
    page.fill("#comment", "starting over")
    page.click("button:has-text('Upload and compare')")
    expect(page.locator(".problems.warning h2")).to_have_text("Confirm 3 deletions")
    expect(page.locator(".problems.warning")).to_contain_text("no data rows")
    expect(page.locator("#comment")).to_have_value("starting over")
    expect(page.locator("input[name=mode][value=full]")).to_be_checked()
    box = page.locator("input[name=confirm_deletions]")
    expect(box).to_have_attribute("value", "3")
    expect(page.locator("#upload-progress")).to_be_hidden()

    page.set_input_files("#file", str(path))
    box.check()
    page.click("button:has-text('Upload and compare')")
    expect(page).to_have_url(re.compile(r"/changes/\d+$"))
    expect(page.locator("nav.tabs")).to_contain_text("3 deleted")
    expect(page.locator(".comment")).to_have_text("starting over")
    # The refusal is answered with HTTP 422 on purpose; Chromium logs any 4xx as a console error.
    assert [e for e in page.console_errors if "status of 422" not in e] == []  # type: ignore[attr-defined]
