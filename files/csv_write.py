"""The table written as CSV: UTF-8 with BOM, CRLF, the field names as header, formulas escaped.

Streamed a chunk of rows at a time, so memory stays flat whatever the size of the table.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence

from files.formulas import MAY_NEED_ESCAPE, escape_formula
from records import SEP
from schema import Schema


class TextSink:
    """A write-only text file for csv.writer whose contents are taken in chunks."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str) -> None:
        self.parts.append(s)

    def take(self) -> str:
        """Everything written since the last take."""
        out = "".join(self.parts)
        self.parts.clear()
        return out


class FormulaSafeWriter:
    """The CSV writer of every CSV the app writes cell by cell (the audit log, the diffs): csv.writer
    with CRLF, and every text cell formula-escaped (`files.formulas.escape_formula`), so that no
    key, reason or user name reaches a spreadsheet as a live `=HYPERLINK(…)`. The table's own
    export (`csv_chunks`) escapes its text columns the same way on its fast path.

    `verbatim`: how many leading cells of each row are written as they are: fixed tags the app
    writes itself (daff's `+++`, `---`, `->`), never data.

    >>> sink = TextSink()
    >>> FormulaSafeWriter(sink).writerow(["=HYPERLINK(1)", 2, "-x", "plain"])
    >>> sink.take()
    "'=HYPERLINK(1),2,'-x,plain\\r\\n"
    """

    def __init__(self, out, verbatim: int = 0, **options) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n", **options)
        self._verbatim = verbatim

    def writerow(self, row: Sequence[object]) -> None:
        keep = self._verbatim
        self._writer.writerow(
            [c if i < keep or not isinstance(c, str) else escape_formula(c) for i, c in enumerate(row)]
        )

    def writerows(self, rows: Iterable[Sequence[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_chunks(records: Iterable[str], schema: Schema, chunk_rows: int = 2000) -> Iterator[bytes]:
    """Stream a CSV file: UTF-8 with BOM, CRLF, header = field names, formulas escaped in text cells.

    `records` are stored records in schema order; memory stays flat whatever their number.

    >>> schema = Schema.from_dict({"primaryKey": "id", "fields": [{"name": "id"}, {"name": "note"}]})
    >>> rows = ["1" + SEP + "plain", "2" + SEP + "a, b", "3" + SEP + "=1+1"]
    >>> b"".join(csv_chunks(rows, schema)).decode("utf-8-sig").split("\\r\\n")
    ['id,note', '1,plain', '2,"a, b"', "3,'=1+1", '']
    """
    sink = TextSink()
    writer = csv.writer(sink, lineterminator="\r\n")
    writer.writerow(schema.names)
    yield codecs.BOM_UTF8 + sink.take().encode("utf-8")
    records = iter(records)
    while batch := list(itertools.islice(records, chunk_rows)):
        yield _csv_lines(batch, schema.string_indexes, writer, sink).encode("utf-8")


_CELL_STARTS_TRIGGER = re.compile("\x1f" + MAY_NEED_ESCAPE)  # a cell after the first that escape_formula may change
_FIRST_CELL_TRIGGER = re.compile(MAY_NEED_ESCAPE)


def _csv_lines(batch: list[str], string_indexes: Sequence[int], writer, sink: TextSink) -> str:
    """Records → CSV lines, each ending in CRLF; `batch` is reused.

    Most records need neither quoting nor formula escaping: they become CSV by turning the
    separators into commas, all rows at once. Only the others are split: the rows with a cell that
    starts like a formula (found in one regular-expression pass over the batch) and the rows with
    a quote, comma or line break (found with `in`, which is much cheaper than a regex per row).
    """
    text = SEP.join(batch)
    positions = [m.start() + 1 for m in _CELL_STARTS_TRIGGER.finditer(text)]
    first = _FIRST_CELL_TRIGGER.match(batch[0]) is not None
    if positions or first:
        ends = list(itertools.accumulate(len(r) + 1 for r in batch))  # where each next record starts
        rows = {bisect.bisect_right(ends, p) for p in positions}
        if first:
            rows.add(0)
        for i in rows:
            cells = batch[i].split(SEP)
            for j in string_indexes:
                cells[j] = escape_formula(cells[j])
            batch[i] = SEP.join(cells)
    for i in [i for i, r in enumerate(batch) if not r or '"' in r or "," in r or "\n" in r or "\r" in r]:
        writer.writerow(batch[i].split(SEP))  # csv.writer quotes what needs it ("" for a lone empty cell)
        batch[i] = sink.take()[:-2]
    batch.append("")
    return "\r\n".join(batch).replace(SEP, ",")
