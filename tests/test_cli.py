"""The admin commands, through app.test_cli_runner(): users create / set-password, tokens create / list / revoke."""

from __future__ import annotations

import click
import pytest

import cli


def signs_in(app, username: str, password: str) -> bool:
    r = app.test_client().post("/login", data={"username": username, "password": password})
    return r.status_code == 302


def api_status(app, token: str) -> int:
    return app.test_client().get("/api/v1/changes", headers={"Authorization": f"Bearer {token}"}).status_code


# --- users -----------------------------------------------------------------------------------


def test_users_create_with_password(app, runner):
    result = runner.invoke(args=["users", "create", "carol", "--password", "carol-secret"])
    assert result.exit_code == 0, result.output
    assert "carol" in result.output
    assert signs_in(app, "carol", "carol-secret")
    assert not signs_in(app, "carol", "wrong-secret")


def test_users_create_prompts_for_the_password(app, runner):
    result = runner.invoke(args=["users", "create", "dave"], input="dave-secret-1\ndave-secret-1\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.output and "dave-secret-1" not in result.output  # hidden input
    assert signs_in(app, "dave", "dave-secret-1")


def test_users_create_prompt_needs_matching_confirmation(app, runner):
    result = runner.invoke(
        args=["users", "create", "dave"], input="dave-secret-1\nother-one-two\ndave-secret-1\ndave-secret-1\n"
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output.lower()
    assert signs_in(app, "dave", "dave-secret-1")


def test_users_create_fails_clearly_if_the_name_exists(app, runner):
    result = runner.invoke(args=["users", "create", "alice", "--password", "another-password"])
    assert result.exit_code != 0
    assert "alice" in result.output and "already exists" in result.output
    assert "Traceback" not in result.output
    assert signs_in(app, "alice", "alice-password")  # untouched
    assert not signs_in(app, "alice", "another-password")


def test_users_create_refuses_a_short_password(app, runner):
    for weak in ("short", "password", "elevenchars"):  # 8 characters were enough before: now 12
        result = runner.invoke(args=["users", "create", "erin", "--password", weak])
        assert result.exit_code != 0 and "12 characters" in result.output, weak
        assert not signs_in(app, "erin", weak)


def test_users_set_password(app, runner):
    result = runner.invoke(args=["users", "set-password", "alice", "--password", "new-alice-password"])
    assert result.exit_code == 0, result.output
    assert signs_in(app, "alice", "new-alice-password")
    assert not signs_in(app, "alice", "alice-password")


def test_users_set_password_prompts(app, runner):
    result = runner.invoke(args=["users", "set-password", "bob"], input="bob-new-secret\nbob-new-secret\n")
    assert result.exit_code == 0, result.output
    assert signs_in(app, "bob", "bob-new-secret")


def test_users_set_password_of_an_unknown_user_fails(app, runner):
    result = runner.invoke(args=["users", "set-password", "zed", "--password", "zed-password"])
    assert result.exit_code != 0 and "zed" in result.output and "users create" in result.output


def test_users_list_marks_admins(app, runner):
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0
    assert result.output.splitlines() == ["alice", "bob", "boss  (admin)"]


# --- tokens ----------------------------------------------------------------------------------


def test_tokens_create_prints_a_working_token_last(app, runner):
    result = runner.invoke(args=["tokens", "create", "alice"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert result.stdout.strip() == token  # stdout carries the token alone: scripts read it
    assert api_status(app, token) == 200
    assert api_status(app, token[:-1]) == 401


def test_tokens_create_for_an_unknown_user_fails(app, runner):
    result = runner.invoke(args=["tokens", "create", "zed"])
    assert result.exit_code != 0 and "zed" in result.output
    assert result.stdout == ""


def test_tokens_list(app, runner):
    alice_token = runner.invoke(args=["tokens", "create", "alice"]).stdout.strip()
    runner.invoke(args=["tokens", "create", "bob"])
    everyone = runner.invoke(args=["tokens", "list"])
    assert everyone.exit_code == 0
    lines = everyone.output.splitlines()
    assert [line.split("\t")[1] for line in lines] == ["alice", "bob"]
    assert all(line.endswith("active") for line in lines)
    assert alice_token[:10] in lines[0] and alice_token not in everyone.output  # only a prefix is shown
    assert [line.split("\t")[1] for line in runner.invoke(args=["tokens", "list", "bob"]).output.splitlines()] == [
        "bob"
    ]


def test_tokens_revoke_revokes_all_of_a_users_tokens(app, runner):
    first = runner.invoke(args=["tokens", "create", "alice"]).stdout.strip()
    second = runner.invoke(args=["tokens", "create", "alice"]).stdout.strip()
    bobs = runner.invoke(args=["tokens", "create", "bob"]).stdout.strip()
    assert api_status(app, first) == api_status(app, second) == 200
    result = runner.invoke(args=["tokens", "revoke", "alice"])
    assert result.exit_code == 0 and "2" in result.output
    assert api_status(app, first) == api_status(app, second) == 401
    assert api_status(app, bobs) == 200
    listed = runner.invoke(args=["tokens", "list", "alice"]).output.splitlines()
    assert len(listed) == 2 and all("revoked" in line for line in listed)


def test_tokens_revoke_of_an_unknown_user_fails(app, runner):
    result = runner.invoke(args=["tokens", "revoke", "zed"])
    assert result.exit_code != 0 and "zed" in result.output


# --- help ------------------------------------------------------------------------------------


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


OUR_COMMANDS = [(("users",), cli.users), (("tokens",), cli.tokens), *_commands(cli.users, ("users",)),
                *_commands(cli.tokens, ("tokens",))]  # fmt: skip


@pytest.mark.parametrize("path, command", OUR_COMMANDS, ids=[" ".join(p) for p, _ in OUR_COMMANDS])
def test_every_command_has_help(shared_app, path, command):
    assert command.help and command.help.strip(), f"{' '.join(path)} has no help text"
    result = shared_app.test_cli_runner().invoke(args=[*path, "--help"])
    assert result.exit_code == 0
    assert " ".join(command.help.split()[:6]) in " ".join(result.output.split())


def test_the_commands_are_registered_on_the_app(app):
    assert {"users", "tokens"} <= set(app.cli.commands)
    assert {"create", "set-password"} <= set(cli.users.commands)
    assert {"create", "list", "revoke"} <= set(cli.tokens.commands)
