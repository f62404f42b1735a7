"""One upload split into the tables it holds: a workbook with a sheet per table, a zip of one CSV
per table, or (as before there were several tables) one file for the first table. Pure Python:
no Flask, no SQL.

Which table a sheet or file is for is decided by its name, never by its columns: the sheet title
or the file name without `.csv`, trimmed, in any case, is the table's name (a download's name,
`teams-v12.csv`, counts too). Sheets and files named after no table are not read; their names are
kept in `Bundle.unknown`, to be shown to the user, so that a sheet called "Teams 2024" is not
skipped without a word.

A zip is a bomb until proven otherwise: the central directory is sized before it is parsed, only
stored and deflated members are unpacked (`files.zipmember`: bzip2 and LZMA unpack whole in one
read), the members' declared sizes are checked against the size of the upload and, together,
against the upload limit (zipfile never unpacks more than a member declares), and members are
unpacked lazily, as they are read, on one budget. Their rows count together against the row
limit, and a member that is itself a workbook or a zip is refused: a workbook is read on its own
budget, sized by the upload, never by an unpacked member. A workbook's sheets are read on
files.ooxml's budget, one budget for the whole workbook.

>>> import io, zipfile
>>> data = io.BytesIO()
>>> with zipfile.ZipFile(data, "w") as z:
...     z.writestr("export/teams.csv", "name\\nSales\\n")
...     z.writestr("export/Notes.txt", "hello")
...     z.writestr("__MACOSX/export/._teams.csv", "")
>>> bundle = open_bundle(data, ["datasets", "teams"])
>>> [(p.table, p.name) for p in bundle.parts], bundle.unknown, bundle.kind
([('teams', 'export/teams.csv')], ['export/Notes.txt'], 'zip')
>>> bundle.parts[0].open().read()
b'name\\nSales\\n'
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Literal

from files import ooxml, xlsx, zipmember
from files.problems import FileProblems, Problem, TooLarge
from files.rows import Upload
from files.upload import open_upload
from schema import Schema

__all__ = ["MAX_MEMBERS", "Bundle", "Part", "open_bundle"]

MAX_MEMBERS = 10_000  # files in a zip of CSVs (a whole-database workbook has a few per table)
MAX_DIRECTORY_BYTES = 4 * 1024**2  # the zip's central directory: ~46 bytes and the name per member
FREE_BYTES = ooxml.FREE_BYTES  # a CSV member may always unpack to this much…
BYTES_PER_PACKED_BYTE = ooxml.BYTES_PER_PACKED_BYTE  # …and to this much per byte it takes in the zip
MAX_UNPACKED_BYTES = ooxml.MAX_UNPACKED_BYTES  # all CSV members read, together
SHEET_TITLE_CHARS = 31  # Excel's longest sheet name: a longer table name is cut to this in a download
_IGNORED_FILES = {"thumbs.db", "desktop.ini"}
_VERSIONED = re.compile(r"(.+?)-v\d{1,9}(?!\d).*")  # `teams-v12`, `teams-v12 (1)`: a download's name
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class Part:
    """The piece of an upload that is one table's: `name` is the sheet title or the zip member's
    path (for messages; "" for a whole file), `sheet` the sheet to read when the part is a sheet."""

    table: str
    name: str
    sheet: str | None
    _open: Callable[[], IO[bytes]] = field(repr=False, compare=False)
    _read: Callable[[Schema, int | None], Upload] = field(repr=False, compare=False)

    def open(self) -> IO[bytes]:
        """The bytes to read this part from, from their start: a zip member's (unpacked as they are
        read, seekable), else the upload itself, a workbook to be read at `sheet` (error files:
        `files.errorfile.annotate(part.open(), schema, …, part.sheet)`)."""
        return self._open()

    def read(self, schema: Schema, max_rows: int | None = None) -> Upload:
        """The part's rows, as `files.upload.open_upload` gives them for a single file."""
        return self._read(schema, max_rows)


