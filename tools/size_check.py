"""Modules a newcomer can hold in their head: no app module over 800 lines, no function over 100.

Run `python tools/size_check.py` to list the offenders (exit status 1 when there are any);
tests/test_architecture.py runs the same check. The tests, the benchmarks and the migrations are
not app code and are not measured.

>>> offenders_in("def f():\\n" + "    x = 1\\n" * 120, "m.py", max_module=800, max_function=100)
['m.py:1 f() has 121 lines (over 100)']
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 100
# Not app code: tests, benchmarks, migrations, this folder, and what is not Python source.
NOT_APP_CODE = frozenset({"tests", "bench", "migrations", "tools", "instance", "docs", "static", "templates"})


def app_files(root: Path = ROOT) -> list[Path]:
    """Every Python file of the app, sorted; hidden folders (.venv, .git) and NOT_APP_CODE left out."""
    files = []
    for path in sorted(root.rglob("*.py")):
        first = path.relative_to(root).parts[0]
        if first in NOT_APP_CODE or first.startswith(".") or "node_modules" in path.parts:
            continue
        files.append(path)
    return files


def offenders_in(source: str, name: str, max_module: int, max_function: int) -> list[str]:
    """The module (`name`) if longer than `max_module` lines, and each function or method longer
    than `max_function` lines (from `def` to its last line; nested functions are measured too)."""
    found = []
    lines = len(source.splitlines())
    if lines > max_module:
        found.append(f"{name} has {lines} lines (over {max_module})")
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > max_function:
                found.append(f"{name}:{node.lineno} {node.name}() has {length} lines (over {max_function})")
    return found


def offenders(
    root: Path = ROOT, max_module: int = MAX_MODULE_LINES, max_function: int = MAX_FUNCTION_LINES
) -> list[str]:
    """Every app module and function over the limits, in words, file by file."""
    found = []
    for path in app_files(root):
        found += offenders_in(path.read_text(encoding="utf-8"), str(path.relative_to(root)), max_module, max_function)
    return found


def main() -> int:
    """Print the offenders; exit status 1 when there are any."""
    found = offenders()
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} over the limits ({MAX_MODULE_LINES} lines a module, {MAX_FUNCTION_LINES} a function)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
