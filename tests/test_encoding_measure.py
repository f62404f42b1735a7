"""The few-word measurement of issue 19 (docs/ENCODINGS.md): a CSV that holds one, two or three
words of a language among plain ASCII rows, saved in each legacy code page that language is
written in, must be read right, or staged with a warning that offers the right reading and names
the cell, or refused; never read wrong in silence. 19 languages, 35 code pages, every file read
through `files.csv_read.read_csv` as an upload is."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator

import pytest

from files import codepages, csv_read, encoding
from files.problems import FileProblems
from schema import Schema

# language: (its legacy code pages, words of it as people type them into a table)
LANGUAGES = {
    "French": (("cp1252", "iso8859_15", "mac_roman"),
               ["à revoir", "Café", "élève", "Noël", "garçon", "où", "déjà", "Hélène", "français", "fenêtre",
                "cœur", "Zoë", "août", "réunion", "prêt"]),
    "German": (("cp1252", "iso8859_15", "mac_roman"),
               ["Straße", "Müller", "Köln", "Größe", "Bücher", "Übung", "Äpfel", "schön", "für", "Düsseldorf"]),
    "Spanish": (("cp1252", "mac_roman"),
                ["año", "Peña", "¿qué?", "corazón", "niño", "información", "Málaga", "útil", "Cádiz"]),
    "Portuguese": (("cp1252",), ["São Paulo", "ação", "coração", "não", "Conceição", "você", "pão", "três", "açúcar"]),
    "Hungarian": (("cp1250", "iso8859_2"),
                  ["Vásárlás", "Győr", "őszi", "Szűcs", "tűzoltó", "Pécs", "kérés", "ünnep", "hőmérő", "Kovács"]),
    "Polish": (("cp1250", "iso8859_2"), ["Łódź", "Gdańsk", "źródło", "zażółć", "Kraków", "świat", "ręka", "Wrocław", "pięć"]),
    "Czech": (("cp1250", "iso8859_2"), ["Plzeň", "řeka", "Dvořák", "čeština", "příliš", "žluťoučký", "Brno-střed", "ústí"]),
    "Russian": (("cp1251", "koi8_r", "iso8859_5"),
                ["Москва", "улица", "Привет", "счёт", "Иванов", "заказ", "ожидание", "Новосибирск"]),
    "Ukrainian": (("cp1251", "koi8_u"), ["Київ", "Львів", "їжак", "Одеса", "ґанок", "Харків", "держава"]),
    "Greek": (("cp1253", "iso8859_7"), ["Αθήνα", "Βόλος", "καλημέρα", "οδός", "Πάτρα", "ευχαριστώ", "Θεσσαλονίκη"]),
    "Turkish": (("cp1254", "iso8859_9"), ["İstanbul", "Şanlıurfa", "ağaç", "Eskişehir", "çiçek", "Iğdır", "göz"]),
    "Lithuanian": (("cp1257", "iso8859_13"), ["Šiauliai", "Kaunas ąžuolas", "ėjimas", "Klaipėda", "Panevėžys", "ūkis"]),
    "Latvian": (("cp1257", "iso8859_13"), ["Rīga", "Jūrmala", "Liepāja", "ķēķis", "Daugavpils ģimene", "ņemt"]),
    "Hebrew": (("cp1255", "iso8859_8"), ["ירושלים", "תל אביב", "שלום", "חיפה", "באר שבע"]),
    "Arabic": (("cp1256", "iso8859_6"), ["القاهرة", "مرحبا", "شارع", "دبي", "الرياض"]),
    "Japanese": (("cp932", "euc_jp"), ["東京", "大阪", "株式会社", "こんにちは", "横浜", "テスト", "営業部", "京都"]),
    "Chinese (simplified)": (("gbk", "gb18030"), ["北京", "上海", "你好", "公司", "广州", "销售部", "深圳"]),
    "Chinese (traditional)": (("big5",), ["台北", "香港", "高雄", "公司", "銷售部", "台中"]),
    "Korean": (("cp949",), ["서울", "부산", "안녕하세요", "회사", "영업부", "대구"]),
}  # fmt: skip
SCHEMA = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "name"}, {"name": "note"}]})


def few_word_files(words: list[str], code_page: str) -> Iterator[tuple[str, bytes]]:
    """Eight rows of ASCII with one, two or three of the words in them (each word in turn), in the
    code page; Mac Roman with Excel for Mac's lone CR line ends, the others with CRLF."""
    end = "\r" if code_page == "mac_roman" else "\r\n"
    for n in (1, 2, 3):
        for start in range(0, len(words) - n + 1, n):
            rows = [["id", "name", "note"], *([f"K{i}", f"item {i}", "ok"] for i in range(8))]
            for j, word in enumerate(words[start : start + n]):
                rows[2 + 2 * j][1] = word
            text = end.join(",".join(r) for r in rows) + end
            yield text, text.encode(code_page)


def outcome(text: str, data: bytes) -> str:
    """right: read as written; warned: read otherwise, with a warning that offers the right
    reading first among others and names every cell read differently; refused; else silent."""
    try:
        upload = csv_read.read_csv(io.BytesIO(data), SCHEMA)
        rows = list(upload.rows)
    except FileProblems:
        return "refused"
    if data.decode(upload.encoding) == text:
        return "right"
    found = encoding.detect(io.BytesIO(data))
    right = [e for e in found.alternatives if data.decode(e) == text]
    if not (right and upload.warnings):
        return "silent"
    warning = upload.warnings[-1]
    wrong = [line for line, cells in rows if cells[1].encode(upload.encoding).decode(right[0]) != cells[1]]
    named = all(f"line {line}, name: " in warning for line in wrong)
    return "warned" if named and codepages.label(right[0]) in warning else "silent"


def test_no_few_word_file_in_a_legacy_code_page_is_read_wrong_in_silence():
    counts: Counter[str] = Counter()
    silent = []
    for language, (code_pages, words) in LANGUAGES.items():
        for code_page in code_pages:
            for text, data in few_word_files(words, code_page):
                result = outcome(text, data)
                counts[result] += 1
                if result == "silent":
                    silent.append((language, code_page, [w for w in text.split(",") if not w.isascii()]))
    assert silent == []
    assert len(LANGUAGES) >= 12 and sum(counts.values()) >= 500
    assert counts["right"] >= 0.8 * sum(counts.values()), counts  # docs/ENCODINGS.md: 86% read right


@pytest.mark.parametrize(
    ("text", "code_page"),
    [
        ("東京", "cp932"),
        ("北京, 上海", "gbk"),
        ("台北", "big5"),
        ("서울, 부산", "cp949"),
        ("Москва", "koi8_r"),
        ("Vásárlás", "cp1250"),
        ("Łódź", "iso8859_2"),
        ("Café €5 Ñandú", "mac_roman"),
    ],
)
def test_the_issues_files_are_read_right(text, code_page):
    """The files issue 19 names: East Asian code pages, KOI8-R, a few Hungarian accents, ISO-8859-2."""
    data = ("id,name,note\r\n" + "".join(f"K{i},{w.strip()},ok\r\n" for i, w in enumerate(text.split(",")))).encode(
        code_page
    )
    upload = csv_read.read_csv(io.BytesIO(data), SCHEMA)
    assert [cells[1] for _, cells in upload.rows] == [w.strip() for w in text.split(",")]
