"""Which text encoding an uploaded CSV is in, and how sure we are. Pure Python (no Flask, no SQL).

Most files are UTF-8: they are recognised by decoding the stream once, chunk by chunk, and cost
nothing else. The rest were saved by a spreadsheet in the computer's legacy code page
(Windows-125x, ISO-8859-x, Mac Roman) and say nothing about which. For those, the non-ASCII words
of the file (a bounded sample) are decoded in every candidate code page, and each reading is
judged the way a person would: does it give words of one script with a plausible case pattern,
or symbol soup (`£ódŸ`, `Ìîñêâà`, `ZoÃ«`)? charset-normalizer measures the mess of each reading
and gives the letters each language uses most; the plausibility rules here decide. A reading that
wins on hard evidence is used as it is; when another code page reads the text differently and just
as plausibly (a Polish `Gdańsk` is `Gdañsk` in Windows-1252, both real letters) the reading is
*doubtful*: the upload is read with the likelier one and carries a warning that names the
encoding and cells to check (`files.csv_read`). A file no code page reads plausibly is refused
with a request for UTF-8. Never silent mojibake.

>>> import io
>>> detect(io.BytesIO("id,name\\r\\nRU-1,Москва\\r\\n".encode("cp1251"))).encoding
'cp1251'
>>> detect(io.BytesIO("id,name\\r\\nPL-1,Łódź\\r\\n".encode("cp1250"))).encoding
'cp1250'
>>> found = detect(io.BytesIO("id,name\\r\\nPL-1,Gdańsk\\r\\n".encode("cp1250")))
>>> found.encoding, found.alternatives[:1]
('cp1252', ('cp1250',))
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from charset_normalizer.constant import FREQUENCIES
from charset_normalizer.md import mess_ratio

from files.problems import FileProblems, Problem

SAMPLE_BYTES = 256 * 1024
CHUNK_BYTES = 1024 * 1024
MAX_WORDS = 1000  # distinct non-ASCII words judged per candidate code page
MAX_SAMPLED_BYTES = 4 * 1024 * 1024  # words are collected from this much of the file (its bytes: from all)
MIN_FIT = 0.5  # a non-Latin reading whose letters fit no language this well is wrong (see _fit)
FIT_MARGIN = 0.2  # a reading in another script whose letters fit a language this much worse is no rival
MESS_LIMIT = 0.2  # charset-normalizer's own limit: a reading messier than this is not the encoding
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
# The code pages spreadsheets save "CSV" in, most common first: a tie between decodings that are
# equally plausible goes to the earlier one (and is reported as doubtful).
LEGACY = (
    "cp1252",  # Windows Western (Excel's "CSV (Comma delimited)" in Western Europe and the Americas)
    "cp1250",  # Windows Central European: Polish, Czech, Slovak, Hungarian, Croatian, Slovene, Romanian
    "cp1251",  # Windows Cyrillic: Russian, Ukrainian, Bulgarian, Serbian
    "cp1253",  # Windows Greek
    "iso8859_7",  # ISO Greek
    "cp1254",  # Windows Turkish
    "cp1257",  # Windows Baltic
    "iso8859_2",  # ISO Central European
    "iso8859_15",  # ISO Western with the euro sign
    "cp1255",  # Windows Hebrew
    "cp1256",  # Windows Arabic
)
MAC = "mac_roman"  # Excel for Mac's "CSV (Macintosh)", whose lines end in a lone CR: only for such files
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
    "koi8_r": "KOI8-R",
    "mac_roman": "Mac Roman",
}
NOT_TEXT = (
    "is neither UTF-8 nor Windows-1252 text from this line on, nor any other code page a spreadsheet"
    " writes (is it a binary file?); save the table as CSV UTF-8 and upload that"
)
MIXED = (
    "is not UTF-8 text from this line on, though the text before it is (was the file pasted together"
    " from files in two encodings?); save the table as CSV UTF-8 and upload that"
)
_ASCII = bytes(range(128))
_FROM_HIGH = re.compile(rb"[\x80-\xff][A-Za-z\x80-\xff]*")  # a word from its first non-ASCII byte on
_WORD_BYTES = bytes(range(65, 91)) + bytes(range(97, 123)) + bytes(range(128, 256))
_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "HEBREW", "ARABIC", "ARMENIAN", "GEORGIAN", "THAI"})
# Punctuation and symbols that real text puts right next to letters: quotes, apostrophes, degrees,
# ordinals, trade marks, currency, Spanish ¿¡, dashes, superscripts and fractions (m², 1½).
_NEXT_TO_LETTERS = frozenset("«»„“”‘’‚‹›'\"°ºª™®©€£¥¢$¿¡…–—‐‑·²³¹½¼¾%‰†*•")
_BETWEEN_LETTERS = frozenset("’‘'·‐‑")  # l’été, col·lecció, Jean‐Luc
_FINAL_FORMS = frozenset("ςךםןףץ")  # Greek final sigma, Hebrew final letters: only at a word's end
# Words of these scripts have vowels (capitals aside, like ФСБ): Greek bytes read as Cyrillic (Βόλος as Вьлпт) lack them.
_VOWELS = {"CYRILLIC": frozenset("аеёиоуыэюяіїєў"), "GREEK": frozenset("αεηιουωάέήίόύώϊϋΐΰ")}
# Each language's ten most used letters, and the rest of its most used ones (charset-normalizer's tables).
_LANGUAGE_LETTERS = [(frozenset(letters[:10]), frozenset(letters[10:])) for letters in FREQUENCIES.values()]


def label(encoding: str) -> str:
    """The name a user knows an encoding by, for the review page.

    >>> label("utf-8-sig"), label("cp1251"), label("xlsx")
    ('UTF-8 with BOM', 'Windows-1251', 'xlsx')
    """
    return LABELS.get(encoding, encoding)


@dataclass(frozen=True)
class Detected:
    """The encoding a file is read in; `alternatives`, when there are any, read its non-ASCII text
    differently and just as plausibly, and `garbled` are words that look wrong even so: then the
    reading is a guess the review page must warn about."""

    encoding: str
    alternatives: tuple[str, ...] = ()
    garbled: tuple[str, ...] = field(default=(), compare=False)

    @property
    def doubtful(self) -> bool:
        return bool(self.alternatives or self.garbled)


def detect(stream: IO[bytes]) -> Detected:
    """The encoding of an uploaded text file: BOM first, else UTF-8 if every byte decodes, else the
    most plausible legacy code page.

    Reads the whole stream once in chunks and rewinds it. Raises FileProblems for empty files,
    known binary formats (PDF, images, zip), files with NUL bytes (binary), and bytes that no
    code page reads as plausible text. Other control characters are left for the cell check,
    which names their line and column.
    """
    head = stream.read(SAMPLE_BYTES)
    stream.seek(0)
    if not head:
        raise FileProblems([Problem(None, None, "the file is empty")])
    for magic, what in _SIGNATURES.items():
        if head.startswith(magic):
            raise FileProblems(
                [Problem(1, None, f"this is {what}, not a CSV file; save it as CSV UTF-8 and upload that")]
            )
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return Detected("utf-32")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Detected("utf-16")
    if wide := _bomless_wide(head[:64]):
        return Detected(wide)
    nuls = head.count(0)
    if nuls * 100 > len(head) or (nuls > 2 and nuls * 1000 > len(head)):  # one stray NUL: the cell check's business
        raise FileProblems(
            [
                Problem(
                    _line_at(head, _binary_start(head)),
                    None,
                    "this is a binary file, not CSV text (it has NUL bytes, which text never has); "
                    "save the table as CSV UTF-8 and upload that",
                )
            ]
        )
    encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        while chunk := stream.read(CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return _legacy(stream, offset + exc.start)
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return _legacy(stream, offset - 1)
    finally:
        stream.seek(0)
    return Detected(encoding)


def _bomless_wide(head: bytes) -> str | None:
    """UTF-16 or UTF-32 without a BOM: ASCII text whose every other (or three in four) bytes are NUL."""
    for width, name in ((4, "utf-32"), (2, "utf-16")):
        head = head[: len(head) - len(head) % width]
        if len(head) < 4 * width:
            continue
        low, high = head[0::width], b"".join(head[i::width] for i in range(1, width))
        if not high.strip(b"\x00") and b"\x00" not in low:
            return f"{name}-le"
        low, high = head[width - 1 :: width], b"".join(head[i::width] for i in range(width - 1))
        if not high.strip(b"\x00") and b"\x00" not in low:
            return f"{name}-be"
    return None


def _binary_start(head: bytes) -> int:
    """Where text stops: the first NUL, or the first byte that is not UTF-8, if earlier."""
    nul = head.find(0)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return min(nul, exc.start)
    return nul


# --- legacy code pages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Decoding:
    """One candidate code page's reading of the sample words, and how plausible it is."""

    encoding: str
    words: tuple[str, ...]
    odd: tuple[str, ...]  # words that look like a wrong decoding
    mess: float  # charset-normalizer's mess ratio of the whole reading
    script: str  # the script of most of its non-ASCII letters
    fit: float  # how well its non-ASCII letters match the most used letters of one language (_fit; 1 for Latin)


