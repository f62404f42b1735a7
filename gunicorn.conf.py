"""gunicorn settings: read automatically when gunicorn starts in this directory.

Flags on the command line win over these (e.g. `gunicorn -w 4 -b 0.0.0.0:8000 app:app`), and so
does GUNICORN_CMD_ARGS. Measurements behind the numbers: docs/PERFORMANCE.md.
"""

# An upload is read, compared and staged within its request. A 1,000,000-row file (about 200 MB)
# takes 10–20 s on a 2-core machine, an approval of all of it about as long; gunicorn's default
# of 30 s would kill the worker of a slower machine mid-upload. 300 s leaves room for that and for
# downloads to slow clients (a sync worker streams the CSV itself; a proxy that buffers responses,
# as nginx does by default, frees it sooner). Uploads are also limited by MAX_UPLOAD_MB (512).
timeout = 300
graceful_timeout = 60  # a worker finishing an upload or an approval on restart

# Access log to stdout, errors to stderr: the process manager (systemd, docker) keeps both.
accesslog = "-"
errorlog = "-"


def on_starting(server) -> None:
    """Refuse to start, before any worker, when the app would (a broken schema.json, a missing
    setting): the message is on stderr and gunicorn exits with WORKER_BOOT_ERROR (3). A refusal
    found later, by a worker (the database), stops the master the same way (`app.__getattr__`)."""
    import app

    try:
        app.check_start_up()
    except SystemExit:
        raise SystemExit(app.WORKER_BOOT_ERROR) from None
