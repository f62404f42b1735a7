"""Search on the table page: a query that looks like a key (not only letters) and that some key
starts with is answered from the primary-key index; any other query looks for the text anywhere
in a row (store/table.py records_page)."""

from __future__ import annotations

import re

import pytest
from conftest import row, table

import store.table


def keys_on(page) -> list[str]:
    return re.findall(r'href="/records/([^"?]+)"', page.text)


@pytest.fixture
def catalog(app, api):
    """DS-1, DS-10, DS-11, DS-2 (whose description names ds-1), ops-1 and DS-3 … DS-9 on team Ops."""
    rows = [
        row("DS-1", "Sales"),
        row("DS-10", "Ten"),
        row("DS-11", "Eleven"),
        row("DS-2", "HR", description="replaces ds-1 and DS-10"),
        row("ops-1", "Lower-case key"),
        *(row(f"DS-{i}", f"Set {i}", team="Ops") for i in range(3, 10)),
    ]
    r = api("alice").upload(table(*rows))
    assert api("boss").post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200


@pytest.mark.parametrize(
    "q, keys",
    [
        ("DS-1", ["DS-1", "DS-10", "DS-11"]),  # the keys starting with it, not DS-2 that mentions it
        ("ds-1", ["DS-1", "DS-10", "DS-11"]),  # typed in lower case
        ("OPS-1", ["ops-1"]),  # a lower-case key typed in upper case
        ("DS-10", ["DS-10"]),
        ("replaces", ["DS-2"]),  # no key starts with it: the text
        ("S-1", ["DS-1", "DS-10", "DS-11", "DS-2", "ops-1"]),  # inside keys, not at their start: the text
        ("ops", ["DS-3", "DS-4", "DS-5", "DS-6", "DS-7"]),  # a word is text, though a key starts with it
        ("ds", ["DS-1", "DS-10", "DS-11", "DS-2", "DS-3"]),
    ],
)
def test_a_key_prefix_is_looked_up_by_key(app, catalog, login, q, keys):
    assert keys_on(login("alice").get("/", query_string={"q": q})) == keys


def test_key_search_pages_in_key_order(app, catalog, login):
    alice = login("alice")
    first, second, third = (alice.get("/", query_string={"q": "ds-", "page": n}) for n in (1, 2, 3))
    assert keys_on(first) == ["DS-1", "DS-10", "DS-11", "DS-2", "DS-3"]
    assert keys_on(second) == ["DS-4", "DS-5", "DS-6", "DS-7", "DS-8"]
    assert keys_on(third) == ["DS-9"]
    assert "page=2" in first.text and "Next" not in third.text


@pytest.mark.parametrize("first_rows", [2, 1000])
def test_text_search_finds_matches_past_the_first_rows(app, catalog, login, monkeypatch, first_rows):
    """PostgreSQL looks at the first rows in key order, then scans everything: same answer either way."""
    monkeypatch.setattr(store.table, "TEXT_SEARCH_FIRST_ROWS", first_rows)
    alice = login("alice")
    assert keys_on(alice.get("/?q=ops")) == ["DS-3", "DS-4", "DS-5", "DS-6", "DS-7"]
    assert keys_on(alice.get("/?q=ops&page=2")) == ["DS-8", "DS-9", "ops-1"]
    assert keys_on(alice.get("/?q=eleven")) == ["DS-11"]
    assert "No row matches" in alice.get("/?q=qxjvw").text


def test_key_search_and_text_search_follow_the_chosen_sort(app, catalog, login):
    alice = login("alice")
    by_name = alice.get("/", query_string={"q": "ds-1", "sort": "name", "dir": "desc"})
    assert keys_on(by_name) == ["DS-10", "DS-1", "DS-11"]  # Ten, Sales, Eleven
    assert keys_on(alice.get("/", query_string={"q": "ops", "dir": "desc"})) == [
        "ops-1",
        "DS-9",
        "DS-8",
        "DS-7",
        "DS-6",
    ]
