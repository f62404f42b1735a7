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
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import IO

import chardet
from charset_normalizer.constant import FREQUENCIES
from charset_normalizer.md import mess_ratio

from files.codepages import codec_name, label, unknown_encoding
from files.problems import FileProblems, Problem

SAMPLE_BYTES = 256 * 1024
CHUNK_BYTES = 1024 * 1024
MAX_WORDS = 1000  # distinct non-ASCII words judged per candidate code page
MAX_SAMPLED_BYTES = 4 * 1024 * 1024  # words are collected from this much of the file (its bytes: from all)
MIN_FIT = 0.5  # a non-Latin reading whose letters fit no language this well is wrong (see _fit)
FIT_MARGIN = 0.2  # a reading in another script whose letters fit a language this much worse is no rival
MESS_LIMIT = 0.2  # charset-normalizer's own limit: a reading messier than this is not the encoding
ALL_CAPS_PENALTY = 0.25  # of the fit of a reading whose every non-ASCII letter is a capital (see judge)
MESS_MIN_LETTERS = 40  # non-ASCII letters below which the mess ratio is not asked (see judge)
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
    "koi8_r",  # Russian on Unix and in old e-mail
    "koi8_u",  # Ukrainian on Unix
    "iso8859_5",  # ISO Cyrillic
    "iso8859_9",  # ISO Turkish
    "iso8859_13",  # ISO Baltic
    "iso8859_8",  # ISO Hebrew
    "iso8859_6",  # ISO Arabic
)
# Excel's "CSV" in East Asia: code pages of two bytes a character, whose trailing byte may be an
# ASCII one; a file is read in one of them only when all of its sample decodes (and then all of it).
MULTIBYTE = (
    "cp932",  # Japanese (Shift_JIS as Windows writes it)
    "gb18030",  # Simplified Chinese (GBK and its extension GB18030)
    "cp949",  # Korean (EUC-KR as Windows extends it)
    "cp950",  # Traditional Chinese (Big5 as Windows writes it)
    "euc_jp",  # Japanese on Unix
)
# How much likelier a file is in these code pages than in others, where a few words fit languages
# of several equally well (Noël, or Noėl in Lithuanian): Windows-1252 is Excel's CSV in most of
# Europe and the Americas. docs/ENCODINGS.md: what it costs the Baltic and Turkish few-word files.
PRIOR = {"cp1252": 3.0}
MAC_MIN_FIT = 0.75  # the fit to a language (_latin_fit) of a Mac Roman reading of a file without lone CRs
MAC = "mac_roman"  # Excel for Mac's "CSV (Macintosh)": first choice for a file whose lines end in a lone CR
NOT_TEXT = (
    "is neither UTF-8 nor Windows-1252 text from this line on, nor any other code page a spreadsheet"
    " writes (is it a binary file?); if you know its encoding, choose it in the upload's “Text encoding”"
    " field, else save the table as CSV UTF-8 and upload that"
)
MIXED = (
    "is not UTF-8 text from this line on, though the text before it is (was the file pasted together"
    " from files in two encodings?); save the table as CSV UTF-8 and upload that"
)
_ASCII = bytes(range(128))
_SCRIPTS = frozenset({"CJK", "LATIN", "CYRILLIC", "GREEK", "HEBREW", "ARABIC", "ARMENIAN", "GEORGIAN", "THAI"})
# Punctuation and symbols that real text puts right next to letters: quotes, apostrophes, degrees,
# ordinals, trade marks, currency, Spanish ¿¡, dashes, superscripts and fractions (m², 1½).
_NEXT_TO_LETTERS = frozenset("«»„“”‘’‚‹›'\"°ºª™®©€£¥¢$¿¡…–—‐‑·²³¹½¼¾%‰†*•")
_TYPOGRAPHIC = frozenset("«»„“”‘’‚‹›°ºª™®©€£¥¢¿¡…–—‐‑·²³¹½¼¾§×µ")  # symbols text has; two others: soup
_QUOTES = frozenset("«»„“”‘’‚‹›–—…")
_BETWEEN_LETTERS = frozenset("’‘'·‐‑")  # l’été, col·lecció, Jean‐Luc
_BICAMERAL = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN"})  # scripts with capitals
_FINAL_FORMS = frozenset("ςךםןףץ")  # Greek final sigma, Hebrew final letters: only at a word's end
# Words of these scripts have vowels (capitals aside, like ФСБ): Greek bytes read as Cyrillic (Βόλος as Вьлпт) lack them.
_VOWELS = {"CYRILLIC": frozenset("аеёиоуыэюяіїєў"), "GREEK": frozenset("αεηιουωάέήίόύώϊϋΐΰ")}
# Each language's ten most used letters, and the rest of its most used ones (charset-normalizer's tables).
_LANGUAGE_LETTERS = [(frozenset(letters[:10]), frozenset(letters[10:])) for letters in FREQUENCIES.values()]


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
    if what := _markup(head):
        raise FileProblems(
            [Problem(1, None, f"this is {what}, not a CSV file; save the table as CSV UTF-8 or .xlsx and upload that")]
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


_MARKUP = (  # a text file of tags: what a spreadsheet saved instead of CSV, by what its start says
    (b"urn:oasis:names:tc:opendocument", "a LibreOffice flat XML spreadsheet (.fods)"),
    (b"urn:schemas-microsoft-com:office:spreadsheet", "an Excel 2003 XML spreadsheet"),
    (b"<html", "a web page (HTML: Excel's or LibreOffice's “Web Page”, or a table saved from a browser)"),
    (b"<!doctype html", "a web page (HTML: Excel's or LibreOffice's “Web Page”, or a table saved from a browser)"),
    (b"<table", "a web page (HTML: a table copied from a browser)"),
    (b"<?xml", "an XML file"),
)


def _markup(head: bytes) -> str | None:
    """What a file of tags is (`.fods`, Excel 2003 XML, HTML), or None for a file that does not start with `<`.

    >>> _markup(b'<?xml version="1.0"?>\\n<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0">')
    'a LibreOffice flat XML spreadsheet (.fods)'
    >>> _markup(b"\\xef\\xbb\\xbf<!DOCTYPE html><html>"), _markup(b"id,name")
    ("a web page (HTML: Excel's or LibreOffice's “Web Page”, or a table saved from a browser)", None)
    """
    start = head.removeprefix(codecs.BOM_UTF8).lstrip()[:4096].lower()
    if not start.startswith(b"<"):
        return None
    return next((what for mark, what in _MARKUP if mark in start), None)


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
    fit: float  # how well its non-ASCII letters match the most used letters of one language (_fit, _latin_fit)
    score: float = 0.0  # chardet's confidence in the code page for these bytes (_statistics)


def _legacy(stream: IO[bytes], bad_utf8: int) -> Detected:
    """The code page of a file that is not UTF-8 (its first non-UTF-8 byte at `bad_utf8`)."""
    stream.seek(0)
    cells, high, lone_cr = _sample(stream)
    preference = (MAC, *LEGACY, *MULTIBYTE) if lone_cr else (*LEGACY, *MULTIBYTE, MAC)
    present = bytes(sorted(high))
    decodings = []
    for encoding in preference:
        if encoding not in MULTIBYTE:
            try:
                present.decode(encoding)  # a byte the code page lacks anywhere in the file rules it out
            except UnicodeDecodeError:
                continue
        decoding = judge(encoding, cells)
        if decoding is None or (encoding == MAC and not lone_cr and decoding.fit < MAC_MIN_FIT):
            continue  # Mac Roman's letters (Åç) without Excel for Mac's line ends: only when they fit a language
        decodings.append(decoding)
    scores = _statistics(cells)
    # a reading once: with the code page that finds it most plausible (テスト is kana in EUC-JP and,
    # rarely used, in GB18030), else the first, and the best score of any code page giving it
    same: dict[tuple[str, ...], Decoding] = {}
    for d in decodings:
        score = scores.get(d.encoding, 0.0) * PRIOR.get(d.encoding, 1.0)
        if (kept := same.get(d.words)) is None:
            same[d.words] = replace(d, score=score)
        else:
            same[d.words] = replace(d if _rank(d) < _rank(kept) else kept, score=max(score, kept.score))
    decodings = list(same.values())
    while decodings:
        best = _most_plausible(decodings)
        if best.encoding in MULTIBYTE and not _decodes_all(stream, best.encoding):
            decodings.remove(best)  # the sample decodes, a later part of the file does not
            continue
        break
    else:
        raise FileProblems([Problem(_line_of_offset(stream, bad_utf8), None, NOT_TEXT)])
    if len(best.odd) * 4 > len(best.words):
        utf8 = sum(_is_utf8(c) for c in cells)
        message = MIXED if utf8 * 2 > len(cells) else NOT_TEXT
        raise FileProblems([Problem(_line_of_offset(stream, bad_utf8), None, message)])
    rivals = sorted(
        (r for r in decodings if r is not best and _as_plausible(r, best)),
        key=lambda r: (_rank(r), -r.score, -_cross_fit(r)),  # the most plausible alternative first
    )
    readings = {best.words}
    alternatives = []
    for rival in rivals:  # one code page for each other reading (Windows-1252 reads as ISO-8859-15 does)
        if rival.words not in readings and (rival.encoding not in MULTIBYTE or _decodes_all(stream, rival.encoding)):
            readings.add(rival.words)
            alternatives.append(rival.encoding)
    alternatives = tuple(alternatives)
    return Detected(best.encoding, alternatives, best.odd)


def _decodes_all(stream: IO[bytes], encoding: str) -> bool:
    """Does the whole stream decode in `encoding` (a multi-byte code page: its sample may, the rest not)?"""
    return _first_undecodable(stream, encoding) is None


def _first_undecodable(stream: IO[bytes], encoding: str) -> int | None:
    """The offset of the first byte the stream cannot be read at in `encoding`, or None; rewinds it."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    stream.seek(0)
    try:
        while chunk := stream.read(CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return max(0, offset + exc.start)
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return max(0, offset - 1)
        return None
    finally:
        stream.seek(0)


def chosen(stream: IO[bytes], name: str) -> Detected:
    """The encoding a person named for their file (the `encoding` field), checked against all of it.

    Raises FileProblems naming the first line that is no text in that encoding.

    >>> import io
    >>> chosen(io.BytesIO("id,name\\r\\nJP-1,東京\\r\\n".encode("cp932")), "Shift_JIS").encoding
    'cp932'
    """
    encoding = codec_name(name)
    if encoding is None:
        raise FileProblems([Problem(None, None, unknown_encoding(name))])
    if encoding == "utf-8" and stream.read(3) == codecs.BOM_UTF8:
        encoding = "utf-8-sig"  # the mark is no part of the first column's name
    stream.seek(0)
    bad = _first_undecodable(stream, encoding)
    if bad is not None:
        raise FileProblems(
            [
                Problem(
                    _line_of_offset(stream, bad),
                    None,
                    f"is not {label(encoding)} text from this line on, though you said the file is in that"
                    " encoding; choose another encoding, or leave it empty to let the app find it",
                )
            ]
        )
    return Detected(encoding)


def _most_plausible(decodings: list[Decoding]) -> Decoding:
    """The reading with the fewest odd words (and not messy); of those, the one whose letters fit a
    language best (Greek bytes read as Cyrillic letters do not, nor déjŕ); else the earliest code page."""
    rank = min(_rank(r) for r in decodings)
    return max((r for r in decodings if _rank(r) == rank), key=lambda r: (_cross_fit(r), r.score))  # ties: the earlier


def _cross_fit(decoding: Decoding) -> float:
    """The fit compared across scripts: a Latin reading's accents are few and rare letters, so any
    plausible one counts as fitting; within Latin readings their fit to a language counts."""
    return decoding.fit + (1.0 if decoding.script == "LATIN" else 0.0)


# chardet's names for the code pages it scores, where they are not the ones read with here
_FAMILY = {
    "euc_kr": "cp949",
    "big5": "cp950",
    "big5hkscs": "cp950",
    "shift_jis": "cp932",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "euc_jis_2004": "euc_jp",
    "shift_jis_2004": "cp932",
    "latin_1": "cp1252",
    "iso8859_1": "cp1252",
    "mac_roman": "mac_roman",
}


def _statistics(cells: list[bytes]) -> dict[str, float]:
    """chardet's confidence in each code page for the sampled cells: its models of each language's
    byte pairs order the readings that the rules here find equally plausible (Vásárlás in
    Windows-1250 rather than Vįsįrlįs in Windows-1257, 서울 rather than 벧웩 in GBK)."""
    scores: dict[str, float] = {}
    for found in chardet.detect_all(b"\n".join(cells), ignore_threshold=True, compat_names=False):
        name = found.get("encoding")
        if not name:
            continue
        try:
            codec = codecs.lookup(name).name.replace("-", "_")
        except LookupError:
            continue
        codec = _FAMILY.get(codec, codec)
        scores[codec] = max(scores.get(codec, 0.0), float(found.get("confidence") or 0.0))
    return scores


def _rank(decoding: Decoding) -> tuple[float, bool]:
    """Lower is more plausible: a smaller share of odd words, then not messier than charset-normalizer accepts."""
    return len(decoding.odd) / max(1, len(decoding.words)), decoding.mess >= MESS_LIMIT


_CUTS = b"\r\n,;\t"  # bytes that end a cell in every code page here (never the second byte of a character)
_HIGH = re.compile(rb"[\x80-\xff]")
MAX_CELL_BYTES = 256  # of a cell's text around its first non-ASCII byte


def _sample(stream: IO[bytes]) -> tuple[list[bytes], set[int], bool]:
    """(up to MAX_WORDS distinct cells with non-ASCII bytes, every non-ASCII byte in the file, do
    lines end in a lone CR?), reading the stream once from where it is.

    Cells, not words, because a two-byte code page's second byte may be an ASCII one (`表` is
    `\\x95\\` in Shift_JIS): the cells are cut only at bytes no code page here uses that way."""
    cells: dict[bytes, None] = {}
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
        if len(cells) < MAX_WORDS and sampled <= MAX_SAMPLED_BYTES + CHUNK_BYTES:
            text = carry + chunk
            cut = max(text.rfind(bytes([b])) for b in _CUTS) + 1  # the cell cut off at the end: next time
            if not cut and len(text) > 4 * MAX_CELL_BYTES:
                cut = len(text)  # no cell ends here: a long text, judged in pieces
            carry = text[cut:]
            _add_cells(cells, text, cut)
    if carry and len(cells) < MAX_WORDS:
        _add_cells(cells, carry, len(carry))
    return list(cells)[:MAX_WORDS], high, lone_cr


def _add_cells(cells: dict[bytes, None], text: bytes, end: int) -> None:
    """Add the cells of text[:end] that have non-ASCII bytes (found from those bytes: linear time)."""
    position = 0
    while len(cells) < MAX_WORDS and (match := _HIGH.search(text, position, end)):
        start = match.start()
        low = max(0, start - MAX_CELL_BYTES)
        begin = max(text.rfind(bytes([b]), low, start) for b in _CUTS) + 1 or low
        stop = min((i for b in _CUTS if (i := text.find(bytes([b]), start, end)) >= 0), default=end)
        cells.setdefault(text[begin : min(stop, begin + MAX_CELL_BYTES)], None)
        position = max(stop, start + 1)


_WORD = re.compile(r"[A-Za-z]*[^\x00-\x7f][^\x00-\x40\x5b-\x60\x7b-\x7f]*")  # letters and non-ASCII, from one of those


def judge(encoding: str, cells: Iterable[bytes]) -> Decoding | None:
    """How plausible the text is when these cells are read in `encoding` (None: they are no text in it)."""
    found: dict[str, None] = {}
    for cell in cells:
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(cell)  # a character cut off at the end: left out
        except UnicodeDecodeError:
            if encoding in MULTIBYTE:
                return None
            text = cell.decode(encoding, "replace")
        for word in _WORD.findall(text):
            found.setdefault(word[:64], None)
    decoded = tuple(found)[:MAX_WORDS]
    letters = [c.lower()[:1] for w in decoded for c in w if not c.isascii() and c.isalpha()]
    scripts: dict[str, int] = {}
    for c in letters:
        scripts[_script(c)] = scripts.get(_script(c), 0) + 1
    script = max(scripts, key=scripts.__getitem__) if scripts else "LATIN"  # no letters: among the ASCII ones
    # Letter frequencies tell scripts apart (Greek bytes read as Cyrillic letters give rarely used ones),
    # but not the Latin code pages, which differ in rarer accented letters: those compete on odd words.
    # Between Latin readings of a few words (déjà as déjŕ) it only breaks a tie: an accented letter
    # a language uses often (à in French) against one that no language does (ŕ).
    if script == "CJK":
        fit = sum(_common_cjk(c, encoding) for c in letters) / len(letters)
    elif script == "LATIN":
        fit = _latin_fit(decoded)
    elif letters:
        fit = max(_fit(letters, top, rest) for top, rest in _LANGUAGE_LETTERS)
    else:
        fit = 1.0
    if script in _BICAMERAL and len(letters) >= 2 and all(c.isupper() for w in decoded for c in w if not c.isascii()):
        fit -= ALL_CAPS_PENALTY  # ЮБЦДЕ: Hebrew or lower-case KOI8-R bytes read in a code page with capitals there
    rare = fit < MIN_FIT and script != "LATIN"  # letters no language uses much: not this script
    text = " ".join(decoded)
    return Decoding(
        encoding=encoding,
        words=decoded,
        odd=decoded if rare else tuple(w for w in decoded if odd_word(w, encoding)),
        # charset-normalizer's measure needs text to judge: on a few words it calls Vásárlás a mess
        mess=mess_ratio(text, 1.0) if len(letters) >= MESS_MIN_LETTERS else 0.0,
        script=script,
        fit=fit,
    )


# The accented letters of the languages written in Latin letters that these code pages serve.
_LATIN_ACCENTS = [
    frozenset(letters)
    for letters in (
        "àâæçéèêëîïôœùûüÿ",  # French
        "äöüß",  # German
        "áéíñóúü",  # Spanish
        "áâãàçéêíóôõú",  # Portuguese
        "àèéìíîòóùú",  # Italian
        "àçèéíïòóúü",  # Catalan
        "ëïéèöü",  # Dutch
        "æøåéäö",  # Danish, Norwegian, Swedish, Finnish
        "áðéíóúýþæö",  # Icelandic
        "ąćęłńóśźż",  # Polish
        "áčďéěíňóřšťúůýž",  # Czech
        "áäčďéíĺľňóôŕšťúýž",  # Slovak
        "áéíóöőúüű",  # Hungarian
        "ăâîșțşţ",  # Romanian
        "čćđšž",  # Croatian, Slovene, Bosnian
        "çğıiöşüâî",  # Turkish (İ is i in lower case)
        "ąčęėįšųūž",  # Lithuanian
        "āčēģīķļņšūž",  # Latvian
        "äöõüšž",  # Estonian
        "çë",  # Albanian
    )
]


def _latin_fit(words: Iterable[str]) -> float:
    """How well the accented letters of a Latin reading fit one language's: the share of its
    non-ASCII characters that are letters of that language (a symbol counts against it).

    >>> _latin_fit(["déjà", "Hélène"]), _latin_fit(["où"]), _latin_fit(["V·s·rl·s"])
    (1.0, 1.0, 0.0)
    """
    chars = [c.lower()[:1] for w in words for c in w if not c.isascii() and c not in _QUOTES]
    if not chars:
        return 1.0
    return max(sum(c in accents for c in chars) for accents in _LATIN_ACCENTS) / len(chars)


def _fit(letters: list[str], top: frozenset[str], rest: frozenset[str]) -> float:
    """How well letters match a language's: 1 for each of its ten most used letters, ½ for the rest
    of its most used ones, 0 for a letter it rarely uses; averaged. Real text scores about 0.75 and
    more, bytes of one script read as another about 0.6 and less."""
    return sum(1.0 if c in top else 0.5 if c in rest else 0.0 for c in letters) / len(letters)


def _as_plausible(other: Decoding, best: Decoding) -> bool:
    """Could `other` be the right reading as well as `best`? Not when it reads the same, has more
    odd words, or gives another script whose letters fit a language clearly worse."""
    if other.words == best.words or _rank(other) > _rank(best):
        return False
    if "CJK" in (other.script, best.script):
        return True  # two bytes as one character or as two letters: the letters do not tell (Київ, 疏库)
    return other.script == best.script or other.fit > best.fit - FIT_MARGIN


def odd_word(word: str, encoding: str = "") -> str | None:
    """Why a decoded word looks like a wrong decoding (mojibake), or None when it looks like a word.

    >>> [odd_word(w) for w in ("Łódź", "Москва", "l’été", "m²", "«Αθήνα»", "£ódŸ", "Ìîñêâà", "ZoÃ«")]
    [None, None, None, None, None, 'case', 'accented', 'case']
    >>> [odd_word(w) for w in ("Za¿ó³æ", "Gdaсsk", "Μξρκβς", "ςα", "Caf\\x8e", "Вьлпт", "ФСБ")]
    ['symbol', 'mixed scripts', 'no vowels', 'final form', 'control', 'no vowels', None]
    >>> [odd_word(w) for w in ("東京", "テスト", "서울", "±±¾©", "‰¡•l", "ｶﾞ", "嫋縺", "서울駅")]
    [None, None, None, 'symbols', 'symbols', 'rare', 'rare', 'mixed scripts']
    """
    if any(_script(c) == "CJK" for c in word):
        return _odd_cjk(word, encoding)
    if sum(not c.isascii() and unicodedata.category(c)[0] in "SPN" and c not in _TYPOGRAPHIC for c in word) >= 2:
        return "symbols"  # ±±¾©: two-byte characters read one byte at a time
    symbols = [c for c in word if not c.isascii() and unicodedata.category(c)[0] in "SPN"]
    letters = sum(c.isalpha() for c in word)
    if (len(symbols) >= 2 and len(symbols) > letters) or (not letters and not set(symbols) <= _TYPOGRAPHIC):
        return "symbols"  # …Ó€⁄, or ″ alone: no letters, and no symbol text has by itself
    scripts = set()
    latin_letters = ascii_letters = 0
    previous = ""
    for i, c in enumerate(word):
        category = unicodedata.category(c)
        if category in ("Cc", "Cf", "Cn", "Co", "Cs") or c == "\ufffd":
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
            if c == "·" and (previous, word[i + 1 : i + 2]) not in (("l", "l"), ("L", "L")):
                return "symbol"  # Catalan's l·l only: V·s·rl·s is Vásárlás in Mac Roman
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


def _odd_cjk(word: str, encoding: str = "") -> str | None:
    """Why a word with Chinese, Japanese or Korean characters, read in `encoding` (""; any of
    them), looks like a wrong decoding, or None."""
    kinds = {_cjk_kind(c) for c in word if not c.isascii()}
    if "other" in kinds:
        return "mixed scripts"  # 東京 next to accented Latin or Cyrillic letters
    if "hangul" in kinds and kinds & {"han", "kana"}:
        return "mixed scripts"
    if _LOWER_NEXT_TO_CJK.search(word):
        return "mixed scripts"  # K쉕n, Wroc쿪w: an accented letter read together with the next ASCII one
    cjk = [c for c in word if not c.isascii()]
    if sum(not _common_cjk(c, encoding) for c in cjk) * 2 > len(cjk):
        return "rare"  # most of them: a name may well have one rarer character (深圳)
    return None


# A lower-case ASCII letter against a CJK character: an accented Latin word read in a two-byte code
# page (Tシャツ, LED電球, KT에서 have capitals there, and are fine).
_LOWER_NEXT_TO_CJK = re.compile(
    r"[a-z][\u3000-\u9fff\uac00-\ud7a3\uf900-\uffef]|[\u3000-\u9fff\uac00-\ud7a3\uf900-\uffef][a-z]"
)


def _cjk_kind(c: str) -> str:
    o = ord(c)
    if 0x3040 <= o <= 0x30FF:
        return "kana"
    if 0xAC00 <= o <= 0xD7A3 or 0x3130 <= o <= 0x318F:
        return "hangul"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    if 0x3000 <= o <= 0x303F or 0xFF01 <= o <= 0xFF60:
        return "punctuation"  # 「」、。 and full-width ASCII
    if 0xFF61 <= o <= 0xFF9F:
        return "halfwidth"
    return "other"


_LANGUAGE_OF = {"cp932": "ja", "euc_jp": "ja", "gb18030": "zh-Hans", "cp950": "zh-Hant", "cp949": "ko"}


@functools.cache
def _common_cjk(c: str, encoding: str = "") -> bool:
    """Is c a character the language of `encoding` ("": any of them) uses commonly: Japanese kana and
    the first level of JIS X 0208; the first level of GB 2312; Big5's frequent characters; the
    Hangul syllables of KS X 1001 (Korean text seldom has Han characters)? Bytes read in the wrong
    two-byte code page give rarer ones (嫋縺), or half-width katakana.

    >>> [_common_cjk(c, e) for c, e in (("東", "cp932"), ("서", "cp949"), ("淨", "cp949"), ("ｶ", "cp932"))]
    [True, True, False, False]
    """
    kind, language = _cjk_kind(c), _LANGUAGE_OF.get(encoding, "")
    if kind == "punctuation":
        return True
    if kind == "kana":
        return language in ("", "ja")
    if kind == "hangul":
        code = _code(c, "euc_kr")  # the codec writes the other syllables as eight bytes: not of KS X 1001
        return language in ("", "ko") and code is not None and code <= 0xFFFF
    if kind != "han":
        return False
    gb, jis, big5 = _code(c, "gb2312"), _code(c, "shift_jis"), _code(c, "big5")
    return bool(
        (language in ("", "zh-Hans") and gb and 0xB0A1 <= gb <= 0xD7FE)
        or (language in ("", "ja") and jis and 0x889F <= jis <= 0x9872)
        or (language in ("", "zh-Hant") and big5 and 0xA440 <= big5 <= 0xC67E)
    )


def _code(c: str, encoding: str) -> int | None:
    try:
        return int.from_bytes(c.encode(encoding), "big")
    except UnicodeEncodeError:
        return None


def _is_utf8(word: bytes) -> bool:
    try:
        word.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _script(c: str) -> str:
    if "\u3000" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7a3" or "\uf900" <= c <= "\ufaff" or "\uff01" <= c <= "\uff9f":
        return "CJK"  # Han, kana, Hangul and their punctuation: one family, mixed freely in Japanese
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
