"""Write the test files in this folder: the kinds of file spreadsheets produce, and bad ones.

Run `python tests/data/make_files.py` after changing it; the tests read the committed files, so
what they check is exactly what is in the repository. Every good file holds the same three rows
of the default schema (see GOOD below), written the way one spreadsheet or locale writes them.
"""

from __future__ import annotations

import codecs
import json
import random
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = ["id", "name", "description", "owner", "team", "source_system",
          "update_frequency", "contains_pii", "row_count", "created", "url"]  # fmt: skip
TITLES = {"id": "ID", "name": "Name", "description": "Description", "owner": "Owner", "team": "Team",
          "source_system": "Source system", "update_frequency": "Update frequency",
          "contains_pii": "Contains PII", "row_count": "Row count", "created": "Created", "url": "URL"}  # fmt: skip

# The three rows, with the boolean and date cells left as (True/False/None, (y, m, d) or None)
# for each file to write in its own style. Accented names exercise the encodings.
ROWS = [
    ["DS-1", "Café Müller", "Señor's ledger, 5 € per row", "zoë@example.com", "Finance", "SAP",
     "daily", True, "1200", (2024, 1, 31), "https://example.com/a"],
    ["DS-2", "Ñandú report", "", "jose@example.com", "Sales", "Salesforce",
     "weekly", False, "0", (2023, 12, 15), "https://example.com/b"],
    ["DS-3", "Plain", "", "ops@example.com", "", "", "", None, "", None, ""],
]  # fmt: skip
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

DATE_STYLES = {
    "iso": lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
    "iso_midnight": lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d} 00:00:00",
    "us": lambda y, m, d: f"{m}/{d}/{y}",
    "uk": lambda y, m, d: f"{d:02d}/{m:02d}/{y}",
    "de": lambda y, m, d: f"{d:02d}.{m:02d}.{y}",
    "d-mmm-yy": lambda y, m, d: f"{d}-{MONTHS[m - 1]}-{y % 100:02d}",
    "mmm d, yyyy": lambda y, m, d: f"{MONTHS[m - 1]} {d}, {y}",
    "ymd_slash": lambda y, m, d: f"{y}/{m:02d}/{d:02d}",
}
BOOL_STYLES = {
    "lower": ("true", "false"),
    "excel": ("TRUE", "FALSE"),
    "title": ("True", "False"),
    "yesno": ("yes", "no"),
    "digits": ("1", "0"),
    "german": ("WAHR", "FALSCH"),
}


def cells(row: list, bools: str, dates: str) -> list[str]:
    out = []
    for value in row:
        if isinstance(value, bool):
            out.append(BOOL_STYLES[bools][0 if value else 1])
        elif isinstance(value, tuple):
            out.append(DATE_STYLES[dates](*value))
        elif value is None:
            out.append("")
        else:
            out.append(value)
    return out


