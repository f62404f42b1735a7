"""What reading a file costs on the paths issue 10 added: the per-column pre-scan of a `;` file, the
lazy date scan, and the legacy code page detection. Reads (no database): encoding, header, rows,
and every row parsed the way an upload parses a changed row.

Usage: `.venv/bin/python bench/read_paths.py --rows 1000000` (uses bench/data/base-N.csv, made by
generate.py, and writes its variants next to it). Prints the best of `--repeat` runs per variant.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import generate  # noqa: E402

from files import csv_read, encoding, formulas  # noqa: E402
from schema import Schema  # noqa: E402

SCHEMA = Schema.load(HERE.parent / "examples" / "catalog.schema.json")


def variants(rows: int) -> dict[str, Path]:
    """The base file as `,` UTF-8 (the benchmark's), `;` UTF-8, `;` Windows-1252, and `,` with US short dates."""
    generate.ensure(rows)
    base = generate.DATA / f"base-{rows}.csv"
    text = base.read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    out = {",": base}
    for name, delimiter, codec, transform in [
        (";", ";", "utf-8-sig", None),
        (";-cp1252", ";", "cp1252", _accented),
        (",-us-dates", ",", "utf-8-sig", _us_date),
    ]:
        path = generate.DATA / f"base-{rows}-{name}.csv"
        if not path.exists():
            sink = io.StringIO()
            writer = csv.writer(sink, delimiter=delimiter, lineterminator="\r\n")
            for i, row in enumerate(table):
                writer.writerow(transform(row) if transform and i else row)
            path.write_bytes(sink.getvalue().encode(codec, "replace"))
        out[name] = path
    return out


def _accented(row: list[str]) -> list[str]:
    """Every tenth description gets Western European letters, so the file is Windows-1252, not UTF-8."""
    if row[0][-1:] == "7":
        row[2] = f"{row[2]} Café Müller Señor".strip()
    return row


def _us_date(row: list[str]) -> list[str]:
    """`created` as en-US LibreOffice writes it: 3/5/24 (ambiguous until the column settles it)."""
    if row[9]:
        year, month, day = row[9].split("-")
        row[9] = f"{int(month)}/{int(day)}/{year[2:]}"
    return row


def read_all(path: Path) -> tuple[float, int, str, float]:
    """(seconds, rows read, encoding, seconds to open: encoding, header and any pre-scan) to open the
    file and parse every row."""
    start = time.perf_counter()
    with path.open("rb") as stream:
        upload = csv_read.read_csv(stream, SCHEMA)
        opened = time.perf_counter() - start
        parse = SCHEMA.row_parser(upload.problems.add, upload.conventions, clean=formulas.unescaper(SCHEMA))
        count = sum(parse(line, cells) is not None for line, cells in upload.rows)
    assert not upload.problems.total, list(upload.problems)[:3]
    return time.perf_counter() - start, count, upload.encoding, opened


def detect_only(path: Path) -> float:
    start = time.perf_counter()
    with path.open("rb") as stream:
        encoding.detect(stream)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name, path in variants(args.rows).items():
        runs = [read_all(path) for _ in range(args.repeat)]
        seconds, count, found, _ = min(runs)
        opened = min(run[3] for run in runs)
        detect = min(detect_only(path) for _ in range(args.repeat))
        print(
            f"{name:12} {count:>9,} rows  {found:10} read+parse {seconds:6.2f} s"
            f"  (open {opened:5.2f} s, of which encoding {detect:5.2f} s)"
        )


if __name__ == "__main__":
    main()
