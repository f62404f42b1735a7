"""An uploaded CSV read: its encoding and separator worked out, its header checked, its rows streamed.

Everything a user can get wrong about the file is reported as a `Problem` with the physical line
(the header is line 1) and the column, so the page and the API can say exactly where to look.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

from files import codepages, conventions, encoding
from files.encoding import SAMPLE_BYTES, Detected
from files.problems import FileProblems, Problem, ProblemList
from files.rows import Upload, data_rows, header_lookup, map_header, normalise
from schema import Schema
from values import Conventions, Reading, show

DELIMITERS = (",", ";", "\t", "|")
ENCODING_LABELS = codepages.LABELS
MAX_CELLS_SHOWN = 20  # cells named in a warning about a guessed encoding (then their total)

csv.field_size_limit(64 * 1024 * 1024)  # a single big cell is allowed; its field's maxLength decides


def encoding_label(name: str) -> str:
    """The name a user knows an encoding by, for the review page.

    >>> encoding_label("utf-8-sig"), encoding_label("cp1252"), encoding_label("xlsx")
    ('UTF-8 with BOM', 'Windows-1252', 'xlsx')
    """
    return codepages.label(name)


def detect_encoding(stream: IO[bytes]) -> str:
    """The encoding to read a text file in (files.encoding.detect; FileProblems when it is no text).

    >>> detect_encoding(io.BytesIO("név,€".encode("cp1252"))), detect_encoding(io.BytesIO(b"id"))
    ('cp1252', 'utf-8')
    """
    return encoding.detect(stream).encoding


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
    if encoding.startswith(("utf-16", "utf-32")) and "\t" in first_line:
        return "\t"
    return sniff_delimiter(sample, schema)


def read_csv(
    stream: IO[bytes], schema: Schema, max_rows: int | None = None, encoding_name: str | None = None
) -> Upload:
    """Open an uploaded CSV: detect encoding and delimiter, check the header, stream the rows.

    Raises FileProblems for what is wrong with the file as a whole (empty, binary, bad header);
    row-level problems (ragged rows) are collected in `upload.problems` while iterating, and
    TooLarge is raised past `max_rows` rows. How the file writes numbers and dates is decided from
    whole columns (files.conventions): for number columns of a `;`, tab or `|` file before the rows
    are read, for dates when a date needs it.

    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "ok"}]})
    >>> upload = read_csv(io.BytesIO(b'\\xef\\xbb\\xbfok;id\\r\\n"a;\\r\\nb";1\\r\\n;;\\r\\n;2\\r\\n'), schema)
    >>> upload.encoding, upload.delimiter, list(upload.rows)
    ('utf-8-sig', ';', [(2, ['1', 'a;\\r\\nb']), (5, ['2', ''])])

    `encoding_name` is the encoding the person said the file is in (the `encoding` field): then it
    is not guessed, and a file that is no text in it is refused naming the line.
    """
    detected = encoding.chosen(stream, encoding_name) if encoding_name else encoding.detect(stream)
    name = detected.encoding
    text = io.TextIOWrapper(_KeepOpen(stream), encoding=name, newline="")
    try:
        sample = text.read(SAMPLE_BYTES)
        if not sample.strip():
            raise FileProblems([Problem(None, None, "the file is empty")])
        delimiter = choose_delimiter(sample, name, schema)
        text.seek(0)
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader)
    except UnicodeDecodeError as exc:
        raise FileProblems(
            [
                Problem(
                    1,
                    None,
                    f"cannot be read as {codepages.label(name)} text ({exc.reason}); save the table as CSV UTF-8",
                )
            ]
        ) from None
    except csv.Error as exc:
        raise FileProblems([Problem(1, None, f"the header row is not valid CSV: {exc}")]) from None
    except StopIteration:
        raise FileProblems([Problem(None, None, "the file is empty")]) from None
    order, width = map_header(header, schema)
    names = [""] * width
    for field_name, position in zip(schema.names, order, strict=True):
        names[position] = field_name
    upload = Upload(encoding=name, delimiter=delimiter, rows=iter(()))

    def decide(problems: ProblemList | None) -> list[Reading]:
        """Read the file once more from the top for its columns' evidence, then carry on where it was."""
        position = stream.tell()
        try:
            stream.seek(0)
            again = csv.reader(io.TextIOWrapper(_KeepOpen(stream), encoding=name, newline=""), delimiter=delimiter)
            next(again, None)
            rows = data_rows(again, order, width, ProblemList(), names, max_rows)
            return conventions.decide(rows, schema, delimiter, problems)
        finally:
            stream.seek(position)

    if conventions.scans_numbers(schema, delimiter):
        upload.conventions = Conventions(decide(upload.problems))
    else:
        upload.conventions = Conventions(conventions.initial(schema, delimiter), gather=lambda: decide(None))
    rows = data_rows(reader, order, width, upload.problems, names, max_rows)
    upload.rows = _watched(rows, detected, schema, upload.warnings) if detected.doubtful else rows
    return upload


def _watched(
    rows: Iterator[tuple[int, list[str]]], detected: Detected, schema: Schema, warnings: list[str]
) -> Iterator[tuple[int, list[str]]]:
    """The rows unchanged; once they are read, a warning that the encoding is a guess, naming every
    cell the other plausible code pages read differently (up to MAX_CELLS_SHOWN, with their total),
    each with its other readings, the most plausible first, so the reviewer can see which is right."""
    name, others = detected.encoding, detected.alternatives
    garbled = detected.garbled
    telling: list[str] = []
    plain: list[str] = []
    total = 0
    for line, cells in rows:
        for i, cell in enumerate(cells):
            if cell.isascii():
                continue
            where = f"line {line}, {schema.names[i]}: {show(cell)}"
            readings = {}
            for other in others:
                as_other = _read_as(cell, name, other)
                if as_other != cell and as_other not in readings.values():
                    readings[other] = as_other
            if readings:
                total += 1
                if len(telling) < MAX_CELLS_SHOWN:
                    shown = "; ".join(f"as {codepages.label(e)}: {show(t)}" for e, t in list(readings.items())[:3])
                    telling.append(f"{where} ({shown})")
            elif any(word in cell for word in garbled):
                total += 1
                if len(telling) < MAX_CELLS_SHOWN:
                    telling.append(where)
            elif len(plain) < MAX_CELLS_SHOWN:
                plain.append(where)
        yield line, cells
    cells_shown = "; ".join((telling or plain)[:MAX_CELLS_SHOWN])
    if not cells_shown:
        return
    if total > MAX_CELLS_SHOWN:
        cells_shown += f"; and {total - MAX_CELLS_SHOWN:,} more cells (of {total:,})"
    if others:
        named = " or ".join(codepages.label(e) for e in others[:3])
        why = f"the file does not say its encoding, and {named} would read its letters differently"
        how = (
            f"If they look wrong, upload the file again with its encoding chosen (e.g. {codepages.label(others[0])}),"
            " or save it as CSV UTF-8 and upload that."
        )
    else:
        why = "some of its text does not look like words in any encoding"
        how = "If they look wrong, save the file as CSV UTF-8 and upload that."
    warnings.append(
        f"The file was read as {codepages.label(name)}, which is a guess: {why}. Check these cells: {cells_shown}. {how}"
    )


def _read_as(cell: str, encoding_used: str, other: str) -> str:
    """A cell's text as the file's bytes read in another code page."""
    return cell.encode(encoding_used, "replace").decode(other, "replace")


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