@dataclass
class Bundle:
    """The parts of an upload, one per table, in the order the upload holds them.

    `kind`: "workbook" (sheets named after tables), "zip" (a zip of CSV files) or "file" (one file
    for the first table, as a one-table upload always was). `unknown`: the sheets and files named
    after no table, not read. `hidden`: hidden sheets, skipped whatever their name (a sheet the
    user hid is not one they meant to upload; Excel users hide lookup and scratch sheets).
    """

    kind: Literal["workbook", "zip", "file"]
    parts: list[Part]
    tables: tuple[str, ...]
    unknown: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)

    def notice(self) -> str | None:
        """What the user should be told about what was not read, or None.

        >>> Bundle("workbook", [], ("datasets", "teams"), ["Notes", "Sheet2"], ["lookup"]).notice()
        'Not read: the sheets "Notes", "Sheet2", which are named after no table (the tables are datasets, teams); the hidden sheet "lookup".'
        """
        what = "sheet" if self.kind == "workbook" else "file"
        said = []
        if self.unknown:
            names = ", ".join(f'"{n}"' for n in self.unknown)
            which = "which is" if len(self.unknown) == 1 else "which are"
            plural = what if len(self.unknown) == 1 else what + "s"
            said.append(f"the {plural} {names}, {which} named after no table (the tables are {', '.join(self.tables)})")
        if self.hidden:
            names = ", ".join(f'"{n}"' for n in self.hidden)
            said.append(f"the hidden sheet{'' if len(self.hidden) == 1 else 's'} {names}")
        return f"Not read: {'; '.join(said)}." if said else None


def open_bundle(stream: IO[bytes], table_names: Sequence[str], max_unpacked: int | None = None) -> Bundle:
    """Split an upload into one part per table it holds (`table_names`: the tables, the first one
    the default).

    - A workbook: one part per visible sheet named after a table. When no visible sheet is, the
      first visible sheet goes to the first table (what a one-table upload always did), and the
      other visible sheets are `unknown`.
    - A zip of CSV files: one part per `NAME.csv`, at the top of the zip or all in one folder;
      folders, `__MACOSX/`, dotfiles, Thumbs.db and desktop.ini are passed over. A zip whose one
      CSV file (at the top) is named after no table gives it to the first table.
    - Anything else (a CSV, a damaged file, another kind of zip): the whole upload for the first
      table, which `open_upload` then reads or refuses in its own words.

    Raises FileProblems when two sheets or files are for the same table, when a zip of several CSV
    files names none after a table, or when a member cannot be unpacked (password, unknown
    compression); TooLarge when the zip has too many members or declares more unpacked bytes than
    its size makes plausible.

    To read a named sheet of a workbook for one table, as the upload form's "sheet" field asks,
    call `open_upload` directly, as before.

    `max_unpacked`: the most bytes a zip's CSV files may unpack to together (the upload limit,
    MAX_UPLOAD_MB): a zip is no way around it.
    """
    tables = tuple(table_names)
    if not tables:
        raise ValueError("open_bundle needs at least one table name")
    whole = _whole(stream, tables)
    if not xlsx.is_workbook(stream):
        return whole
    _check_directory(stream)
    try:
        archive = zipfile.ZipFile(stream)
        members = archive.infolist()
    except _DAMAGED:
        return whole  # open_upload says what is wrong with it, as it always did
    if len(members) > MAX_MEMBERS:
        raise TooLarge(f"the zip file holds more than {MAX_MEMBERS:,} files; upload one CSV file per table")
    names = {m.filename for m in members}
    if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
        return _workbook(stream, tables)
    csvs = [m for m in members if not _ignored(m.filename) and m.filename.lower().endswith(".csv")]
    if not csvs:
        return whole  # a Word document, an OpenDocument file, a zip of something else: open_upload names it
    return _zip(stream, archive, members, tables, max_unpacked)


def _whole(stream: IO[bytes], tables: tuple[str, ...]) -> Bundle:
    def opened() -> IO[bytes]:
        stream.seek(0)
        return stream

    def read(schema: Schema, max_rows: int | None) -> Upload:
        return open_upload(opened(), schema, None, max_rows)

    return Bundle("file", [Part(tables[0], "", None, opened, read)], tables)


def _lookup(tables: tuple[str, ...], cut: int | None = None) -> dict[str, str]:
    """Name as a sheet or file may write it (case-folded) → table. A table name longer than an
    Excel sheet name may be cut to its first `cut` characters, as a download writes it, unless
    another table's name starts the same."""
    found = {t.casefold(): t for t in tables}
    if cut is not None:
        short: dict[str, list[str]] = {}
        for t in tables:
            if len(t) > cut:
                short.setdefault(t[:cut].casefold(), []).append(t)
        for name, matching in short.items():
            if len(matching) == 1:
                found.setdefault(name, matching[0])
    return found


