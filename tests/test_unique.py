"""`unique` columns: enforced on upload (within the file and against the rows it leaves alone) and at approval."""

from __future__ import annotations

import io
import json

import pytest
from conftest import Api

import diff
from diff import Clash, Diff, Modified, Row

SCHEMA = {
    "name": "systems",
    "primaryKey": "id",
    "fields": [
        {"name": "id", "constraints": {"required": True}},
        {"name": "code", "constraints": {"unique": True}},
        {"name": "note"},
    ],
}


def _diff(added=(), modified=(), deleted=()) -> Diff:
    return Diff(added=list(added), modified=list(modified), deleted=list(deleted))


@pytest.mark.parametrize(
    ("current", "result", "expected"),
    [
        ({"a": "a|x"}, _diff(added=[Row(2, "b", "b|x")]), [Clash(2, "b", "x", "a", None)]),
        ({}, _diff(added=[Row(2, "b", "b|x"), Row(3, "c", "c|x")]), [Clash(3, "c", "x", "b", 2)]),
        ({"a": "a|x"}, _diff(added=[Row(2, "b", "b|")]), []),  # empty values never clash
        ({"a": "a|"}, _diff(added=[Row(2, "b", "b|"), Row(3, "c", "c|")]), []),
        ({"a": "a|x"}, _diff(added=[Row(2, "b", "b|x")], deleted=[("a", "a|x")]), []),  # a deleted row frees it
        # two rows swap their values: neither clashes
        (
            {"a": "a|x", "b": "b|y"},
            _diff(modified=[Modified(2, "a", "a|x", "a|y"), Modified(3, "b", "b|y", "b|x")]),
            [],
        ),
        # a changed row takes the value a row it leaves alone still has
        ({"a": "a|x", "b": "b|y"}, _diff(modified=[Modified(2, "a", "a|x", "a|y")]), [Clash(2, "a", "y", "b", None)]),
    ],
)
def test_unique_clashes(current, result, expected):
    assert diff.unique_clashes(current, result, 1, sep="|") == expected


@pytest.fixture
def unique_app(make_app, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    app = make_app(SCHEMA_PATH=path)
    import accounts

    with app.app_context():
        accounts.create_user("alice", "alice-password")
    return app


def upload(client: Api, text: str, **form):
    return client.post(
        "/api/v1/changes",
        data={"file": (io.BytesIO(text.encode()), "systems.csv"), **form},
        content_type="multipart/form-data",
    )


def test_a_value_twice_in_the_file_is_refused_with_line_column_and_the_other_row(unique_app):
    alice = Api(unique_app, "alice")
    r = upload(alice, "id,code,note\nA,X1,\nB,X2,\nC,X1,\n")
    assert r.status_code == 422
    assert r.json["errors"] == [
        {
            "line": 4,
            "row": 4,
            "key": "C",
            "column": "code",
            "message": "'X1' is also the code of row 'A' (line 2); each row needs its own",
        }
    ]


def test_a_value_of_a_row_the_upload_leaves_alone_is_refused(unique_app):
    alice, boss = Api(unique_app, "alice"), Api(unique_app, "boss")
    r = upload(alice, "id,code,note\nA,X1,\nB,X2,\n")
    assert boss.post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    r = upload(alice, "id,code,note\nC,X2,new\n", mode="partial")
    assert r.status_code == 422
    assert r.json["errors"][0] == {
        "line": 2,
        "row": 2,
        "key": "C",
        "column": "code",
        "message": "'X2' is also the code of row 'B' of the table; each row needs its own",
    }
    # swapping two values, and empty values, are fine
    r = upload(alice, "id,code,note\nA,X2,\nB,X1,\nC,,\nD,,\n")
    assert r.status_code == 201 and r.json["summary"] == {
        "added": 2,
        "modified": 2,
        "deleted": 0,
        "unchanged": 0,
        "conflicts": 0,
    }


def test_a_value_a_later_approval_took_is_refused_at_approval(unique_app):
    alice, boss = Api(unique_app, "alice"), Api(unique_app, "boss")
    first = upload(alice, "id,code,note\nA,X1,\n")
    assert boss.post(f"/api/v1/changes/{first.json['id']}/approve").status_code == 200
    mine = upload(alice, "id,code,note\nB,X9,\n", mode="partial").json["id"]
    theirs = upload(alice, "id,code,note\nC,X9,\n", mode="partial").json["id"]
    assert boss.post(f"/api/v1/changes/{theirs}/approve").status_code == 200
    r = boss.post(f"/api/v1/changes/{mine}/approve")
    assert r.status_code == 409
    assert "'X9' is also the code of row 'C' of the table" in r.json["error"]
    assert alice.get(f"/api/v1/changes/{mine}").json["status"] == "pending"
    assert "B," not in alice.get("/api/v1/export.csv").data.decode("utf-8-sig")