def _legacy(stream: IO[bytes], bad_utf8: int) -> Detected:
    """The code page of a file that is not UTF-8 (its first non-UTF-8 byte at `bad_utf8`)."""
    stream.seek(0)
    words, high, lone_cr = _sample(stream)
    preference = (MAC, *LEGACY) if lone_cr else LEGACY
    present = bytes(sorted(high))
    decodings = []
    for encoding in preference:
        try:
            present.decode(encoding)  # a byte the code page lacks anywhere in the file rules it out
        except UnicodeDecodeError:
            continue
        decodings.append(judge(encoding, words))
    if not decodings:
        raise FileProblems([Problem(_line_of_offset(stream, bad_utf8), None, NOT_TEXT)])
    best = _most_plausible(decodings)
    if len(best.odd) * 4 > len(words):
        utf8 = sum(_is_utf8(w) for w in words)
        message = MIXED if utf8 * 2 > len(words) else NOT_TEXT
        raise FileProblems([Problem(_line_of_offset(stream, bad_utf8), None, message)])
    alternatives = tuple(r.encoding for r in decodings if r is not best and _as_plausible(r, best))
    return Detected(best.encoding, alternatives, best.odd)


def _most_plausible(decodings: list[Decoding]) -> Decoding:
    """The reading with the fewest odd words (and not messy); between scripts (Greek bytes read as
    Cyrillic letters), the one whose letters fit a language best; else the earliest code page."""
    rank = min(_rank(r) for r in decodings)
    by_script: dict[str, Decoding] = {}
    for r in decodings:
        if _rank(r) == rank:
            by_script.setdefault(r.script, r)
    return max(by_script.values(), key=lambda r: r.fit)  # ties: the earlier code page


