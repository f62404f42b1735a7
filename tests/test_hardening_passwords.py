"""Hardening round 3 (issue 20), passwords: a real strength estimate (zxcvbn), and the first-admin
password file deleted once that password is changed."""

from __future__ import annotations

import pytest

import accounts
import config


@pytest.fixture
def strict(make_app):
    """An app with the production strength rule (the other tests' fixtures lower it)."""
    return make_app(PASSWORD_MIN_GUESSES_LOG10=config.STRONG_PASSWORD_GUESSES_LOG10)


@pytest.mark.parametrize(
    "name, password, why",
    [
        ("dave", "davedave2026", 'Repeats like "abcabcabc"'),
        ("eve", "dataset-tracker1", "too easy to guess"),
        ("eve", "qwertyuiop2026", "too easy to guess"),
        ("eve", "Password2026!", "too easy to guess"),
    ],
)
def test_guessable_passwords_are_refused_with_a_clear_message(strict, name, password, why):
    result = strict.test_cli_runner().invoke(args=["users", "create", name, "--password", password])
    assert result.exit_code != 0
    assert "That password is too easy to guess" in result.output and why in result.output
    assert "Choose a longer one" in result.output
    with strict.app_context():
        assert accounts.find_user(name) is None


def test_a_strong_passphrase_is_accepted(strict):
    result = strict.test_cli_runner().invoke(args=["users", "create", "dave", "--password", "cobalt otter harbour 7"])
    assert result.exit_code == 0, result.output


def test_the_first_admin_password_file_goes_once_the_passwords_are_changed(make_app, tmp_path):
    secret = tmp_path / "first-admin-password"
    app = make_app(ADMIN_USERS=["root", "chief"], FIRST_ADMIN_PASSWORD_FILE=secret)
    assert [line.split(": ")[0] for line in secret.read_text().splitlines()] == ["root", "chief"]
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "set-password", "root", "--password", "cobalt otter harbour 7"]).exit_code == 0
    assert [line.split(": ")[0] for line in secret.read_text().splitlines()] == ["chief"]  # root's line is gone
    assert runner.invoke(args=["users", "set-password", "chief", "--password", "lantern moss quartz 9"]).exit_code == 0
    assert not secret.exists()
