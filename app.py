"""Dataset Tracker: `create_app()` wires config, extensions, pages, API, errors and commands.

Run `python app.py` (development server on port 8000) or `gunicorn app:app` (production).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask, jsonify, request
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

import bootstrap
import cli
import config
import events
import housekeeping
import sender
import store.base
from models import db
from package import Package
from schema import SchemaError
from web import account, api, auth, body, error_pages, event_log, oidc, pages, roles, table_urls
from web.params import IdConverter, query_args, refuse_nul_characters

csrf = CSRFProtect()
migrate = Migrate()
MIGRATIONS = Path(__file__).with_name("migrations")
WORKER_BOOT_ERROR = 3  # gunicorn's Arbiter.WORKER_BOOT_ERROR: "worker failed to boot", the master halts

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def create_app(test_config: dict | None = None) -> Flask:
    """The application: defaults, then the environment (and .env), then `test_config`."""
    load_dotenv(Path(__file__).with_name(".env"))
    app = Flask(__name__, instance_path=instance_folder(), instance_relative_config=True)
    app.request_class = body.Request  # uploads read in large pieces and split in place (web/body.py)
    app.json.sort_keys = False  # row objects keep schema.json's field order
    package = configure(app, test_config)
    app.extensions["package"] = package
    if app.config.get("PROXY_FIX"):  # the client's address, as the N proxies in front report it
        proxies = app.config["PROXY_FIX"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    if not app.debug:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    store.base.prepare_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    csrf.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    auth.login_manager.init_app(app)
    app.url_map.converters["id"] = IdConverter
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(event_log.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(oidc.bp)
    app.register_blueprint(roles.bp)
    app.register_blueprint(roles.api_bp)
    oidc.init_app(app)
    csrf.exempt(api.bp)  # the API authenticates with bearer tokens, never cookies
    csrf.exempt(roles.api_bp)
    # Sign-in first, before anything reads a body (CSRFProtect's check, registered by
    # csrf.init_app above, reads the form): an anonymous body is never read, only refused.
    app.before_request_funcs.setdefault(None, []).insert(0, auth.require_login)
    app.before_request(refuse_nul_characters)
    # After the CSRF check (every form without its token is refused the same way, whatever it names):
    # the role each page and API call needs on its table, and the token's scope.
    app.before_request(roles.check_access)
    app.before_request(housekeeping.maybe_clean_up)
    app.before_request(sender.start_if_waiting)
    app.after_request(security_headers)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.context_processor(table_urls.template_values)
    app.context_processor(lambda: {"may_read_events": events.may_read})
    app.jinja_env.globals["query_args"] = query_args  # the query string, safe to hand back to url_for
    error_pages.register(app)
    app.cli.add_command(cli.users)
    app.cli.add_command(cli.tokens)
    app.cli.add_command(cli.cleanup)
    app.cli.add_command(cli.changes_group)
    app.cli.add_command(cli.audit)
    app.cli.add_command(cli.webhooks)
    app.cli.add_command(cli.notify)

    with app.app_context():
        store.base.configure_sqlite(db.engine)
        if not app.config.get("SKIP_DB_INIT"):
            try:
                bootstrap.init_database(app, package)
            except SchemaError as exc:
                print(f"Dataset Tracker cannot start: {exc}", file=sys.stderr, flush=True)
                raise SystemExit(f"Dataset Tracker cannot start: {exc}") from None
            app.extensions["clean_up_at_start"] = housekeeping.clean_up()
        housekeeping.started(app)
    return app


def configure(app: Flask, test_config: dict | None = None) -> Package:
    """The settings into `app.config` (defaults, the environment, `test_config`), checked, and
    schema.json read; a refusal prints its message and raises SystemExit with it."""
    try:
        app.config.from_mapping(config.from_environment(Path(app.instance_path)))
        app.config.update(test_config or {})
        app.config["AUTH_PROXY_IPS"] = config.proxy_networks(app.config.get("AUTH_PROXY_IPS"))
        config.check(app.config)
        return Package.load(app.config["SCHEMA_PATH"])
    except (config.ConfigError, SchemaError) as exc:
        print(f"Dataset Tracker cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(f"Dataset Tracker cannot start: {exc}") from None


def check_start_up() -> None:
    """What `create_app` refuses before it touches the database (settings, schema.json), checked on
    a bare app: gunicorn's master asks first (gunicorn.conf.py), so a broken schema.json stops
    gunicorn within a second instead of after every worker has loaded the app."""
    load_dotenv(Path(__file__).with_name(".env"))
    configure(Flask(__name__, instance_path=instance_folder(), instance_relative_config=True))


def instance_folder() -> str | None:
    """INSTANCE_PATH from the environment, made absolute (Flask requires it), or None for Flask's
    `instance/` beside app.py: where the secret key, the SQLite database, the start-up lock and the
    first admin's password live. Tests point it at a temporary folder, so they leave the checkout's
    instance/ alone."""
    folder = os.environ.get("INSTANCE_PATH", "").strip()
    return str(Path(folder).resolve()) if folder else None


def security_headers(response):
    """Headers on every response: no framing, no sniffing, no inline script; nothing but the
    static files may be kept by a browser or a proxy (pages, downloads and API answers hold
    table data, error files the uploader's data, the tokens page a token)."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def healthz():
    """200 when the database answers; 503 (JSON) when it does not. No sign-in needed."""
    try:
        store.base.ping()
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify({"status": "unavailable", "database": "unreachable"}), 503
    return jsonify({"status": "ok", "database": "ok"})


def __getattr__(name: str) -> Flask:
    """`app:app` for gunicorn and `flask --app app`, created on first use so importing is cheap.

    A start-up refusal (its message already on stderr) exits with WORKER_BOOT_ERROR: a gunicorn
    worker that exits 1 is replaced by a new one, forever, while this status makes the master stop
    with it, so systemd or a container runtime sees the failure.
    """
    if name == "app":
        try:
            instance = create_app()
        except SystemExit as refused:
            raise SystemExit(WORKER_BOOT_ERROR) from refused
        globals()["app"] = instance
        return instance
    raise AttributeError(name)


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=8000, debug=False)
