"""One upload split into its tables: a workbook's sheets, a zip's CSV files, or one file for the
first table; names matched as users write them, what is not read reported, zip bombs refused.
No app, no database."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from openpyxl import Workbook

from files import bundle as bundle_module
from files.bundle import Bundle, open_bundle
from files.problems import FileProblems, TooLarge
from files.upload import open_upload
from schema import Schema

TEAMS = Schema.from_dict({"name": "teams", "primaryKey": "name", "fields": [{"name": "name"}, {"name": "lead"}]})
DATASETS = Schema.from_dict(
    {
        "name": "datasets",
        "primaryKey": "id",
        "fields": [{"name": "id"}, {"name": "team"}, {"name": "rows", "type": "integer"}],
    }
)
SCHEMAS = {"datasets": DATASETS, "teams": TEAMS}
TABLES = ["datasets", "teams"]  # datasets is the first table


def workbook(sheets: dict[str, list[list]], hidden: tuple[str, ...] = ()) -> io.BytesIO:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for values in rows:
            sheet.append(values)
        if title in hidden:
            sheet.sheet_state = "hidden"
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    return out


def zipped(files: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, content in files.items():
            archive.writestr(name, content)  # a name ending in "/" is a folder entry
    out.seek(0)
    return out


def rows_of(part) -> list[tuple[int, list[str]]]:
    upload = part.read(SCHEMAS[part.table])
    rows = list(upload.rows)
    assert list(upload.problems) == []
    return rows


TEAM_ROWS = [["name", "lead"], ["Sales", "ann"], ["Finance", "bob"]]
DATASET_ROWS = [["id", "team", "rows"], ["D1", "Sales", 10], ["D2", "Finance", 20]]
TEAMS_CSV = "name,lead\nSales,ann\nFinance,bob\n"
DATASETS_CSV = "id,team,rows\nD1,Sales,10\nD2,Finance,20\n"
EXPECTED = {
    "teams": [(2, ["Sales", "ann"]), (3, ["Finance", "bob"])],
    "datasets": [(2, ["D1", "Sales", "10"]), (3, ["D2", "Finance", "20"])],
}


# --- workbooks -------------------------------------------------------------------------------


def test_a_workbook_gives_a_part_per_sheet_named_after_a_table_in_the_workbooks_order():
    bundle = open_bundle(workbook({"teams": TEAM_ROWS, "datasets": DATASET_ROWS}), TABLES)
    assert bundle.kind == "workbook"
    assert [(p.table, p.name, p.sheet) for p in bundle.parts] == [
        ("teams", "teams", "teams"),
        ("datasets", "datasets", "datasets"),
    ]
    assert bundle.unknown == [] and bundle.hidden == [] and bundle.notice() is None
    for part in bundle.parts:
        assert rows_of(part) == EXPECTED[part.table]


def test_sheets_are_read_in_any_order_and_again_from_the_one_opened_workbook():
    bundle = open_bundle(workbook({"teams": TEAM_ROWS, "datasets": DATASET_ROWS}), TABLES)
    teams, datasets = bundle.parts
    assert rows_of(datasets) == EXPECTED["datasets"]
    assert rows_of(teams) == EXPECTED["teams"]
    assert rows_of(datasets) == EXPECTED["datasets"]
    # the part's bytes are the workbook, to be read at its sheet (as an error file is made)
    upload = open_upload(teams.open(), TEAMS, teams.sheet)
    assert list(upload.rows) == EXPECTED["teams"]


def test_sheet_names_match_trimmed_and_in_any_case():
    bundle = open_bundle(workbook({" Teams ": TEAM_ROWS, "DATASETS": DATASET_ROWS}), TABLES)
    assert [(p.table, p.sheet) for p in bundle.parts] == [("teams", " Teams "), ("datasets", "DATASETS")]
    assert [rows_of(p) for p in bundle.parts] == [EXPECTED["teams"], EXPECTED["datasets"]]


def test_sheets_named_after_no_table_are_reported_not_read():
    bundle = open_bundle(workbook({"Read me": [["hello"]], "teams": TEAM_ROWS, "Teams 2024": [["x"]]}), TABLES)
    assert [p.table for p in bundle.parts] == ["teams"]
    assert bundle.unknown == ["Read me", "Teams 2024"]
    assert bundle.notice() == (
        'Not read: the sheets "Read me", "Teams 2024", which are named after no table (the tables are datasets, teams).'
    )


def test_hidden_sheets_are_skipped_whatever_their_name_and_said_so():
    bundle = open_bundle(
        workbook({"teams": TEAM_ROWS, "datasets": DATASET_ROWS, "lookup": [["x"]]}, hidden=("datasets", "lookup")),
        TABLES,
    )
    assert [p.table for p in bundle.parts] == ["teams"]
    assert bundle.hidden == ["datasets", "lookup"] and bundle.unknown == []
    assert bundle.notice() == 'Not read: the hidden sheets "datasets", "lookup".'


def test_a_workbook_with_one_sheet_named_after_a_table_goes_to_that_table():
    bundle = open_bundle(workbook({"teams": TEAM_ROWS}), TABLES)
    assert [(p.table, p.sheet) for p in bundle.parts] == [("teams", "teams")]


def test_a_workbook_whose_only_sheet_is_named_after_no_table_goes_to_the_first_table_as_before():
    data = workbook({"Sheet1": DATASET_ROWS})
    bundle = open_bundle(data, TABLES)
    assert [(p.table, p.sheet) for p in bundle.parts] == [("datasets", "Sheet1")]
    assert bundle.unknown == [] and bundle.notice() is None
    assert rows_of(bundle.parts[0]) == EXPECTED["datasets"]


def test_without_a_table_sheet_the_first_visible_sheet_is_the_first_tables_and_the_others_are_reported():
    data = workbook({"Old": [["x"]], "Data": DATASET_ROWS, "Notes": [["n"]]}, hidden=("Old",))
    bundle = open_bundle(data, TABLES)
    assert [(p.table, p.sheet) for p in bundle.parts] == [("datasets", "Data")]
    assert bundle.unknown == ["Notes"] and bundle.hidden == ["Old"]
    assert rows_of(bundle.parts[0]) == EXPECTED["datasets"]


def test_two_sheets_for_one_table_are_refused():
    with pytest.raises(FileProblems) as refused:
        open_bundle(workbook({"teams": TEAM_ROWS, "datasets": DATASET_ROWS, "TEAMS ": TEAM_ROWS}), TABLES)
    assert refused.value.problems[0].message == (
        'the workbook has two sheets for table "teams": "teams" and "TEAMS "; keep one and upload again'
    )


def test_a_table_name_longer_than_a_sheet_name_matches_its_first_31_characters():
    long = "cost-centres-of-the-finance-department"
    bundle = open_bundle(workbook({long[:31]: [["code"]]}), ["datasets", long])
    assert [p.table for p in bundle.parts] == [long]
    # unless two tables start the same: then the cut name is no table's
    other = long[:31] + "-old"
    bundle = open_bundle(workbook({long[:31]: [["code"]], "teams": TEAM_ROWS}), ["teams", long, other])
    assert [p.table for p in bundle.parts] == ["teams"] and bundle.unknown == [long[:31]]


def test_the_rows_limit_applies_to_each_sheet():
    bundle = open_bundle(workbook({"teams": TEAM_ROWS}), TABLES)
    with pytest.raises(TooLarge):
        list(bundle.parts[0].read(TEAMS, max_rows=2).rows)


# --- one file --------------------------------------------------------------------------------


def test_a_csv_is_one_part_for_the_first_table_read_as_open_upload_reads_it():
    stream = io.BytesIO(DATASETS_CSV.encode())
    bundle = open_bundle(stream, TABLES)
    assert bundle.kind == "file"
    assert [(p.table, p.name, p.sheet) for p in bundle.parts] == [("datasets", "", None)]
    assert rows_of(bundle.parts[0]) == EXPECTED["datasets"]
    assert bundle.parts[0].open() is stream and stream.tell() == 0
    assert list(open_upload(stream, DATASETS).rows) == EXPECTED["datasets"]  # open_upload as before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (zipped({"notes.txt": "hello"}).getvalue(), "this is a zip archive, not an Excel workbook"),
        (b"PK\x03\x04" + b"\0" * 100, "the Excel workbook is damaged"),
    ],
)
def test_a_zip_without_csv_files_or_a_damaged_one_goes_to_the_first_table_and_gets_todays_message(content, message):
    bundle = open_bundle(io.BytesIO(content), TABLES)
    assert bundle.kind == "file" and [p.table for p in bundle.parts] == ["datasets"]
    with pytest.raises(FileProblems) as refused:
        bundle.parts[0].read(DATASETS)
    assert message in refused.value.problems[0].message


def test_open_bundle_needs_a_table():
    with pytest.raises(ValueError):
        open_bundle(io.BytesIO(b"id\n"), [])


# --- zips of CSV files -----------------------------------------------------------------------


def test_a_zip_of_csv_files_gives_a_part_per_file_named_after_a_table():
    bundle = open_bundle(zipped({"teams.csv": TEAMS_CSV, "datasets.csv": DATASETS_CSV}), TABLES)
    assert bundle.kind == "zip"
    assert [(p.table, p.name, p.sheet) for p in bundle.parts] == [
        ("teams", "teams.csv", None),
        ("datasets", "datasets.csv", None),
    ]
    assert {p.table: rows_of(p) for p in bundle.parts} == EXPECTED


def test_folders_mac_and_windows_litter_and_dotfiles_are_passed_over_and_one_top_folder_is_fine():
    files = {
        "export/": b"",
        "export/Teams.CSV": TEAMS_CSV,
        "export/datasets.csv": DATASETS_CSV,
        "export/.DS_Store": b"\0",
        "export/Thumbs.db": b"\0",
        "__MACOSX/export/._teams.csv": b"\0",
        ".hidden.csv": "x\n",
    }
    bundle = open_bundle(zipped(files), TABLES)
    assert [(p.table, p.name) for p in bundle.parts] == [
        ("teams", "export/Teams.CSV"),
        ("datasets", "export/datasets.csv"),
    ]
    assert bundle.unknown == []
    assert {p.table: rows_of(p) for p in bundle.parts} == EXPECTED


def test_files_in_folders_that_are_not_the_one_top_folder_and_other_files_are_reported():
    files = {"teams.csv": TEAMS_CSV, "old/datasets.csv": DATASETS_CSV, "README.txt": "hi", "teams.xlsx": b"PK"}
    bundle = open_bundle(zipped(files), TABLES)
    assert [p.table for p in bundle.parts] == ["teams"]
    assert bundle.unknown == ["old/datasets.csv", "README.txt", "teams.xlsx"]
    assert bundle.notice() == (
        'Not read: the files "old/datasets.csv", "README.txt", "teams.xlsx", which are named after no table'
        " (the tables are datasets, teams)."
    )


def test_a_downloads_versioned_name_counts_as_the_tables():
    bundle = open_bundle(zipped({"teams-v12 (1).csv": TEAMS_CSV, "Datasets-v12.csv": DATASETS_CSV}), TABLES)
    assert [(p.table, p.name) for p in bundle.parts] == [
        ("teams", "teams-v12 (1).csv"),
        ("datasets", "Datasets-v12.csv"),
    ]


def test_two_files_for_one_table_are_refused():
    with pytest.raises(FileProblems) as refused:
        open_bundle(zipped({"teams.csv": TEAMS_CSV, "Teams-v3.csv": TEAMS_CSV}), TABLES)
    assert refused.value.problems[0].message == (
        'the zip file has two files for table "teams": "teams.csv" and "Teams-v3.csv"; keep one and upload again'
    )


def test_a_zip_of_one_csv_named_after_no_table_goes_to_the_first_table():
    bundle = open_bundle(zipped({"my export.csv": DATASETS_CSV, "notes.txt": "x"}), TABLES)
    assert [(p.table, p.name) for p in bundle.parts] == [("datasets", "my export.csv")]
    assert bundle.unknown == ["notes.txt"]
    assert rows_of(bundle.parts[0]) == EXPECTED["datasets"]


def test_a_zip_of_several_csv_files_named_after_no_table_is_refused_with_the_names_to_use():
    with pytest.raises(FileProblems) as refused:
        open_bundle(zipped({"a.csv": "x\n", "deep/er/b.csv": "y\n"}), TABLES)
    assert refused.value.problems[0].message == (
        'no file of the zip is named after a table ("a.csv", "deep/er/b.csv"); name each CSV file after its table:'
        " datasets.csv, teams.csv"
    )


def test_a_member_is_read_lazily_seekably_and_as_any_csv_upload_is():
    latin = "name,lead\nZürich,Jörg\n".encode("cp1252")
    bundle = open_bundle(zipped({"teams.csv": latin}), TABLES)
    part = bundle.parts[0]
    stream = part.open()
    assert stream.seekable() and stream.read(4) == b"name"
    stream.seek(0)
    assert stream.read() == latin
    stream.seek(0)
    assert stream.read() == latin
    assert rows_of(part) == [(2, ["Zürich", "Jörg"])]
    with pytest.raises(TooLarge):
        list(open_bundle(zipped({"teams.csv": TEAMS_CSV}), TABLES).parts[0].read(TEAMS, max_rows=1).rows)


def test_stored_members_are_read_too():
    bundle = open_bundle(zipped({"teams.csv": TEAMS_CSV}, zipfile.ZIP_STORED), TABLES)
    assert rows_of(bundle.parts[0]) == EXPECTED["teams"]


# --- hostile and damaged zips ----------------------------------------------------------------


def central_entry_offsets(data: bytes) -> list[int]:
    offsets, at = [], data.find(b"PK\x01\x02")
    while at != -1:
        offsets.append(at)
        at = data.find(b"PK\x01\x02", at + 4)
    return offsets


def patched(data: bytes, offset_in_entry: int, value: bytes) -> io.BytesIO:
    """Every central directory entry of a zip with bytes replaced at `offset_in_entry`."""
    out = bytearray(data)
    for at in central_entry_offsets(data):
        out[at + offset_in_entry : at + offset_in_entry + len(value)] = value
    return io.BytesIO(bytes(out))


def test_a_member_that_unpacks_to_far_more_than_its_packed_size_is_a_bomb(monkeypatch):
    monkeypatch.setattr(bundle_module, "FREE_BYTES", 10_000)
    bomb = zipped({"teams.csv": "name,lead\n" + "\n" * 2_000_000})  # ~2 MB from a few KB
    with pytest.raises(TooLarge) as refused:
        open_bundle(bomb, TABLES)
    assert "teams.csv" in str(refused.value) and "zip bomb" in str(refused.value)


def test_members_that_together_unpack_to_more_than_the_upload_allows_are_refused(monkeypatch):
    monkeypatch.setattr(bundle_module, "FREE_BYTES", 0)
    monkeypatch.setattr(bundle_module, "BYTES_PER_PACKED_BYTE", 1)
    # stored members unpack to their packed size, and the zip is larger than both together: allowed
    data = zipped({"teams.csv": TEAMS_CSV, "datasets.csv": DATASETS_CSV}, zipfile.ZIP_STORED)
    bundle = open_bundle(data, TABLES)
    assert len(bundle.parts) == 2
    monkeypatch.setattr(bundle_module, "MAX_UNPACKED_BYTES", len(TEAMS_CSV) + len(DATASETS_CSV) - 1)
    with pytest.raises(TooLarge) as refused:
        open_bundle(data, TABLES)
    assert "zip bomb" in str(refused.value)


def test_a_zip_with_too_many_files_is_refused_before_its_directory_is_parsed(monkeypatch):
    monkeypatch.setattr(bundle_module, "MAX_MEMBERS", 5)
    data = zipped({f"f{n}.txt": "x" for n in range(6)} | {"teams.csv": TEAMS_CSV})

    def no_parsing(*args, **kwargs):
        raise AssertionError("the directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", no_parsing)
    with pytest.raises(TooLarge) as refused:
        open_bundle(data, TABLES)
    assert "more than 5 files" in str(refused.value)


def test_a_huge_central_directory_is_refused(monkeypatch):
    monkeypatch.setattr(bundle_module, "MAX_DIRECTORY_BYTES", 100)
    with pytest.raises(TooLarge):
        open_bundle(zipped({f"long-name-{n:04}.txt": "x" for n in range(5)}), TABLES)


def test_a_password_protected_member_is_refused_by_name():
    data = zipped({"teams.csv": TEAMS_CSV}).getvalue()
    with pytest.raises(FileProblems) as refused:
        open_bundle(patched(data, 8, struct.pack("<H", 1)), TABLES)  # general purpose flag: encrypted
    assert refused.value.problems[0].message == (
        '"teams.csv" in the zip file is protected by a password; zip it without one'
    )


def test_a_member_compressed_in_an_unknown_way_is_refused_by_name():
    data = zipped({"teams.csv": TEAMS_CSV}).getvalue()
    with pytest.raises(FileProblems) as refused:
        open_bundle(patched(data, 10, struct.pack("<H", 99)), TABLES)  # 99: AES
    assert refused.value.problems[0].message.startswith(
        '"teams.csv" in the zip file is packed with AES encryption, which this app does not unpack'
    )


def test_a_member_damaged_inside_is_a_file_problem_naming_it_when_read():
    data = zipped({"teams.csv": TEAMS_CSV}).getvalue()
    bundle = open_bundle(patched(data, 16, b"\0\0\0\0"), TABLES)  # a wrong CRC-32
    with pytest.raises(FileProblems) as refused:
        list(bundle.parts[0].read(TEAMS).rows)
    assert refused.value.problems[0].message.startswith('"teams.csv" in the zip file is damaged and cannot be unpacked')


def test_notice_in_words_for_one_unknown_file():
    assert Bundle("zip", [], ("a", "b"), ["x.csv"]).notice() == (
        'Not read: the file "x.csv", which is named after no table (the tables are a, b).'
    )


def test_a_declared_size_far_beyond_the_packed_size_is_refused_with_the_default_limits():
    data = zipped({"teams.csv": TEAMS_CSV}).getvalue()
    with pytest.raises(TooLarge) as refused:
        open_bundle(patched(data, 24, struct.pack("<I", 0xFFFF0000)), TABLES)  # uncompressed size: 4 GB
    assert str(refused.value).startswith('"teams.csv" in the zip file unpacks to 4,294,901,760 bytes from ')


def test_a_member_that_holds_more_than_it_declares_is_never_unpacked_past_its_declared_size():
    data = zipped({"teams.csv": TEAMS_CSV}).getvalue()
    bundle = open_bundle(patched(data, 24, struct.pack("<I", 5)), TABLES)
    stream = bundle.parts[0].open()
    with pytest.raises(FileProblems) as refused:
        stream.read()
    assert "damaged" in refused.value.problems[0].message
    stream.seek(0)
    with pytest.raises(FileProblems):
        stream.read(100)  # 5 bytes come out at most, and the checksum tells the truncation
