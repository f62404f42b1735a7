"""The pages people read, in a real browser at laptop (1366 px) and phone (390 px) width.

Debian's Chromium through Playwright (never a browser download), against gunicorn on one database
per kind, built once for the module through the API: a 2,600-row table, a request of 2,500
changes (pager, per-column counts and filters, key search, the approval confirmation), a request
with a conflict and a long text edited (word-level diff), and one flagged for undoing an approval.
Every page is checked at both widths for sideways scrolling of the page itself and with axe-core
(tests/js, installed with `npm ci --prefix tests/js`) for serious and critical violations; no test
may leave an unexpected console error. The USER_GUIDE's screenshots are taken here; with
UPDATE_SCREENSHOTS=1 they replace docs/screenshots, so they show the pages as they are.
"""

from __future__ import annotations

import gc
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
from conftest import (
    AXE,
    CATALOG_SCHEMA,
    HEADER,
    add_test_users,
    build_app,
    close_app,
    fresh_database,
    need_browser,
    row,
    table,
)
from playwright.sync_api import Page, expect, sync_playwright
from test_browser import CHROMIUM_ARGS, free_port

import accounts

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
WIDTHS = {"laptop": (1366, 768), "phone": (390, 844)}
TABLE_ROWS = 2600
LONG = (
    "Monthly sales figures for every region in Europe, collected from the ERP system every night,"
    " checked by the finance team and published on the first working day of the month."
)
APPENDED = " Since March it also covers the Nordic countries."
UPLOAD_LIMIT_MB = 2


def base_row(i: int, **values) -> str:
    cells = {
        "description": f"{LONG} Dataset number {i}.",
        "owner": f"owner{i % 7}@example.com",
        "row_count": str(i * 1000 + 7),
        "url": f"https://example.com/datasets/{i}",
    } | values
    return row(f"DS-{i:04}", f"Dataset {i}", **cells)


