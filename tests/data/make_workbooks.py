"""Write the Excel workbooks in this folder (tests/test_xlsx.py reads them).

Run `python tests/data/make_workbooks.py` after changing it; the tests read the committed files.
openpyxl writes the workbook (a stored sheet size, date styles, booleans, numbers); then
`excel_style` moves its inline text into a shared-strings table, as Excel and LibreOffice save
text, and what openpyxl cannot write is patched into the XML the way Excel stores it: a formula
with its computed value, an error cell, a carriage return escaped as `_x000D_`, and a literal
`_x0041_` escaped as `_x005F_x0041_`.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
FIELDS_AFTER = ["description", "team", "source_system", "update_frequency", "contains_pii", "created", "url"]
TITLES = ["ID", "Name", "Description", "Owner", "Team", "Source system", "Update frequency",
          "Contains PII", "Row count", "Created", "URL"]  # fmt: skip

# Typed the way Excel keeps typed cells: numbers, booleans, dates as midnight datetimes.
TYPED_ROWS = [
    ["DS-1", "Café Müller", "Señor's ledger, 5 € per row", "zoë@example.com", "Finance", "SAP",
     "daily", True, 1200, dt.datetime(2024, 1, 31), "https://example.com/a"],
    ["DS-2", "Ñandú report", None, "jose@example.com", "Sales", "Salesforce",
     "weekly", False, 0.0, dt.datetime(2023, 12, 15), "https://example.com/b"],
    ["00123", "=not a formula", "CR:PLACEHOLDER", "ops@example.com", "ESCAPE:PLACEHOLDER", None, None, None,
     None, None, None],
]  # fmt: skip


def typed_workbook() -> bytes:
    """typed.xlsx: the header by titles, typed cells, a text cell starting with '=', a CR escape."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Datasets"
    sheet.append(TITLES)
    for values in TYPED_ROWS:
        sheet.append(values)
    sheet["A4"].data_type = "s"  # 00123 stays text, as in a column formatted as Text
    sheet["B4"].data_type = "s"  # typed with a leading ' in Excel: text, not a formula
    sheet["B4"].quotePrefix = True
    sheet["J2"].number_format = sheet["J3"].number_format = "yyyy-mm-dd"
    data = excel_style(_save(book))
    data = _patch(data, "xl/sharedStrings.xml", "CR:PLACEHOLDER", "line one_x000D_\nline two")
    return _patch(data, "xl/sharedStrings.xml", "ESCAPE:PLACEHOLDER", "_x005F_x0041_ is text")


def formulas_workbook() -> bytes:
    """formulas.xlsx: a formula with its computed value (as Excel saves it) and an error cell."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Datasets"
    sheet.append(["id", "name", "owner", "row_count", *FIELDS_AFTER])
    sheet.append(["DS-1", "Computed", "ops@example.com", 21])
    sheet.append(["DS-2", "Broken", "ops@example.com", 1])
    data = excel_style(_save(book))
    sheet_xml = "xl/worksheets/sheet1.xml"
    data = _patch(data, sheet_xml, '<c r="D2" t="n"><v>21</v></c>', '<c r="D2"><f>B9*2</f><v>42</v></c>')
    return _patch(data, sheet_xml, '<c r="D3" t="n"><v>1</v></c>', '<c r="D3" t="e"><f>1/0</f><v>#DIV/0!</v></c>')


def two_sheets_workbook() -> bytes:
    """two_sheets.xlsx: a 'Read me' sheet first, the table on the second sheet 'Data'."""
    book = Workbook()
    notes = book.active
    notes.title = "Read me"
    notes.append(["Edit the Data sheet; this one is ignored."])
    data = book.create_sheet("Data")
    data.append(["id", "name", "owner", "row_count", *FIELDS_AFTER])
    data.append(["DS-7", "From the second sheet", "ops@example.com"])
    return excel_style(_save(book))


def word_document() -> bytes:
    """not_a_workbook.xlsx: a Word document's zip structure, renamed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        archive.writestr("word/document.xml", "<document/>")
    return out.getvalue()


def _save(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_INLINE = re.compile(
    r'<c r="([A-Z]+[0-9]+)"((?: s="[0-9]+")?) t="inlineStr"><is><t(?: xml:space="preserve")?>(.*?)</t></is></c>', re.S
)
_SHARED_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_SHARED_STRINGS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"


def excel_style(data: bytes) -> bytes:
    """An openpyxl workbook with its text moved into a shared-strings table, as Excel saves it."""
    source = zipfile.ZipFile(io.BytesIO(data))
    strings: dict[str, int] = {}

    def shared(match: re.Match[str]) -> str:
        index = strings.setdefault(match[3], len(strings))
        return f'<c r="{match[1]}"{match[2]} t="s"><v>{index}</v></c>'

    members = {info.filename: source.read(info.filename) for info in source.infolist()}
    for name in members:
        if name.startswith("xl/worksheets/sheet"):
            members[name] = _INLINE.sub(shared, members[name].decode("utf-8")).encode("utf-8")
    items = "".join(f'<si><t xml:space="preserve">{text}</t></si>' for text in strings)
    members["xl/sharedStrings.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main" count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>'
    ).encode()
    types = members["[Content_Types].xml"].decode("utf-8")
    override = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_SHARED_STRINGS_TYPE}"/>'
    members["[Content_Types].xml"] = types.replace("</Types>", override + "</Types>").encode("utf-8")
    rels = members["xl/_rels/workbook.xml.rels"].decode("utf-8")
    relation = f'<Relationship Id="rIdStrings" Type="{_SHARED_STRINGS_REL}" Target="sharedStrings.xml"/>'
    members["xl/_rels/workbook.xml.rels"] = rels.replace("</Relationships>", relation + "</Relationships>").encode()
    return _zip(members)


def _patch(data: bytes, member: str, old: str, new: str) -> bytes:
    """Replace text in one member of a zip file (which must contain it exactly once)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    members = {info.filename: source.read(info.filename) for info in source.infolist()}
    text = members[member].decode("utf-8")
    assert text.count(old) == 1, (member, old)
    members[member] = text.replace(old, new).encode("utf-8")
    return _zip(members)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def main() -> None:
    typed = typed_workbook()
    files = {
        "typed.xlsx": typed,
        "formulas.xlsx": formulas_workbook(),
        "two_sheets.xlsx": two_sheets_workbook(),
        "not_a_workbook.xlsx": word_document(),
        "damaged.xlsx": typed[: len(typed) // 2],  # a download cut off half way
    }
    for name, content in files.items():
        (HERE / name).write_bytes(content)
        print(f"wrote tests/data/{name} ({len(content):,} bytes)")


if __name__ == "__main__":
    main()
