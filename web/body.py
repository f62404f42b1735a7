"""Request bodies of uploads: read off the wire in large pieces into memory, copied once.

Why: a 1,000,000-row upload is a 200 MB body. werkzeug's own multipart parser reads it 64 KiB at a
time (behind gunicorn every such read copies gunicorn's whole read-ahead buffer again), copies
each piece four times more while looking for the boundary, and writes the file part to a
temporary file that the upload then reads twice (encoding check, then parse). Here the body is
read 1 MiB at a time straight into one buffer of its announced length, the multipart body is
split where it lies, and the file part is handed on as a seekable view of that buffer
(docs/PERFORMANCE.md "Receiving an upload"). Bodies larger than IN_MEMORY_BYTES, of unknown
length, or not shaped as every browser and HTTP library sends them take werkzeug's own path,
so nothing is refused here that werkzeug would accept.

The limits are werkzeug's and Flask's: MAX_CONTENT_LENGTH (`MAX_UPLOAD_MB`, 413), the size of
a non-file field (`max_form_memory_size`, 413) and the number of parts (`max_form_parts`, 413).
"""

from __future__ import annotations

import errno
import io
import tempfile
from typing import IO

import flask
from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header

READ_BYTES = 1024 * 1024  # one read from the client; gunicorn's own read-ahead is at most this
IN_MEMORY_BYTES = 256 * 1024 * 1024  # larger bodies go to a temporary file, as werkzeug does
HEADER_BYTES = 16 * 1024  # the headers of one part (a name, a file name, a content type)


class MemoryFile(io.BufferedIOBase):
    """A read-only, seekable file over bytes in memory, without copying them (io.BytesIO copies
    anything but `bytes`)."""

    def __init__(self, data: bytes | bytearray | memoryview):
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._view)

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(self._pos + size, len(self._view))
        data = self._view[self._pos : end].tobytes()
        self._pos = max(self._pos, end)
        return data

    read1 = read

    def readinto(self, buffer) -> int:
        target = memoryview(buffer).cast("B")
        n = max(0, min(len(target), len(self._view) - self._pos))
        target[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    readinto1 = readinto

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        if base + offset < 0:
            # OSError, as a real file raises: zipfile.is_zipfile seeks 22 bytes back from the end
            # of a tiny upload and expects it (a ValueError answered a one-row upload with 500)
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


def read_exactly(stream: IO[bytes], length: int) -> bytearray:
    """`length` bytes from a (limited) request stream, into one buffer, READ_BYTES at a time.

    The stream is werkzeug's LimitedStream: a body that ends early raises ClientDisconnected there.
    """
    buffer = bytearray(length)
    view = memoryview(buffer)
    done = 0
    while done < length:
        n = stream.readinto(view[done : done + READ_BYTES])
        if not n:
            raise ClientDisconnected()
        done += n
    return buffer


def spool(stream: IO[bytes], length: int | None) -> IO[bytes]:
    """The whole body of a request as a seekable file: in memory up to IN_MEMORY_BYTES when its
    length is announced, else in a temporary file (which the limited stream still caps at
    MAX_CONTENT_LENGTH)."""
    if length is not None and length <= IN_MEMORY_BYTES:
        return MemoryFile(read_exactly(stream, length))
    spooled = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)  # noqa: SIM115 - closed by Request.close
    buffer = bytearray(READ_BYTES)
    while n := stream.readinto(buffer):
        spooled.write(memoryview(buffer)[:n])
    spooled.seek(0)
    return spooled  # type: ignore[return-value]


