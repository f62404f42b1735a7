"""How fast workbooks are read, and what a workbook bomb costs before it is refused.

    .venv/bin/python bench/xlsx_bombs.py [--rows 50000]

Each measurement runs in a fresh process, so that its peak memory (VmHWM) is its own. Prints one
line per case: the outcome, the wall time and the peak memory of the reading process.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

CHILD = """
import io, re, sys, time
from files.problems import FileProblems
from files.upload import open_upload
from schema import Schema
schema = Schema.load("examples/catalog.schema.json")
data = open(sys.argv[1], "rb").read()
start = time.perf_counter()
try:
    rows = sum(1 for _ in open_upload(io.BytesIO(data), schema).rows)
    outcome = f"read {rows:,} rows"
except FileProblems as exc:
    outcome = "refused: " + exc.problems[0].message[:60]
seconds = time.perf_counter() - start
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())[1]) // 1024
print(f"{seconds:.2f}\\t{peak}\\t{outcome}")
"""


def catalog_workbook(rows: int, shared: bool) -> bytes:
    from data.make_workbooks import excel_style
    from generate import Catalog

    from files import xlsx_write
    from records import SEP
    from schema import Schema

    catalog = Catalog(random.Random(1))
    out = io.BytesIO()
    xlsx_write.write_xlsx(
        (SEP.join(catalog.row(i)) for i in range(rows)), Schema.load(ROOT / "examples" / "catalog.schema.json"), out
    )
    return excel_style(out.getvalue()) if shared else out.getvalue()


def cases(rows: int) -> dict[str, bytes]:
    from test_hardening_files import bomb, sheet, with_shared_strings

    return {
        f"{rows:,}-row catalog, inline strings (openpyxl's way)": catalog_workbook(rows, shared=False),
        f"{rows:,}-row catalog, shared strings (Excel's way)": catalog_workbook(rows, shared=True),
        "100 MB of empty <row/> (the red team's 151 KB)": sheet(b"<row/>", 100 * 1024 * 1024 // 6),
        "the same cell <c r='A1'/>, 220 MB": sheet(b'<c r="A1"/>', 20_000_000, b'<row r="1">'),
        "rows of 500 empty cells, 240 MB": sheet(b"<row>" + b"<c/>" * 500 + b"</row>", 120_000),
        "shared strings <si><t/></si>, 260 MB": with_shared_strings(b"<si><t/></si>", 20_000_000),
        "styles: <xf/>, 150 MB": bomb(
            "xl/styles.xml",
            b"<xf/>",
            30_000_000,
            b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><cellXfs>',
            b"</cellXfs></styleSheet>",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the real workbooks")
    args = parser.parse_args()
    print("case\tpacked KB\tseconds\tpeak MiB\toutcome")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in cases(args.rows).items():
            path = Path(folder) / "case.xlsx"
            path.write_bytes(data)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, capture_output=True, text=True)
            if done.returncode:
                print(f"{name}\tfailed: {done.stderr.strip().splitlines()[-1]}")
                continue
            seconds, peak, outcome = done.stdout.strip().split("\t")
            outcome = re.sub(r"\s+", " ", outcome)
            print(
                f"{name}\t{len(data) // 1024:,}\t{seconds}\t{peak}\t{outcome}\t(process {time.perf_counter() - started:.1f} s)"
            )


if __name__ == "__main__":
    main()
