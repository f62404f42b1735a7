"""Downloads: a table, a workbook, a diff, the audit log or an error file as an attachment.

Every `Content-Disposition` comes from one cleaned file name (`files.names.clean_filename`) and
werkzeug: `send_file` writes it for files, `content_disposition` (werkzeug's quoting, send_file's
RFC 5987 encoding) for streamed CSV. A name that is not ASCII (a table called `таблица`) goes out
as `filename*` with an ASCII `filename` beside it, so no header holds a character HTTP cannot
carry (gunicorn answered 500 to one).
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote

from flask import Response, send_file, stream_with_context
from werkzeug.http import quote_header_value

import history
import tables
from files import xlsx
from files.names import clean_filename
from models import ErrorReport

# RFC 5987 attr-char besides letters and digits: what `filename*` keeps unencoded (as werkzeug's send_file)
_ATTR_CHARS = "!#$&+-.^_`|~"


def download_name(name: str) -> str:
    r"""The name a download goes out with: `files.names.clean_filename`, never empty.

    >>> download_name("evil\r\nSet-Cookie: x.csv"), download_name("\n")
    ('evilSet-Cookie: x.csv', 'download')
    """
    return clean_filename(name).strip() or "download"


def content_disposition(filename: str) -> str:
    r"""`attachment` with the cleaned name, quoted and escaped by werkzeug; a name that is not ASCII
    also as `filename*` (RFC 6266/5987, UTF-8, percent-encoded) beside an ASCII `filename`, as
    werkzeug's send_file writes it. The ASCII name stays in quotes, as the CSV downloads always
    sent it (scripts reading the header keep working).

    >>> print(content_disposition("datasets-v2.csv"))
    attachment; filename="datasets-v2.csv"
    >>> print(content_disposition('Übersicht "1".csv'))
    attachment; filename="Ubersicht \"1\".csv"; filename*=UTF-8''%C3%9Cbersicht%20%221%22.csv
    """
    name = download_name(filename)
    simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    header = f"attachment; filename={quote_header_value(simple, allow_token=False)}"
    if simple != name:
        header += f"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"
    return header


def csv_response(table: tables.TableRef, version: int | None = None) -> Response:
    """A whole table (as of `version`) as a streamed CSV download named after it and its version."""
    download = history.csv_download(table, version)
    response = _attachment(Response(download.chunks, mimetype="text/csv"), download.filename)
    response.headers["X-Dataset-Version"] = str(download.version)
    response.call_on_close(download.close)
    return response


def xlsx_response(table: tables.TableRef, version: int | None = None) -> Response:
    """A whole table (as of `version`) as an Excel workbook named after it and its version."""
    return _workbook_response(history.xlsx_download(table, version))


def database_xlsx_response(version: int | None = None) -> Response:
    """Every table (as of `version`) as a sheet of one Excel workbook named after the database and its version."""
    return _workbook_response(history.database_xlsx_download(version))


def _workbook_response(download: history.XlsxDownload) -> Response:
    response = send_file(
        download.file, xlsx.MIMETYPE, as_attachment=True, download_name=download_name(download.filename)
    )
    response.headers["X-Dataset-Version"] = str(download.version)
    return response


def csv_stream(filename: str, chunks: Iterable[bytes]) -> Response:
    """Streamed CSV chunks made from the request's database session, as a download named `filename`
    (the request stays open while they are made; the table's download reads a snapshot of its own)."""
    return _attachment(Response(stream_with_context(chunks), mimetype="text/csv"), filename)


def _attachment(response: Response, filename: str) -> Response:
    response.headers["Content-Disposition"] = content_disposition(filename)
    return response


def error_file_response(report: ErrorReport) -> Response:
    """A refused upload with its `errors` column, as a download."""
    mimetype = xlsx.MIMETYPE if report.filename.endswith(".xlsx") else "text/csv"
    name = download_name(report.filename)
    return send_file(io.BytesIO(report.content), mimetype, as_attachment=True, download_name=name)
