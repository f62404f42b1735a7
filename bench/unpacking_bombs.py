"""What a workbook or a zip with bzip2 or LZMA members costs before it is refused (issue 20).

    .venv/bin/python bench/unpacking_bombs.py [--unpacked-mb 400]

Builds a workbook whose parts, and zips of CSV files whose members, are packed with bzip2 and with
LZMA, each unpacking to `--unpacked-mb` MB (a few hundred bytes to a few KB packed), and hands each
to what an upload goes through (`files.bundle.open_bundle`, then every part read) in a fresh
process. Prints one line per case: the outcome, the wall time and the worker's memory growth
(VmHWM, the process's peak, less VmRSS before the upload was read). Targets: refused within 2 s,
growth under 50 MB. Run by hand, never by the tests; say whether the machine was busy.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 2.0
TARGET_GROWTH_MB = 50

CHILD = """
import io, re, sys, time
from files.bundle import open_bundle
from files.problems import FileProblems
from schema import Schema

def memory(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read())[1]) // 1024

schema = Schema.load("examples/catalog.schema.json")
data = open(sys.argv[1], "rb").read()
before = memory("VmRSS")
start = time.perf_counter()
try:
    bundle = open_bundle(io.BytesIO(data), ["datasets", "teams"])
    rows = sum(sum(1 for _ in part.read(schema).rows) for part in bundle.parts)
    outcome = f"read {rows:,} rows"
except FileProblems as exc:
    outcome = "refused: " + exc.problems[0].message[:70]
seconds = time.perf_counter() - start
print(f"{seconds:.2f}\\t{memory('VmHWM') - before}\\t{outcome}")
"""


def workbook(method: int, unpacked: int) -> bytes:
    """A one-sheet workbook, every part packed with `method`, the sheet padded to `unpacked` bytes."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["id", "name"])
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(out, "w", method) as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"<sheetData>", b"<sheetData>" + b" " * unpacked, 1)
            dst.writestr(info.filename, content)
    return out.getvalue()


def csv_zip(method: int, unpacked: int) -> bytes:
    """A zip of two CSV files for two tables, `teams.csv` padded to `unpacked` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        z.writestr("datasets.csv", "id,name\n")
        z.writestr("teams.csv", "name\n" + " " * unpacked)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--unpacked-mb", type=int, default=400, help="what each bomb unpacks to (MB)")
    args = parser.parse_args()
    unpacked = args.unpacked_mb * 1024**2
    cases = {
        f"workbook, {name} parts": workbook(method, unpacked)
        for method, name in ((zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA"))
    } | {
        f"zip of CSV files, {name} members": csv_zip(method, unpacked)
        for method, name in ((zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA"))
    }
    print(
        f"each unpacks to {args.unpacked_mb} MB; targets: refused within {TARGET_SECONDS} s, growth < {TARGET_GROWTH_MB} MB"
    )
    print("case\tpacked bytes\tseconds\tgrowth MB\toutcome")
    failed = False
    with tempfile.TemporaryDirectory() as directory:
        for label, data in cases.items():
            path = Path(directory) / "upload"
            path.write_bytes(data)
            done = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, capture_output=True, text=True)
            if done.returncode:
                print(f"{label}\t{len(data)}\tcrashed: {done.stderr.strip().splitlines()[-1]}")
                failed = True
                continue
            seconds, growth, outcome = done.stdout.strip().split("\t")
            ok = outcome.startswith("refused") and float(seconds) < TARGET_SECONDS and int(growth) < TARGET_GROWTH_MB
            failed |= not ok
            print(f"{label}\t{len(data):,}\t{seconds}\t{growth}\t{outcome}{'' if ok else '  <-- MISSES THE TARGET'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
