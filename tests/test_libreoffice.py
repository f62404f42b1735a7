"""Issue 19: the app's own download opened and saved again by LibreOffice (headless, with the
locale's reading of numbers, dates and times, "detect special numbers" on as Excel does), in
English, Swiss German, German and French, as CSV and as a workbook, uploaded back (SQLite and
PostgreSQL). Nothing may change silently: the upload reads back unchanged, or every cell it
changes is named in a warning, or it is refused naming line and column; never a 500.

Needs LibreOffice (`soffice`, Debian's libreoffice-calc-nogui); skipped without it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Api, add_test_users

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
pytestmark = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")

SCHEMA = {
    "primaryKey": "id",
    "fields": [
        {"name": "id"},
        {"name": "name"},
        {"name": "value", "type": "number"},
        {"name": "count", "type": "integer"},
        {"name": "note"},
    ],
}
TABLE = (
    "id,name,value,count,note\r\n"
    "A,alpha,1.25,1000,1/2\r\n"
    "B,beta,135.45,7,10:30\r\n"
    "C,gamma,0.07,3,50%\r\n"
    'D,delta,8.2,12,"two\r\nlines"\r\n'
    "E,epsilon,1.234,250000,plain\r\n"
)
LOCALES = {"en-US": 1033, "de-CH": 2055, "de-DE": 1031, "fr-FR": 1036}


@pytest.fixture
def table_app(make_app, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    app = add_test_users(make_app(SCHEMA_PATH=str(path)))
    r = Api(app, "alice").upload(TABLE)
    assert Api(app, "boss").post(f"/api/v1/changes/{r.json['id']}/approve").status_code == 200
    return app


def resave(tmp_path: Path, data: bytes, language: int, target: str) -> bytes:
    """`data` (the CSV download) opened in LibreOffice with `language`'s conventions and saved as
    `target`: `csv` (separated by semicolons, UTF-8) or `xlsx`."""
    source = tmp_path / "download.csv"
    source.write_bytes(data)
    out = tmp_path / "out"
    export = "csv:Text - txt - csv (StarCalc):59,34,76,1" if target == "csv" else "xlsx"
    subprocess.run(
        [SOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/profile",
         f"--infilter=CSV:44,34,76,1,,{language},false,true", "--convert-to", export, "--outdir", str(out), str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return (out / f"download.{target}").read_bytes()


@pytest.mark.parametrize("target", ["csv", "xlsx"])
@pytest.mark.parametrize("locale", LOCALES)
def test_a_resaved_download_changes_nothing_silently(table_app, tmp_path, locale, target):
    api = Api(table_app, "alice")
    download = api.get("/api/v1/export.csv")
    assert download.status_code == 200
    saved = resave(tmp_path, download.data, LOCALES[locale], target)
    r = api.upload(saved, filename=f"table.{target}")
    assert r.status_code in (200, 201, 422), r.text
    if r.status_code == 422:
        assert r.json["errors"] and all(e["line"] and e["column"] for e in r.json["errors"]), r.json
        return
    if r.status_code == 200:
        return  # read back unchanged
    detail = Api(table_app, "boss").get(f"/api/v1/changes/{r.json['id']}").json
    assert not detail["added"] and not detail["deleted"], detail
    warnings = " ".join(r.json["warnings"])
    for row in detail["modified"]:
        for column in row["changed"]:
            assert f", {column}:" in warnings, (row, r.json["warnings"])
