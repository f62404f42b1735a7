"""The discussion on a review page in a real browser, at 1366 and 390 px (issue 25): the thread
under the summary, comments on a row and a cell shown beside their row, the comment box opened
where it is anchored, "rows with comments", the revisions and "changed since revision 1"; axe
clean, no sideways scrolling, no console errors. Takes the USER_GUIDE's screenshots
discussion.png and discussion-rows.png (into docs/screenshots with UPDATE_SCREENSHOTS=1). Chromium
and axe-core as in tests/test_review_pages.py."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import CATALOG_SCHEMA, add_test_users, build_app, close_app, fresh_database, need_browser, row, table
from playwright.sync_api import Page, expect, sync_playwright
from test_browser import CHROMIUM_ARGS, free_port
from test_review_pages import (
    ROOT,
    SCREENSHOTS,
    WIDTHS,
    axe_violations,
    keys_unbroken,
    no_console_errors,
    page_overflow,
    wait_for,
)

import accounts

pytestmark = pytest.mark.browser


def build_story(app) -> int:
    """Three approved rows; alice's request (a rename, a new owner, a row added), sent back by the
    admin with a reason, commented on (request, row, cell), and corrected as revision 2."""
    clients = {}
    for name in ("alice", "bob", "boss"):
        with app.app_context():
            token = accounts.create_token(name)
        clients[name] = (app.test_client(), {"Authorization": f"Bearer {token}"})

    def call(who: str, method: str, url: str, expect_status: int, **kwargs):
        client, headers = clients[who]
        r = client.open(url, method=method, headers=headers, **kwargs)
        assert r.status_code == expect_status, r.text
        return r.json

    def upload(who: str, text: str, name: str = "datasets-v1.csv", status: int = 201):
        data = {"file": (io.BytesIO(text.encode()), name)}
        return call(who, "POST", "/api/v1/changes", status, data=data, content_type="multipart/form-data")

    first = upload("alice", table(row("DS-1", "Sales"), row("DS-2", "HR"), row("DS-3", "Finance")), "datasets.csv")
    call("boss", "POST", f"/api/v1/changes/{first['id']}/approve", 200)
    change = upload(
        "alice",
        table(
            row("DS-1", "Sales EU"),
            row("DS-2", "HR", owner="people@example.com"),
            row("DS-3", "Finance"),
            row("DS-4", "Legal"),
        ),
    )["id"]
    comments = f"/api/v1/changes/{change}/comments"
    call("bob", "POST", comments, 201, json={"text": "Who asked for DS-4? See https://example.com/policy"})
    call("boss", "POST", f"/api/v1/changes/{change}/request-changes", 200,
         json={"reason": "DS-4 belongs to another team: leave it out. <b>Thanks</b>"})  # fmt: skip
    call("bob", "POST", comments, 201, json={"text": "Is the new owner's address right?", "key": "DS-2",
                                             "column": "owner"})  # fmt: skip
    call("alice", "POST", comments, 201, json={"text": "Renamed as the sales team asked.", "key": "DS-1"})
    fixed = table(row("DS-1", "Sales EU"), row("DS-2", "HR", owner="people@example.com"), row("DS-3", "Finance"))
    data = {"file": (io.BytesIO(fixed.encode()), "datasets-v1-fixed.csv"), "comment": "DS-4 left out."}
    call("alice", "POST", f"/api/v1/changes/{change}/revisions", 201, data=data, content_type="multipart/form-data")
    return change


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request, tmp_path_factory, pg_database):
    """gunicorn on a database holding the story; yields (base URL, the request's id)."""
    with (
        pytest.MonkeyPatch.context() as patch,
        fresh_database(request.param, tmp_path_factory.mktemp("discussion"), pg_database) as url,
    ):
        patch.setenv("SECRET_KEY", "test-secret")
        app = add_test_users(build_app(url))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            change = build_story(app)
        close_app(app)
        port = free_port()
        env = os.environ | {
            "DATABASE_URL": url,
            "SECRET_KEY": "browser-test-secret",
            "ADMIN_USER": "boss",
            "APP_ENV": "development",
            "SCHEMA_PATH": str(CATALOG_SCHEMA),
        }
        log_path = tmp_path_factory.mktemp("log") / "gunicorn.log"
        with log_path.open("wb") as log:
            cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "app:app"]
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_for(f"http://127.0.0.1:{port}", proc, log_path)
                yield f"http://127.0.0.1:{port}", change
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (skipped, or failed with REQUIRE_BROWSER=1, without it or axe-core)."""
    chromium = need_browser(axe=True)
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the pictures go: docs/screenshots with UPDATE_SCREENSHOTS=1, else a temporary folder
    (a test run leaves the checkout as it was; the pictures are still taken), as test_review_pages."""
    return SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path_factory.mktemp("screenshots")


