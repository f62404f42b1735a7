"""Generate the benchmark's reference tables: a catalog of N datasets and an edited copy of it.

Deterministic (seeded): the same N always gives byte-identical files. For each size it writes

- `bench/data/base-N.csv`: N rows of the catalog (examples/catalog.schema.json) in key order, ~200 bytes a
  row, with text that has commas, quotes and the odd embedded line break, and cells that start
  with `=`, `-`, `+` or `@` (written formula-escaped with a leading `'`, as the app's download
  writes them);
- `bench/data/edited-N.csv`: the same table after an edit session: 1% of rows modified (1–2 cells
  each), 0.5% added, 0.5% deleted, and every row shuffled;
- `bench/data/manifest-N.json`: the expected diff counts and the search terms the benchmark uses.

Usage: `.venv/bin/python bench/generate.py --sizes 10000,100000,1000000`
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
HEADER = [
    "id",
    "name",
    "description",
    "owner",
    "team",
    "source_system",
    "update_frequency",
    "contains_pii",
    "row_count",
    "created",
    "url",
]
SEED = 20_240_131
RARE_WORD = "zephyr"  # in ~0.05% of descriptions: a selective text search
COMMON_WORD = "forecast"  # in ~5% of rows: a broad text search
NO_MATCH = "qxjvw"  # in no row: the worst case for a scan

ADJECTIVES = ("Quarterly", "Monthly", "Daily", "Global", "Regional", "Legacy", "Raw", "Clean", "Curated",
              "Archived", "Weekly", "Audited", "Draft", "Consolidated", "Internal", "External", "Sampled")  # fmt: skip
SUBJECTS = ("sales", "revenue", "customer", "supplier", "inventory", "payroll", "marketing", "churn",
            "shipment", "invoice", "ledger", "lead", "web traffic", "support ticket", "contract", "energy use",
            "fleet", "claims", "pricing", "returns", "survey", "headcount", "budget", "risk")  # fmt: skip
NOUNS = ("report", "extract", "snapshot", "feed", "export", "summary", "log", "register", "list", "cube",
         "model", "dashboard data", "master data", "history", "forecast")  # fmt: skip
REGIONS = ("EMEA", "APAC", "Americas", "DACH", "Nordics", "UK", "France", "Iberia", "LATAM", "Benelux")
WORDS = ("data", "from", "the", "for", "with", "per", "and", "by", "of", "all", "used", "in", "weekly", "finance",
         "reporting", "team", "source", "loaded", "nightly", "manual", "checks", "owner", "review", "pipeline",
         "table", "rows", "fields", "records", "customers", "orders", "market", "country", "product", "channel",
         "quality", "missing", "values", "joined", "deduplicated", "masked", "personal", "aggregated", "legacy",
         "system", "migration", "retired", "replaced", "backfilled", "since", "until", "approved", "board")  # fmt: skip
FIRST = ("anna", "ben", "carla", "david", "emma", "felix", "grace", "hugo", "ines", "jonas", "karin", "luca",
         "maria", "nils", "olga", "paul", "rosa", "sven", "tara", "umar", "vera", "wei", "yusuf", "zoe",
         "amelie", "bruno", "chloe", "dmitri", "elif", "farid", "greta", "hana", "igor", "julia", "kenji")  # fmt: skip
LAST = ("muller", "schmidt", "garcia", "rossi", "dubois", "jansen", "nowak", "silva", "kowalski", "novak",
        "berg", "larsen", "costa", "fischer", "weber", "martin", "lopez", "horvat", "ivanova", "tanaka",
        "okafor", "singh", "chen", "kim", "nguyen", "ali", "brown", "smith", "wilson", "taylor")  # fmt: skip
TEAMS = ("Finance", "Sales Ops", "Marketing", "HR", "Data Platform", "Logistics", "Procurement", "Legal",
         "Risk", "Customer Care", "BI", "Engineering", "Strategy", "Treasury", "IT")  # fmt: skip
SOURCES = ("SAP", "Salesforce", "Snowflake", "Oracle", "Workday", "BigQuery", "Postgres", "Excel", "SharePoint",
           "HubSpot", "Zendesk", "Databricks", "S3", "MongoDB", "Manual")  # fmt: skip
FREQUENCIES = ("realtime", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "ad hoc", "never")
FORMULA_TRIGGERS = ("=", "+", "-", "@")
DAY0 = dt.date(2008, 1, 1)


def _escape(value: str) -> str:
    """Formula-escape a text cell the way the app's download does (a `'` before =, +, -, @)."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) or value.startswith("'") else value


class Catalog:
    """Draws realistic catalog rows from one seeded random generator."""

    def __init__(self, rnd: random.Random):
        self.r = rnd

    def key(self, number: int) -> str:
        return f"DS-{number:07d}"

    def name(self) -> str:
        r = self.r
        text = f"{r.choice(ADJECTIVES)} {r.choice(SUBJECTS)} {r.choice(NOUNS)}"
        roll = r.random()
        if roll < 0.10:
            text += f", {r.choice(REGIONS)}"
        elif roll < 0.13:
            text = f'{text} "{r.choice(REGIONS)}"'
        elif roll < 0.14:
            text = f"-{text.lower()}-"  # people mark drafts with dashes: starts with a formula trigger
        return text

    def description(self) -> str:
        r = self.r
        words = r.choices(WORDS, k=r.randint(6, 11))
        if r.random() < 0.05:
            words[r.randrange(len(words))] = COMMON_WORD
        if r.random() < 0.0005:
            words[r.randrange(len(words))] = RARE_WORD
        text = " ".join(words).capitalize()
        roll = r.random()
        if roll < 0.15:
            cut = r.randrange(2, len(words) - 1)
            text = " ".join(words[:cut]).capitalize() + ", " + " ".join(words[cut:])
        elif roll < 0.18:
            text += f' (called "{r.choice(SUBJECTS)} {r.choice(NOUNS)}" before)'
        elif roll < 0.185:
            text += "\nSee the wiki for details."
        elif roll < 0.195:
            text = f"={r.choice(['SUM', 'HYPERLINK', 'IF'])}(A{r.randint(1, 99)}) " + text
        elif roll < 0.20:
            text = f"+{r.randint(1, 9)} {text}"
        elif roll < 0.25:
            text = ""
        return text

    def owner(self) -> str:
        r = self.r
        first, last = r.choice(FIRST), r.choice(LAST)
        if r.random() < 0.8:
            return f"{first}.{last}@example.com"
        return f"{first.capitalize()} {last.capitalize()}"

    def team(self) -> str:
        return self.r.choice(TEAMS) if self.r.random() < 0.95 else ""

    def source(self) -> str:
        return self.r.choice(SOURCES)

    def frequency(self) -> str:
        return self.r.choice(FREQUENCIES)

    def pii(self) -> str:
        return "true" if self.r.random() < 0.3 else "false"

    def row_count(self) -> str:
        r = self.r
        return "" if r.random() < 0.05 else str(int(10 ** r.uniform(0, 9)))

    def created(self) -> str:
        return (DAY0 + dt.timedelta(days=self.r.randrange(6200))).isoformat()

    def url(self, key: str, team: str) -> str:
        slug = (team or "misc").lower().replace(" ", "-")
        return f"https://data.example.com/{slug}/{key.lower()}"

    def row(self, number: int) -> list[str]:
        key = self.key(number)
        team = self.team()
        return [
            key,
            self.name(),
            self.description(),
            self.owner(),
            team,
            self.source(),
            self.frequency(),
            self.pii(),
            self.row_count(),
            self.created(),
            self.url(key, team),
        ]

    def edit(self, row: list[str]) -> list[str]:
        """Change 1 or 2 cells (never the key) to a different valid value."""
        r = self.r
        out = list(row)
        makers = {
            1: self.name,
            2: self.description,
            3: self.owner,
            4: lambda: r.choice(TEAMS),
            5: self.source,
            6: self.frequency,
            7: lambda: "false" if out[7] == "true" else "true",
            8: lambda: str(r.randint(0, 10**9)),
            9: self.created,
            10: lambda: f"https://wiki.example.com/{out[0].lower()}",
        }
        for column in r.sample(list(makers), r.choice((1, 1, 2))):
            new = makers[column]()
            while new == out[column]:
                new = makers[column]()
            out[column] = new
        return out


def _write(path: Path, rows) -> int:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(HEADER)
        for cells in rows:
            writer.writerow([cells[0], *(_escape(c) if i in TEXT_COLUMNS else c for i, c in enumerate(cells) if i)])
    return path.stat().st_size


TEXT_COLUMNS = frozenset({1, 2, 3, 4, 5, 6, 10})


def generate(rows: int, out: Path = DATA) -> dict:
    """Write base, edited and manifest files for `rows` rows; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(SEED + rows)
    catalog = Catalog(rnd)
    base = [catalog.row(n) for n in range(1, rows + 1)]
    base_bytes = _write(out / f"base-{rows}.csv", base)

    n_modified, n_added, n_deleted = round(rows * 0.01), round(rows * 0.005), round(rows * 0.005)
    picked = rnd.sample(range(rows), n_modified + n_deleted)
    deleted = set(picked[n_modified:])
    modified_positions = set(picked[:n_modified])
    edited = [catalog.edit(cells) if i in modified_positions else cells for i, cells in _positions(base, deleted)]
    edited.extend(catalog.row(n) for n in range(rows + 1, rows + n_added + 1))
    rnd.shuffle(edited)
    edited_bytes = _write(out / f"edited-{rows}.csv", edited)

    manifest = {
        "rows": rows,
        "seed": SEED + rows,
        "base_bytes": base_bytes,
        "edited_rows": len(edited),
        "edited_bytes": edited_bytes,
        "modified": n_modified,
        "added": n_added,
        "deleted": n_deleted,
        "sample_key": catalog.key(rows // 2 + 1) if rows // 2 not in deleted else catalog.key(1),
        "rare_word": RARE_WORD,
        "common_word": COMMON_WORD,
        "no_match": NO_MATCH,
    }
    (out / f"manifest-{rows}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def stale_edits(rows: int, out: Path = DATA) -> dict[str, dict[int, str]]:
    """1% of the base rows edited in 1–2 cells by someone who downloaded the first version (issue 8):
    {key: {column index: new value}}, kept in `stale-edits-N.json`. The benchmark applies the same
    edits to the base file (a stale upload) and to the table as it is now (a current one)."""
    path = out / f"stale-edits-{rows}.json"
    if path.exists():
        return {k: {int(c): v for c, v in e.items()} for k, e in json.loads(path.read_text()).items()}
    rnd = random.Random(SEED + rows + 7)
    catalog = Catalog(rnd)
    picked = set(rnd.sample(range(rows), max(rows // 100, 1)))
    edits: dict[str, dict[int, str]] = {}
    with (out / f"base-{rows}.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for i, cells in enumerate(reader):
            if i in picked:
                new = catalog.edit(cells)
                edits[cells[0]] = {c: new[c] for c in range(len(cells)) if new[c] != cells[c]}
    path.write_text(json.dumps(edits))
    return edits


def apply_edits(source: Path, target: Path, edits: dict[str, dict[int, str]]) -> int:
    """Copy the CSV `source` to `target` with `edits` applied (text cells formula-escaped as the
    app's download writes them); the number of rows edited."""
    done = 0
    with source.open(encoding="utf-8", newline="") as f, target.open("w", encoding="utf-8", newline="") as g:
        reader, writer = csv.reader(f), csv.writer(g, lineterminator="\r\n")
        writer.writerow(next(reader))
        for cells in reader:
            edit = edits.get(cells[0])
            if edit:
                for column, value in edit.items():
                    cells[column] = _escape(value) if column in TEXT_COLUMNS else value
                done += 1
            writer.writerow(cells)
    return done


def _positions(base: list[list[str]], deleted: set[int]):
    for i, cells in enumerate(base):
        if i not in deleted:
            yield i, cells


def ensure(rows: int, out: Path = DATA) -> dict:
    """The manifest for `rows`, generating the files first when any is missing."""
    names = [f"base-{rows}.csv", f"edited-{rows}.csv", f"manifest-{rows}.json"]
    if all((out / n).exists() for n in names):
        return json.loads((out / f"manifest-{rows}.json").read_text())
    return generate(rows, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        m = generate(size, args.out)
        print(
            f"{size:>9,} rows: base {m['base_bytes'] / 1e6:.1f} MB, edited {m['edited_bytes'] / 1e6:.1f} MB "
            f"({m['modified']:,} modified, {m['added']:,} added, {m['deleted']:,} deleted)"
        )


if __name__ == "__main__":
    main()
