"""Warnings for changes that look like Excel damage rather than edits."""

from __future__ import annotations

import pytest

from diff import Row, compare
from files import damage
from schema import Schema, pack

SCHEMA = Schema.from_dict(
    {
        "primaryKey": "id",
        "fields": [
            {"name": "id"},
            {"name": "code", "title": "Postal code"},
            {"name": "when"},
            {"name": "big", "type": "integer"},
        ],
    }
)


def warnings_for(before: list[list[str]], after: list[list[str]], full: bool = True) -> list[str]:
    current = {r[0]: pack(r) for r in before}
    uploaded = [Row(line, r[0], pack(r)) for line, r in enumerate(after, start=2)]
    return damage.warnings(compare(current, uploaded, full=full), SCHEMA)


@pytest.mark.parametrize(
    ("old", "new", "warning"),
    [
        (["a", "01234", "", ""], ["a", "1234", "", ""],
         "line 2, Postal code (code): '01234' lost its leading zeros (now '1234')"),
        (["a", "", "2024-01-31", ""], ["a", "", "45322", ""],
         "line 2, when: date '2024-01-31' became '45322', which looks like an Excel date serial number"),
        (["a", "", "31/01/2024", ""], ["a", "", "45322", ""],
         "line 2, when: date '31/01/2024' became '45322', which looks like an Excel date serial number"),
        (["a", "", "5-Jan-2024", ""], ["a", "", "45296", ""],
         "line 2, when: date '5-Jan-2024' became '45296', which looks like an Excel date serial number"),
        (["a", "4006381333931", "", ""], ["a", "4.00638E+12", "", ""],
         "line 2, Postal code (code): long number '4006381333931' became '4.00638E+12', which looks rounded by"
         " Excel; format the column as Text"),
        (["a", "", "", "1234567890123456789"], ["a", "", "", "1234567890123460000"],
         "line 2, big: long number '1234567890123456789' became '1234567890123460000', which looks rounded by"
         " Excel; format the column as Text"),
        (["a", "", "", "1234567890123456"], ["a", "", "", "1234570000000000"],
         "line 2, big: long number '1234567890123456' became '1234570000000000', which looks rounded by Excel;"
         " format the column as Text"),
    ],
)  # fmt: skip
def test_damage_in_modified_cells(old, new, warning):
    assert warnings_for([old], [new]) == [warning]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["a", "01234", "", ""], ["a", "01235", "", ""]),  # an edit
        (["a", "1234", "", ""], ["a", "01234", "", ""]),  # zeros added, not lost
        (["a", "", "2024-01-31", ""], ["a", "", "2024-02-01", ""]),
        (["a", "", "2024-01-31", ""], ["a", "", "", ""]),
        (["a", "", "", "1234567890123456789"], ["a", "", "", "1234567890123456790"]),  # the last digit edited
        (["a", "", "", "1234567890123456789"], ["a", "", "", "9234567890123450000"]),
        (["a", "", "", "12345"], ["a", "", "", "12300"]),  # short numbers are not rounded by Excel
        (["a", "0", "", ""], ["a", "", "", ""]),
    ],
)
def test_edits_are_not_damage(old, new):
    assert warnings_for([old], [new]) == []


def test_keys_that_lost_leading_zeros():
    before = [["00123", "", "", ""], ["007", "", "", ""], ["DS-1", "", "", ""]]
    after = [["123", "", "", ""], ["DS-1", "", "", ""], ["7", "", "", ""]]
    assert warnings_for(before, after) == [
        "key '00123' looks deleted and '123' added (line 2): Excel drops leading zeros;"
        " format the key column as Text before saving",
        "key '007' looks deleted and '7' added (line 4): Excel drops leading zeros;"
        " format the key column as Text before saving",
    ]


def test_a_real_delete_and_add_is_not_damage():
    assert warnings_for([["00123", "", "", ""]], [["124", "", "", ""]]) == []
    assert warnings_for([["A0123", "", "", ""]], [["A123", "", "", ""]]) == []


def test_integer_keys_have_no_leading_zeros_to_lose():
    schema = Schema.from_dict({"primaryKey": "n", "fields": [{"name": "n", "type": "integer"}]})
    d = compare({"123": "123"}, [Row(2, "124", "124")])
    assert damage.warnings(d, schema) == []