class BodyFormParser(FormDataParser):
    """werkzeug's form parser, with multipart bodies of a known length read into memory and split
    in place; anything else goes to werkzeug's parser."""

    def _parse_multipart(self, stream, mimetype, content_length, options):
        boundary = options.get("boundary", "").encode("ascii", "replace")
        if not boundary or content_length is None or content_length > IN_MEMORY_BYTES:
            return super()._parse_multipart(stream, mimetype, content_length, options)
        body = read_exactly(stream, content_length)
        try:
            form, files = self._split(body, boundary)
        except ValueError:  # not shaped as browsers send it: werkzeug's parser decides
            return super()._parse_multipart(MemoryFile(body), mimetype, content_length, options)
        return stream, form, files

    def _split(self, body: bytearray, boundary: bytes) -> tuple[MultiDict, MultiDict]:
        """The fields and files of a multipart body (RFC 7578), the files as views of `body`."""
        charset_of = MultiPartParser(max_form_memory_size=self.max_form_memory_size).get_part_charset
        fields, files = [], []
        for headers, start, end in multipart_parts(body, boundary, self.max_form_parts):
            disposition, options = parse_options_header(headers.get("content-disposition"))
            if disposition != "form-data" or "name" not in options:
                raise ValueError("a part without a form-data name")
            name, filename = options["name"], options.get("filename")
            if filename is None:
                if self.max_form_memory_size is not None and end - start > self.max_form_memory_size:
                    raise RequestEntityTooLarge()
                fields.append((name, bytes(body[start:end]).decode(charset_of(headers), "replace")))
            else:
                view = memoryview(body)[start:end]
                files.append((name, FileStorage(MemoryFile(view), filename, name, headers=headers)))
        return self.cls(fields), self.cls(files)


def multipart_parts(body: bytearray, boundary: bytes, max_parts: int | None) -> list[tuple[Headers, int, int]]:
    """(headers, start, end) of each part of a multipart body, found with bytes.find where it lies.

    Strict on purpose: CRLF line breaks and a closing delimiter, as browsers, curl, requests and
    werkzeug's test client write them. ValueError for anything else, which werkzeug's more lenient
    parser then reads.
    """
    dash = b"--" + boundary
    delimiter = b"\r\n" + dash
    if body.startswith(dash):
        pos = len(dash)
    else:  # a preamble before the first boundary
        found = body.find(delimiter)
        if found < 0:
            raise ValueError("no boundary")
        pos = found + len(delimiter)
    parts: list[tuple[Headers, int, int]] = []
    while not body.startswith(b"--", pos):
        line_end = body.find(b"\r\n", pos, pos + HEADER_BYTES)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise ValueError("no line break after a boundary")
        start = line_end + 2
        if body.startswith(b"\r\n", start):  # a part without headers
            head_end = line_end
        else:
            head_end = body.find(b"\r\n\r\n", start, start + HEADER_BYTES)
            if head_end < 0:
                raise ValueError("no end of a part's headers")
        # The delimiter's line break may be the second one of the blank line after the headers
        # (an empty value, as werkzeug's test client writes it): look for it from there.
        end = body.find(delimiter, head_end + 2)
        if end < 0:
            raise ValueError("no closing boundary")
        head, content = bytes(body[start:head_end]), min(head_end + 4, end)
        if max_parts is not None and len(parts) >= max_parts:
            raise RequestEntityTooLarge()
        parts.append((_headers(head), content, end))
        pos = end + len(delimiter)
    return parts


def _headers(head: bytes) -> Headers:
    """A part's header lines (continuation lines joined), as werkzeug reads them."""
    headers = Headers()
    for line in head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ").split(b"\r\n"):
        if not line:
            continue
        name, colon, value = line.decode().partition(":")
        if not colon:
            raise ValueError("a part header without a colon")
        headers.add(name.strip(" \t"), value.strip(" \t"))
    return headers


class Request(flask.Request):
    """Flask's request, with uploads received by this module (app.request_class)."""

    form_data_parser_class = BodyFormParser
    _body: IO[bytes] | None = None

    def body_file(self) -> IO[bytes]:
        """The raw request body as a seekable file (a file sent as the body, not as a form)."""
        if self._body is None:
            self._body = spool(self.stream, self.content_length)
        return self._body

    def close(self) -> None:
        """Close the files of the request (Flask calls this when the request ends)."""
        super().close()
        if self._body is not None:
            self._body.close()
