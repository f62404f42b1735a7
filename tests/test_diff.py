"""The pure keyed diff: no app, no database."""

from __future__ import annotations

import pytest

from diff import Diff, DuplicateKey, Modified, Row, changed_fields, compare, compare_cells

CURRENT = {"1": "1|a", "2": "2|b", "3": "3|c"}


def rows(*items: tuple[int, str, str]) -> list[Row]:
    return [Row(*item) for item in items]


@pytest.mark.parametrize(
    ("uploaded", "full", "added", "modified", "deleted", "unchanged"),
    [
        # the same table: nothing to do
        ([(2, "1", "1|a"), (3, "2", "2|b"), (4, "3", "3|c")], True, [], [], [], 3),
        # order does not matter
        ([(2, "3", "3|c"), (3, "1", "1|a"), (4, "2", "2|b")], True, [], [], [], 3),
        # one of each
        ([(2, "1", "1|a"), (3, "2", "2|B"), (4, "4", "4|d")], True, ["4"], [("2", "2|b", "2|B", 3)], ["3"], 1),
        # a partial upload never deletes
        ([(2, "2", "2|B"), (3, "4", "4|d")], False, ["4"], [("2", "2|b", "2|B", 2)], [], 0),
        # a header-only full upload deletes everything
        ([], True, [], [], ["1", "2", "3"], 0),
        ([], False, [], [], [], 0),
        # keys are compared exactly: no trimming or case folding here (schema.py rejects such keys)
        ([(2, "1 ", "1 |a"), (3, "A", "A|x")], False, ["1 ", "A"], [], [], 0),
    ],
)
def test_compare(uploaded, full, added, modified, deleted, unchanged):
    d = compare(CURRENT, rows(*uploaded), full=full)
    assert [r.key for r in d.added] == added
    assert [(m.key, m.before, m.after, m.line) for m in d.modified] == modified
    assert [k for k, _ in d.deleted] == deleted
    assert d.unchanged == unchanged
    assert d.changed == len(added) + len(modified) + len(deleted)
    assert d.duplicates == []


def test_deleted_rows_carry_their_record():
    d = compare(CURRENT, rows((2, "1", "1|a")))
    assert d.deleted == [("2", "2|b"), ("3", "3|c")]


def test_added_rows_keep_their_line_and_record():
    d = compare({}, rows((7, "9", "9|z")))
    assert d.added == [Row(7, "9", "9|z")]


def test_duplicates_name_the_first_line_and_are_not_compared_again():
    d = compare(
        CURRENT, rows((2, "1", "1|a"), (3, "4", "4|d"), (4, "1", "1|CHANGED"), (5, "4", "4|d"), (6, "1", "1|a"))
    )
    assert d.duplicates == [DuplicateKey(4, "1", 2), DuplicateKey(5, "4", 3), DuplicateKey(6, "1", 2)]
    assert d.unchanged == 1 and [r.key for r in d.added] == ["4"] and d.modified == []
    assert [k for k, _ in d.deleted] == ["2", "3"]


def test_a_duplicate_key_is_not_counted_as_present_twice():
    """Two lines of key 1 and nothing else: keys 2 and 3 are still deletions."""
    d = compare(CURRENT, rows((2, "1", "1|a"), (3, "1", "1|a")))
    assert [k for k, _ in d.deleted] == ["2", "3"]


def test_compare_consumes_a_generator_once():
    consumed = []

    def generate():
        for row in rows((2, "1", "1|x"), (3, "5", "5|e")):
            consumed.append(row.key)
            yield row

    d = compare(CURRENT, generate(), full=False)
    assert consumed == ["1", "5"] and d.modified == [Modified(2, "1", "1|a", "1|x")]


def test_empty_diff():
    assert Diff().changed == 0 and compare({}, []).changed == 0


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        (["1", "a", "x"], ["1", "a", "x"], []),
        (["1", "a", "x"], ["1", "b", "x"], ["name"]),
        (["1", "a", "x"], ["1", "b", "y"], ["name", "team"]),
        (["1", "", "x"], ["1", "a", ""], ["name", "team"]),
    ],
)
def test_changed_fields(before, after, changed):
    assert changed_fields(before, after, ["id", "name", "team"]) == changed


def test_changed_fields_needs_records_of_the_same_fields():
    with pytest.raises(ValueError):
        changed_fields(["1", "a"], ["1", "a", "b"], ["id", "name", "team"])


def parse_lowercase(line, cells):
    """A parser for compare_cells tests: 'bad' cells are refused, everything else lowercased."""
    if "bad" in cells:
        return None
    return Row(line, cells[0], "|".join(c.lower() for c in cells))


@pytest.mark.parametrize(
    "uploaded, duplicates",
    [
        ([(2, ["1", "bad"]), (3, ["1", "a"])], [DuplicateKey(3, "1", 2)]),  # bad row first
        ([(2, ["1", "a"]), (3, ["1", "bad"])], [DuplicateKey(3, "1", 2)]),  # bad row second
        ([(2, ["9", "bad"]), (3, ["9", "bad"])], [DuplicateKey(3, "9", 2)]),  # both bad, new key
        ([(2, ["", "bad"]), (3, ["", "bad"])], []),  # empty keys: the parser reports those
    ],
)
def test_compare_cells_names_duplicates_even_when_a_row_is_bad(uploaded, duplicates):
    d = compare_cells({"1": "1|a"}, uploaded, 0, parse_lowercase, sep="|")
    assert d.duplicates == duplicates