def upload(client, text: str, filename: str, **form):
    r = client.post(
        "/api/v1/changes",
        data={"file": (io.BytesIO(text.encode()), filename), **form},
        headers=client.auth,
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.text
    return r.json["id"]


def approve(client, change_id: int) -> None:
    r = client.post(f"/api/v1/changes/{change_id}/approve", headers=client.auth)
    assert r.status_code == 200, r.text


def build_story(app) -> dict:
    """The module's data, through the API: versions 1 and 2, and three pending requests."""
    clients = {}
    for name in ("alice", "bob", "boss"):
        with app.app_context():
            token = accounts.create_token(name)
        clients[name] = app.test_client()
        clients[name].auth = {"Authorization": f"Bearer {token}"}
    alice, bob, boss = clients["alice"], clients["bob"], clients["boss"]
    rows = {i: base_row(i) for i in range(1, TABLE_ROWS + 1)}
    approve(boss, upload(alice, table(*rows.values()), "datasets-v0.csv", comment="The catalog"))  # version 1
    # Version 2, by bob: DS-2100 renamed, DS-2599 deleted.
    second = dict(rows) | {2100: base_row(2100).replace("Dataset 2100", "Renamed by Bob")}
    del second[2599]
    approve(boss, upload(bob, table(*second.values()), "datasets-v1.csv", comment="Bob's fixes"))
    # 2,500 changes from a version-1 file: 1,500 owners, 500 descriptions, 300 added, 200 deleted.
    big = {i: base_row(i, owner="new-owner@example.com") if i <= 1500 else rows[i] for i in rows}
    for i in range(1501, 2001):
        big[i] = base_row(i, description=f"{LONG} Dataset number {i}.{APPENDED}")
    for i in range(2400, TABLE_ROWS + 1):
        big.pop(i)
    added = [row(f"NEW-{i:04}", f"New dataset {i}") for i in range(1, 301)]
    big_id = upload(alice, table(*big.values(), *added), "datasets-v1.csv", comment="Owners after the reorganisation")
    # A small one from version 1: a conflict on DS-2100's name, and a long text with a sentence appended.
    small = [
        base_row(2100).replace("Dataset 2100", "Sales 2100 (Alice)"),
        base_row(2200, description=f"{LONG} Dataset number 2200.{APPENDED}"),
        base_row(2201, owner="carol@example.com"),
    ]
    small_id = upload(alice, table(*small), "datasets-v1-edited.csv", mode="partial", comment="Nordics")
    # One of unknown base that would undo bob's rename: flagged.
    flagged_id = upload(bob, table(base_row(2100)), "edits.csv", mode="partial", comment="Old name back")
    return {"big": big_id, "small": small_id, "flagged": flagged_id}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request, tmp_path_factory, pg_database):
    """gunicorn on a database holding the module's story; yields (base URL, ids of the requests)."""
    with (
        pytest.MonkeyPatch.context() as patch,
        fresh_database(request.param, tmp_path_factory.mktemp("review"), pg_database) as url,
    ):
        patch.setenv("SECRET_KEY", "test-secret")
        app = add_test_users(build_app(url))
        with warnings.catch_warnings():
            # the test client spools big uploads to temporary files it leaves to the collector
            warnings.simplefilter("ignore", ResourceWarning)
            story = build_story(app)
            gc.collect()
        close_app(app)
        port = free_port()
        env = os.environ | {
            "DATABASE_URL": url,
            "SECRET_KEY": "browser-test-secret",
            "ADMIN_USER": "boss",
            "APP_ENV": "development",
            "PAGE_SIZE": "50",
            "MAX_UPLOAD_MB": str(UPLOAD_LIMIT_MB),
            "SCHEMA_PATH": str(CATALOG_SCHEMA),
        }
        log_path = tmp_path_factory.mktemp("log") / "gunicorn.log"
        with log_path.open("wb") as log:
            cmd = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"]
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            base = f"http://127.0.0.1:{port}"
            try:
                wait_for(base, proc, log_path)
                yield base, story
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def wait_for(base: str, proc, log_path: Path) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            pytest.fail("gunicorn exited:\n" + log_path.read_text())
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("gunicorn did not answer /healthz in time:\n" + log_path.read_text())


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (skipped, or failed with REQUIRE_BROWSER=1, without it or axe-core)."""
    chromium = need_browser(axe=True)
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def sessions(browser, site):
    """A signed-in browser context per (user, width), kept for the module: signing in is done once."""
    base, _ = site
    made: dict = {}

    def open_page(user: str, width: str) -> Page:
        if (user, width) not in made:
            w, h = WIDTHS[width]
            context = browser.new_context(base_url=base, viewport={"width": w, "height": h}, accept_downloads=True)
            context.set_default_timeout(20_000)
            page = context.new_page()
            page.console_errors = []  # type: ignore[attr-defined]
            page.on(
                "console",
                lambda m, page=page: m.type == "error" and page.console_errors.append(f"{page.url}: {m.text}"),  # type: ignore[attr-defined]
            )
            page.on("pageerror", lambda exc, page=page: page.console_errors.append(f"{page.url}: uncaught {exc}"))  # type: ignore[attr-defined]
            page.goto("/login")
            page.fill("#username", user)
            page.fill("#password", f"{user}-password")
            page.click("button:has-text('Sign in')")
            expect(page.locator(".who")).to_contain_text(user)
            made[(user, width)] = page
        page = made[(user, width)]
        page.console_errors.clear()  # type: ignore[attr-defined]
        return page

    yield open_page
    for page in made.values():
        page.context.close()


@pytest.fixture(params=list(WIDTHS))
def width(request) -> str:
    return request.param


def no_console_errors(page: Page, expected_status: int | None = None) -> None:
    """No console errors, but for the one HTTP status the test asked for (Chromium logs any 4xx)."""
    errors = page.console_errors  # type: ignore[attr-defined]
    if expected_status is not None:
        errors = [e for e in errors if f"status of {expected_status}" not in e]
    assert errors == []


def page_overflow(page: Page) -> int:
    """How far the page itself scrolls sideways (0: it fits the window)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations of the page, as 'rule: target' strings."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated through the DevTools protocol: the page's CSP does not apply
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => v.id + ": " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "))"""
    )
    return found