def _workbook(stream: IO[bytes], tables: tuple[str, ...]) -> Bundle:
    book = xlsx.open_workbook(stream)
    sheets = book.worksheets
    if not sheets:
        raise FileProblems([Problem(None, None, "the workbook has no worksheets")])
    lookup = _lookup(tables, SHEET_TITLE_CHARS)

    def opened() -> IO[bytes]:
        stream.seek(0)
        return stream

    def reader(title: str) -> Callable[[Schema, int | None], Upload]:
        def read(schema: Schema, max_rows: int | None) -> Upload:
            return xlsx.read_sheet(book, schema, title, xlsx.EXCEL_MAX_ROWS if max_rows is None else max_rows)

        return read

    visible = [ws for ws in sheets if ws.sheet_state == "visible"]
    hidden = [ws.title for ws in sheets if ws.sheet_state != "visible"]
    parts: dict[str, Part] = {}
    unknown = []
    for ws in visible:
        table = lookup.get(ws.title.strip().casefold())
        if table is None:
            unknown.append(ws.title)
        elif table in parts:
            raise FileProblems([_twice("workbook", "sheets", table, parts[table].name, ws.title)])
        else:
            parts[table] = Part(table, ws.title, ws.title, opened, reader(ws.title))
    if parts:
        return Bundle("workbook", list(parts.values()), tables, unknown, hidden)
    # No sheet named after a table: the first visible sheet is the first table's, as it always was
    first = visible[0] if visible else sheets[0]
    rest = [ws.title for ws in visible if ws is not first]
    part = Part(tables[0], first.title, first.title, opened, reader(first.title))
    return Bundle("workbook", [part], tables, rest, [t for t in hidden if t != first.title])


def _zip(
    stream: IO[bytes],
    archive: zipfile.ZipFile,
    members: list[zipfile.ZipInfo],
    tables: tuple[str, ...],
    max_unpacked: int | None = None,
) -> Bundle:
    kept = [m for m in members if not _ignored(m.filename)]
    paths = [m.filename.replace("\\", "/") for m in kept]
    folders = {p.split("/", 1)[0] for p in paths}
    strip = len(folders) == 1 and all(p.count("/") == 1 for p in paths)  # everything in one top folder
    lookup = _lookup(tables)
    chosen: dict[str, zipfile.ZipInfo] = {}
    unknown: list[str] = []
    csvs: list[zipfile.ZipInfo] = []
    for info, path in zip(kept, paths, strict=True):
        inside = path.split("/", 1)[1] if strip else path
        table = None
        if "/" not in inside and inside.lower().endswith(".csv"):
            csvs.append(info)
            stem = inside[:-4].strip().casefold()
            table = lookup.get(stem)
            if table is None and (versioned := _VERSIONED.fullmatch(stem)):
                table = lookup.get(versioned[1].strip())
        if table is None:
            unknown.append(info.filename)
        elif table in chosen:
            raise FileProblems([_twice("zip file", "files", table, chosen[table].filename, info.filename)])
        else:
            chosen[table] = info
    if not chosen:
        every = [m.filename for m in kept if m.filename.lower().endswith(".csv")]
        if len(every) != 1 or len(csvs) != 1:
            listed = ", ".join(f'"{n}"' for n in every[:20]) + (", …" if len(every) > 20 else "")
            raise FileProblems(
                [
                    Problem(
                        None,
                        None,
                        f"no file of the zip is named after a table ({listed}); name each CSV file after its"
                        f" table: {', '.join(t + '.csv' for t in tables)}",
                    )
                ]
            )
        chosen[tables[0]] = csvs[0]  # one CSV, whatever its name: the first table's, as a CSV upload is
        unknown.remove(csvs[0].filename)
    upload_size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    total = 0
    for info in chosen.values():
        _check_member(info, upload_size)
        total += info.file_size
    if total > min(MAX_UNPACKED_BYTES, FREE_BYTES + BYTES_PER_PACKED_BYTE * upload_size):
        raise TooLarge(
            f"the CSV files of the zip unpack to {total:,} bytes, far more than a zip of its size holds;"
            " it looks like a zip bomb and was not read"
        )
    if max_unpacked is not None and total > max_unpacked:
        raise TooLarge(
            f"the CSV files of the zip unpack to {total / 1024**2:,.1f} MB together, over the upload limit of"
            f" {max_unpacked / 1024**2:,.0f} MB (MAX_UPLOAD_MB); upload fewer rows at a time, for example only"
            " the rows you changed as a partial upload"
        )
    budget = zipmember.Budget(total, "the CSV files of the zip unpack to more than they declare; make the zip again")
    rows = _RowCount()
    parts = [_member_part(archive, table, info, budget, rows) for table, info in chosen.items()]
    return Bundle("zip", parts, tables, unknown)


