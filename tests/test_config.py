"""Settings are declared once (config.SETTINGS) and the README's table says the same: each variable,
once, with its default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import config
from config import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def readme_table() -> dict[str, str]:
    """`NAME` → the Default column, for each row of README's configuration table."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[2].strip() for m in re.finditer(r"^\| `([A-Z_]+)` \|([^|]*)\|", section, re.MULTILINE)}


def test_every_setting_is_declared_once():
    names = [s.name for s in SETTINGS]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_the_readme_table_lists_exactly_the_settings_with_their_defaults():
    table = readme_table()
    assert list(table) == [s.name for s in SETTINGS]
    for s in SETTINGS:
        assert table[s.name] == (s.shown or f"`{s.default}`"), s.name


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_read_into_the_config(setting, tmp_path, monkeypatch):
    """Unset, each setting gives what its default reads as; a typo in `key` or a reader would show."""
    for s in SETTINGS:
        monkeypatch.delenv(s.name, raising=False)
    read = config.from_environment(tmp_path)
    expected = setting.read(setting.default, config.Source(setting.name, tmp_path, production=False))
    assert read[setting.key or setting.name] == expected


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("PAGE_SIZE", "many", "PAGE_SIZE must be a whole number, got 'many'"),
        ("MAX_UPLOAD_MB", "1.5", "MAX_UPLOAD_MB must be a whole number, got '1.5'"),
        ("DROP_REMOVED_TABLES", "maybe", "DROP_REMOVED_TABLES must be true or false, got 'maybe'"),
        ("HISTORY_KEEP_VERSIONS", "all", "HISTORY_KEEP_VERSIONS must be a whole number, got 'all'"),
    ],
)
def test_a_malformed_setting_is_named(name, raw, message, tmp_path, monkeypatch):
    monkeypatch.setenv(name, raw)
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.from_environment(tmp_path)
