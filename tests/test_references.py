"""References between tables, checked on records: no app, no database."""

from __future__ import annotations

import pytest

from diff import Diff, Modified, Row, compare
from package import Package
from records import pack
from references import (
    Dangling,
    KeysAfter,
    Reference,
    References,
    Referring,
    check_references,
    keys_after,
    referencing_rows,
    untouched,
)

PACKAGE = Package.from_dict(
    {
        "resources": [
            {"name": "teams", "schema": {"primaryKey": "name", "fields": [{"name": "name"}, {"name": "lead"}]}},
            {"name": "systems", "schema": {"primaryKey": "code", "fields": [{"name": "code", "type": "integer"}]}},
            {
                "name": "datasets",
                "schema": {
                    "primaryKey": "id",
                    "fields": [
                        {"name": "id"},
                        {"name": "title"},
                        {"name": "team"},
                        {"name": "system", "type": "integer"},
                        {"name": "parent"},
                    ],
                    "foreignKeys": [
                        {"fields": "team", "reference": {"resource": "teams", "fields": "name"}},
                        {"fields": "system", "reference": {"resource": "systems", "fields": "code"}},
                        {"fields": "parent", "reference": {"resource": "", "fields": "id"}},  # the same table
                    ],
                },
            },
        ]
    }
)
DATASETS = PACKAGE.table("datasets")
TEAMS = {"Sales": pack(["Sales", "ann"]), "Finance": pack(["Finance", "bob"])}
SYSTEMS = {"1": "1", "2": "2"}
CURRENT = {
    "D1": pack(["D1", "Orders", "Sales", "1", ""]),
    "D2": pack(["D2", "Ledger", "Finance", "2", "D1"]),
}


def ds(key: str, title: str = "t", team: str = "", system: str = "", parent: str = "") -> str:
    return pack([key, title, team, system, parent])


def keys_for(datasets_diff: Diff | None = None, teams_diff: Diff | None = None):
    tables = {
        "teams": keys_after(TEAMS, teams_diff),
        "systems": keys_after(SYSTEMS, None),
        "datasets": keys_after(CURRENT, datasets_diff),
    }
    return tables.__getitem__


def check(result: Diff, teams_diff: Diff | None = None) -> list[Dangling]:
    return check_references(DATASETS, result, keys_for(result, teams_diff))


def test_an_added_row_pointing_at_a_missing_key_is_dangling_with_its_line_key_column_and_value():
    result = Diff(added=[Row(3, "D3", ds("D3", team="Finanse")), Row(4, "D4", ds("D4", team="Sales"))])
    assert check(result) == [Dangling(3, "D3", "team", "Finanse", "teams")]
    assert check(result)[0].message == 'team "Finanse" is not a key of table "teams"'


def test_empty_values_are_no_reference():
    result = Diff(added=[Row(3, "D3", ds("D3"))], modified=[Modified(2, "D1", CURRENT["D1"], ds("D1", "Orders"))])
    assert check(result) == []


def test_every_foreign_key_of_a_row_is_checked_in_the_order_of_the_schema():
    result = Diff(added=[Row(5, "D3", ds("D3", team="Nobody", system="9", parent="D77"))])
    assert check(result) == [
        Dangling(5, "D3", "team", "Nobody", "teams"),
        Dangling(5, "D3", "system", "9", "systems"),
        Dangling(5, "D3", "parent", "D77", "datasets"),
    ]


def test_values_are_compared_exactly_as_canonical_text():
    # "sales" is not "Sales": keys are case-sensitive, as the key column itself is
    result = Diff(added=[Row(3, "D3", ds("D3", team="sales")), Row(4, "D4", ds("D4", team="Sales "))])
    assert [d.value for d in check(result)] == ["sales", "Sales "]


