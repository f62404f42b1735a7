"""The user guide served by the app and linked from the upload and review pages, two versions
picked to compare, booleans in the audit log as the table shows them (issue 21, part 6)."""

from __future__ import annotations

import re

from conftest import Browser, row, table


def test_the_guide_is_served_with_its_screenshots_and_linked_from_upload_and_review(app, api):
    browser = Browser(app, "alice")
    guide = browser.get("/guide")
    assert guide.status_code == 200
    assert '<h2 id="5-upload">5. Upload</h2>' in guide.text and "<table>" in guide.text
    image = re.search(r'<img alt="[^"]*" src="(docs/screenshots/[^"]+)"', guide.text).group(1)
    shot = browser.get("/" + image)
    assert shot.status_code == 200 and shot.data[:8] == b"\x89PNG\r\n\x1a\n"
    shot.close()
    assert 'href="/guide#5-upload"' in browser.get("/upload").text
    r = api("alice").upload(table(row("DS-1")))
    assert 'href="/guide#6-the-review-page"' in browser.get(f"/changes/{r.json['id']}").text


def test_the_versions_page_picks_two_versions_to_compare(app, api):
    alice, boss = api("alice"), api("boss")
    for rows in ((row("DS-1"),), (row("DS-1"), row("DS-2"))):
        r = alice.upload(table(*rows))
        assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    page = Browser(app, "alice").get("/versions").text
    form = re.search(r'<form class="compare filters" method="get" action="/diff".*?</form>', page, re.S).group(0)
    assert 'name="from"' in form and 'value="1"' in form and 'name="to"' in form and 'value="2"' in form
    assert Browser(app, "alice").get("/diff?from=1&to=2").status_code == 200


def test_booleans_in_the_audit_log_read_as_the_table_shows_them(app, api):
    alice, boss = api("alice"), api("boss")
    r = alice.upload(table(row("DS-1", contains_pii="true")))
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    page = Browser(app, "alice").get("/audit").text
    assert re.search(r'<span class="field">contains_pii</span>: <ins>true</ins>', page), page[-3000:]
    assert ">True<" not in page
