"""The room plan of docs/ARCHITECTURE.md holds: every module is in a room, imports go down or
sideways (never up a floor, never in a circle), every name the documents mention exists, and no
module or function is too long to hold in one's head (tools/size_check.py).

The floors are declared once, in the document's table; these tests read it.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from tools import size_check

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
NOT_APP_CODE = {"tests", "bench", "migrations", "tools", ".venv", "instance", "docs", "static", "templates"}


def floors_from_doc(text: str) -> dict[str, int]:
    """Room (`app.py`, `web/`) → floor, from the table's rows `| N | `room` · `room` | job |`."""
    rooms = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if m:
            for room in re.findall(r"`([^`]+)`", m[2]):
                rooms[room] = int(m[1])
    return rooms


def app_modules(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every Python file of the app (not tests, bench or migrations)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in NOT_APP_CODE or rel.parts[0].startswith("."):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def room_of(module: str, rooms: dict[str, int]) -> str | None:
    """The room a module lives in: its package folder (`web/`) or its file (`app.py`, `gunicorn.conf.py`)."""
    if "." in module and f"{module.split('.')[0]}/" in rooms:
        return f"{module.split('.')[0]}/"
    if f"{module}/" in rooms:
        return f"{module}/"
    return f"{module}.py" if f"{module}.py" in rooms else None


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The app modules a file imports anywhere in it (functions included), resolved to dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = app_modules(root)
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def violations(graph: dict[str, set[str]], rooms: dict[str, int]) -> list[str]:
    """Modules in no room, imports that go up a floor, and import cycles, in words."""
    out = []
    floor = {}
    for module in graph:
        room = room_of(module, rooms)
        if room is None:
            out.append(f"{module} is in no room of docs/ARCHITECTURE.md")
        else:
            floor[module] = rooms[room]
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if module in floor and target in floor and floor[target] > floor[module]:
                out.append(f"{module} (floor {floor[module]}) imports {target} (floor {floor[target]}): upward")
    out.extend(f"import cycle: {' → '.join(cycle)}" for cycle in cycles(graph))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append([*sorted(group), sorted(group)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


ROOMS = floors_from_doc(DOC.read_text())


def test_the_document_declares_floors():
    assert ROOMS["app.py"] == 5 and ROOMS["store/"] == 2 and ROOMS["diff.py"] == 1


def test_imports_follow_the_floors_without_cycles():
    assert violations(import_graph(), ROOMS) == []


def test_the_check_catches_an_upward_import_and_a_cycle():
    graph = import_graph()
    graph["records"] = graph["records"] | {"changes"}  # floor 1 importing floor 3, which imports it back
    found = violations(graph, ROOMS)
    assert any("records (floor 1) imports changes (floor 3): upward" in v for v in found)
    assert any(v.startswith("import cycle:") and "records" in v and "changes" in v for v in found)


def test_the_check_catches_a_function_level_import(tmp_path):
    """A cycle hidden in a function body (as tabular.py once hid one) counts as well."""
    (tmp_path / "low.py").write_text("def f():\n    import high\n")
    (tmp_path / "high.py").write_text("import low\n")
    graph = import_graph(tmp_path)
    assert graph == {"low": {"high"}, "high": {"low"}}
    assert cycles(graph) == [["high", "low", "high"]]


def test_the_check_catches_a_cycle_injected_into_the_code(tmp_path):
    """A copy of the app with one real import added against the floors (records → changes) fails."""
    for path in app_modules(ROOT).values():
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (tmp_path / "records.py").write_text(
        (ROOT / "records.py").read_text() + "\n\ndef _injected():\n    import changes\n"
    )
    assert violations(import_graph(ROOT), ROOMS) == []
    found = violations(import_graph(tmp_path), ROOMS)
    assert "records (floor 1) imports changes (floor 3): upward" in found
    assert any(v.startswith("import cycle:") and "records" in v and "changes" in v for v in found)


def test_a_module_in_no_room_is_reported():
    assert violations({"newmodule": set()}, ROOMS) == ["newmodule is in no room of docs/ARCHITECTURE.md"]


# --- every name the document mentions exists --------------------------------------------------

TOP_LEVEL = {name.split(".")[0] for name in app_modules(ROOT)}


# The documents whose backticked `module.name` references must exist.
DOCUMENTS = ("README.md", "docs/ARCHITECTURE.md", "docs/PERFORMANCE.md")
# `diff.csv`, `export.xlsx`: file names (and URL parts), not Python names.
FILE_SUFFIXES = frozenset({"py", "csv", "xlsx", "json", "md", "png", "html", "txt", "zip", "toml", "lock", "db", "log"})


def mentioned_names(text: str) -> set[str]:
    """`module.name` references in backticks whose first part is one of the app's modules."""
    names = set()
    for token in re.findall(r"`([^`\s]+)`", text):
        token = token.rstrip("()")
        if token.rpartition(".")[2] in FILE_SUFFIXES:
            continue  # a file: test_every_room_exists checks the rooms
        if re.fullmatch(r"[a-z_][a-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", token) and token.split(".")[0] in TOP_LEVEL:
            names.add(token)
    return names


# Made by a run, not kept in the repository (.gitignore).
NOT_KEPT = ("bench/data/", "bench/out/", "instance/", "tests/js/node_modules/", ".venv/")


def mentioned_paths(text: str) -> set[str]:
    """Backticked repository paths (`tests/test_browser.py`, `docs/screenshots/`): a path with a
    slash whose first folder is one of the repository's; paths a run makes are left out."""
    top = {p.name for p in ROOT.iterdir() if p.is_dir()}
    paths = set()
    for token in re.findall(r"`([^`\s]+)`", text):
        is_path = re.fullmatch(r"[\w.-]+(/[\w.-]+)+/?", token) and token.split("/")[0] in top
        if is_path and not token.startswith(NOT_KEPT):
            paths.add(token)
    return paths


def resolve(dotted: str) -> object:
    """Import the longest module prefix of `dotted` and look the rest up as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize(
    ("document", "name"),
    [(document, name) for document in DOCUMENTS for name in sorted(mentioned_names((ROOT / document).read_text()))],
)
def test_every_name_in_the_documents_exists(document, name):
    resolve(name)


@pytest.mark.parametrize(
    ("document", "path"),
    [(document, path) for document in DOCUMENTS for path in sorted(mentioned_paths((ROOT / document).read_text()))],
)
def test_every_path_in_the_documents_exists(document, path):
    assert (ROOT / path).exists()


def test_every_document_names_code():
    """The check reads each document (a renamed document would otherwise drop out silently)."""
    for document in DOCUMENTS:
        text = (ROOT / document).read_text()
        assert mentioned_names(text) or mentioned_paths(text), document


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_every_room_exists(room):
    assert (ROOT / room).exists()


def test_the_name_check_can_fail():
    assert "changes.no_such_function" in mentioned_names("see `changes.no_such_function`")
    assert mentioned_names("`diff.csv`, `export.xlsx`, `records.py`, `store.table.records_page`") == {
        "store.table.records_page"
    }
    assert mentioned_paths("`tests/test_nothing.py`, `/api/v1/x`, `bench/out/r.md`, `NAME/x`") == {
        "tests/test_nothing.py"
    }
    with pytest.raises(AttributeError):
        resolve("changes.no_such_function")


# --- modules a newcomer can hold in their head -------------------------------------------------


def test_no_module_over_800_lines_and_no_function_over_100():
    """tools/size_check.py: every app module and function within the limits (tests, bench/ and
    migrations/ aside)."""
    assert size_check.offenders(ROOT) == []


def test_the_size_check_measures_every_app_module_and_can_fail(tmp_path):
    measured = {str(p.relative_to(ROOT)) for p in size_check.app_files(ROOT)}
    assert {"app.py", "changes.py", "web/pages.py", "store/changes.py", "gunicorn.conf.py"} <= measured
    assert not any(name.startswith(("tests/", "bench/", "migrations/", "tools/", ".venv/")) for name in measured)
    (tmp_path / "big.py").write_text("x = 1\n" * 801)
    (tmp_path / "long.py").write_text(
        "class C:\n    def method(self):\n" + "        y = 2\n" * 100 + "\n\ndef short():\n    pass\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_big.py").write_text("x = 1\n" * 2000)  # tests are not measured
    assert size_check.offenders(tmp_path) == [
        "big.py has 801 lines (over 800)",
        "long.py:2 method() has 101 lines (over 100)",
    ]
    assert size_check.offenders(tmp_path, max_module=801, max_function=101) == []
