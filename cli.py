"""Admin tasks as flask commands: `flask --app app users …` and `flask --app app tokens …`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click
from flask.cli import AppGroup

import accounts

users = AppGroup("users", help="Manage sign-in accounts.")
tokens = AppGroup("tokens", help="Manage API tokens.")
T = TypeVar("T")


def _fail(message: str):
    raise click.ClickException(message)


def _account_step(step: Callable[..., T], *args) -> T:
    """Run an accounts function; what it refuses (AuthError) becomes the command's error message."""
    try:
        return step(*args)
    except accounts.AuthError as exc:
        raise click.ClickException(str(exc)) from None


def _password(password: str | None) -> str:
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        _fail("A password needs at least 8 characters.")
    return password


@users.command("create")
@click.argument("name")
@click.option("--password", help="The password; prompted for when omitted.")
def create_user(name: str, password: str | None) -> None:
    """Create a user account."""
    _account_step(accounts.create_user, name, _password(password))
    click.echo(f"Created user {name!r}.")


@users.command("set-password")
@click.argument("name")
@click.option("--password", help="The new password; prompted for when omitted.")
def set_password(name: str, password: str | None) -> None:
    """Set a user's password."""
    _account_step(accounts.set_password, name, _password(password))
    click.echo(f"Password of {name!r} changed.")


@users.command("list")
def list_users() -> None:
    """List user accounts (admins marked)."""
    for user in accounts.list_users():
        click.echo(f"{user.username}{'  (admin)' if accounts.is_admin(user) else ''}")


@tokens.command("create")
@click.argument("name")
def create_token(name: str) -> None:
    """Create an API token for user NAME; the token is the last line printed."""
    token = _account_step(accounts.create_token, name)
    click.echo(f"API token for {name!r} (shown once; send it as 'Authorization: Bearer TOKEN'):", err=True)
    click.echo(token)


@tokens.command("list")
@click.argument("name", required=False)
def list_tokens(name: str | None) -> None:
    """List API tokens (of user NAME, or everyone's): id, user, prefix, created, last used, state."""
    for token, username in accounts.list_tokens(name):
        state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        click.echo(
            f"{token.id}\t{username}\t{token.prefix}…\tcreated {token.created_at:%Y-%m-%d %H:%M}\tlast used {used}\t{state}"
        )


@tokens.command("revoke")
@click.argument("name")
def revoke_tokens(name: str) -> None:
    """Revoke all API tokens of user NAME."""
    count = _account_step(accounts.revoke_tokens, name)
    click.echo(f"Revoked {count} token(s) of {name!r}.")
