"""An uploaded CSV read: its encoding and separator worked out, its header checked, its rows streamed.

Everything a user can get wrong about the file is reported as a `Problem` with the physical line
(the header is line 1) and the column, so the page and the API can say exactly where to look.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from typing import IO

from files.problems import FileProblems, Problem
from files.rows import Upload, data_rows, header_lookup, map_header, normalise
from schema import Schema

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024
CHUNK_BYTES = 1024 * 1024
_SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook or another zip file",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) or Word document",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"RIFF": "a WebP image or another RIFF file",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"{\\rtf": "an RTF document",
}

csv.field_size_limit(64 * 1024 * 1024)  # a single big cell is allowed; its field's maxLength decides

ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 (little-endian, no BOM)",
    "utf-16-be": "UTF-16 (big-endian, no BOM)",
    "cp1252": "Windows-1252",
    "mac_roman": "Mac Roman",
}
_CP1252_UNDEFINED = re.compile(b"[\x81\x8d\x8f\x90\x9d]")
_BINARY_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\x0c\x1a") + b"\x7f"


def encoding_label(encoding: str) -> str:
    """The name a user knows an encoding by, for the review page.

    >>> encoding_label("utf-8-sig"), encoding_label("cp1252"), encoding_label("xlsx")
    ('UTF-8 with BOM', 'Windows-1252', 'xlsx')
    """
    return ENCODING_LABELS.get(encoding, encoding)


def detect_encoding(stream: IO[bytes]) -> str:
    """Name the encoding of a text file: BOM first, else UTF-8 if every byte decodes, else Windows-1252.

    Reads the whole stream once in chunks (cheap next to parsing) and rewinds it. Raises
    FileProblems for empty files, known binary formats (PDF, images, zip), binary garbage and
    bytes that are text in neither UTF-8 nor Windows-1252. A stray control character inside
    otherwise good text is left for the cell check, which can name its line and column.

    >>> detect_encoding(io.BytesIO("név,€".encode("cp1252"))), detect_encoding(io.BytesIO(b"id"))
    ('cp1252', 'utf-8')
    """
    head = stream.read(SAMPLE_BYTES)
    if not head:
        raise FileProblems([Problem(None, None, "the file is empty")])
    for magic, what in _SIGNATURES.items():
        if head.startswith(magic):
            stream.seek(0)
            raise FileProblems(
                [Problem(1, None, f"this is {what}, not a CSV file; save it as CSV UTF-8 and upload that")]
            )
    stream.seek(0)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if utf16 := _bomless_utf16(head[:64]):
        return utf16
    controls = len(head) - len(head.translate(None, _BINARY_BYTES))
    if controls > 2 and controls * 50 > len(head):  # over 2% control bytes: no spreadsheet writes that
        where = min(i for i in (head.find(bytes([b])) for b in _BINARY_BYTES) if i >= 0)
        raise FileProblems(
            [
                Problem(
                    _line_at(head, where),
                    None,
                    "this is a binary file, not CSV text (it is full of control characters and NUL bytes); "
                    "save the table as CSV UTF-8 and upload that",
                )
            ]
        )
    encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    while chunk := stream.read(CHUNK_BYTES):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            encoding = _legacy_encoding(stream, head, offset + exc.start)
            break
        offset += len(chunk)
    else:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            encoding = _legacy_encoding(stream, head, offset)
    stream.seek(0)
    return encoding


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without a BOM: text whose every other byte is NUL."""
    head = head[: len(head) - len(head) % 2]
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if not odd.strip(b"\x00") and b"\x00" not in even:
        return "utf-16-le"
    if not even.strip(b"\x00") and b"\x00" not in odd:
        return "utf-16-be"
    return None


def _legacy_encoding(stream: IO[bytes], head: bytes, bad_utf8: int) -> str:
    """The encoding of a file that is not UTF-8: what Excel's plain "CSV" formats write.

    Lines ending in a lone CR come from Excel for Mac's "CSV (Macintosh)", which writes Mac Roman;
    everything else from Excel for Windows' "CSV (Comma delimited)", which writes Windows-1252
    (unless the file has bytes that encoding lacks).
    """
    if b"\r" in head and b"\n" not in head:
        stream.seek(0)
        return "mac_roman"
    stream.seek(0)
    while chunk := stream.read(CHUNK_BYTES):
        if _CP1252_UNDEFINED.search(chunk):
            line = _line_of_offset(stream, bad_utf8)
            raise FileProblems(
                [
                    Problem(
                        line,
                        None,
                        "is neither UTF-8 nor Windows-1252 text from this line on (is it a binary file?);"
                        " save the table as CSV UTF-8 and upload that",
                    )
                ]
            )
    stream.seek(0)
    return "cp1252"


