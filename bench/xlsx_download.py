"""Time the Excel download of a 50,000-row catalog (docs/PERFORMANCE.md, "The Excel download"):
the workbook as `history.xlsx_download` builds it, without and with its drop-down lists.

    python bench/xlsx_download.py
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from files import xlsx_write
from package import Package
from records import SEP

pkg = Package.load(__import__("pathlib").Path(__file__).resolve().parent.parent / "schema.json")
schema = pkg.table("datasets").schema
names = schema.names
teams = [f"Team {i}" for i in range(30)]


def records(n):
    for i in range(n):
        v = {
            "id": f"DS-{i:06}",
            "name": f"Dataset {i}",
            "description": "A dataset about things " * 5,
            "owner": f"p{i}@example.com",
            "team": teams[i % 30],
            "source_system": "SAP",
            "update_frequency": "daily",
            "contains_pii": "false",
            "row_count": str(i * 17),
            "created": "2024-01-05",
            "url": f"https://example.com/{i}",
        }
        yield SEP.join(v.get(n_, "") for n_ in names)


for choices in ({}, {"team": teams, "source_system": ["SAP", "CRM"]}):
    t = time.perf_counter()
    f = xlsx_write.xlsx_file(records(50_000), schema, choices)
    size = f.seek(0, 2)
    print(f"lists={bool(choices)} total {time.perf_counter() - t:.2f}s size {size / 1e6:.1f} MB", flush=True)
print("load", os.getloadavg())
