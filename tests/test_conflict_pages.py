"""Conflicts people can act on (issue 21, part 3): the cells that differ in a whole-row conflict,
who made "theirs", buttons that say what they do, Approve disabled while conflicts are open, the
resolved conflicts kept on the review page, and a revert's conflicts speaking of the revert."""

from __future__ import annotations

import html
import re

import pytest
from conftest import row, table
from test_three_way import KEYS, approve, edit, export


@pytest.fixture
def story(app, api):
    """alice's version-1 download after bob's change (DS-05 renamed, DS-07 deleted, DS-11 added) is version 2."""
    alice, bob, boss = api("alice"), api("bob"), api("boss")
    r = alice.upload(table(*(row(k, f"Name {k}") for k in KEYS)))
    approve(boss, r.json["id"])
    v1 = export(alice)
    bobs = edit(v1, {"DS-05": {"name": "Renamed by Bob"}}, drop=("DS-07",), add=(row("DS-11", "Added by Bob"),))
    r = bob.upload(bobs, filename="datasets-v1.csv")
    approve(boss, r.json["id"])
    return alice, bob, boss, v1, r.json["id"]


def text_of(page) -> str:
    return html.unescape(page.text)


def test_a_whole_row_conflict_shows_its_differing_cells_and_who_made_theirs(story, login):
    alice, _, _, v1, bobs_id = story
    mine = edit(v1, {}, drop=("DS-05",), add=(row("DS-11", "Added by Alice", owner="alice@example.com"),))
    change_id = alice.upload(mine, filename="datasets-v1.csv").json["id"]
    page = text_of(login("alice").get(f"/changes/{change_id}"))
    # DS-11: both added it; name and owner differ, the other columns are equal in the two
    ds11 = page[page.index("The columns of row DS-11") :].split("</table>")[0]
    cells = re.findall(r'<tr class="differs"><th scope="row">(\w+) ', ds11)
    assert cells == ["name", "owner"], cells
    assert "whole row: name, owner" in page
    assert f'changed by <a href="/changes/{bobs_id}">#{bobs_id}</a> (bob), approved by boss' in page
    # you deleted a row bob changed: the buttons say what happens to the row
    assert 'aria-label="Delete anyway for DS-05"' in page and 'aria-label="Keep the row for DS-05"' in page


def test_approve_is_disabled_with_the_reason_and_the_uploader_is_told_to_resolve(story, login):
    _, _, _, v1, _ = story
    browser = login("alice")
    r = browser.upload(edit(v1, {"DS-05": {"name": "Renamed by Alice"}}), filename="datasets-v1.csv")
    assert r.status_code == 302
    page = text_of(browser.get(r.headers["Location"]))
    assert "resolve 1 conflict before it can be approved" in page
    assert "Resolve 1 conflict before it can be approved" in page
    change_id = int(r.headers["Location"].rsplit("/", 1)[1])
    admin = text_of(login("boss").get(f"/changes/{change_id}"))
    assert re.search(
        r'<button type="submit" class="primary" disabled aria-describedby="approve-blocked">Approve', admin
    )
    assert "Approval is not possible yet: 1 conflict is open." in admin


def test_resolved_conflicts_stay_on_the_review_page(story, login):
    alice, _, _, v1, _ = story
    change_id = alice.upload(edit(v1, {"DS-05": {"name": "Renamed by Alice"}}), filename="datasets-v1.csv").json["id"]
    ok = {"resolutions": [{"key": "DS-05", "column": "name", "take": "theirs"}]}
    assert alice.post(f"/api/v1/changes/{change_id}/resolve", json=ok).status_code == 200
    page = text_of(login("boss").get(f"/changes/{change_id}"))
    assert "Resolved conflicts (1)" in page
    assert re.search(r">DS-05</a></td><td>name: kept theirs</td><td>alice</td>", page)
    assert "disabled" not in re.search(r'<form[^>]*class="approve">.*?</form>', page, re.S).group(0)


def test_a_reverts_conflicts_speak_of_the_revert(story, login):
    alice, bob, boss, _, bobs_id = story
    v2 = export(alice)
    r = alice.upload(edit(v2, {"DS-05": {"name": "Again by Alice"}}), filename="datasets-v2.csv")
    approve(boss, r.json["id"])
    revert = bob.post(f"/api/v1/changes/{bobs_id}/revert")
    assert revert.status_code == 201, revert.text
    page = text_of(login("bob").get(f"/changes/{revert.json['id']}"))
    assert f"rows changed again after request #{bobs_id}" in page
    assert "Your file" not in page and "In your file" not in page and "The revert</th>" in page
