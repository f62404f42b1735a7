"""A diff written in the tabular diff format of daff and coopy ("highlighter" diffs), as CSV.

The first column holds the action: `@@` for the header row, `+++` for an added row, `---` for a
deleted row, `->` for a modified row whose changed cells are written `old->new`. A row whose
values contain `->` uses a longer arrow (`-->`, `--->`, …) as its action and in its cells, as the
format says, so every compound cell splits back unambiguously. Text that a spreadsheet would run
as a formula is escaped the way the table's CSV export escapes it. Streamed, UTF-8 with BOM, CRLF.

>>> rows = [("modify", ["1", "a", "x"], ["1", "b", "x"]), ("add", None, ["2", "c->d", ""]), ("delete", ["3", "e", ""], None)]
>>> print(b"".join(diff_csv(["id", "name", "team"], rows)).decode("utf-8-sig"), end="")
@@,id,name,team
->,1,a->b,x
+++,2,c->d,
---,3,e,
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Iterable, Iterator, Sequence

from files.csv_write import FormulaSafeWriter, TextSink

TAGS = {"add": "+++", "delete": "---"}


def arrow_for(before: Sequence[str], after: Sequence[str]) -> str:
    """The shortest arrow (`->`, `-->`, …) that no value of the row contains.

    >>> arrow_for(["a"], ["b"]), arrow_for(["a->b"], ["c"]), arrow_for(["a-->b", "x->"], ["c"])
    ('->', '-->', '--->')
    """
    arrow = "->"
    while any(arrow in v for v in itertools.chain(before, after)):
        arrow = "-" + arrow
    return arrow


def diff_row(action: str, before: Sequence[str] | None, after: Sequence[str] | None) -> list[str]:
    """One row of the diff: its action tag, then its cells (formula-escaped as they are written)."""
    if action == "modify" and before is not None and after is not None:
        arrow = arrow_for(before, after)
        cells = [old if old == new else f"{old}{arrow}{new}" for old, new in zip(before, after, strict=True)]
        return [arrow, *cells]
    values = after if action == "add" else before
    return [TAGS[action], *(values or [])]


def diff_csv(
    names: Sequence[str], rows: Iterable[tuple[str, Sequence[str] | None, Sequence[str] | None]], chunk_rows: int = 2000
) -> Iterator[bytes]:
    """The diff of `rows` ((action, before values, after values); add / modify / delete) as CSV chunks."""
    sink = TextSink()
    writer = FormulaSafeWriter(sink, verbatim=1)  # the action tags are the format's, never data
    writer.writerow(["@@", *names])
    yield codecs.BOM_UTF8 + sink.take().encode("utf-8")
    rows = iter(rows)
    while batch := list(itertools.islice(rows, chunk_rows)):
        writer.writerows(diff_row(*row) for row in batch)
        yield sink.take().encode("utf-8")
