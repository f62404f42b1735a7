"""Which encoding an uploaded CSV is in (files.encoding): UTF-8 first, then the legacy code page
whose reading is plausible text; a doubtful guess is flagged, garbage is refused, never mojibake."""

from __future__ import annotations

import codecs
import io

import pytest

from files import codepages, encoding
from files.problems import FileProblems

CITIES = {
    "cp1251": "Москва, Санкт-Петербург, Новосибирск, Екатеринбург, Казань, Нижний Новгород, Челябинск",
    "cp1253": "Αθήνα, Θεσσαλονίκη, Πάτρα, Ηράκλειο, Λάρισα, Βόλος, Ιωάννινα",
    "cp1250": "Warszawa, Kraków, Łódź, Wrocław, Poznań, Gdańsk, Białystok, Częstochowa",
    "cp1252": "München, Düsseldorf, Köln, Straße, Zürich",
    "cp1255": "ירושלים, תל אביב, חיפה, באר שבע",
}


def detect(data: bytes) -> encoding.Detected:
    stream = io.BytesIO(data)
    found = encoding.detect(stream)
    assert stream.tell() == 0
    return found


@pytest.mark.parametrize("code_page", CITIES)
def test_a_column_of_names_in_a_legacy_code_page_is_read_for_sure(code_page):
    data = ("id,name\r\n" + "".join(f"C{i},{c}\r\n" for i, c in enumerate(CITIES[code_page].split(", ")))).encode(
        code_page
    )
    found = detect(data)
    assert (found.encoding, found.doubtful) == (code_page, False)


@pytest.mark.parametrize(
    ("text", "code_page", "read_as", "alternative"),
    [
        ("Gdańsk", "cp1250", "cp1252", "cp1250"),  # Gdañsk: real letters too
        ("Genève", "cp1252", "cp1252", "cp1250"),  # Genčve: a Czech-looking word
        ("Plzeň", "cp1250", "cp1252", "cp1250"),
        ("İstanbul, Eskişehir, Şanlıurfa", "cp1254", "cp1252", "cp1254"),  # Ýstanbul, Eskiþehir: letters too
        # Found by tests/test_fuzz.py: once read as Windows-1257 (Ńandś, Zoė) with no warning
        ("Ñandú,Zoë", "cp1252", "cp1252", "cp1257"),
    ],
)
def test_a_reading_that_another_code_page_matches_is_doubtful(text, code_page, read_as, alternative):
    found = detect(f"id,name\r\nX,{text}\r\n".encode(code_page))
    assert found.encoding == read_as and found.doubtful and alternative in found.alternatives


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("id,name\r\nX,Café\r\n".encode("cp1252"), "cp1252"),  # é is é in every Latin code page
        ("id,name\r\nX,και για\r\n".encode("cp1253"), "cp1253"),  # not кбй гйб: Cyrillic letters rarely used
        ("id,name\rX,Café €5 Ñandú\r".encode("mac_roman"), "mac_roman"),  # lone CRs: Excel for Mac
        (codecs.BOM_UTF32_LE + "id,name\r\n".encode("utf-32-le"), "utf-32"),
        (codecs.BOM_UTF32_BE + "id,name\r\n".encode("utf-32-be"), "utf-32"),
        ("id,name\r\nX,Zoë\r\n".encode("utf-32-le"), "utf-32-le"),
        ("id,name\r\nX,Zoë\r\n".encode("utf-32-be"), "utf-32-be"),
        ("id\tname\r\nX\tZoë\r\n".encode("utf-16-le"), "utf-16-le"),
        (b"id,name\r\n" + b'X,"a\x0bb\x0bc\x0bd\x0be\x0cf\x1bg"\r\n', "utf-8"),  # control characters are not binary
    ],
)
def test_detected_encodings(data, expected):
    assert detect(data).encoding == expected


def test_a_stray_nul_is_no_binary_file_but_many_are():
    assert detect(b"id,name\r\nX,a\x00b\r\n" + b"Y,plain text\r\n" * 20).encoding == "utf-8"
    with pytest.raises(FileProblems) as caught:
        detect(b"id,name\r\nX,ok\r\nY," + b"\x00\x01\x00\x02\x00\x03" * 10)
    (problem,) = caught.value.problems
    assert problem.line == 3 and problem.message.startswith("this is a binary file, not CSV text (it has NUL bytes")


@pytest.mark.parametrize(
    ("data", "line", "start"),
    [
        (b"id,name\r\nX,ok\r\nY,\x81\x8d\x90\xad\r\n", 3, "is neither UTF-8 nor Windows-1252 text from this line on"),
        (
            "id,name\r\nA,Zoë\r\nB,Müller\r\nC,Señor\r\nD,Ångström\r\n".encode() + "E,Café\r\n".encode("cp1252"),
            6,
            "is not UTF-8 text from this line on, though the text before it is",
        ),
    ],
)
def test_text_no_code_page_reads_plausibly_is_refused(data, line, start):
    with pytest.raises(FileProblems) as caught:
        detect(data)
    (problem,) = caught.value.problems
    assert problem.line == line and problem.message.startswith(start)
    assert problem.message.endswith("save the table as CSV UTF-8 and upload that")


def test_the_sample_is_bounded_and_cells_across_chunks_are_whole(monkeypatch):
    monkeypatch.setattr(encoding, "CHUNK_BYTES", 7)
    monkeypatch.setattr(encoding, "MAX_WORDS", 3)
    data = ("id,name\r\n" + "".join(f"R{i},Łódź Wrocław;Kraków\r\n" for i in range(50))).encode("cp1250")
    cells, high, lone_cr = encoding._sample(io.BytesIO(data))
    assert cells == ["Łódź Wrocław".encode("cp1250"), "Kraków".encode("cp1250")] and not lone_cr
    assert high == set("Łóźłó".encode("cp1250"))
    assert detect(data).encoding == "cp1250"


@pytest.mark.parametrize(
    ("word", "why"),
    [
        ("Łódź", None),
        ("Москва", None),
        ("l’été", None),
        ("«Αθήνα»", None),
        ("m²", None),
        ("Za¿ó³æ", "symbol"),  # Polish read as Windows-1252
        ("£ódŸ", "case"),
        ("Ìîñêâà", "accented"),  # Russian read as Windows-1252
        ("ZoÃ«", "case"),  # UTF-8 read as Windows-1252
        ("Gdaсsk", "mixed scripts"),
        ("ςα", "final form"),
        ("Caf\x8e", "control"),
    ],
)
def test_odd_words(word, why):
    assert encoding.odd_word(word) == why


def test_every_code_page_has_a_name_users_know():
    assert all(codepages.label(name) != name for name in (*encoding.LEGACY, encoding.MAC))
