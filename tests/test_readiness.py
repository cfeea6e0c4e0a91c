"""`GET /readyz` (docs/design.md, "Metrics and readiness"): the registry, the forge and the lock
service asked at once, each within a deadline, the answer kept a few seconds; a failed component
is named, never described.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.intake.entry import serve_app
from bot.intake.readiness import Readiness
from bot.runtime.context import Context
from tests.forge_fixtures import github_url
from tests.forge_world import World, make_world
from tests.mlflow_server import free_port
from tests.redis_server import RedisServer
from tests.webhook_fixtures import load_webhook

PASSWORD = "reg-pw-0a7c"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_answers_are_kept_a_few_seconds_then_asked_again() -> None:
    asked: list[str] = []
    clock = Clock()
    readiness = Readiness(
        {"registry": lambda: asked.append("registry"), "forge": lambda: asked.append("forge")},
        keep=5.0,
        clock=clock,
    )
    assert readiness.report() == {"registry": True, "forge": True}
    clock.now += 4.9
    assert readiness.report() == {"registry": True, "forge": True}
    assert sorted(asked) == ["forge", "registry"]
    clock.now += 0.2
    readiness.report()
    assert len(asked) == 4


def test_a_failing_check_is_false_and_a_hung_one_is_not_started_twice() -> None:
    release = threading.Event()
    started: list[int] = []

    def hung() -> None:
        started.append(1)
        release.wait(10)

    def broken() -> None:
        raise RuntimeError("https://user:secret@registry.example/ refused")

    readiness = Readiness({"registry": broken, "forge": hung}, deadline=0.2, keep=0.0)
    assert readiness.report() == {"registry": False, "forge": False}
    assert readiness.report() == {"registry": False, "forge": False}
    assert len(started) == 1, "a check still running was started again"
    release.set()
    readiness._running["forge"].join(5)
    assert readiness.report()["forge"] is True and len(started) == 2


@pytest.fixture
def world(tracking_uri: str, model_name: str, tmp_path: Path) -> Iterator[World]:
    with make_world("github", tracking_uri, model_name, tmp_path) as world:
        repository = load_webhook("github_issue_comment_issue")["repository"]
        world.rsps.get(github_url("/repos/octo-org/models"), json=repository)
        yield world


def ready(ctx: Context) -> tuple[int, dict[str, Any], str]:
    app = serve_app(ctx)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/readyz", "wsgi.input": io.BytesIO(b"")}
    seen: list[str] = []
    app.start()
    try:
        raw = b"".join(app(environ, lambda status, _h: seen.append(status))).decode()
    finally:
        app.stop(5)
    return int(seen[0].split()[0]), json.loads(raw), raw


def test_ready_when_registry_forge_and_lock_answer(world: World, redis_server: RedisServer) -> None:
    ctx = Context(
        settings=replace(world.ctx.settings, lock_url=redis_server.url), params=world.ctx.params
    )
    status, body, _ = ready(ctx)
    assert status == 200
    assert body == {"status": "ready", "checks": {"registry": True, "forge": True, "lock": True}}


def test_an_unreachable_registry_is_named_and_nothing_else_said(world: World) -> None:
    down = f"http://bot:{PASSWORD}@127.0.0.1:{free_port()}"
    ctx = Context(settings=replace(world.ctx.settings, tracking_uri=down), params=world.ctx.params)
    status, body, raw = ready(ctx)
    assert status == 503
    assert body["failed"] == ["registry"] and body["checks"]["forge"] is True
    assert PASSWORD not in raw and "127.0.0.1" not in raw and "http" not in raw


def test_a_stopped_lock_service_is_named(world: World, redis_server: RedisServer) -> None:
    ctx = Context(
        settings=replace(world.ctx.settings, lock_url=redis_server.url), params=world.ctx.params
    )
    redis_server.stop()
    try:
        status, body, raw = ready(ctx)
    finally:
        redis_server.start()
    assert (status, body["failed"]) == (503, ["lock"])
    assert "redis" not in raw and str(redis_server.port) not in raw