def test_a_modified_row_is_checked_only_in_the_cells_the_upload_changes():
    stale = ds("D9", team="Gone")  # a row already pointing at a missing team, e.g. from before the foreign key
    current_with_stale = {**CURRENT, "D9": stale}
    result = Diff(
        modified=[
            Modified(2, "D9", stale, ds("D9", title="renamed", team="Gone")),  # team untouched: not the user's problem
            Modified(3, "D1", CURRENT["D1"], ds("D1", "Orders", "Marketing", "1")),  # team changed to a missing one
            Modified(4, "D2", CURRENT["D2"], ds("D2", "Ledger", "Sales", "2", "D1")),  # changed to an existing one
        ]
    )
    keys = {"teams": keys_after(TEAMS, None), "systems": SYSTEMS, "datasets": current_with_stale}
    assert check_references(DATASETS, result, keys.__getitem__) == [Dangling(3, "D1", "team", "Marketing", "teams")]


def test_a_changed_cell_is_checked_even_when_it_changes_to_another_missing_key():
    before = ds("D9", team="Gone")
    result = Diff(modified=[Modified(2, "D9", before, ds("D9", team="Also gone"))])
    assert check(result) == [Dangling(2, "D9", "team", "Also gone", "teams")]


def test_results_come_in_line_order_across_added_and_modified_rows():
    result = Diff(
        added=[Row(2, "D5", ds("D5", team="x")), Row(6, "D6", ds("D6", team="y"))],
        modified=[Modified(4, "D1", CURRENT["D1"], ds("D1", team="z"))],
    )
    assert [(d.line, d.value) for d in check(result)] == [(2, "x"), (4, "z"), (6, "y")]


def test_rows_added_by_the_same_request_count_as_keys_also_in_the_same_table():
    # D4's parent D3 is added on a later line of the same upload
    result = Diff(added=[Row(2, "D4", ds("D4", parent="D3")), Row(3, "D3", ds("D3"))])
    assert check(result) == []
    # a team the same (whole-database) request adds
    teams_diff = Diff(added=[Row(2, "Marketing", pack(["Marketing", "cy"]))])
    result = Diff(added=[Row(2, "D5", ds("D5", team="Marketing"))])
    assert check(result, teams_diff) == []
    assert check(result) == [Dangling(2, "D5", "team", "Marketing", "teams")]


def test_keys_the_same_request_deletes_are_no_longer_targets():
    teams_diff = Diff(deleted=[("Sales", TEAMS["Sales"])])
    result = Diff(added=[Row(2, "D5", ds("D5", team="Sales"))])
    assert check(result, teams_diff) == [Dangling(2, "D5", "team", "Sales", "teams")]
    # and a row deleted from the same table cannot be a parent of a row the upload adds
    result = Diff(added=[Row(2, "D5", ds("D5", parent="D1"))], deleted=[("D1", CURRENT["D1"])])
    assert check(result) == [Dangling(2, "D5", "parent", "D1", "datasets")]


def test_keys_of_is_asked_once_per_referenced_table():
    asked: list[str] = []

    def keys_of(name: str):
        asked.append(name)
        return keys_for()(name)

    result = Diff(added=[Row(n, f"D{n}", ds(f"D{n}", team="Sales", system="1")) for n in range(2, 50)])
    assert check_references(DATASETS, result, keys_of) == []
    assert sorted(asked) == ["datasets", "systems", "teams"]


def test_a_table_without_foreign_keys_has_nothing_to_check_and_asks_for_no_keys():
    def keys_of(name: str):
        raise AssertionError(f"asked for {name}")

    result = Diff(added=[Row(2, "Nobody", pack(["Nobody", "x"]))])
    assert check_references(PACKAGE.table("teams"), result, keys_of) == []


def test_a_diff_of_parsed_rows_end_to_end():
    uploaded = [
        Row(2, "D1", CURRENT["D1"]),  # unchanged, even if it pointed nowhere
        Row(3, "D2", ds("D2", "Ledger", "Controlling", "2", "D1")),
        Row(4, "D3", ds("D3", "New", "Sales", "3", "D2")),
    ]
    result = compare(CURRENT, uploaded)
    assert check(result) == [
        Dangling(3, "D2", "team", "Controlling", "teams"),
        Dangling(4, "D3", "system", "3", "systems"),
    ]


