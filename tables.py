"""The shared table as people read it: its schema, a page of rows, one record, the CSV and Excel downloads."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from flask import current_app

import store.changes
import store.table
from errors import Unprocessable
from files import xlsx
from files.csv_write import csv_chunks
from models import TableState
from records import as_dict, unpack
from schema import Schema


def schema() -> Schema:
    """The table's columns, read from schema.json at start-up."""
    return current_app.extensions["schema"]


def state() -> TableState:
    """The table's version and row count."""
    return store.table.state()


@dataclass
class Page:
    """One page of the table: (key, values in schema order, version) rows, and what is around them."""

    rows: list[tuple[str, list[str], int]]
    has_next: bool
    state: TableState
    pending: int


def page(q: str, offset: int, limit: int) -> Page:
    """Rows in key order, `q` matching the key or any text (case-insensitive)."""
    rows = store.table.records_page(q, offset, limit + 1)
    return Page(
        rows=[(key, unpack(record), version) for key, record, version in rows[:limit]],
        has_next=len(rows) > limit,
        state=store.table.state(),
        pending=store.changes.count_requests("pending"),
    )


def record(key: str) -> dict[str, str] | None:
    """The current values of one row by field name, or None when no row has this key."""
    found = store.table.record(key)
    return as_dict(found[0], schema().names) if found else None


# --- downloads -------------------------------------------------------------------------------


@dataclass
class CsvDownload:
    """A CSV download being streamed: its file name and version, its chunks; `close()` ends the read."""

    filename: str
    version: int
    chunks: Iterator[bytes]
    close: Callable[[], None]


def csv_download() -> CsvDownload:
    """The whole table as CSV chunks, named after its version; the read ends with the last chunk."""
    snapshot, table_schema = store.table.open_export(), schema()

    def chunks() -> Iterator[bytes]:
        try:
            yield from csv_chunks(snapshot.records, table_schema)
        finally:
            snapshot.close()  # as soon as the last chunk is sent, not only when the response closes

    return CsvDownload(f"{table_schema.name}-v{snapshot.version}.csv", snapshot.version, chunks(), snapshot.close)


@dataclass
class XlsxDownload:
    """A workbook built in a (spooled) temporary file, rewound; the caller sends and closes it."""

    filename: str
    version: int
    file: IO[bytes]


def xlsx_download() -> XlsxDownload:
    """The whole table as an Excel workbook named after its version (built first, then sent)."""
    snapshot = store.table.open_export()
    try:
        if snapshot.row_count >= xlsx.EXCEL_MAX_ROWS:
            raise Unprocessable(
                f"The table has {snapshot.row_count:,} rows, more than an Excel sheet holds; download it as CSV."
            )
        try:
            file = xlsx.xlsx_file(snapshot.records, schema())
        except xlsx.NotForExcel as exc:
            raise Unprocessable(str(exc)) from None
    finally:
        snapshot.close()
    if file.seek(0, io.SEEK_END) <= xlsx.SPOOL_BYTES:  # small: send from memory, close the file now
        with file:
            file.seek(0)
            file = io.BytesIO(file.read())
    file.seek(0)
    return XlsxDownload(f"{schema().name}-v{snapshot.version}.xlsx", snapshot.version, file)
