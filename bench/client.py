"""The benchmarks' users: one signed-in person in process (Flask's test client) or over HTTP
(`requests` against gunicorn), uploads streamed from disk, and timed page loads."""

from __future__ import annotations

import io
import json
import os
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BOUNDARY = "benchboundary7d3f0a"
PAGE_REPEAT = 5


class MultipartFile(io.RawIOBase):
    """A multipart/form-data body streamed from disk (seekable): form fields, then one file part."""

    def __init__(self, path: Path, fields: dict[str, str], filename: str):
        pre = b"".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        pre += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        post = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.file = path.open("rb")
        size = path.stat().st_size
        self.parts = [(0, io.BytesIO(pre)), (len(pre), self.file), (len(pre) + size, io.BytesIO(post))]
        self.length = len(pre) + size + len(post)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.length + offset}[whence]
        return self.pos

    def readinto(self, buffer) -> int:
        for start, part in reversed(self.parts):
            if self.pos >= start:
                part.seek(self.pos - start)
                n = part.readinto(buffer)
                if n == 0 and part is not self.parts[-1][1]:
                    continue
                self.pos += n
                return n
        return 0

    def close(self) -> None:
        self.file.close()
        super().close()


def server_cpu() -> float:
    """CPU seconds used so far by the app that serves the requests: gunicorn's workers (their pids
    in BENCH_WORKERS), else this process. Less noisy than wall-clock time on a shared machine."""
    workers = [int(p) for p in os.environ.get("BENCH_WORKERS", "").split(",") if p]
    if not workers:
        return time.process_time()
    total = 0.0
    for pid in workers:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class Answer:
    status: int
    headers: dict
    content: bytes

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def json(self):
        return json.loads(self.content)

    @classmethod
    def of(cls, response) -> Answer:
        """A Flask test client's response as an Answer."""
        return cls(response.status_code, response.headers, response.data)


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class Web:
    """One signed-in user: pages with a session (and CSRF token over HTTP), the API with a token.

    `target` is the Flask app (in process) or the base URL of gunicorn (over HTTP)."""

    def __init__(self, target, user: str, token: str | None = None):
        self.http = isinstance(target, str)
        self.token = token
        self.csrf = ""
        self.last_cpu = 0.0
        if self.http:
            import requests

            self.base, self.session = target, requests.Session()
            page = self.session.get(self.base + "/login", timeout=600).text
            form = {"username": user, "password": f"{user}-password", "csrf_token": CSRF.search(page).group(1)}
            r = self.session.post(self.base + "/login", data=form, allow_redirects=False, timeout=600)
            self.csrf = CSRF.search(self.session.get(self.base + "/upload", timeout=600).text).group(1)
        else:
            self.client = target.test_client()
            r = self.client.post("/login", data={"username": user, "password": f"{user}-password"})
        if r.status_code != 302:
            raise SystemExit(f"login of {user} failed: {r.status_code}")

    def _headers(self, api: bool) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if api else {}

    def get(self, path: str, api: bool = False) -> Answer:
        if self.http:
            r = self.session.get(self.base + path, headers=self._headers(api), allow_redirects=False, timeout=600)
            return Answer(r.status_code, r.headers, r.content)
        r = self.client.get(path, headers=self._headers(api))
        return Answer(r.status_code, r.headers, r.data)

    def stream(self, path: str, api: bool = False) -> tuple[int, int, int]:
        """GET a streamed download chunk by chunk: (status, bytes, CRLF line ends)."""
        size = lines = 0
        if self.http:
            with self.session.get(self.base + path, headers=self._headers(api), stream=True, timeout=600) as r:
                for chunk in r.iter_content(1 << 20):
                    size += len(chunk)
                    lines += chunk.count(b"\r\n")
                return r.status_code, size, lines
        r = self.client.get(path, headers=self._headers(api), buffered=False)
        for chunk in r.response:
            size += len(chunk)
            lines += chunk.count(b"\r\n")
        r.close()
        return r.status_code, size, lines

    def post(self, path: str, form: dict | None = None, api: bool = False) -> Answer:
        form = dict(form or {})
        if self.http:
            if not api:
                form["csrf_token"] = self.csrf
            r = self.session.post(
                self.base + path, data=form, headers=self._headers(api), allow_redirects=False, timeout=600
            )
            return Answer(r.status_code, r.headers, r.content)
        r = self.client.post(path, data=form, headers=self._headers(api))
        return Answer(r.status_code, r.headers, r.data)

    def post_body(self, path: str, body, length: int, content_type: str, api: bool = False) -> Answer:
        """POST a body streamed from a file-like object, 1 MiB at a time."""
        stream = io.BufferedReader(body, 1 << 20) if isinstance(body, MultipartFile) else body
        if self.http:
            headers = self._headers(api) | {"Content-Type": content_type, "Content-Length": str(length)}
            r = self.session.post(self.base + path, data=stream, headers=headers, allow_redirects=False, timeout=600)
            return Answer(r.status_code, r.headers, r.content)
        r = self.client.post(
            path, input_stream=stream, content_length=length, content_type=content_type, headers=self._headers(api)
        )
        return Answer(r.status_code, r.headers, r.data)

    def upload(self, path: Path, mode: str = "full", **fields: str) -> tuple[int, float]:
        """Upload a file through the upload form; (change request id, seconds)."""
        form = {"mode": mode, "comment": "benchmark"} | fields
        if self.http:
            form["csrf_token"] = self.csrf
        body = MultipartFile(path, form, path.name)
        c0, t0 = server_cpu(), time.perf_counter()
        r = self.post_body("/upload", body, body.length, f"multipart/form-data; boundary={BOUNDARY}")
        seconds, self.last_cpu = time.perf_counter() - t0, server_cpu() - c0
        body.close()
        if r.status != 302 or "/changes/" not in r.location:
            raise SystemExit(f"upload of {path.name} failed: {r.status} {page_text(r.content.decode())[:1500]}")
        return int(r.location.rsplit("/", 1)[1]), seconds

    def upload_raw(self, path: Path, **query: str) -> tuple[int, float]:
        """Upload a file as the body of POST /api/v1/changes (scripts); (change request id, seconds)."""
        from urllib.parse import urlencode

        with path.open("rb") as f:
            c0, t0 = server_cpu(), time.perf_counter()
            r = self.post_body(f"/api/v1/changes?{urlencode(query)}", f, path.stat().st_size, "text/csv", api=True)
            seconds, self.last_cpu = time.perf_counter() - t0, server_cpu() - c0
        if r.status != 201:
            raise SystemExit(f"upload of {path.name} as the body failed: {r.status} {r.content[:1500]!r}")
        return r.json()["id"], seconds

    def approve(self, change_id: int) -> float:
        counts = self.counts(change_id)  # the review page asks to confirm big requests: the number confirms it
        total = counts["added"] + counts["modified"] + counts["deleted"]
        t0 = time.perf_counter()
        r = self.post(f"/changes/{change_id}/approve", {"confirm": str(total)})
        seconds = time.perf_counter() - t0
        if r.status != 302:
            raise SystemExit(f"approve failed: {r.status}")
        page = self.get(r.location).content.decode()
        if "Approved and applied" not in page:
            raise SystemExit(f"approve did not apply: {page_text(page)[:1500]}")
        return seconds

    def withdraw(self, change_id: int) -> None:
        if self.post(f"/changes/{change_id}/withdraw").status != 302:
            raise SystemExit(f"withdrawing change request {change_id} failed")

    def counts(self, change_id: int) -> dict[str, int]:
        r = self.get(f"/api/v1/changes/{change_id}?limit=1", api=True)
        return r.json()["summary"]


class Probe(threading.Thread):
    """Requests the home page every 0.2 s while a long step runs: can others browse meanwhile?"""

    def __init__(self, web: Web):
        super().__init__(daemon=True)
        self.web = web
        self.times: list[float] = []
        self.errors = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.2):
            t0 = time.perf_counter()
            r = self.web.get("/")
            self.times.append(time.perf_counter() - t0)
            self.errors += r.status != 200

    def stop(self) -> dict:
        self._stop_event.set()
        self.join()
        return {"requests": len(self.times), "max": max(self.times, default=None), "errors": self.errors}


def page_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def timed_get(get: Callable[[str], Answer], url: str, repeat: int = PAGE_REPEAT, expect: str | None = None) -> dict:
    """GET `url` `repeat` times (`get`: a Web's, or `Answer.of` a Flask client's): the median, the
    slowest and the first time; SystemExit unless every answer is 200 (and holds `expect`)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = get(url)
        times.append(time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"GET {url}: {r.status} {page_text(r.content.decode())[:500]}")
        if expect is not None and expect.encode() not in r.content:
            raise SystemExit(f"GET {url}: {expect!r} not in the answer")
    return {"seconds": statistics.median(times), "max": max(times), "first": times[0], "url": url}
