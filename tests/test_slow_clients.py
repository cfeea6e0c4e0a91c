"""What a client that never authenticates can hold (docs/security.md, "HTTP connections to
`serve`"): connections, time, size.

Before: 101 connections sending a partial body and then a byte every few seconds kept /healthz
from answering for as long as they stayed open (waitress's connection_limit of 100, and its
channel_timeout only counts silence).
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from bot.config.settings import Secret, Settings
from bot.intake.http_server import HttpServer
from bot.intake.wsgi import WebhookApp
from bot.webhook_auth import sign_github
from tests.helpers import start_serve, wait_until_serving
from tests.mlflow_server import free_port
from tests.webhook_fixtures import raw_webhook

ROOT = Path(__file__).resolve().parent.parent
SECRET = "slow-client-test-secret"
PARTIAL = (
    b"POST /webhooks/github HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
    b"X-GitHub-Event: issue_comment\r\nContent-Length: 100000\r\n\r\n{"
)


class Dribblers:
    """`count` connections that each sent a partial body and add one byte per `interval`."""

    def __init__(self, port: int, count: int, interval: float) -> None:
        self.sockets: list[socket.socket] = []
        for _ in range(count):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(PARTIAL)
            self.sockets.append(conn)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._dribble, args=(interval,), daemon=True)
        self._thread.start()

    def _dribble(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for conn in self.sockets:
                with contextlib.suppress(OSError):  # closed by the server: what limits are for
                    conn.send(b" ")

    def closed_by_server(self) -> list[bool]:
        """For each connection: has the server closed it (EOF or reset)?"""
        result = []
        for conn in self.sockets:
            conn.setblocking(False)
            try:
                result.append(conn.recv(1) == b"")
            except BlockingIOError:
                result.append(False)
            except OSError:
                result.append(True)
        return result

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.sockets:
            conn.close()


def health_latencies(url: str, seconds: float, every: float = 0.25) -> list[float]:
    """GET /healthz repeatedly for `seconds`; each answer's time (a timeout fails the test)."""
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        response = requests.get(f"{url}/healthz", timeout=1)
        assert response.status_code == 200
        latencies.append(time.monotonic() - start)
        time.sleep(every)
    return latencies


@contextmanager
def server(**limits: float) -> Iterator[tuple[str, list[str]]]:
    """An in-process HttpServer around the real app; yields its URL and the dispatched ids."""
    dispatched: list[str] = []
    app = WebhookApp(
        Settings(github_webhook_secret=Secret(SECRET)),
        lambda event, _command: dispatched.append(event.comment_id),
    )
    app.start()
    http = HttpServer(app, "127.0.0.1", 0, **limits)  # type: ignore[arg-type]
    thread = threading.Thread(target=http.serve_forever, kwargs={"grace": 1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.addresses[0][1]}", dispatched
    finally:
        http.shutdown()
        thread.join(10)
        app.stop(5)


def signed_delivery(url: str) -> int:
    body = raw_webhook("github_issue_comment_pr")
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": f"d-{time.monotonic_ns()}",
        "X-Hub-Signature-256": sign_github(SECRET, body),
    }
    return requests.post(
        f"{url}/webhooks/github", data=body, headers=headers, timeout=5
    ).status_code


@pytest.mark.slow
def test_healthz_answers_within_a_second_while_150_connections_dribble(tmp_path: Path) -> None:
    """Against `promotion-bot serve` itself, in its own process, on loopback."""
    port = free_port()
    process = start_serve(tmp_path, port, secret=SECRET)
    url = f"http://127.0.0.1:{port}"
    dribblers = None
    try:
        wait_until_serving(url, process)
        dribblers = Dribblers(port, 150, interval=1.0)
        latencies = health_latencies(url, seconds=6)
        still_open = dribblers.closed_by_server().count(False)
    finally:
        if dribblers is not None:
            dribblers.close()
        process.terminate()
        process.communicate(timeout=30)
    print(
        f"\n/healthz under 150 dribbling connections: {len(latencies)} answers, "
        f"max {max(latencies) * 1000:.0f} ms; {still_open} dribblers still open after 6 s"
    )
    assert max(latencies) < 1.0
    assert still_open == 150  # under the limits and the deadline: nobody was cut off early


def test_a_request_that_takes_longer_than_the_deadline_is_closed() -> None:
    with server(request_deadline=1.0) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        dribbler = Dribblers(port, 1, interval=0.2)  # never silent: channel_timeout would not act
        try:
            time.sleep(0.5)
            assert dribbler.closed_by_server() == [False]
            time.sleep(1.5)
            assert dribbler.closed_by_server() == [True]
        finally:
            dribbler.close()
        assert signed_delivery(url) == 202  # a request that arrives whole is not affected


def test_an_idle_connection_is_closed_after_the_deadline_too() -> None:
    with server(request_deadline=1.0) as (url, _):
        conn = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5)
        try:
            conn.settimeout(3)
            start = time.monotonic()
            assert conn.recv(1) == b""  # closed without a byte sent either way
            assert 0.9 < time.monotonic() - start < 2.5
        finally:
            conn.close()


def test_past_max_connections_the_longest_waiting_are_closed_and_new_ones_get_in() -> None:
    with server(request_deadline=30.0, max_connections=20) as (url, dispatched):
        port = int(url.rsplit(":", 1)[1])
        old = Dribblers(port, 20, interval=0.5)
        time.sleep(0.3)
        new = Dribblers(port, 10, interval=0.5)  # 30 open: the 10 that waited longest must go
        try:
            assert max(health_latencies(url, seconds=1.5)) < 1.0  # each one a new connection
            assert signed_delivery(url) == 202
            time.sleep(0.5)
            assert old.closed_by_server().count(True) >= 10  # the longest waiting made room
            assert not any(new.closed_by_server())
        finally:
            old.close()
            new.close()
        assert dispatched == ["2712345601"]


def test_a_content_length_of_non_ascii_digits_is_not_trusted() -> None:
    """ "²" is a digit to str.isdigit() but not to int(): it must not become a 500."""
    app = WebhookApp(Settings(github_webhook_secret=Secret(SECRET)), lambda _event, _command: None)
    body = io.BytesIO(b"{}")
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/github",
        "CONTENT_LENGTH": "²",
        "wsgi.input": body,
    }
    statuses: list[str] = []
    app(environ, lambda status, _headers: statuses.append(status))
    assert statuses == ["401 Unauthorized"]  # read as "no length": nothing read, then unsigned
    assert body.tell() == 0
