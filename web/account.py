"""The account page (a person's e-mail address and notification settings) and the admins'
webhooks page (each webhook with its recent deliveries)."""

from __future__ import annotations

import functools

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

import accounts
import notifications
import tables
from errors import Unprocessable
from web.forms import AccountForm

bp = Blueprint("account", __name__)
RECENT_DELIVERIES = 10  # per webhook on the admin page


def admin_required(view):
    """Refuse (403) anyone but the admins (ADMIN_USER), on the server, for every call."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not accounts.is_admin(current_user):
            abort(403, "Only admins can see this page.")
        return view(*args, **kwargs)

    return wrapped


@bp.route("/account", methods=["GET", "POST"])
def account():
    """Your e-mail address and what you are told about: kinds of events, tables watched, digest."""
    user = current_user._get_current_object()
    form = AccountForm()
    form.kinds.choices = list(notifications.KINDS.items())
    form.watch.choices = [(t.name, t.name) for t in tables.every()]
    status = 200
    if form.validate_on_submit():
        try:
            notifications.save_settings(
                user, form.email.data or "", set(form.kinds.data or []), list(form.watch.data or []), form.digest.data
            )
        except Unprocessable as exc:
            form.email.errors = [*form.email.errors, str(exc)]
            status = 422
        else:
            flash("Your notification settings are saved.", "success")
            return redirect(url_for("account.account"))
    elif form.is_submitted():
        status = 422
    else:
        prefs = notifications.Preferences.of(user)
        form.email.data = user.email or ""
        form.kinds.data = [k for k in notifications.KINDS if prefs.wants(k)]
        form.watch.data = prefs.watch
        form.digest.data = prefs.digest
    return render_template("account.html", form=form, email_on=notifications.email_enabled()), status


@bp.route("/admin/webhooks")
@admin_required
def webhooks():
    """Every webhook with its recent deliveries (admins only)."""
    hooks = [(hook, notifications.deliveries(hook.id, RECENT_DELIVERIES)) for hook in notifications.webhooks()]
    return render_template("webhooks.html", hooks=hooks)