def quote(cell: str, delimiter: str) -> str:
    if any(c in cell for c in (delimiter, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_text(header: list[str], rows: list[list[str]], delimiter: str = ",", newline: str = "\r\n") -> str:
    lines = [delimiter.join(quote(c, delimiter) for c in r) for r in [header, *rows]]
    return newline.join(lines) + newline


def good_text(delimiter=",", newline="\r\n", bools="excel", dates="iso", header=None, order=None) -> str:
    order = order or list(range(len(FIELDS)))
    header = header or FIELDS
    rows = [cells(r, bools, dates) for r in ROWS]
    return csv_text([header[i] for i in order], [[r[i] for i in order] for r in rows], delimiter, newline)


# The good files: name → bytes. Each reads as the same three rows (tests/test_tabular.py: EXPECTED).
GOOD = {
    # Google Sheets, LibreOffice, scripts: UTF-8 without BOM, LF.
    "utf8.csv": good_text(newline="\n", bools="lower").encode("utf-8"),
    # Excel "CSV UTF-8 (Comma delimited)": BOM, CRLF, TRUE/FALSE, US dates.
    "utf8_bom.csv": codecs.BOM_UTF8 + good_text(dates="us").encode("utf-8"),
    # Excel "Unicode Text": UTF-16 with BOM, tab-separated, CRLF, UK dates.
    "utf16le.txt": codecs.BOM_UTF16_LE + good_text("\t", dates="uk").encode("utf-16-le"),
    "utf16be.txt": codecs.BOM_UTF16_BE + good_text("\t", dates="uk").encode("utf-16-be"),
    # Excel "CSV (Comma delimited)" on Windows: Windows-1252, CRLF, US dates.
    "cp1252.csv": good_text(dates="us").encode("cp1252"),
    # European Excel: `;`, Windows-1252, WAHR/FALSCH, 31.01.2024.
    "semicolon_cp1252.csv": good_text(";", bools="german", dates="de").encode("cp1252"),
    "tab.tsv": good_text("\t", bools="yesno", dates="d-mmm-yy").encode("utf-8"),
    "pipe.csv": good_text("|", newline="\n", bools="digits", dates="mmm d, yyyy").encode("utf-8"),
    # Excel "CSV (Macintosh)" and old Mac tools end lines with a lone CR.
    "mac_cr.csv": good_text(newline="\r", dates="ymd_slash").encode("utf-8"),
    # Excel for Mac "CSV (Macintosh)": Mac Roman, lone CR line ends.
    "mac_roman.csv": good_text(newline="\r", dates="us").encode("mac_roman"),
    # Columns in another order, named by their titles, with odd case and spaces.
    "reordered_titles.csv": good_text(
        header=[f"  {TITLES[f].upper()} " if i % 2 else TITLES[f].lower() for i, f in enumerate(FIELDS)],
        order=[9, 3, 0, 10, 7, 1, 8, 2, 6, 4, 5],
        bools="title",
        dates="iso_midnight",
    ).encode("utf-8"),
    # Excel leaves empty columns (`,,,`) and rows after the data when cells there were once used.
    "excel_trailing.csv": codecs.BOM_UTF8
    + (good_text().replace("\r\n", ",,,\r\n") + ",,,,,,,,,,,,,,\r\n" * 3 + ",,,,,,,,,,,\r\n" + "\r\n").encode("utf-8"),
}

# Quoting: embedded delimiters, quotes and line breaks (one record over three lines).
QUOTED = csv_text(
    FIELDS,
    [
        ["DS-1", 'Say "hi", then go', "first line\r\nsecond, with comma\r\nthird; with semicolon",
         "a@example.com", "", "", "", "", "", "", ""],
        ["DS-2", '"Quoted" name', 'ends with a quote "', "b@example.com", "", "", "", "", "", "", ""],
        ["DS-3", "Tab\there", "lf only\nbreak", "c@example.com", "", "", "", "", "", "", ""],
    ],
)  # fmt: skip


def row(key: str, **values: str) -> list[str]:
    base = dict(zip(FIELDS, cells(ROWS[1], "lower", "iso"), strict=True)) | {"id": key} | values
    return [base[f] for f in FIELDS]


def table(*rows: list[str], delimiter: str = ",") -> bytes:
    return csv_text(FIELDS, list(rows), delimiter).encode("utf-8")


def tiny_png() -> bytes:
    """A real 1×1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


TINY_PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)

# The bad files: name → bytes. tests/test_upload_files.py: BAD says what each must answer.
BAD = {
    "ragged_long.csv": table(row("DS-1"), [*row("DS-2"), "stray"], row("DS-3")),
    "ragged_short.csv": table(row("DS-1"), row("DS-2")[:4], row("DS-3")),
    "duplicate_header.csv": csv_text(
        [*FIELDS[:3], "Name", *FIELDS[3:]], [[*row("DS-1")[:3], "x", *row("DS-1")[3:]]]
    ).encode(),
    "empty_header.csv": csv_text([*FIELDS[:2], " ", *FIELDS[2:]], [[*row("DS-1")[:2], "", *row("DS-1")[2:]]]).encode(),
    "nul_byte.csv": table(row("DS-1"), row("DS-2", description="before\x00after")),
    "binary_garbage.csv": random.Random(4).randbytes(4096),
    "pdf_renamed.csv": TINY_PDF,
    "png_renamed.csv": tiny_png(),
    "wide_header.csv": (
        ",".join(f"column_{i}" for i in range(10_000)) + "\r\n" + ",".join("x" * 10_000) + "\r\n"
    ).encode(),
    "over_max_length.csv": table(row("DS-1"), row("DS-2", name="N" * 201)),
    "enum_violation.csv": table(row("DS-1", update_frequency="fortnightly")),
    "pattern_failure.csv": table(row("DS-1"), row("DS-2", url="ftp://example.com/file")),
    "space_keys.csv": table(row("DS-1"), row("DS-1 ")),
    "scientific_keys.csv": table(row("1.23457E+15"), row("DS-2")),
    "ambiguous_date.csv": table(row("DS-1", created="03/04/2024")),
    "date_serial.csv": table(row("DS-1", created="45322")),
    "duplicate_keys.csv": table(row("DS-1"), row("DS-2"), row("DS-1")),
    "required_empty.csv": table(row("DS-1", owner="")),
    "unclosed_quote.csv": table(row("DS-1"))
    + b'DS-2,"Unclosed name,,x@example.com,,,,,,,\r\n'
    + table(row("DS-3")).split(b"\r\n", 1)[1],
    "not_text.csv": table(row("DS-1")) + b"DS-2,\x81\x8d\x90 broken,,x@example.com,,,,,,,\r\n",
    "many_errors.csv": table(*[row(f"DS-{i}", row_count="many") for i in range(1, 301)]),
    "empty.csv": b"",
}


# A schema with a number field (the default one has none), for decimal commas.
MEASUREMENTS_SCHEMA = {
    "primaryKey": "code",
    "fields": [
        {"name": "code", "type": "string"},
        {"name": "value", "type": "number", "title": "Measured value"},
        {"name": "count", "type": "integer"},
        {"name": "ok", "type": "boolean"},
        {"name": "taken", "type": "date"},
    ],
}
MEASUREMENTS = [
    ["A", ("1.234,5", "1234.5"), "3", True, (2024, 1, 31)],
    ["B", ("-0,25", "-0.25"), "0", False, (2024, 2, 1)],
    ["C", ("3", "3"), "1", True, None],
    ["D", ("", ""), "", None, None],
]
OTHER = {
    "quoted.csv": QUOTED.encode("utf-8"),
    "measurements.schema.json": (json.dumps(MEASUREMENTS_SCHEMA, indent=2) + "\n").encode(),
    # European Excel: `;`, decimal comma, thousands dot, WAHR/FALSCH, 31.01.2024.
    "measurements_semicolon.csv": csv_text(
        ["code", "Measured value", "count", "ok", "taken"],
        [cells([r[0], r[1][0], *r[2:]], "german", "de") for r in MEASUREMENTS],
        ";",
    ).encode("cp1252"),
    "measurements_comma.csv": csv_text(
        ["code", "value", "count", "ok", "taken"],
        [cells([r[0], r[1][1], *r[2:]], "excel", "iso") for r in MEASUREMENTS],
    ).encode("utf-8"),
}

# Excel damage: a table, and the same table after a round trip through Excel with the key column
# and a long number formatted as numbers (tests/test_upload_files.py: the review page warns).
DAMAGE_BASE = [row("00123"), row("DS-2", row_count="1234567890123456789"), *[row(f"DS-{i}") for i in range(3, 11)]]
DAMAGE = {
    "damage_base.csv": table(*DAMAGE_BASE),
    "damage_excel.csv": table(
        row("123"), row("DS-2", row_count="1234567890123460000"), *[row(f"DS-{i}") for i in range(3, 11)]
    ),
}


def main() -> None:
    files = {**GOOD, **OTHER, **BAD, **DAMAGE}
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    print(f"wrote {len(files)} files to {HERE}")


if __name__ == "__main__":
    main()