def test_warnings_are_capped_with_a_note():
    before = [[f"k{i}", f"0{i}", "", ""] for i in range(1, 40)]
    after = [[f"k{i}", f"{i}", "", ""] for i in range(1, 40)]
    out = warnings_for(before, after)
    assert len(out) == damage.MAX_WARNINGS + 1
    assert out[0] == "line 2, Postal code (code): '01' lost its leading zeros (now '1')"
    assert out[-1] == f"… and more changes like these; only the first {damage.MAX_WARNINGS} are listed."


def test_one_row_with_several_damaged_cells():
    out = warnings_for([["a", "0042", "2024-01-31", ""]], [["a", "42", "45322", ""]])
    assert [w.split(":")[0] for w in out] == ["line 2, Postal code (code)", "line 2, when"]


def test_no_changes_no_warnings():
    assert warnings_for([["a", "1", "", ""]], [["a", "1", "", ""]]) == []


# --- issue 10: every lossy rewrite of a re-save --------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        ("1e5", "100000", "the spreadsheet read it as a number in scientific notation"),
        ("2E-3", "0.002", "the spreadsheet read it as a number in scientific notation"),
        ("1e5", "1.00E+05", "the spreadsheet read it as a number in scientific notation"),
        ("00", "0", "lost its leading zeros"),
        ("1.50", "1.5", "the same number written differently: the spreadsheet read the text as a number"),
        ("+49", "49", "the same number written differently"),
        ("12345678901234567", "12345678901234600", "which looks rounded by Excel"),
        ("3.14159265358979323846", "3.14159265358979", "which looks rounded by Excel"),
        ("2024-01-31T10:00:00.123456", "2024-01-31T10:00:00.123000", "the spreadsheet cut the microseconds"),
        ("2024-01-31T10:00:00.5", "2024-01-31T10:00:00", "the spreadsheet cut the fractions of a second"),
        ("2024-01-31T10:00:30", "2024-01-31T10:00:00", "the spreadsheet cut the seconds of the time"),
        ("TRUE", "WAHR", "the spreadsheet wrote it in another language"),
        ("faux", "FALSCH", "the spreadsheet wrote it in another language"),
    ],
)
def test_lossy_rewrites_name_the_value_before_and_after(old, new, what):
    (warning,) = warnings_for([["a", old, "", ""]], [["a", new, "", ""]])
    assert warning.startswith("line 2, Postal code (code): "), warning
    assert what in warning and repr(old) in warning and repr(new) in warning


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("1e5", "100001"),  # an edit
        ("1.5", "1.50"),  # zeros added, not lost
        ("01234", "01234.0"),
        ("3.1415", "3.14"),  # short numbers are not rounded by Excel
        ("2024-01-31T10:00:00", "2024-01-31T10:00:30"),
        ("2024-01-31T10:00:00.5", "2024-01-31T10:00:02"),
        ("TRUE", "FALSCH"),  # another value
        ("TRUE", "yes"),
    ],
)
def test_edits_that_look_alike_are_not_damage(old, new):
    assert warnings_for([["a", old, "", ""]], [["a", new, "", ""]]) == []


def test_long_keys_rounded_by_excel_look_deleted_and_added():
    before = [["1234567890123456789", "", "", ""]]
    after = [["1234567890123460000", "", "", ""]]
    assert warnings_for(before, after) == [
        "key '1234567890123456789' looks deleted and '1234567890123460000' added (line 2): Excel keeps only 15"
        " digits of a number; format the key column as Text before saving"
    ]


def test_damaged_keys_are_counted_for_the_mass_deletion_guard():
    current = {f"{i:05}": pack([f"{i:05}", "", "", ""]) for i in range(1, 11)}
    uploaded = [Row(i + 1, str(i), pack([str(i), "", "", ""])) for i in range(1, 11)]
    damaged = damage.damaged_keys(compare(current, uploaded), SCHEMA)
    assert [(k.before, k.after, k.line) for k in damaged][:2] == [("00001", "1", 2), ("00002", "2", 3)]
    assert len(damaged) == 10 and damaged[0].why == "Excel drops leading zeros"