def _rank(decoding: Decoding) -> tuple[int, bool]:
    """Lower is more plausible: fewer odd words, then not messier than charset-normalizer accepts."""
    return len(decoding.odd), decoding.mess >= MESS_LIMIT


def _sample(stream: IO[bytes]) -> tuple[list[bytes], set[int], bool]:
    """(up to MAX_WORDS distinct words with non-ASCII bytes, every non-ASCII byte in the file, do
    lines end in a lone CR?), reading the stream once from where it is."""
    words: dict[bytes, None] = {}
    high: set[int] = set()
    carry = b""
    first = True
    lone_cr = False
    sampled = 0
    while chunk := stream.read(CHUNK_BYTES):
        if first:
            lone_cr = b"\r" in chunk and b"\n" not in chunk
            first = False
        high.update(chunk.translate(None, _ASCII))
        sampled += len(chunk)
        if len(words) < MAX_WORDS and sampled <= MAX_SAMPLED_BYTES + CHUNK_BYTES:
            text = carry + chunk
            cut = len(text.rstrip(_WORD_BYTES)) or len(text)  # a word cut off at the chunk's end: next time
            carry = text[cut:][-256:]
            _add_words(words, text, cut)
    if carry and len(words) < MAX_WORDS:
        _add_words(words, carry, len(carry))
    return list(words)[:MAX_WORDS], high, lone_cr


def _add_words(words: dict[bytes, None], text: bytes, end: int) -> None:
    """Add the words of text[:end] that have non-ASCII bytes (found from those bytes: linear time)."""
    for match in _FROM_HIGH.finditer(text, 0, end):
        start = match.start()
        before = text[max(0, start - 64) : start]
        begin = start - (len(before) - len(before.rstrip(_WORD_BYTES)))
        words.setdefault(text[begin : match.end()][:64], None)
        if len(words) >= MAX_WORDS:
            return


