"""The stateful GitHub/GitLab fakes of tests/fakes/ behind a real HTTP server on loopback, so
that separate processes (`promotion-bot serve` replicas, `poll`) share one forge.

The fake's routes are the ones it installs into `responses`; this server collects them, rewrites
each request's URL to the fake's own base URL and answers with the same callbacks, one request at
a time (the fake's state is plain dicts). Every request is recorded. `latency` holds each
answer back that many seconds, outside that lock, as a forge's API does (the benchmark of
several models at once, bench/many_models.py).
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.forges import FakeForge


@dataclass
class _Request:
    """What a fake's callback reads of a request (the `responses` request's attributes)."""

    method: str
    url: str
    body: bytes
    headers: dict[str, str]


class _Routes:
    """Stands in for `responses.RequestsMock` while a fake installs its routes."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Any]] = []

    def add_callback(self, method: str, url: re.Pattern[str], callback: Any, **_: Any) -> None:
        self.routes.append((method, url, callback))


class FakeForgeServer:
    def __init__(self, fake: FakeForge, base: str, latency: float = 0.0) -> None:
        self.fake = fake
        self.latency = latency
        self._base = base.rstrip("/")  # the URL the fake's routes expect, e.g. api.github.com
        collected = _Routes()
        fake.install(collected)  # type: ignore[arg-type]
        self._routes = collected.routes
        self.lock = threading.Lock()  # one request at a time; tests hold it to read the state
        self.requests: list[_Request] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeForgeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
        request = _Request(method, self._base + path, body, headers)
        if self.latency:
            time.sleep(self.latency)  # the network and the forge's own work, in parallel
        with self.lock:
            self.requests.append(request)
            for wanted, pattern, callback in self._routes:
                if wanted == method and pattern.match(request.url):
                    return callback(request)
        return 404, {"Content-Type": "application/json"}, '{"message": "Not Found"}'

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, text = server.answer(
                    self.command, self.path, body, dict(self.headers.items())
                )
                payload = text.encode() if isinstance(text, str) else bytes(text)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
