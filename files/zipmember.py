"""Zip members opened safely, the one way both a workbook's parts (files.xlsx) and a zip's CSV
files (files.bundle) are unpacked. Pure Python: no Flask, no SQL.

Why: zipfile unpacks a deflated member a bounded piece per read, but a bzip2 or LZMA member in one
step, whole, whatever the read asked for: a 1.7 KB workbook or a 425-byte zip with such a member
cost a worker hundreds of megabytes before any budget could count a byte. Excel, LibreOffice and
every zip tool write members "stored" or "deflated" by default, so only those two are unpacked;
anything else is refused, naming the member and its method, before a byte of it is unpacked.
What is unpacked is charged to a `Budget` as it streams.

>>> import io, zipfile
>>> data = io.BytesIO()
>>> with zipfile.ZipFile(data, "w", zipfile.ZIP_BZIP2) as z:
...     z.writestr("teams.csv", "name\\nSales\\n")
>>> check_members(zipfile.ZipFile(data).infolist(), "zip file")
Traceback (most recent call last):
files.problems.FileProblems: "teams.csv" in the zip file is packed with bzip2, which this app does not unpack (only "stored" and "deflated", what Excel and zip tools write by default); make it again with your system's own "compress" or "send to zip", or save the workbook again in Excel
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from typing import IO

from files.problems import FileProblems, Problem, TooLarge

__all__ = ["READABLE", "Budget", "check_member", "check_members", "method_name", "open_checked", "stream"]

READABLE = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_METHODS = {
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "LZMA",
    9: "Deflate64",
    6: "Implode",
    93: "Zstandard",
    95: "XZ",
    98: "PPMd",
    99: "AES encryption",
}
CHUNK_BYTES = 64 * 1024


def method_name(info: zipfile.ZipInfo) -> str:
    """The compression method of a member, as zip tools name it.

    >>> method_name(zipfile.ZipInfo("a")), method_name(type("I", (), {"compress_type": 14})())
    ('stored', 'LZMA')
    """
    code = info.compress_type
    return READABLE.get(code) or _METHODS.get(code) or f"method {code}"


def check_member(info: zipfile.ZipInfo, container: str) -> None:
    """Refuse (FileProblems, 422) a member this app will not unpack: one protected by a password, or
    packed with any method but stored or deflated. `container` names what holds it in the message
    ("zip file", "workbook")."""
    name = info.filename
    again = "zip" if container == "zip file" else "save"
    if info.flag_bits & 0x1:
        raise FileProblems(
            [Problem(None, None, f'"{name}" in the {container} is protected by a password; {again} it without one')]
        )
    if info.compress_type not in READABLE:
        raise FileProblems(
            [
                Problem(
                    None,
                    None,
                    f'"{name}" in the {container} is packed with {method_name(info)}, which this app does not'
                    ' unpack (only "stored" and "deflated", what Excel and zip tools write by default); make it'
                    ' again with your system\'s own "compress" or "send to zip", or save the workbook again in Excel',
                )
            ]
        )


def check_members(members: Iterable[zipfile.ZipInfo], container: str) -> None:
    """`check_member` for every member: a zip is refused as a whole, before anything is unpacked."""
    for info in members:
        check_member(info, container)


class Budget:
    """Bytes that may still be unpacked, shared by every member read on it; TooLarge past it."""

    def __init__(self, limit: int, message: str) -> None:
        self.left = limit
        self.message = message
        self._furthest: dict[str, int] = {}

    def charge(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise TooLarge(self.message)

    def reached(self, member: str, position: int) -> None:
        """A member was unpacked up to `position`: what is past its furthest point so far is charged
        (reading a member again from its start, as the encoding check and the parser do, is not)."""
        furthest = self._furthest.get(member, 0)
        if position > furthest:
            self._furthest[member] = position
            self.charge(position - furthest)


def stream(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget, container: str) -> Iterator[bytes]:
    """The unpacked bytes of a member, CHUNK_BYTES at a time, each charged to `budget` (checked
    with `check_member` first, so no read unpacks more than a chunk's worth at once)."""
    check_member(info, container)
    with archive.open(info) as src:
        while chunk := src.read(CHUNK_BYTES):
            budget.charge(len(chunk))
            yield chunk


def open_checked(archive: zipfile.ZipFile, info: zipfile.ZipInfo, container: str) -> IO[bytes]:
    """`archive.open(info)` after `check_member`: the one way a member is opened for reading."""
    check_member(info, container)
    return archive.open(info)