def keys_unbroken(page: Page) -> None:
    """Every key on the page stays on one line."""
    broken = page.evaluate(
        "[...document.querySelectorAll('.key')].filter(k => k.getClientRects().length > 1).map(k => k.textContent)"
    )
    assert broken == []


# Where screenshot() writes: docs/screenshots with UPDATE_SCREENSHOTS=1, else a temporary folder
# (a test run leaves the checkout as it was; the pictures are still taken, so that step is tested).
_shots: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def screenshot_folder(tmp_path_factory) -> Path:
    update = os.environ.get("UPDATE_SCREENSHOTS") == "1"
    _shots["folder"] = SCREENSHOTS if update else tmp_path_factory.mktemp("screenshots")
    return _shots["folder"]


def screenshot(page: Page, name: str) -> None:
    """A USER_GUIDE picture of what the window shows (NAME.png; docs/screenshots with UPDATE_SCREENSHOTS=1)."""
    folder = _shots["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


# --- every page: no sideways scrolling, axe, keys, skip link ---------------------------------


def all_pages(story: dict) -> list[str]:
    big, small = story["big"], story["small"]
    return [
        "/",
        "/?sort=row_count&dir=desc",
        "/?version=1",
        "/upload",
        "/changes",
        f"/changes/{big}",
        f"/changes/{big}?show=added",
        f"/changes/{big}?show=modified&cells=all",
        f"/changes/{small}",
        f"/changes/{small}?show=conflicts",
        f"/changes/{story['flagged']}?show=flagged",
        "/versions",
        "/diff?from=1&to=2",
        "/records/DS-2100",
        "/records/DS-2599",
        "/audit",
        "/tokens",
        "/account",
    ]


def test_every_page_fits_the_window_and_passes_axe(sessions, site, width):
    _, story = site
    page = sessions("alice", width)
    for path in all_pages(story):
        page.goto(path)
        assert page_overflow(page) <= 0, f"{path} scrolls sideways at {width} width"
        assert axe_violations(page) == [], path
        keys_unbroken(page)
        # Every table that can scroll sideways does so in a box a keyboard can reach and that says what it is.
        unreachable = page.evaluate(
            """[...document.querySelectorAll('table')].map(t => t.parentElement)
                .filter(box => box.scrollWidth > box.clientWidth)
                .filter(box => box.tabIndex < 0 || !box.getAttribute('aria-label')).length"""
        )
        assert unreachable == 0, path
    no_console_errors(page)


def test_skip_link_and_visible_focus(sessions, width):
    page = sessions("alice", width)
    page.goto("/versions")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    outline = skip.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    assert page.locator("header nav").get_attribute("aria-label") == "Main"
    no_console_errors(page)


def test_sign_in_page_passes_axe(browser, site, width):
    base, _ = site
    w, h = WIDTHS[width]
    context = browser.new_context(base_url=base, viewport={"width": w, "height": h})
    page = context.new_page()
    page.goto("/login")
    assert page_overflow(page) <= 0 and axe_violations(page) == []
    context.close()


def test_access_review_page_passes_axe(sessions, width):
    """The admins' access review (who may view, edit and approve each table) at both widths."""
    page = sessions("boss", width)
    page.goto("/access")
    expect(page.locator("h1")).to_have_text("Access review")
    expect(page.locator("table.list")).to_contain_text("approver")
    assert page_overflow(page) <= 0 and axe_violations(page) == []
    keys_unbroken(page)
    no_console_errors(page)


# --- the review page of 2,500 changes ---------------------------------------------------------


def test_big_request_pages_counts_filters_and_search(sessions, site, width):
    _, story = site
    page = sessions("boss", width)
    page.goto(f"/changes/{story['big']}")
    tabs = page.locator("nav.tabs")
    for text in ("2,000 modified", "300 added", "200 deleted"):
        expect(tabs).to_contain_text(text)
    # Page N of M, first and last; past the end: 404.
    pager = page.locator("nav.pager").last
    expect(pager).to_contain_text("Page 1 of 40")
    pager.get_by_role("link", name="Last »").click()
    expect(page.locator("nav.pager").last).to_contain_text("Page 40 of 40")
    expect(page.locator("table.diff-compact tbody tr")).to_have_count(50)
    page.locator("nav.pager").last.get_by_role("link", name="« First").click()
    expect(page.locator("nav.pager").last).to_contain_text("Page 1 of 40")
    response = page.goto(f"/changes/{story['big']}?page=41")
    assert response.status == 404
    expect(page.locator("h1")).to_contain_text("Not found")
    expect(page.locator("main")).to_contain_text("There is no page 41")
    assert axe_violations(page) == [] and page_overflow(page) <= 0  # the error page too
    # Per-column counts, each a filter.
    page.goto(f"/changes/{story['big']}")
    counts = page.locator("nav.column-counts")
    expect(counts).to_contain_text("Owner: 1,500 rows")
    expect(counts).to_contain_text("Description: 500 rows")
    counts.get_by_role("link", name="Owner: 1,500 rows").click()
    expect(page).to_have_url(re.compile(r"show=modified&column=owner"))
    expect(page.locator(".result-count")).to_contain_text("1,500 modified rows changing Owner")
    expect(page.locator("nav.pager").last).to_contain_text("Page 1 of 30")
    columns = page.locator("table.diff-compact .change").evaluate_all(
        "cs => [...new Set(cs.map(c => c.dataset.column))]"
    )
    assert columns == ["owner"]
    # Key search (any case, any part of the key), within the column filter.
    page.fill("#find-key", "ds-001")
    page.click("form.search button:has-text('Find')")
    expect(page).to_have_url(re.compile(r"q=ds-001"))
    keys = page.locator("table.diff-compact td.key-cell").all_inner_texts()
    assert keys == [f"DS-{i:04}" for i in range(10, 20)]
    expect(page.locator(".result-count")).to_contain_text(
        "10 modified rows changing Owner with a key containing “ds-001”"
    )
    expect(page.locator("nav.pager").last).to_contain_text("Page 1 of 1")
    # Added rows have their own filter and search.
    page.goto(f"/changes/{story['big']}?show=added&q=new-029")
    assert page.locator("table.diff td.key-cell").all_inner_texts() == [f"NEW-{i:04}" for i in range(290, 300)]
    no_console_errors(page, 404)


def test_modified_rows_show_only_changed_cells_with_a_sticky_header(sessions, site, width):
    _, story = site
    page = sessions("boss", width)
    page.goto(f"/changes/{story['big']}?show=modified&page=31")  # rows 1,501-1,550: a sentence appended
    first = page.locator("table.diff-compact tbody tr").first
    expect(first.locator("td.key-cell")).to_have_text("DS-1501")
    expect(first.locator(".change")).to_have_count(1)  # only the description: no unchanged cell
    # Word-level diff: only the appended words are marked, the unchanged start collapsed.
    words = first.locator(".words")
    expect(words.locator("ins")).to_have_text(APPENDED)
    expect(words.locator("del")).to_have_count(0)
    expect(words.locator(".gap")).to_have_count(1)
    assert LONG not in words.inner_text()
    whole = first.locator("details.whole")
    whole.locator("summary").click()
    expect(whole.locator(".after")).to_contain_text(LONG + " Dataset number 1501." + APPENDED)
    # Every changed cell is on screen without scrolling sideways.
    viewport = page.viewport_size["width"]
    rights = page.locator("table.diff-compact .change").evaluate_all(
        "cs => cs.map(c => c.getBoundingClientRect().right)"
    )
    assert rights and max(rights) <= viewport
    # The key links to the record page.
    assert first.locator("a.key").get_attribute("href") == "/records/DS-1501"
    # The header stays at the top of the window while the rows scroll by.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
    top = page.locator("table.diff-compact thead th").first.evaluate("th => th.getBoundingClientRect().top")
    assert -1 <= top <= 2
    # A toggle shows every column again.
    page.evaluate("window.scrollTo(0, 0)")
    page.get_by_role("link", name="Show all columns").click()
    expect(page).to_have_url(re.compile(r"cells=all"))
    # line + 11 columns + the comments (issue 25)
    expect(page.locator("table.diff-modified thead th")).to_have_count(13)
    expect(page.locator("table.diff-modified td.changed").first).to_contain_text("Since March")
    no_console_errors(page)


def test_conflicts_and_flagged_rows_have_their_own_filters(sessions, site, width):
    _, story = site
    page = sessions("alice", width)
    page.goto(f"/changes/{story['small']}")
    expect(page.locator("nav.tabs")).to_contain_text("1 conflict")
    page.locator("nav.tabs").get_by_role("link", name=re.compile("1 conflict")).click()
    expect(page).to_have_url(re.compile(r"show=conflicts"))
    conflict = page.locator("table.conflict-list tbody tr")
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text("DS-2100")
    expect(conflict).to_contain_text("Renamed by Bob")
    expect(conflict).to_contain_text("Sales 2100 (Alice)")
    expect(page.get_by_role("button", name="Keep mine for DS-2100, name")).to_be_visible()
    # The small request's long text: a word-level diff; this is the guide's review picture.
    page.goto(f"/changes/{story['small']}?show=modified")
    change = page.locator(".change[data-column=description]")
    expect(change.locator("ins")).to_have_text(APPENDED)
    if width == "laptop":
        page.evaluate("document.querySelector('nav.tabs').scrollIntoView()")
        screenshot(page, "review")
    page.goto(f"/changes/{story['flagged']}")
    expect(page.locator("nav.tabs")).to_contain_text("1 flagged")
    page.locator("nav.tabs").get_by_role("link", name=re.compile("1 flagged")).click()
    flagged = page.locator("table.diff-compact tbody tr")
    expect(flagged).to_have_count(1)
    expect(flagged.locator(".flag")).to_contain_text("undoing change request #2 by bob")
    no_console_errors(page)


def test_version_diff_shares_the_review_table(sessions, width):
    page = sessions("alice", width)
    page.goto("/diff?from=1&to=2")
    expect(page.locator("nav.tabs")).to_contain_text("1 modified")
    row_ = page.locator("table.diff-compact tbody tr")
    expect(row_).to_have_count(1)
    expect(row_.locator("del")).to_have_text("Dataset 2100")
    expect(row_.locator("ins")).to_have_text("Renamed by Bob")
    expect(page.locator("nav.column-counts")).to_contain_text("Name: 1 row")
    page.goto("/diff?from=1&to=2&show=deleted&q=2599")
    expect(page.locator("table.diff-deleted td.key-cell")).to_have_text("DS-2599")
    response = page.goto("/diff?from=1&to=2&page=2")
    assert response.status == 404
    page.goto("/versions")
    expect(page.locator("table.versions tbody tr")).to_have_count(2)
    if width == "laptop":
        screenshot(page, "versions")
    no_console_errors(page, 404)


# --- the table page ---------------------------------------------------------------------------


def test_table_page_sorts_pages_links_and_clamps(sessions, width):
    page = sessions("alice", width)
    page.goto("/")
    expect(page.locator("nav.pager").last).to_contain_text("Page 1 of 52")  # 2,599 rows
    first = page.locator("table.data tbody tr").first
    # URLs are links, numbers have thousands separators, long text is clamped with the rest on demand.
    expect(first.locator("td.v-url a")).to_have_attribute("href", "https://example.com/datasets/1")
    expect(first.locator("td.v-number")).to_have_text("1,007")
    long = first.locator("details.long")
    expect(long.locator(".full")).to_be_hidden()
    long.locator("summary").click()
    expect(long.locator(".full")).to_be_visible()
    expect(long.locator(".full")).to_have_text(f"{LONG} Dataset number 1.")
    # Column titles carry the schema's description.
    title = page.locator("table.data th", has_text="Owner").get_attribute("title")
    assert title == "The person accountable for the dataset (name or e-mail)."
    # Sort by clicking a title: ascending, then descending, on the server (across pages).
    page.locator("table.data th a.sort", has_text="Row count").click()
    expect(page).to_have_url(re.compile(r"sort=row_count&dir=asc"))
    expect(page.locator("table.data tbody tr").first.locator("td.v-number")).to_have_text("1,007")
    page.locator("table.data th a.sort", has_text="Row count").click()
    expect(page).to_have_url(re.compile(r"sort=row_count&dir=desc"))
    expect(page.locator("table.data tbody tr").first.locator("td.v-number")).to_have_text("2,600,007")
    assert page.locator("table.data th[aria-sort]").get_attribute("aria-sort") == "descending"
    page.locator("nav.pager").last.get_by_role("link", name="Last »").click()
    expect(page).to_have_url(re.compile(r"sort=row_count.*page=52|page=52.*sort=row_count"))
    expect(page.locator("table.data tbody tr").last.locator("td.v-number")).to_have_text("1,007")
    if width == "laptop":
        page.goto("/")
        screenshot(page, "table")
    # A page past the end is 404, and the table as of a version still works.
    assert page.goto("/?page=999").status == 404
    page.goto("/?version=1&q=2599")
    expect(page.locator("table.data td.v-key")).to_have_text("DS-2599")
    expect(page.locator("nav.pager").last).to_contain_text("Page 1 of 1")
    # On a phone the table scrolls inside its own box, not the page.
    page.goto("/")
    box = page.locator(".table-wrap").first
    assert box.evaluate("b => b.scrollWidth > b.clientWidth") == (width == "phone")
    assert page_overflow(page) <= 0
    no_console_errors(page, 404)


# --- records, audit -----------------------------------------------------------------------------


def test_record_pages_and_audit_values(sessions, width):
    page = sessions("alice", width)
    page.goto("/records/DS-2599")
    expect(page.locator("main")).to_contain_text("not in the table any more")
    expect(page.locator("table.record")).to_contain_text("Dataset 2599")
    page.goto("/records/DS-2100")
    name = page.locator("table.record tr", has_text="Name")
    expect(name).to_contain_text("Renamed by Bob")
    expect(name.locator("td.blame")).to_contain_text("version 2")
    if width == "laptop":
        screenshot(page, "record")
    # The audit log: additions and deletions show the row's values; the key filter takes a beginning, any case.
    page.goto("/audit")
    page.fill("input[name=key]", "ds-259")
    page.click("form.filters button:has-text('Filter')")
    entries = page.locator("table.audit tbody tr")
    deleted = entries.filter(has_text="DS-2599").filter(has=page.locator(".action-delete"))
    expect(deleted.locator(".row-values")).to_contain_text("Dataset 2599")
    added = entries.filter(has_text="DS-2590").filter(has=page.locator(".action-add"))
    expect(added.locator(".row-values")).to_contain_text("Dataset 2590")
    keys = set(entries.locator("td.key-cell").all_inner_texts())
    assert keys == {f"DS-{i}" for i in range(2590, 2600)}
    no_console_errors(page)


# --- uploads -----------------------------------------------------------------------------------


def test_upload_errors_name_the_spreadsheet_row_and_key(sessions, width, tmp_path):
    page = sessions("alice", width)
    page.goto("/upload")
    expect(page.locator(".limit")).to_contain_text(f"{UPLOAD_LIMIT_MB} MB")
    # A value over three lines: the next row starts on line 5 but is row 3 of the spreadsheet.
    path = tmp_path / "datasets-v2.csv"
    path.write_text(table(base_row(1, description="one\ntwo\nthree"), base_row(2, row_count="many")))
    page.set_input_files("#file", str(path))
    page.click("button:has-text('Upload and compare')")
    problem = page.locator("table.problem-list tbody tr")
    expect(problem).to_have_count(1)
    cells = problem.locator("td").all_inner_texts()
    assert cells[0] == "3" and cells[1] == "DS-0002" and cells[2] == "row_count" and cells[4] == "5", cells
    assert axe_violations(page) == [] and page_overflow(page) <= 0
    if width == "laptop":
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "upload-problems")
    no_console_errors(page, 422)