def test_keys_after_is_a_view_of_the_current_keys_with_the_requests_additions_and_deletions():
    current = {"a": "1", "b": "2"}
    keys = keys_after(current, Diff(added=[Row(2, "c", "c")], deleted=[("a", "1")]))
    assert isinstance(keys, KeysAfter)
    assert ("a" in keys, "b" in keys, "c" in keys, "x" in keys) == (False, True, True, False)
    current["d"] = "4"  # not a copy
    assert "d" in keys
    # a request that adds and deletes nothing in the table: its keys as they are
    assert keys_after(current, None) is current
    assert keys_after(current, Diff(modified=[Modified(2, "b", "2", "3")])) is current


def test_referencing_rows_finds_rows_pointing_at_deleted_keys_across_tables_and_columns():
    others = [("X1", pack(["X1", "Sales"])), ("X2", pack(["X2", ""])), ("X3", pack(["X3", "Finance"]))]
    found = referencing_rows(
        {"Sales", "Finance"},
        [
            Referring("datasets", "team", 2, list(CURRENT.items())),
            Referring("other", "owner_team", 1, others),
        ],
    )
    assert found == References(
        [
            Reference("datasets", "D1", "team", "Sales"),
            Reference("datasets", "D2", "team", "Finance"),
            Reference("other", "X1", "owner_team", "Sales"),
            Reference("other", "X3", "owner_team", "Finance"),
        ],
        4,
    )


def test_referencing_rows_names_the_first_few_but_counts_all_and_streams_the_rows_once():
    consumed = 0

    def rows():
        nonlocal consumed
        for n in range(1000):
            consumed += 1
            yield f"D{n}", ds(f"D{n}", team="Sales" if n % 2 else "Finance")

    found = referencing_rows(frozenset({"Sales"}), [Referring("datasets", "team", 2, rows())], limit=3)
    assert found.total == 500
    assert found.rows == [Reference("datasets", f"D{n}", "team", "Sales") for n in (1, 3, 5)]
    assert consumed == 1000
    assert found.message("teams") == (
        'rows of table "teams" cannot be deleted while 500 rows refer to them:'
        ' datasets "D1" (team "Sales"), datasets "D3" (team "Sales"), datasets "D5" (team "Sales"), …'
    )


def test_referencing_rows_ignores_empty_values_and_keys_not_deleted():
    rows = [("D1", ds("D1", team="")), ("D2", ds("D2", team="Finance"))]
    assert referencing_rows({"Sales", ""}, [Referring("datasets", "team", 2, rows)]) == References([], 0)


def test_a_self_reference_to_a_deleted_row():
    found = referencing_rows({"D1"}, [Referring("datasets", "parent", 4, CURRENT.items())])
    assert found.rows == [Reference("datasets", "D2", "parent", "D1")]
    assert found.rows[0].message == 'row "D2" of table "datasets" still refers to it in parent'
    assert found.message("datasets").startswith('rows of table "datasets" cannot be deleted while 1 row refers to them')


def test_untouched_leaves_out_rows_the_request_modifies_or_deletes():
    # deleting team Sales while the same request moves D1 to Finance is fine: D1's new value was checked
    # by check_references, and its old one is gone
    result = Diff(modified=[Modified(2, "D1", CURRENT["D1"], ds("D1", team="Finance"))])
    rows = untouched(CURRENT.items(), result)
    assert referencing_rows({"Sales"}, [Referring("datasets", "team", 2, rows)]) == References([], 0)
    # deleting D2 as well as team Finance: nothing left refers to Finance
    result = Diff(deleted=[("D2", CURRENT["D2"])])
    assert list(untouched(CURRENT.items(), result)) == [("D1", CURRENT["D1"])]
    assert list(untouched(CURRENT.items(), None)) == list(CURRENT.items())


@pytest.mark.parametrize("position", [0, 4])
def test_positions_at_either_end_of_the_record(position):
    records = [("D1", ds("D1", parent="P"))] if position == 4 else [("P", ds("P"))]
    value = "P"
    found = referencing_rows({value}, [Referring("datasets", "f", position, records)])
    assert found.total == 1
