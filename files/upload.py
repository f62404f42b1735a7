"""The way in for an uploaded file: a workbook or a CSV, decided by its content, opened as an `Upload`."""

from __future__ import annotations

from typing import IO

from files import csv_read, xlsx
from files.rows import Upload
from schema import Schema


def open_upload(
    stream: IO[bytes],
    schema: Schema,
    sheet: str | None = None,
    max_rows: int | None = None,
    encoding: str | None = None,
) -> Upload:
    """Open an uploaded file, whatever a spreadsheet saved it as: a zip file goes to
    xlsx.read_xlsx (`sheet` picks the sheet), anything else to csv_read.read_csv (`encoding`: the
    text encoding the person chose, else it is found). Decided by content, not by the file's name.
    More than `max_rows` rows raise TooLarge while reading."""
    if xlsx.is_workbook(stream):
        return xlsx.read_xlsx(stream, schema, sheet, xlsx.EXCEL_MAX_ROWS if max_rows is None else max_rows)
    return csv_read.read_csv(stream, schema, max_rows, encoding)