def test_mass_deletion_keeps_the_file_and_lists_rows(sessions, width, tmp_path):
    page = sessions("bob", width)
    path = tmp_path / "datasets-v2.csv"
    path.write_text(HEADER + "\n" + base_row(1) + "\n")
    page.goto("/upload")
    page.set_input_files("#file", str(path))
    page.fill("#comment", "Only one left")
    page.click("button:has-text('Upload and compare')")
    warning = page.locator(".problems.warning")
    expect(warning.locator("h2")).to_have_text("Confirm 2,598 deletions")
    sample = warning.locator("table.deletion-sample tbody tr")
    expect(sample).to_have_count(10)
    expect(sample.first).to_contain_text("DS-0002")
    expect(warning).to_contain_text("is kept for an hour")
    assert axe_violations(page) == [] and page_overflow(page) <= 0
    # Confirm without choosing the file again.
    page.check("input[name=confirm_deletions]")
    page.click("button:has-text('Upload and compare')")
    expect(page).to_have_url(re.compile(r"/changes/\d+$"))
    expect(page.locator("nav.tabs")).to_contain_text("2,598 deleted")
    expect(page.locator(".comment")).to_have_text("Only one left")
    page.click("button:has-text('Withdraw')")
    expect(page.locator("h1 .status")).to_have_text("withdrawn")
    no_console_errors(page, 422)


