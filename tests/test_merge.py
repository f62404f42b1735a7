"""The pure three-way merge (merge.py): each rule of issue 8 as a row of a table."""

from __future__ import annotations

import pytest

from diff import Diff, Modified, Row
from merge import Conflict, Merged, merge_row, rebase

NAMES = ["id", "name", "team"]


def m(key, base, theirs, yours):
    return merge_row(key, base, theirs, yours, NAMES, sep="|")


@pytest.mark.parametrize(
    ("base", "theirs", "yours", "expected"),
    [
        # a cell you did not change is never staged, whatever others did to it
        ("1|a|x", "1|A|x", "1|a|x", Merged(None, None, None, [])),
        ("1|a|x", "1|A|X", "1|a|x", Merged(None, None, None, [])),
        # you changed a cell nobody else changed: staged
        ("1|a|x", "1|a|x", "1|b|x", Merged("modify", "1|a|x", "1|b|x", [])),
        # you and others changed different cells of one row: one merged modification
        ("1|a|x", "1|A|x", "1|a|y", Merged("modify", "1|A|x", "1|A|y", [])),
        # both changed a cell to the same value: nothing to do
        ("1|a|x", "1|b|x", "1|b|x", Merged(None, None, None, [])),
        ("1|a|x", "1|b|y", "1|b|x", Merged(None, None, None, [])),  # theirs has yours and more
        # both changed the same cell differently: a cell conflict; the other cell still merges
        ("1|a|x", "1|A|x", "1|b|y", Merged("modify", "1|A|x", "1|A|y", [Conflict("1", "name", "a", "A", "b")])),
        ("1|a|x", "1|A|x", "1|b|x", Merged(None, None, None, [Conflict("1", "name", "a", "A", "b")])),
        # full mode: a row in the base and missing from your file is your deletion
        ("1|a|x", "1|a|x", None, Merged("delete", "1|a|x", None, [])),
        # a row added after the base that is not in your file is not a deletion
        (None, "1|a|x", None, Merged(None, None, None, [])),
        # a row deleted after the base, still in your file unchanged, is not re-added
        ("1|a|x", None, "1|a|x", Merged(None, None, None, [])),
        # both deleted it
        ("1|a|x", None, None, Merged(None, None, None, [])),
        # you added a row nobody else has
        (None, None, "1|a|x", Merged("add", None, "1|a|x", [])),
        # row conflicts: you changed a row others deleted; you deleted a row others changed;
        # both added the same key with different values
        ("1|a|x", None, "1|b|x", Merged(None, None, None, [Conflict("1", None, "1|a|x", None, "1|b|x")])),
        ("1|a|x", "1|A|x", None, Merged(None, None, None, [Conflict("1", None, "1|a|x", "1|A|x", None)])),
        (None, "1|a|x", "1|b|x", Merged(None, None, None, [Conflict("1", None, None, "1|a|x", "1|b|x")])),
        # both added it identically
        (None, "1|a|x", "1|a|x", Merged(None, None, None, [])),
    ],
)
def test_merge_row(base, theirs, yours, expected):
    assert m("1", base, theirs, yours) == expected


def test_rebase_keeps_the_two_way_diff_for_keys_nobody_else_changed():
    current = {"1": "1|a|x", "2": "2|B|x", "3": "3|c|x"}
    two_way = Diff(
        modified=[Modified(2, "1", "1|a|x", "1|a|Z"), Modified(3, "2", "2|B|x", "2|b|x")],
        deleted=[("3", "3|c|x")],
        added=[Row(4, "4", "4|d|x")],
        unchanged=0,
    )
    merged = rebase(two_way, {"2": "2|b|x"}, current, NAMES, sep="|")  # only 2 changed since the base
    assert merged.diff.modified == [Modified(2, "1", "1|a|x", "1|a|Z")]  # not 2: it is as in the base
    assert merged.diff.deleted == [("3", "3|c|x")] and merged.diff.added == [Row(4, "4", "4|d|x")]
    assert merged.diff.unchanged == 1 and merged.conflicts == []


def test_rebase_records_the_line_of_each_conflict():
    current = {"1": "1|A|x"}
    two_way = Diff(modified=[Modified(7, "1", "1|A|x", "1|b|x")])
    merged = rebase(two_way, {"1": "1|a|x"}, current, NAMES, sep="|")
    assert merged.conflicts == [Conflict("1", "name", "a", "A", "b")] and merged.lines == {"1": 7}
    assert merged.diff.changed == 0
