"""Admin tasks as flask commands: `flask --app app users …`, `flask --app app tokens …`,
`flask --app app webhooks …`, `flask --app app notify run`, `flask --app app cleanup`,
`flask --app app changes approve ID --override` (break-glass) and `flask --app app audit verify`."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TypeVar

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

import accounts
import approvals
import changes
import events
import housekeeping
import messages
import notifications
import sender
from errors import DomainError
from models import utcnow

users = AppGroup("users", help="Manage sign-in accounts.")
tokens = AppGroup("tokens", help="Manage API tokens.")
changes_group = AppGroup("changes", help="Decide change requests from the server console (break-glass).")
audit = AppGroup("audit", help="Check the event log.")
webhooks = AppGroup("webhooks", help="Manage webhooks: signed event messages to other systems.")
notify = AppGroup("notify", help="Deliver notifications (e-mails and webhook calls).")
T = TypeVar("T")


def _fail(message: str):
    raise click.ClickException(message)


def _account_step(step: Callable[..., T], *args) -> T:
    """Run an accounts function; what it refuses (AuthError) becomes the command's error message."""
    try:
        return step(*args)
    except accounts.AuthError as exc:
        raise click.ClickException(str(exc)) from None


def _domain_step(step: Callable[..., T], *args) -> T:
    """Run a domain function; what it refuses (DomainError) becomes the command's error message."""
    try:
        return step(*args)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None


def _password(name: str, password: str | None) -> str:
    """The password given, or prompted for (twice); refused when too short or too common."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    _account_step(accounts.check_password_policy, name, password)
    return password


@users.command("create")
@click.argument("name")
@click.option("--password", help="The password; prompted for when omitted.")
@click.option("--email", help="The address notifications go to.")
def create_user(name: str, password: str | None, email: str | None) -> None:
    """Create a user account."""
    if email is not None:
        _domain_step(notifications.check_email, email)
    _account_step(accounts.create_user, name, _password(name, password))
    if email:
        _domain_step(notifications.set_email, name, email)
    click.echo(f"Created user {name!r}" + (f" with e-mail {email.strip()}." if email else "."))


@users.command("set-email")
@click.argument("name")
@click.argument("address")
def set_email(name: str, address: str) -> None:
    """Set the e-mail address a user's notifications go to ("" removes it)."""
    user = _domain_step(notifications.set_email, name, address)
    click.echo(f"E-mail of {name!r}: {user.email}." if user.email else f"{name!r} has no e-mail address now.")


@users.command("set-password")
@click.argument("name")
@click.option("--password", help="The new password; prompted for when omitted.")
def set_password(name: str, password: str | None) -> None:
    """Set a user's password (every session of the account ends; its API tokens stay)."""
    _account_step(accounts.set_password, name, _password(name, password))
    click.echo(f"Password of {name!r} changed; its sessions have ended.")


@users.command("disable")
@click.argument("name")
def disable_user(name: str) -> None:
    """Disable an account: it cannot sign in, its sessions end, its API tokens answer 401.
    Its change requests and audit entries stay, under its name."""
    _account_step(accounts.set_disabled, name, True)
    click.echo(f"Disabled {name!r}: it cannot sign in and its sessions and API tokens no longer work.")


@users.command("enable")
@click.argument("name")
def enable_user(name: str) -> None:
    """Enable a disabled account again (its API tokens that were not revoked work again)."""
    _account_step(accounts.set_disabled, name, False)
    click.echo(f"Enabled {name!r}.")


@users.command("list")
def list_users() -> None:
    """List user accounts (admins, disabled accounts and those made by the sign-in proxy marked)."""
    for user in accounts.list_users():
        marks = [
            mark
            for mark, applies in (
                ("admin", accounts.is_admin(user)),
                ("disabled", not user.is_active),
                ("from the sign-in proxy", user.created_by_proxy and not user.oidc_subject),
                ("from the identity provider", bool(user.oidc_subject)),
            )
            if applies
        ]
        click.echo(user.username + "".join(f"  ({mark})" for mark in marks))


