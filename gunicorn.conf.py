"""gunicorn settings: read automatically when gunicorn starts in this directory.

Flags on the command line win over these (e.g. `gunicorn -w 4 -b 0.0.0.0:8000 app:app`), and so
does GUNICORN_CMD_ARGS. Measurements behind the numbers: docs/PERFORMANCE.md.
"""

import os

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

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

# A client that stops sending (the rest of its headers, or the body it announced) must not hold a
# sync worker until `timeout` kills it, minutes later: every read from the client, and every write
# to it, waits at most CLIENT_TIMEOUT_SECONDS (default 15) before the connection is dropped. The
# app checks sign-in before it reads any body, so an anonymous request's body is never waited for.
# A client trickling a byte every few seconds is the proxy's to stop (nginx: client_header_timeout,
# client_body_timeout and request buffering, README "Production").
CLIENT_TIMEOUT_SECONDS = float(os.environ.get("CLIENT_TIMEOUT_SECONDS", "15"))


class SyncWorkerWithClientTimeout(SyncWorker):
    """gunicorn's sync worker, with a timeout on each read from and write to the client socket."""

    def accept(self, listener):
        client, addr = listener.accept()
        client.settimeout(CLIENT_TIMEOUT_SECONDS)  # blocking, as the sync worker expects, but not forever
        util.close_on_exec(client)
        self.handle(listener, client, addr)


worker_class = SyncWorkerWithClientTimeout


def on_starting(server) -> None:
    """Refuse to start, before any worker, when the app would (a broken schema.json, a missing
    setting): the message is on stderr and gunicorn exits with WORKER_BOOT_ERROR (3). A refusal
    found later, by a worker (the database), stops the master the same way (`app.__getattr__`)."""
    import app

    try:
        app.check_start_up()
    except SystemExit:
        raise SystemExit(app.WORKER_BOOT_ERROR) from None
