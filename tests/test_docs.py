"""The README documents every setting with its default, and the .env.example names them all."""

from pathlib import Path

import pytest

from config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_the_readme_table(setting):
    assert f"| `{setting.name}` |" in README


@pytest.mark.parametrize(
    "setting",
    [s for s in SETTINGS if s.name not in ("SCHEMA_PATH", "PAGE_SIZE", "LOGIN_MAX_FAILURES")],
    ids=lambda s: s.name,
)
def test_user_facing_settings_are_in_env_example(setting):
    assert setting.name in ENV_EXAMPLE


def test_readme_quick_start_commands_are_the_ones_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -r requirements-dev.txt" in ci and "python -m pytest" in ci
    assert "pip install -r requirements-dev.txt && .venv/bin/python -m pytest" in README
    assert "pip install -r requirements.txt && .venv/bin/python app.py" in README
