"""Issue 19: an upload under 22 bytes (an empty table's own download, a header-only file) was a 500
when schema.json has several tables: zipfile.is_zipfile seeks 22 bytes back from the end of
web.body's file view, which raised ValueError. It answers like any other file."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Api, add_test_users

DEFAULT_SCHEMA = Path(__file__).resolve().parent.parent / "schema.json"  # several tables


@pytest.fixture
def tables_app(make_app):
    return add_test_users(make_app(SCHEMA_PATH=str(DEFAULT_SCHEMA)))


@pytest.mark.parametrize("data", [b"", b"id\r\n", b"id,name\r\n", b"key\n", b"x"])
def test_a_tiny_upload_answers_like_any_other_file(tables_app, data):
    api = Api(tables_app, "alice")
    multipart = api.upload(data)
    raw = api.post("/api/v1/changes", data=data, content_type="text/csv")
    for r in (multipart, raw):
        assert r.status_code in (200, 201, 400, 422), (r.status_code, r.text)
        assert (r.is_json and "error" in r.json) or r.status_code in (200, 201)