def signed_in(browser, base: str, user: str, width: str) -> Page:
    w, h = WIDTHS[width]
    context = browser.new_context(base_url=base, viewport={"width": w, "height": h})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(f"{page.url}: {m.text}"))  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.console_errors.append(f"{page.url}: uncaught {exc}"))  # type: ignore[attr-defined]
    page.goto("/login")
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("button:has-text('Sign in')")
    expect(page.locator(".who").first).to_contain_text(user)
    return page


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_discussion_on_the_review_page(browser, site, width, shots):
    base, change = site
    page = signed_in(browser, base, "boss", width)
    try:
        page.goto(f"/changes/{change}")
        thread = page.locator("#discussion")
        # the thread under the summary, in order, the reason of "changes requested" among it, as text
        expect(thread.locator(".event-head")).to_contain_text(
            ["alice uploaded the file", "bob commented", "boss requested changes", "bob commented on DS-2, owner",
             "alice commented on DS-1", "alice uploaded a corrected file: revision 2", "alice commented"]
        )  # fmt: skip
        expect(thread).to_contain_text("DS-4 belongs to another team: leave it out. <b>Thanks</b>")
        expect(thread.locator("a[href='https://example.com/policy']")).to_have_count(1)
        # revisions and what changed since revision 1: DS-4 no longer staged
        expect(thread.locator(".revisions li")).to_have_count(2)
        expect(thread.locator(".since li")).to_have_text(["DS-4: no longer staged (was add)"])
        # the anchored comments beside their rows: a count in the row, the cell's box on its column
        ds2_owner = page.locator("tr:has(.key-cell:has-text('DS-2')) .comment-box[data-column='owner']")
        expect(ds2_owner.locator(".comment-count")).to_have_text("1 comment")
        ds2_owner.locator("summary").click()
        expect(ds2_owner.locator(".comment-item")).to_contain_text("Is the new owner's address right?")
        assert page_overflow(page) <= 0, f"the review page scrolls sideways at {width} width"
        assert axe_violations(page) == []
        keys_unbroken(page)
        if width == "laptop":
            page.evaluate("document.querySelector('#discussion').scrollIntoView()")
            page.screenshot(path=str(shots / "discussion.png"))
            page.evaluate("document.querySelector('.diff-list').scrollIntoView()")
            page.screenshot(path=str(shots / "discussion-rows.png"))
        # a comment on a cell, written in the box anchored there
        ds1_name = page.locator("tr:has(.key-cell:has-text('DS-1')) .comment-box[data-column='name']")
        ds1_name.locator("summary").click()
        text = f"Check the spelling ({width})"
        ds1_name.locator("textarea").fill(text)
        ds1_name.locator("button:has-text('Add comment')").click()
        expect(page.locator(".flash")).to_contain_text("Comment added.")
        expect(page.locator("#discussion")).to_contain_text(text)
        cell_box = page.locator("tr:has(.key-cell:has-text('DS-1')) .comment-box[data-column='name']")
        expect(cell_box.locator(".comment-count")).to_have_text(re.compile(r"^\d+ comments?$"))
        expect(cell_box.locator(".comment-item")).to_contain_text([text])
        # rows with comments: DS-1 and DS-2, not DS-3
        page.goto(f"/changes/{change}?show=commented")
        expect(page.locator("table.diff .key-cell .key")).to_have_text(["DS-1", "DS-2"])
        assert page_overflow(page) <= 0
        assert axe_violations(page) == []
        no_console_errors(page)
    finally:
        page.context.close()
