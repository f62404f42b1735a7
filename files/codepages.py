"""The code pages an upload may be in, by the names people know them: labels for pages and
messages, the names the upload's "Text encoding" field accepts, and the codec each is read with.
Pure Python (no Flask, no SQL); `files.encoding` decides which one a file is in.
"""

from __future__ import annotations

import codecs

LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 (little-endian, no BOM)",
    "utf-16-be": "UTF-16 (big-endian, no BOM)",
    "utf-32": "UTF-32",
    "utf-32-le": "UTF-32 (little-endian, no BOM)",
    "utf-32-be": "UTF-32 (big-endian, no BOM)",
    "cp1252": "Windows-1252",
    "cp1250": "Windows-1250",
    "cp1251": "Windows-1251",
    "cp1253": "Windows-1253",
    "cp1254": "Windows-1254",
    "cp1255": "Windows-1255",
    "cp1256": "Windows-1256",
    "cp1257": "Windows-1257",
    "iso8859_2": "ISO-8859-2",
    "iso8859_5": "ISO-8859-5",
    "iso8859_7": "ISO-8859-7",
    "iso8859_15": "ISO-8859-15",
    "iso8859_6": "ISO-8859-6",
    "iso8859_8": "ISO-8859-8",
    "iso8859_9": "ISO-8859-9",
    "iso8859_13": "ISO-8859-13",
    "koi8_r": "KOI8-R",
    "koi8_u": "KOI8-U",
    "mac_roman": "Mac Roman",
    "cp932": "Shift_JIS (Windows-31J)",
    "euc_jp": "EUC-JP",
    "gb18030": "GB18030 (GBK)",
    "cp949": "EUC-KR (Windows-949)",
    "cp950": "Big5 (Windows-950)",
}


def label(encoding: str) -> str:
    """The name a user knows an encoding by, for the review page.

    >>> label("utf-8-sig"), label("cp1251"), label("xlsx")
    ('UTF-8 with BOM', 'Windows-1251', 'xlsx')
    """
    return LABELS.get(encoding, encoding)


# The names people and programs give these code pages, and the codec each one is read with.
_CHOICES = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "ms932": "cp932",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "euc-kr": "cp949",
    "euc_kr": "cp949",
    "big5": "cp950",
    "utf8": "utf-8",
}


# The encodings the upload page suggests, as spreadsheets name them.
CHOICES = (
    "UTF-8",
    "windows-1252",
    "windows-1250",
    "windows-1251",
    "windows-1253",
    "windows-1254",
    "windows-1257",
    "ISO-8859-2",
    "KOI8-R",
    "macintosh",
    "Shift_JIS",
    "EUC-JP",
    "GBK",
    "Big5",
    "EUC-KR",
    "UTF-16",
)


def codec_name(name: str) -> str | None:
    """The codec for an encoding as a person names it (`Shift_JIS`, `windows-1252`, `KOI8-R`, `utf-8`), or None.

    >>> [codec_name(n) for n in ("Shift_JIS", "windows-1252", "KOI8-R", "GBK", "Big5", "UTF-8", "klingon")]
    ['cp932', 'cp1252', 'koi8_r', 'gb18030', 'cp950', 'utf-8', None]
    """
    wanted = name.strip().lower()
    if wanted in _CHOICES:
        return _CHOICES[wanted]
    try:
        info = codecs.lookup(wanted)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # base64, rot13, zlib: not text encodings
    codec = info.name.replace("-", "_")
    known = {n.replace("-", "_"): n for n in LABELS}
    return known.get(codec, known.get(_CHOICES.get(info.name, ""), info.name))


def unknown_encoding(name: str) -> str:
    """The message for an `encoding` field that names no encoding."""
    return (
        f"{name!r} is not an encoding this app knows; name it as your spreadsheet does, e.g. UTF-8,"
        " windows-1252, windows-1250, windows-1251, Shift_JIS, GBK, Big5, EUC-KR, KOI8-R, ISO-8859-2, macintosh"
    )
