"""A refused upload answers once with every problem, whatever check finds it (cells, duplicate
keys, `unique` columns, references), summed up per column and value with the nearest existing key;
its error file keeps one name however many rounds it takes (issue 21, part 1)."""

from __future__ import annotations

import io
import json

import pytest
from conftest import Api, Browser, row, table
from test_tables import PACKAGE, SYSTEMS, TEAMS, send, upload, workbook
from test_unique import SCHEMA as UNIQUE_SCHEMA

from files.problems import Groups, ProblemList, split_message


@pytest.fixture
def filled(make_app):
    """The three-table package with its teams and source systems approved; (app, alice, boss)."""
    from conftest import add_test_users

    app = add_test_users(make_app(SCHEMA_PATH=PACKAGE))
    alice, boss = Api(app, "alice"), Api(app, "boss")
    for name, text in (("teams", TEAMS), ("source_systems", SYSTEMS)):
        r = upload(alice, name, text)
        assert r.status_code == 201, r.text
        assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    return app, alice, boss


@pytest.fixture
def unique_app(make_app, tmp_path):
    """A table with a `unique` column besides its key."""
    import accounts

    path = tmp_path / "schema.json"
    path.write_text(json.dumps(UNIQUE_SCHEMA))
    app = make_app(SCHEMA_PATH=path)
    with app.app_context():
        accounts.create_user("alice", "alice-password")
    return app


def test_groups_count_every_problem_not_only_the_listed_ones():
    problems = ProblemList()
    for line in range(2, 1002):
        problems.add(line, "team", 'team "Procurement" is not a key of table "teams"', value="Procurement", what="x")
    problems.add(1002, "row_count", "'many' is not a whole number")
    assert len(problems) == 200 and problems.total == 1001
    team, count = problems.groups.ordered()
    assert (team.column, team.rows, team.distinct) == ("team", 1000, 1)
    assert (count.column, count.what, [v.value for v in count.shown()]) == (
        "row_count",
        "is not a whole number",
        ["'many'"],
    )


def test_the_nearest_key_is_suggested_case_blind_and_only_when_near():
    groups = Groups()
    for value in ("finanse", "Procurement", "Salse"):
        groups.add(2, "team", "", value=value, what="w")
    groups.suggest("team", "w", ["Finance", "Sales", "Data"])
    assert {v.value: v.suggestion for v in groups.ordered()[0].shown()} == {
        "finanse": "Finance",
        "Procurement": None,
        "Salse": "Sales",
    }


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("'two' is not a whole number", ("'two'", "is not a whole number")),
        ("'x…' (12,000 characters) is longer than 100", ("'x…'", "is longer than 100")),
        ("is required but empty", (None, "is required but empty")),
    ],
)
def test_split_message(message, expected):
    assert split_message(message) == expected


def test_one_answer_with_cell_duplicate_and_reference_problems_grouped_with_a_suggestion(filled):
    _, alice, _ = filled
    text = table(
        row("DS-1", team="Data", row_count="many"),  # a cell
        row("DS-2", team="Finanse"),  # a reference, near "Finance"
        row("DS-2", team="Data"),  # a duplicate key
        *(row(f"DS-{n}", team="Procurement") for n in range(3, 8)),  # five rows, one missing team
    )
    r = alice.upload(text)
    assert r.status_code == 422, r.text
    found = {(e["line"], e["column"]) for e in r.json["errors"]}
    assert found == {(2, "row_count"), (3, "team"), (4, "id"), *((n, "team") for n in range(5, 10))}
    assert r.json["total_errors"] == 8
    groups = {(g["column"], g["problem"]): g for g in r.json["groups"]}
    team = groups["team", 'is not a key of table "teams"']
    assert team["rows"] == 6 and team["distinct_values"] == 2
    assert [(v["value"], v["rows"], v["suggestion"]) for v in team["values"]] == [
        ("Procurement", 5, None),
        ("Finanse", 1, "Finance"),
    ]
    assert ("id", "is a duplicate key: another row has it too") in groups
    assert r.json["groups"][0]["column"] == "team"  # the most rows first


def test_the_page_shows_the_error_file_first_then_the_groups_then_the_rows(filled):
    app, _, _ = filled
    browser = Browser(app, "alice")
    page = browser.upload(
        table(row("DS-1", team="Finanse"), row("DS-2", team="Finanse"), row("DS-3", row_count="many"))
    )
    assert page.status_code == 422
    text = page.text
    link, groups, rows = (
        text.index(s) for s in ("errors column</a>", 'class="problem-groups"', 'class="problem-list"')
    )
    assert link < groups < rows
    assert "did you mean Finance?" in text and "2 rows" in text


def test_unique_clashes_come_with_the_cell_problems_in_the_same_answer(unique_app):
    alice = Api(unique_app, "alice")
    text = "id,code,note\n1,A,\n2,A,\n,B,\n"
    r = alice.post(
        "/api/v1/changes",
        data={"file": (io.BytesIO(text.encode()), "systems.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 422, r.text
    columns = sorted(e["column"] for e in r.json["errors"])
    assert columns == ["code", "id"], r.json["errors"]


def test_the_error_file_keeps_its_name_round_after_round(filled):
    app, alice, _ = filled
    browser = Browser(app, "alice")
    bad = table(row("DS-1", team="Nobody"))
    names = []
    for filename in ("catalog-v2.csv", "catalog-v2-errors.csv", "catalog-v2-errors (1).csv"):
        r = alice.post(
            "/api/v1/changes",
            data={"file": (io.BytesIO(bad.encode()), filename)},
            content_type="multipart/form-data",
        )
        assert r.status_code == 422
        download = browser.get(r.json["error_file"])
        assert download.status_code == 200
        names.append(download.headers["Content-Disposition"])
    assert all("catalog-v2-errors.csv" in n and "errors-errors" not in n for n in names), names


def test_a_reference_to_a_row_the_refused_workbook_could_not_read_is_not_reported(filled):
    """In a full upload, a team row with a bad cell is no deletion: the datasets naming it are not
    blamed for it (only the bad cell is), while a dataset naming a missing team still is."""
    _, alice, _ = filled
    teams = "name,lead,cost_centre\nData,Dora,CC-1\nFinance,Fred," + "C" * 30 + "\n"
    datasets = table(row("DS-1", team="Finance"), row("DS-2", team="Nobody"))
    r = send(alice, workbook({"datasets": datasets, "teams": teams}), "company.xlsx")
    assert r.status_code == 422, r.text
    found = sorted((e["column"], e["message"].split(":")[0]) for e in r.json["errors"])
    assert found == [("cost_centre", 'sheet "teams"'), ("team", 'sheet "datasets"')], r.json["errors"]
    assert "Nobody" in r.json["errors"][-1]["message"] or "Nobody" in r.json["errors"][0]["message"]


def test_the_overview_of_an_empty_database_says_which_tables_to_load_first(make_app):
    from conftest import add_test_users

    app = add_test_users(make_app(SCHEMA_PATH=PACKAGE))
    page = Browser(app, "alice").get("/")
    assert page.status_code == 200
    text = page.text
    assert "load them in this order" in text
    order = [text.index(f"/t/{name}/upload") for name in ("teams", "source_systems", "datasets")]
    assert order == sorted(order), order
    assert "refers to Teams, Source systems" in text


def test_the_overview_says_nothing_about_order_once_a_table_holds_rows(filled):
    app, _, _ = filled
    assert "load them in this order" not in Browser(app, "alice").get("/").text
