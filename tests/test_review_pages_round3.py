"""Round 3 of the review and table pages (issue 21) in a real browser at 1366 and 390 px, on the
default three-table schema with a 50,000-row catalog (loaded once per database through the API):
one round of grouped problems with a suggestion, exact counts and a last page, key links, no cell
wider than the window, Approve disabled with open conflicts, the whole-database audit showing a
batch's rows of every table, validation lists in the xlsx, and axe 0 serious/critical."""

from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import openpyxl
import pytest
from conftest import add_test_users, build_app, close_app, fresh_database, row, table
from playwright.sync_api import expect
from test_browser import free_port
from test_review_pages import (  # noqa: F401  (browser and screenshot_folder: its module fixtures)
    approve,
    axe_violations,
    browser,
    page_overflow,
    screenshot,
    screenshot_folder,
    upload,
    wait_for,
)
from test_tables import workbook

import accounts

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema.json"  # the default: datasets → teams, source_systems
ROWS = 50_000
TEAMS = "name,lead,cost_centre\nData,Dora,CC-1\nFinance,Fred,CC-2\n"
SYSTEMS = "name,vendor,url\nSAP,SAP SE,https://sap.example.com\nCRM,Acme,https://crm.example.com\n"
WIDTHS = {"laptop": (1366, 768), "phone": (390, 844)}
LONG = "Monthly figures for every region, collected from the ERP every night and checked by finance."


def post(client, path: str, text: str | bytes, filename: str, **form):
    data = text if isinstance(text, bytes) else text.encode()
    return client.post(
        path,
        data={"file": (io.BytesIO(data), filename), **form},
        headers=client.auth,
        content_type="multipart/form-data",
    )


