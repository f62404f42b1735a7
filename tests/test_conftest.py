"""The test set-up itself (conftest.py): the README's test command passes on any fresh clone, and
two runs give the same result.

- Browser tests skip with a reason when Chromium or axe-core is missing, and fail naming what is
  missing when REQUIRE_BROWSER=1 (CI).
- Hypothesis runs derandomised unless HYPOTHESIS_PROFILE=nightly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AXE, HYPOTHESIS_PROFILE, browser_missing, browser_verdict, folder_state
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("chromium", "axe_exists", "required", "expected"),
    [
        ("/usr/bin/chromium", True, False, None),
        ("/usr/bin/chromium", True, True, None),
        (None, True, False, ("skip", ["chromium is missing", "REQUIRE_BROWSER=1 makes this a failure"])),
        (None, True, True, ("fail", ["REQUIRE_BROWSER=1 but chromium is missing", "apt-get install -y chromium"])),
        ("/usr/bin/chromium", False, False, ("skip", ["axe-core is missing", "npm ci --prefix tests/js"])),
        ("/usr/bin/chromium", False, True, ("fail", ["REQUIRE_BROWSER=1 but axe-core is missing"])),
        (None, False, True, ("fail", ["chromium is missing", "axe-core is missing"])),
    ],
)
def test_browser_tests_skip_or_fail_naming_what_is_missing(tmp_path, chromium, axe_exists, required, expected):
    axe = tmp_path / "axe.min.js"
    if axe_exists:
        axe.write_text("/* axe */")
    verdict = browser_verdict(browser_missing(chromium, axe), required)
    if expected is None:
        assert verdict is None
        return
    action, words = expected
    assert verdict is not None and verdict[0] == action, verdict
    for word in words:
        assert word in verdict[1], verdict


def test_a_browser_test_without_axe_needs_only_chromium(tmp_path):
    assert browser_missing("/usr/bin/chromium", None) == []
    assert browser_missing("/usr/bin/chromium", tmp_path / "absent.js") != []
    assert AXE.name == "axe.min.js" and AXE.parent.parent.parent == ROOT / "tests" / "js"


def run_browser_test(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """tests/test_browser.py (SQLite) in a pytest of its own, with PATH an empty directory: no chromium."""
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if k != "REQUIRE_BROWSER"}
    environment |= {"PATH": str(empty)} | env
    cmd = [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", "-k", "sqlite"]
    cmd += ["tests/test_browser.py", f"--basetemp={tmp_path / 'run'}"]
    return subprocess.run(cmd, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_without_chromium_the_browser_tests_skip_unless_required(tmp_path):
    """The README's command on a machine without Chromium: skipped with the reason; CI's: failed."""
    done = run_browser_test(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" in done.stdout and "failed" not in done.stdout, done.stdout
    assert "chromium is missing (not on PATH): install Debian's browser" in done.stdout, done.stdout

    done = run_browser_test(tmp_path, REQUIRE_BROWSER="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed" in done.stdout, done.stdout
    assert "REQUIRE_BROWSER=1 but chromium is missing" in done.stdout, done.stdout


def test_property_tests_are_derandomised_by_default():
    """Two runs of the suite draw the same examples (unless HYPOTHESIS_PROFILE=nightly is asked for)."""
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") != "ci":
        pytest.skip(f"HYPOTHESIS_PROFILE={HYPOTHESIS_PROFILE} asked for")
    assert HYPOTHESIS_PROFILE == "ci"
    assert settings.default.derandomize is True
    assert settings.default.database is None
    assert settings.default.print_blob is True
    assert settings.get_profile("nightly").derandomize is False


def test_apps_keep_their_instance_files_outside_the_checkout(app):
    """INSTANCE_PATH (set by conftest for this process and every subprocess) is a temporary folder:
    the secret key, the start-up lock and the first admin's password never land in the checkout."""
    assert os.environ["INSTANCE_PATH"] == app.instance_path
    assert not Path(app.instance_path).is_relative_to(ROOT)
    assert not Path(app.config["FIRST_ADMIN_PASSWORD_FILE"]).is_relative_to(ROOT)
    assert Path(app.instance_path).is_dir()  # made by config.from_environment; the start-up lock is a file on SQLite


def test_the_instance_check_sees_a_changed_file(tmp_path):
    assert folder_state(tmp_path / "absent") is None
    (tmp_path / "first-admin-password").write_text("kept")
    before = folder_state(tmp_path)
    assert folder_state(tmp_path) == before
    (tmp_path / "first-admin-password").write_text("overwritten")
    assert folder_state(tmp_path) != before
    (tmp_path / "first-admin-password").write_text("kept")
    (tmp_path / "startup.lock").touch()
    assert folder_state(tmp_path) != before