class _RowCount:
    """Rows read from every CSV file of one zip, counted against one limit (MAX_UPLOAD_ROWS)."""

    def __init__(self) -> None:
        self.read = 0

    def counted(self, rows: Iterator[tuple[int, list[str]]], limit: int | None) -> Iterator[tuple[int, list[str]]]:
        for row in rows:
            self.read += 1
            if limit is not None and self.read > limit:
                raise TooLarge(
                    f"the CSV files of the zip hold more than {limit:,} rows together (MAX_UPLOAD_ROWS); upload"
                    " the rows you changed as a partial upload, or ask the administrator"
                )
            yield row


def _member_part(
    archive: zipfile.ZipFile, table: str, info: zipfile.ZipInfo, budget: zipmember.Budget, rows: _RowCount
) -> Part:
    def opened() -> IO[bytes]:
        return _Member(archive, info, budget)

    def read(schema: Schema, max_rows: int | None) -> Upload:
        member = _Member(archive, info, budget)
        if member.read(len(xlsx.ZIP_MAGIC)) == xlsx.ZIP_MAGIC:
            raise FileProblems(
                [
                    Problem(
                        None,
                        None,
                        f'"{info.filename}" in the zip file is a workbook or another zip, not a CSV file; upload'
                        " the workbook on its own, or save its sheets as CSV UTF-8 and zip those",
                    )
                ]
            )
        member.seek(0)
        upload = open_upload(member, schema, None, max_rows)
        upload.rows = rows.counted(upload.rows, max_rows)
        return upload

    return Part(table, info.filename, None, opened, read)


def _check_member(info: zipfile.ZipInfo, upload_size: int) -> None:
    name = info.filename
    zipmember.check_member(info, "zip file")
    packed = min(info.compress_size, upload_size)  # the directory may lie; the upload cannot
    if info.file_size > FREE_BYTES + BYTES_PER_PACKED_BYTE * packed:
        raise TooLarge(
            f'"{name}" in the zip file unpacks to {info.file_size:,} bytes from {info.compress_size:,}; it looks'
            " like a zip bomb and was not read"
        )


def _check_directory(stream: IO[bytes]) -> None:
    """Refuse a zip whose central directory is huge before zipfile parses it into objects (a large
    upload of empty members would take gigabytes of memory). The end record is read as zipfile
    reads it; when it cannot be, zipfile's own error follows."""
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:
        return
    try:
        record = end_record(stream)
    except OSError:
        record = None
    finally:
        stream.seek(0)
    size, entries = getattr(zipfile, "_ECD_SIZE", 5), getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)
    if record and (record[size] > MAX_DIRECTORY_BYTES or record[entries] > MAX_MEMBERS):
        raise TooLarge(
            f"the zip file lists more than {MAX_MEMBERS:,} files (or a directory of more than"
            f" {MAX_DIRECTORY_BYTES // 1024**2} MB); upload one CSV file per table, or one workbook"
        )


def _ignored(path: str) -> bool:
    """A folder entry, or what zip tools and file managers add: `__MACOSX/`, dotfiles, Thumbs.db."""
    path = path.replace("\\", "/")
    if path.endswith("/"):
        return True
    pieces = path.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in pieces) or pieces[-1].lower() in _IGNORED_FILES


def _twice(container: str, what: str, table: str, first: str, second: str) -> Problem:
    return Problem(
        None,
        None,
        f'the {container} has two {what} for table "{table}": "{first}" and "{second}"; keep one and upload again',
    )


class _Member(io.BufferedIOBase):
    """A CSV member of the zip, unpacked as it is read (seekable: going back unpacks again from the
    start). zipfile's errors while unpacking (a bad checksum, a truncated stream) become
    FileProblems naming the member, as they can only be met while the rows are read."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: zipmember.Budget):
        self._archive = archive
        self._info = info
        self._budget = budget
        self._file: IO[bytes] | None = None
        self._pos = 0

    def _opened(self) -> IO[bytes]:
        if self._file is None:
            self._file = self._guard(lambda: zipmember.open_checked(self._archive, self._info, "zip file"))
        return self._file

    def _guard(self, action: Callable[[], object]):
        try:
            return action()
        except _DAMAGED as exc:
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise FileProblems(
                [
                    Problem(
                        None,
                        None,
                        f'"{self._info.filename}" in the zip file is damaged and cannot be unpacked ({detail});'
                        " make the zip again",
                    )
                ]
            ) from None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        file = self._opened()
        data = self._guard(lambda: file.read(-1 if size is None else size))
        self._pos += len(data)
        self._budget.reached(self._info.filename, self._pos)
        return data

    read1 = read

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        file = self._opened()
        self._pos = self._guard(lambda: file.seek(offset, whence))
        self._budget.reached(self._info.filename, self._pos)  # seeking forward unpacks what it skips
        return self._pos

    def tell(self) -> int:
        return self._opened().tell()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()