def build(app) -> dict:
    """Teams, systems, a 50,000-row catalog; a batch (a team and a dataset) approved; a request with a conflict."""
    clients = {}
    for name in ("alice", "bob", "boss"):
        with app.app_context():
            token = accounts.create_token(name)
        clients[name] = app.test_client()
        clients[name].auth = {"Authorization": f"Bearer {token}"}
    alice, bob, boss = clients["alice"], clients["bob"], clients["boss"]
    for name, text in (("teams", TEAMS), ("source_systems", SYSTEMS)):
        r = post(alice, f"/api/v1/tables/{name}/changes", text, f"{name}.csv")
        assert r.status_code == 201, r.text
        approve(boss, r.json["id"])
    rows = [row(f"DS-{i:05}", f"Dataset {i}", description=f"{LONG} Number {i}.") for i in range(1, ROWS + 1)]
    approve(boss, upload(alice, table(*rows), "datasets-v2.csv"))  # version 3
    book = workbook({"teams": TEAMS + "Legal,Lee,CC-3\n", "datasets": table(row("NEW-1", team="Legal"))})
    r = post(alice, "/api/v1/changes", book, "company-v3.xlsx", mode="partial")
    assert r.status_code == 201, r.text
    approve(boss, r.json["id"])  # version 4: the batch
    theirs = upload(
        bob, table(row("DS-00007", "Bob's name", description=f"{LONG} Number 7.")), "x-v4.csv", mode="partial"
    )
    approve(boss, theirs)  # version 5
    mine = upload(
        alice, table(row("DS-00007", "Alice's name", description=f"{LONG} Number 7.")), "x-v4.csv", mode="partial"
    )
    return {"conflicted": mine}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request, tmp_path_factory, pg_database):
    with (
        pytest.MonkeyPatch.context() as patch,
        fresh_database(request.param, tmp_path_factory.mktemp("round3"), pg_database) as url,
    ):
        patch.setenv("SECRET_KEY", "test-secret")
        patch.setenv("SCHEMA_PATH", str(SCHEMA))
        app = add_test_users(build_app(url, SCHEMA_PATH=SCHEMA))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            story = build(app)
            gc.collect()
        close_app(app)
        port = free_port()
        env = os.environ | {
            "DATABASE_URL": url,
            "SECRET_KEY": "browser-test-secret",
            "ADMIN_USER": "boss",
            "APP_ENV": "development",
            "PAGE_SIZE": "50",
            "SCHEMA_PATH": str(SCHEMA),
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
                proc.wait(timeout=30)


@pytest.fixture(scope="module")
def pages(browser, site):  # noqa: F811
    base, _ = site
    made = {}

    def open_page(user: str, width: str):
        if (user, width) not in made:
            w, h = WIDTHS[width]
            context = browser.new_context(base_url=base, viewport={"width": w, "height": h}, accept_downloads=True)
            context.set_default_timeout(30_000)
            page = context.new_page()
            page.goto("/login")
            page.fill("#username", user)
            page.fill("#password", f"{user}-password")
            page.click("button:has-text('Sign in')")
            expect(page.locator(".who")).to_contain_text(user)
            made[(user, width)] = page
        return made[(user, width)]

    yield open_page
    for page in made.values():
        page.context.close()


@pytest.fixture(params=list(WIDTHS))
def width(request) -> str:
    return request.param


def fits(page) -> None:
    """The page does not scroll sideways, no cell is wider than the window, axe finds nothing serious."""
    assert page_overflow(page) == 0
    wide = page.evaluate(
        "[...document.querySelectorAll('td')].filter(c => c.getBoundingClientRect().width > window.innerWidth).length"
    )
    assert wide == 0
    assert axe_violations(page) == []


def test_a_refused_upload_is_one_round_grouped_with_a_suggestion(pages, width):
    page = pages("alice", width)
    page.goto("/t/datasets/upload")
    bad = table(row("DS-00001", team="Finanse"), row("DS-00002", team="Finanse"), row("DS-00003", row_count="many"))
    page.set_input_files("#file", files=[{"name": "catalog-v5.csv", "mimeType": "text/csv", "buffer": bad.encode()}])
    page.click("button:has-text('Upload and compare')")
    expect(page.locator(".problem-groups")).to_contain_text("did you mean Finance?")
    expect(page.locator(".problems h2")).to_contain_text("3 problems")
    fits(page)
    if width == "laptop":
        screenshot(page, "upload-problems-grouped")


def test_exact_counts_a_last_page_and_key_links(pages, width):
    page = pages("alice", width)
    page.goto("/t/datasets/")
    expect(page.locator(".result-count")).to_contain_text("50,001 rows")
    expect(page.locator(".page-of")).to_have_text("Page 1 of 1,001")
    page.click("a:has-text('Last »')")
    expect(page.locator(".page-of")).to_have_text("Page 1,001 of 1,001")
    page.goto("/t/datasets/")
    fits(page)
    if width == "laptop":
        screenshot(page, "table-50000")
    page.click("a.record-link >> nth=0")
    expect(page.locator("h1")).to_contain_text("of Dataset catalog")
    fits(page)


def test_approve_is_disabled_while_conflicts_are_open(pages, site, width):
    _, story = site
    page = pages("boss", width)
    page.goto(f"/changes/{story['conflicted']}")
    expect(page.locator("form.approve button.primary")).to_be_disabled()
    expect(page.locator("#approve-blocked")).to_contain_text("1 conflict is open")
    fits(page)
    if width == "laptop":
        page.locator("#conflicts").scroll_into_view_if_needed()
        screenshot(page, "conflicts")


def test_the_whole_database_audit_shows_the_batchs_rows_of_every_table(pages, width):
    page = pages("alice", width)
    page.goto("/audit?all=1&action=add")
    expect(page.locator("h1")).to_have_text("Audit log of every table")
    expect(page.locator("table.audit")).to_contain_text("Legal")
    expect(page.locator("table.audit")).to_contain_text("NEW-1")
    fits(page)
    if width == "laptop":
        screenshot(page, "audit-every-table")


def test_the_xlsx_has_validation_lists(pages):
    page = pages("alice", "laptop")
    response = page.request.get("/t/datasets/download.xlsx")  # the page's own link, signed in
    assert response.status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.body()))["datasets"]
    lists = {dv.formula1 for dv in sheet.data_validations.dataValidation}
    assert '"Data,Finance,Legal"' in lists and '"CRM,SAP"' in lists
