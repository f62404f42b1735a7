"""The table page and the record page (issue 21, part 2): the exact row count and a last page
without a search, keys that open their record, long text kept short, the record naming its table."""

from __future__ import annotations

import re

from conftest import Api, Browser, add_test_users, row, table
from test_tables import PACKAGE, upload

import tables


def seed(app, rows: int) -> None:
    alice, boss = Api(app, "alice"), Api(app, "boss")
    r = alice.upload(table(*(row(f"DS-{n:02}", owner=f"person{n}@example.com") for n in range(1, rows + 1))))
    assert r.status_code == 201, r.text
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200


def test_without_a_search_the_count_is_exact_and_the_pager_has_a_last_page(app, monkeypatch):
    monkeypatch.setattr(tables, "SEARCH_COUNT_MOST", 3)  # a search counts this far; the table is larger
    seed(app, 12)
    page = Browser(app, "alice").get("/")
    text = page.text
    assert "More than" not in text and "12 rows" in text
    assert "Page 1 of 3<" in text and "+" not in re.search(r'class="page-of">([^<]*)<', text).group(1)
    assert 'href="/?page=3">Last' in text
    last = Browser(app, "alice").get("/?page=3")
    assert last.status_code == 200 and "DS-12" in last.text and "Page 3 of 3" in last.text
    assert Browser(app, "alice").get("/?page=4").status_code == 404


def test_key_cells_open_their_record_and_e_mails_stay_on_one_line(app):
    seed(app, 2)
    text = Browser(app, "alice").get("/").text
    assert re.search(
        r'<a class="record-link" href="/records/DS-01" title="Its values in full and its history"><span class="key">DS-01</span></a>',
        text,
    )
    assert '<td class="v-email">person1@example.com</td>' in text


def test_the_record_page_names_its_table_and_links_back(make_app):
    app = add_test_users(make_app(SCHEMA_PATH=PACKAGE))
    alice, boss = Api(app, "alice"), Api(app, "boss")
    r = upload(alice, "teams", "name,lead,cost_centre\nData,Dora,CC-1\n")
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    text = Browser(app, "alice").get("/t/teams/records/Data").text
    assert re.search(r'<h1>Record <span class="key">Data</span> <span class="muted">of Teams</span></h1>', text)
    assert '<a href="/t/teams/">← Teams</a>' in text