def _line_of_offset(stream: IO[bytes], offset: int) -> int:
    stream.seek(0)
    line = 1
    while offset > 0 and (chunk := stream.read(min(CHUNK_BYTES, offset))):
        line += _line_at(chunk, len(chunk)) - 1
        offset -= len(chunk)
    stream.seek(0)
    return line


def _line_at(data: bytes, offset: int) -> int:
    """Physical line (1-based) of a byte offset, counting LF, CRLF and lone CR endings."""
    before = data[:offset]
    return 1 + before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n")


def _header_cells(text: str, delimiter: str) -> list[str]:
    """The first record of a sample under one delimiter ([] when it is not CSV under it)."""
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return []


def sniff_delimiter(sample: str, schema: Schema) -> str:
    """The delimiter under which the header names the most schema columns (ties: the most cells).

    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "ok"}]})
    >>> [sniff_delimiter(h, schema) for h in ("id,ok", "ID; OK", "ok\\tid", "id|ok")]
    [',', ';', '\\t', '|']
    """
    wanted = header_lookup(schema)

    def score(delimiter: str) -> tuple[int, int]:
        cells = _header_cells(sample, delimiter)
        return sum(normalise(c) in wanted for c in cells), len(cells)

    return max(DELIMITERS, key=score)


def choose_delimiter(sample: str, encoding: str, schema: Schema) -> str:
    """The delimiter of a file, from its first characters: tab for Excel's UTF-16 "Unicode Text", else sniffed."""
    first_line = sample[: min((i for i in (sample.find("\n"), sample.find("\r")) if i >= 0), default=None)]
    if encoding.startswith("utf-16") and "\t" in first_line:
        return "\t"
    return sniff_delimiter(sample, schema)


def read_csv(stream: IO[bytes], schema: Schema, max_rows: int | None = None) -> Upload:
    """Open an uploaded CSV: detect encoding and delimiter, check the header, stream the rows.

    Raises FileProblems for what is wrong with the file as a whole (empty, binary, bad header);
    row-level problems (ragged rows) are collected in `upload.problems` while iterating, and
    TooLarge is raised past `max_rows` rows.

    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "ok"}]})
    >>> upload = read_csv(io.BytesIO(b'\\xef\\xbb\\xbfok;id\\r\\n"a;\\r\\nb";1\\r\\n;;\\r\\n;2\\r\\n'), schema)
    >>> upload.encoding, upload.delimiter, list(upload.rows)
    ('utf-8-sig', ';', [(2, ['1', 'a;\\r\\nb']), (5, ['2', ''])])
    """
    encoding = detect_encoding(stream)
    text = io.TextIOWrapper(_KeepOpen(stream), encoding=encoding, newline="")
    try:
        sample = text.read(SAMPLE_BYTES)
        if not sample.strip():
            raise FileProblems([Problem(None, None, "the file is empty")])
        delimiter = choose_delimiter(sample, encoding, schema)
        text.seek(0)
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader)
    except UnicodeDecodeError as exc:
        what = ENCODING_LABELS.get(encoding, encoding)
        raise FileProblems(
            [Problem(1, None, f"cannot be read as {what} text ({exc.reason}); save the table as CSV UTF-8")]
        ) from None
    except csv.Error as exc:
        raise FileProblems([Problem(1, None, f"the header row is not valid CSV: {exc}")]) from None
    except StopIteration:
        raise FileProblems([Problem(None, None, "the file is empty")]) from None
    order, width = map_header(header, schema)
    names = [""] * width
    for name, position in zip(schema.names, order, strict=True):
        names[position] = name
    upload = Upload(encoding=encoding, delimiter=delimiter, rows=iter(()))
    upload.rows = data_rows(reader, order, width, upload.problems, names, max_rows)
    return upload


class _KeepOpen(io.BufferedIOBase):
    """The caller's stream as read_csv's text wrapper sees it: the wrapper closes what it wraps when
    it is collected (the rows are read lazily, so it cannot be detached in time); the caller's
    upload must stay open, e.g. to be read again for its error file."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._stream.read(-1 if size is None else size)

    read1 = read

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        """Leave the caller's stream open."""
