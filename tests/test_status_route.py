"""`serve`'s status page route (bot.intake.status_route): basic auth where only the password
decides, wrong passwords slowed down per client (429), and a page built in the background: a
viewer gets the last page at once, never waiting for a build."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.config.settings import Secret, Settings
from bot.intake.status_route import BackgroundPage, FailedLogins, authorized, client_of
from bot.intake.wsgi import WebhookApp
from bot.webhook_auth import sign_github
from tests.webhook_fixtures import raw_webhook

PASSWORD = "s3cret-é".encode()


def basic(user: bytes, password: bytes) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(user + b":" + password).decode()}


@pytest.mark.parametrize(
    ("environ", "ok"),
    [
        (basic(b"anyone", PASSWORD), True),
        (basic(b"", PASSWORD), True),  # any user name, even none
        (basic(b"admin", PASSWORD + b"x"), False),
        (basic(b"admin", b""), False),
        ({"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(PASSWORD).decode()}, False),
        ({"HTTP_AUTHORIZATION": "Bearer " + PASSWORD.decode()}, False),
        ({"HTTP_AUTHORIZATION": "Basic not base64!"}, False),
        ({}, False),
    ],
)
def test_only_the_password_decides(environ: dict[str, str], ok: bool) -> None:
    assert authorized(environ, PASSWORD) is ok


def test_no_password_admits_nobody() -> None:
    assert authorized(basic(b"x", b""), b"") is False


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within time"
        time.sleep(0.01)


def test_a_viewer_gets_the_last_page_while_a_build_runs() -> None:
    clock = Clock()
    go = [threading.Event(), threading.Event()]  # each build waits for the test
    built: list[int] = []

    def build() -> str:
        assert go[len(built)].wait(10)
        built.append(1)
        return f"page {len(built)}"

    page = BackgroundPage(build, ttl=5, clock=clock)
    try:
        # The very first viewer: a page that says so and reloads itself, without a script.
        first = page.get()
        assert b'<meta http-equiv="refresh" content="2">' in first and b"being built" in first
        assert b"<script" not in first.lower()
        go[0].set()
        eventually(lambda: page.get() == b"page 1")
        clock.now += 5  # old: the next viewer asks for a build, and does not wait for it
        started = time.monotonic()
        answers = [page.get() for _ in range(50)]
        assert time.monotonic() - started < 1 and set(answers) == {b"page 1"}
        assert page.builds == 1  # the second build is running, one for all fifty viewers
        go[1].set()
        eventually(lambda: page.get() == b"page 2")
        assert page.builds == 2 and len(built) == 2
    finally:
        for event in go:
            event.set()
        page.stop()


def test_a_build_that_fails_keeps_the_last_page() -> None:
    clock = Clock()
    results: list[str | Exception] = ["page 1", RuntimeError("registry down"), "page 3"]

    def build() -> str:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    page = BackgroundPage(build, ttl=5, clock=clock)
    try:
        page.start()
        eventually(lambda: page.get() == b"page 1")
        clock.now += 5
        page.get()
        eventually(lambda: len(results) == 1)
        assert page.get() == b"page 1"
        clock.now += 5
        eventually(lambda: page.get() == b"page 3")
    finally:
        page.stop()


def test_a_page_is_as_old_as_the_read_it_was_built_from() -> None:
    """A build that takes long dates the page from its start: a viewer who comes `ttl` after
    that start asks for the next build, even when the slow one ended only just before."""
    clock = Clock()
    release = threading.Event()
    built: list[int] = []

    def build() -> str:
        built.append(1)
        if len(built) == 2:
            assert release.wait(10)  # the second build is slow: the clock moves meanwhile
        return f"page {len(built)}"

    page = BackgroundPage(build, ttl=5, clock=clock)
    try:
        page.start()
        eventually(lambda: page.get() == b"page 1")
        clock.now += 5
        page.get()  # asks for build 2, which starts at 5
        eventually(lambda: len(built) == 2)
        clock.now += 5  # 10: build 2 is 5 old, though it has not ended yet
        release.set()
        eventually(lambda: page.get() == b"page 3")
    finally:
        release.set()
        page.stop()


def test_upkeep_runs_after_a_build_and_what_it_found_shows_at_once() -> None:
    """The walks of the whole chains run after a build on the page's thread; when they walked
    something, the page is built again without waiting for the next viewer."""
    seen: list[str] = []
    built: list[int] = []

    def build() -> str:
        built.append(1)
        return f"page {len(built)}"

    def upkeep(stopping: Callable[[], bool]) -> list[str]:
        assert not stopping()
        seen.append(threading.current_thread().name)
        return ["walked"] if len(seen) == 1 else []

    page = BackgroundPage(build, upkeep, ttl=5)
    try:
        page.start()
        eventually(lambda: page.get() == b"page 2")
        assert seen == ["status-page"] and page.builds == 2
    finally:
        page.stop()


# --- wrong passwords --------------------------------------------------------------------------
def test_wrong_passwords_empty_a_small_bucket_that_refills() -> None:
    clock = Clock()
    logins = FailedLogins(burst=3, refill=20, clock=clock)
    for _ in range(3):
        assert logins.wait("10.0.0.1") == 0
        logins.failed("10.0.0.1")
    assert logins.wait("10.0.0.1") == pytest.approx(20)
    assert logins.wait("10.0.0.2") == 0  # another client is not slowed down
    clock.now += 15
    assert logins.wait("10.0.0.1") == pytest.approx(5)
    clock.now += 5
    assert logins.wait("10.0.0.1") == 0
    logins.failed("10.0.0.1")
    assert logins.wait("10.0.0.1") == pytest.approx(20)  # one try, then wait again


def test_only_so_many_clients_are_remembered() -> None:
    logins = FailedLogins(burst=1, max_clients=2)
    for client in ("a", "b", "c"):
        logins.failed(client)
    assert [logins.wait(c) > 0 for c in ("a", "b", "c")] == [False, True, True]


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same machine's block
        ("", ""),
    ],
)
def test_a_client_is_its_address_or_its_ipv6_block(address: str, client: str) -> None:
    assert client_of({"REMOTE_ADDR": address}) == client


def _get(app: WebhookApp, environ: dict[str, str]) -> tuple[str, dict[str, str], bytes]:
    seen: list[Any] = []
    request = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": "203.0.113.7"}
    body = b"".join(app({**request, **environ}, lambda s, h: seen.extend([s, dict(h)])))
    return seen[0], seen[1], body


def test_serve_answers_429_after_a_few_wrong_passwords_and_still_takes_webhooks() -> None:
    settings = Settings(status_password=Secret("right"), github_webhook_secret=Secret("s"))
    dispatched: list[object] = []
    app = WebhookApp(
        settings,
        lambda comment, command: dispatched.append(command),
        status_page=lambda: "<p>the page</p>",
        failed_logins=FailedLogins(burst=2, refill=30),
    )
    app.start()
    try:
        assert _get(app, {})[0] == "401 Unauthorized"  # no credentials yet: not counted
        wrong = basic(b"x", b"wrong")
        assert [_get(app, wrong)[0] for _ in range(2)] == ["401 Unauthorized"] * 2
        status, headers, _ = _get(app, wrong)
        assert status == "429 Too Many Requests" and headers["Retry-After"] == "30"
        # Not even the right password is looked at until then: it would tell a guesser.
        assert _get(app, basic(b"x", b"right"))[0] == "429 Too Many Requests"
        other = {**basic(b"x", b"right"), "REMOTE_ADDR": "198.51.100.1"}
        eventually(lambda: _get(app, other)[2] == b"<p>the page</p>")

        body = raw_webhook("github_issue_comment_pr")
        delivery = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/webhooks/github",
            "REMOTE_ADDR": "203.0.113.7",  # the client the page refuses
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "HTTP_X_GITHUB_EVENT": "issue_comment",
            "HTTP_X_GITHUB_DELIVERY": "d-1",
            "HTTP_X_HUB_SIGNATURE_256": sign_github("s", body),
        }
        answer = json.loads(b"".join(app(delivery, lambda *_args: None)))
        assert answer == {"status": "accepted"} and app.drain(5) and len(dispatched) == 1
    finally:
        app.stop(5)