def test_too_large_upload_speaks_to_the_person(sessions, width, tmp_path):
    page = sessions("alice", width)
    path = tmp_path / "huge.csv"
    path.write_text(table(*(base_row(i) for i in range(1, 9000))))
    assert path.stat().st_size > UPLOAD_LIMIT_MB * 1024 * 1024
    page.goto("/upload")
    page.set_input_files("#file", str(path))
    page.click("button:has-text('Upload and compare')")
    expect(page.locator("h1")).to_contain_text("File too large")
    main = page.locator("main")
    expect(main).to_contain_text(f"over the upload limit of {UPLOAD_LIMIT_MB} MB")
    expect(main).to_contain_text(re.compile(r"Your file is \d+(\.\d)? MB"))
    assert "MAX_UPLOAD_MB" not in main.inner_text()
    assert axe_violations(page) == [] and page_overflow(page) <= 0
    main.get_by_role("link", name="Back to the upload form").click()
    expect(page.locator("h1")).to_have_text("Upload a table")
    if width == "laptop":
        screenshot(page, "upload")
    no_console_errors(page, 413)


# --- deciding: the reject reason, and the confirmation for over 1,000 changes ------------------


def test_approving_2500_changes_asks_for_confirmation(sessions, site, width):
    _, story = site
    page = sessions("boss", width)
    page.goto(f"/changes/{story['big']}")
    reason = page.locator("textarea#reason")
    expect(reason).to_be_visible()
    assert reason.evaluate("t => t.rows") >= 3
    box = page.locator("#confirm-approval")
    label = page.locator("label.confirm")
    expect(label).to_contain_text("Yes, apply all 2,500 changes: 300 added, 2,000 modified, 200 deleted")
    # The server checks it too: without the box ticked, nothing is applied.
    box.evaluate("b => b.removeAttribute('required')")
    page.click("button:has-text('Approve and apply 2,500 changes')")
    expect(page.locator(".flash-error")).to_contain_text("Confirm that you want to apply all 2,500 changes")
    expect(page.locator("h1 .status")).to_have_text("pending")
    if width == "phone":  # the last test of the module: approve it for real
        page.check("#confirm-approval")
        page.click("button:has-text('Approve and apply 2,500 changes')")
        expect(page.locator(".flash-success")).to_contain_text("the table is now version 3")
        page.goto("/diff?from=2&to=3&column=description")
        expect(page.locator(".result-count")).to_contain_text("500 modified rows changing Description")
        page.goto("/versions")
        expect(page.locator("table.versions tbody tr").first).to_contain_text("2,000")
    no_console_errors(page)


def test_guide_shows_the_screenshots():
    """USER_GUIDE.md shows every picture these tests take, and each is small."""
    guide = (ROOT / "USER_GUIDE.md").read_text()
    for name in ("review", "versions", "table", "record", "upload-problems", "upload"):
        assert f"docs/screenshots/{name}.png" in guide, name
        assert (SCREENSHOTS / f"{name}.png").stat().st_size < 250_000, name


def test_axe_is_pinned_in_the_lockfile():
    """The CI installs exactly the axe-core the lockfile names (npm ci)."""
    lock = json.loads((ROOT / "tests" / "js" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/axe-core"]["version"]
    assert "npm ci --prefix tests/js" in (ROOT / ".ci" / "run").read_text()