@users.command("groups")
@click.argument("name")
@click.option("--add", "add", multiple=True, metavar="GROUP", help="Add user NAME to GROUP (repeatable).")
@click.option("--remove", "remove", multiple=True, metavar="GROUP", help="Remove user NAME from GROUP (repeatable).")
def user_groups(name: str, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Show, add or remove the groups of user NAME (roles in schema.json name them as group:GROUP)."""
    groups = _account_step(accounts.change_groups, name, add, remove)
    click.echo(f"Groups of {name!r}: {', '.join(groups) if groups else '(none)'}")


@tokens.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(accounts.TOKEN_SCOPES),
    default="decide",
    show_default=True,
    help="read: read only; submit: also upload, resolve, revert, withdraw; decide: also approve and reject.",
)
@click.option(
    "--expires",
    "days",
    type=click.IntRange(1, accounts.MAX_TOKEN_DAYS),
    help="Days until it stops working (default: never).",
)
def create_token(name: str, scope: str, days: int | None) -> None:
    """Create an API token for user NAME; the token is the last line printed."""
    token = _account_step(lambda: accounts.create_token(name, scope=scope, expires_days=days))
    click.echo(f"API token for {name!r} (shown once; send it as 'Authorization: Bearer TOKEN'):", err=True)
    click.echo(token)


@tokens.command("list")
@click.argument("name", required=False)
def list_tokens(name: str | None) -> None:
    """List API tokens (of user NAME, or everyone's): id, user, prefix, scope, created, expiry, last used, state."""
    now = utcnow()
    for token, username in accounts.list_tokens(name):
        state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
        if not token.revoked_at and token.expires_at is not None and token.expires_at <= now:
            state = "expired"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        expires = f"expires {token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "never expires"
        click.echo(
            f"{token.id}\t{username}\t{token.prefix}…\tscope {token.scope}\tcreated {token.created_at:%Y-%m-%d %H:%M}"
            f"\t{expires}\tlast used {used}\t{state}"
        )


@tokens.command("revoke")
@click.argument("name")
def revoke_tokens(name: str) -> None:
    """Revoke all API tokens of user NAME."""
    count = _account_step(accounts.revoke_tokens, name)
    click.echo(f"Revoked {count} token(s) of {name!r}.")


@click.command("cleanup")
@with_appcontext
def cleanup() -> None:
    """Delete expired error files, held uploads and the staged rows of old rejected and withdrawn
    requests (KEEP_DECIDED_DAYS). The app also does this at start-up and every CLEANUP_INTERVAL_MINUTES;
    run it from cron when that is 0."""
    done = housekeeping.clean_up()
    # The app cleaned up once already when this command started it: count that too.
    done += current_app.extensions.pop("clean_up_at_start", None) or housekeeping.CleanUp(0, 0, 0)
    click.echo(
        f"Deleted {done.error_files} expired error file(s) and the staged rows of {done.purged_requests}"
        f" rejected or withdrawn request(s); forgot {done.login_failures} old failed sign-in(s) and"
        f" {done.held_uploads} expired held upload(s)."
    )


@changes_group.command("approve")
@click.argument("change_id", type=int)
@click.option(
    "--override", is_flag=True, help="Apply it whatever the table's approval policy says (recorded as an override)."
)
@click.option("--reason", default="", help="Why the policy is overridden (required, kept in the event log).")
def approve_change(change_id: int, override: bool, reason: str) -> None:
    """Break-glass: apply a pending request despite the approval policy (--override --reason TEXT).

    For emergencies only, from the server console; recorded as an `override` event naming the
    console's user. Ordinary approvals go through the review page or the API."""
    if not override:
        _fail("Approve through the review page or the API; from the console only --override --reason TEXT is possible.")
    if not reason.strip():
        _fail("--reason is required: say why the approval policy is overridden.")
    user = f"console:{getpass.getuser()}"[:150]
    try:
        version = changes.approve(change_id, user, signoff=approvals.Signoff(reason=reason.strip(), override=True))
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Overrode the approval policy: change request #{change_id} applied as version {version}.")


@audit.command("verify")
def verify_events() -> None:
    """Recompute the event log's hash chain: print the events and the head hash, or fail naming
    the first event that does not match."""
    found = events.verify()
    if found.broken is not None:
        click.echo(f"Event log BROKEN at event {found.broken}: {found.problem}", err=True)
        click.echo(f"{found.count} event(s) before it verified; last good hash {found.head}", err=True)
        raise SystemExit(1)
    click.echo(f"Event log intact: {found.count} event(s); head hash {found.head}")


@webhooks.command("add")
@click.argument("url")
@click.option("--secret", required=True, help="Signs every message (Standard Webhooks; a whsec_… secret is base64).")
@click.option(
    "--events", default="", help=f"Comma-separated event types (default: all): {', '.join(messages.EVENT_TYPES)}."
)
@click.option("--table", "table", help="Only events of this table (default: every table).")
def add_webhook(url: str, secret: str, events: str, table: str | None) -> None:
    """Send signed event messages to URL."""
    wanted = [e.strip() for e in events.split(",") if e.strip()]
    hook = _domain_step(notifications.add_webhook, url, secret, wanted, table)
    click.echo(f"Added webhook {hook.id}: {hook.url} ({events or 'all events'}; {table or 'every table'}).")


@webhooks.command("list")
def list_webhooks() -> None:
    """List webhooks: id, URL, event types, table."""
    for hook in notifications.webhooks():
        click.echo(f"{hook.id}\t{hook.url}\t{hook.events or 'all events'}\t{hook.table_name or 'every table'}")


@webhooks.command("remove")
@click.argument("webhook_id", type=int)
def remove_webhook(webhook_id: int) -> None:
    """Remove a webhook (its undelivered messages are dropped)."""
    _domain_step(notifications.remove_webhook, webhook_id)
    click.echo(f"Removed webhook {webhook_id}.")


@webhooks.command("deliveries")
@click.argument("webhook_id", type=int)
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
def webhook_deliveries(webhook_id: int, limit: int) -> None:
    """List a webhook's recent deliveries: webhook-id, event, request, status, attempts, last error."""
    for m in _domain_step(notifications.deliveries, webhook_id, limit):
        when = f"sent {m.sent_at:%Y-%m-%d %H:%M:%S}" if m.sent_at else f"next {m.next_attempt_at:%Y-%m-%d %H:%M:%S}"
        shown = when if m.status in ("sent", "pending") else m.status
        click.echo(
            f"{m.message_id}\t{m.event}\t#{m.change_id}\t{m.status}\t{m.attempts} attempt(s)\t{shown}"
            + (f"\t{m.last_error}" if m.last_error and m.status != "sent" else "")
        )


@notify.command("run")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop (else: run until stopped).")
@click.option("--poll", default=5.0, show_default=True, help="Seconds between looks at the outbox when idle.")
def notify_run(once: bool, poll: float) -> None:
    """Deliver e-mails and webhook calls from the outbox (a worker of its own; several may run)."""
    current_app.config["NOTIFY_SENDER"] = False  # this command is the sender: no thread besides it
    if once:
        digests = notifications.send_digests()
        done = sender.deliver_all()
        click.echo(f"Sent {done.sent}, retrying {done.retrying}, failed {done.failed}; {digests} digest(s) written.")
        return
    click.echo("Delivering notifications; stop with Ctrl+C.", err=True)
    sender.run_forever(poll)
