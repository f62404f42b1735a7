"""File names: the one cleaning of a name a user's file brought in or a download goes out with.

Pure Python. An uploaded file's name is kept with its request and shown again (the API's
`filename`, the error file's name), and every download is named after a table, a version or such
an upload, so one rule serves both ways: no control characters (a CR or LF would end a header),
at most 255 characters. Quoting and encoding for HTTP are werkzeug's (`web.downloads`).
"""

from __future__ import annotations

import unicodedata

MAX_CHARS = 255  # what file systems hold


def clean_filename(name: str) -> str:
    """A file name without control characters (Unicode category C: CR, LF, NUL, tab, invisible
    format characters), at most 255 characters.

    >>> clean_filename("evil\\r\\nSet-Cookie: x.csv"), clean_filename("tab\\there\\x00.csv")
    ('evilSet-Cookie: x.csv', 'tabhere.csv')
    >>> clean_filename("таблица-v2.csv")
    'таблица-v2.csv'
    """
    return "".join(c for c in name if unicodedata.category(c)[0] != "C")[:MAX_CHARS]
