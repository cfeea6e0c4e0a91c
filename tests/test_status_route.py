"""`serve`'s status page route (bot.intake.status_route): basic auth where only the password
decides, and one build of the page for every request within a few seconds."""

from __future__ import annotations

import base64
import threading

import pytest

from bot.intake.status_route import CachedPage, authorized

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


def test_one_build_serves_every_request_for_a_few_seconds() -> None:
    now = [100.0]
    built: list[int] = []

    def build() -> str:
        built.append(1)
        return f"page {len(built)}"

    page = CachedPage(build, ttl=5, clock=lambda: now[0])
    threads = [threading.Thread(target=page.get) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert page.get() == b"page 1" and len(built) == 1
    now[0] += 4.9
    assert page.get() == b"page 1"
    now[0] += 0.2
    assert page.get() == b"page 2" and page.builds == 2