def judge(encoding: str, words: Iterable[bytes]) -> Decoding:
    """How plausible the text is when these words are read in `encoding`."""
    decoded = tuple(w.decode(encoding, "replace") for w in words)
    letters = [c.lower()[:1] for w in decoded for c in w if not c.isascii() and c.isalpha()]
    scripts: dict[str, int] = {}
    for c in letters:
        scripts[_script(c)] = scripts.get(_script(c), 0) + 1
    script = max(scripts, key=scripts.__getitem__) if scripts else "LATIN"  # no letters: among the ASCII ones
    # Letter frequencies tell scripts apart (Greek bytes read as Cyrillic letters give rarely used ones),
    # but not the Latin code pages, which differ in rarer accented letters: those compete on odd words.
    fit = max(_fit(letters, top, rest) for top, rest in _LANGUAGE_LETTERS) if letters and script != "LATIN" else 1.0
    rare = fit < MIN_FIT  # letters no language uses much: not this script
    return Decoding(
        encoding=encoding,
        words=decoded,
        odd=decoded if rare else tuple(w for w in decoded if odd_word(w)),
        mess=mess_ratio(" ".join(decoded), 1.0) if decoded else 0.0,
        script=script,
        fit=fit,
    )


def _fit(letters: list[str], top: frozenset[str], rest: frozenset[str]) -> float:
    """How well letters match a language's: 1 for each of its ten most used letters, ½ for the rest
    of its most used ones, 0 for a letter it rarely uses; averaged. Real text scores about 0.75 and
    more, bytes of one script read as another about 0.6 and less."""
    return sum(1.0 if c in top else 0.5 if c in rest else 0.0 for c in letters) / len(letters)


def _as_plausible(other: Decoding, best: Decoding) -> bool:
    """Could `other` be the right reading as well as `best`? Not when it reads the same, has more
    odd words, or gives another script whose letters fit a language clearly worse. Within one script
    messiness is no evidence: charset-normalizer finds Windows-1252's `Ñandú Zoë` messier than
    Windows-1257's `Ńandś Zoė` (tests/test_fuzz.py), so such readings stay rivals."""
    if other.words == best.words or len(other.odd) > len(best.odd):
        return False
    if other.script == best.script:
        return True
    return _rank(other) <= _rank(best) and other.fit > best.fit - FIT_MARGIN


def odd_word(word: str) -> str | None:
    """Why a decoded word looks like a wrong decoding (mojibake), or None when it looks like a word.

    >>> [odd_word(w) for w in ("Łódź", "Москва", "l’été", "m²", "«Αθήνα»", "£ódŸ", "Ìîñêâà", "ZoÃ«")]
    [None, None, None, None, None, 'case', 'accented', 'case']
    >>> [odd_word(w) for w in ("Za¿ó³æ", "Gdaсsk", "Μξρκβς", "ςα", "Caf\\x8e", "Вьлпт", "ФСБ")]
    ['symbol', 'mixed scripts', 'no vowels', 'final form', 'control', 'no vowels', None]
    """
    scripts = set()
    latin_letters = ascii_letters = 0
    previous = ""
    for i, c in enumerate(word):
        category = unicodedata.category(c)
        if category in ("Cc", "Cn", "Co", "Cs") or c == "\ufffd":
            return "control"
        if category[0] in "LM":
            script = _script(c)
            if script in _SCRIPTS:
                scripts.add(script)
            if category[0] == "L":
                latin_letters += script == "LATIN"
                ascii_letters += c.isascii()
                if c.isupper() and not c.isascii() and previous.islower():
                    return "case"
                if previous in _FINAL_FORMS:
                    return "final form"
        else:
            before, after = previous.isalpha(), word[i + 1 : i + 2].isalpha()
            if (before and after and c not in _BETWEEN_LETTERS) or ((before or after) and c not in _NEXT_TO_LETTERS):
                return "symbol"
        previous = c
    if len(scripts) > 1:
        return "mixed scripts"
    if latin_letters >= 3 and not ascii_letters:
        return "accented"
    vowels = _VOWELS.get(next(iter(scripts), ""))
    if vowels and not word.isupper() and sum(c.isalpha() for c in word) >= 3 and not vowels & set(word.lower()):
        return "no vowels"
    return None


def _is_utf8(word: bytes) -> bool:
    try:
        word.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _script(c: str) -> str:
    try:
        return unicodedata.name(c).split(" ", 1)[0]
    except ValueError:
        return ""


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
