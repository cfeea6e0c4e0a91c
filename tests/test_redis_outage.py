"""Redis stopped while `serve` works (docs/design.md, "When a service is down"): no change
without the lock, a clear answer or a retry, and service again once Redis is back.

`serve`'s real app and workers (tests/forge_world.py: PyGithub over `responses` to the stateful
GitHub fake, the session's MLflow server) with PROMOTION_BOT_LOCK_URL pointing at the session's
real `redis-server`, which the tests kill (SIGKILL: a crash, no data kept) and start again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.intake.entry import serve_app
from bot.intake.poll import poll
from bot.registry.client import Registry
from bot.runtime.context import Context
from bot.threads.markers import answered_comment_ids
from tests.forge_world import World, deliver, make_world
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow

DELAYS = (0.3, 0.6)  # serve's retry delays, shortened


@pytest.fixture
def world(tracking_uri: str, model_name: str, tmp_path: Path) -> Iterator[World]:
    with make_world("github", tracking_uri, model_name, tmp_path) as world:
        yield world


def with_redis(world: World, redis: RedisServer) -> Context:
    settings = replace(world.ctx.settings, lock_url=redis.url, lock_ttl=5.0)
    return Context(settings=settings, params=world.ctx.params)


def serve_once(
    ctx: Context, world: World, body: str, delays: tuple[float, ...] = DELAYS
) -> tuple[int, dict[str, Any]]:
    """One delivery to `serve`'s app; returns once every attempt of its job has ended."""
    app = serve_app(ctx, retry_delays=delays)
    app.start()
    try:
        answer = deliver(app, "github", world.post(world.number, body), "issue_comment")
        assert app.drain(60)
    finally:
        app.stop(10)
    return answer


def answered(world: World) -> list[str]:
    return sorted(cid for body in world.answers() for cid in answered_comment_ids([body]))


@pytest.fixture
def alias_moves(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> list[bool]:
    """Whether Redis answered at each moment the champion alias was written."""
    seen: list[bool] = []
    real = Registry.set_alias

    def set_alias(self: Registry, *args: Any, **kwargs: Any) -> None:
        seen.append(redis_server.answers())
        real(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "set_alias", set_alias)
    return seen


def test_redis_down_for_every_attempt_is_answered_and_nothing_changes(
    world: World, redis_server: RedisServer, alias_moves: list[bool]
) -> None:
    ctx = with_redis(world, redis_server)
    redis_server.stop()
    try:
        status, answer = serve_once(ctx, world, "/promote")
    finally:
        redis_server.start()

    assert (status, answer["status"]) == (202, "accepted")  # taken in memory meanwhile
    assert alias_moves == [] and world.champion() is None
    assert world.ctx.registry.history(world.model) == ()
    [body] = world.answers()
    assert "was not carried out: the lock service could not be reached" in body
    assert "tried 3 times" in body and "Comment the command again" in body
    assert "127.0.0.1" not in body and "redis://" not in body

    # Redis is back (empty, as after a crash): the repeated command goes through.
    status, _ = serve_once(ctx, world, "/promote")
    assert status == 202
    assert world.champion() == 1
    assert len(world.answers()) == 2 and "is now `champion`" in world.answers()[-1]
    assert alias_moves == [True]


def test_redis_back_before_the_last_attempt_the_retry_carries_it_out(
    world: World, redis_server: RedisServer, alias_moves: list[bool]
) -> None:
    ctx = with_redis(world, redis_server)
    redis_server.stop()
    restart = threading.Timer(0.15, redis_server.start)
    restart.start()
    try:  # the last attempt comes 2.5 s later: Redis is back long before
        status, _ = serve_once(ctx, world, "/promote", delays=(0.5, 2.0))
    finally:
        restart.join()

    assert status == 202
    assert world.champion() == 1 and alias_moves == [True]
    [body] = world.answers()
    assert "is now `champion`" in body


def test_redis_lost_in_the_middle_of_a_change_stops_it_before_the_alias_moves(
    world: World,
    redis_server: RedisServer,
    alias_moves: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis dies while the intent is being written: the lease cannot be confirmed before the
    alias move, so the pass stops there; once Redis is back the retry drops the intent and
    carries the command out, exactly once."""
    ctx = with_redis(world, redis_server)
    real = Registry.set_pending
    crashed = threading.Event()

    def set_pending(self: Registry, *args: Any, **kwargs: Any) -> None:
        if not crashed.is_set():
            crashed.set()
            redis_server.stop()
            threading.Timer(0.4, redis_server.start).start()
        real(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "set_pending", set_pending)
    started = time.monotonic()
    status, _ = serve_once(ctx, world, "/promote")

    assert status == 202 and crashed.is_set()
    assert alias_moves == [True], "the alias was written while Redis was down"
    [entry] = world.ctx.registry.history(world.model)
    assert entry.to_version == 1 and world.champion() == 1
    assert world.ctx.registry.pending(world.model) is None
    assert len(answered(world)) == 1
    assert "is now `champion`" in world.answers()[0]
    assert time.monotonic() - started < 30


def test_redis_lost_right_after_the_alias_moved_is_finished_and_answered_by_the_next_pass(
    world: World, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis dies right after the champion alias moved and stays down for every attempt: the
    thread is never told "nothing was changed" and the comment stays unanswered; the next pass
    (a scheduled `poll`, Redis back) finishes the record and gives the real answer, with the
    request's status and close."""
    ctx = with_redis(world, redis_server)
    real = Registry.set_alias

    def set_alias(self: Registry, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        redis_server.stop()

    monkeypatch.setattr(Registry, "set_alias", set_alias)
    try:
        status, _ = serve_once(ctx, world, "/promote")
    finally:
        monkeypatch.setattr(Registry, "set_alias", real)
        redis_server.start()

    assert status == 202 and world.champion() == 1
    assert world.answers() == [], "no answer may say the command changed nothing"
    assert world.ctx.registry.pending(world.model) is not None  # the record is unfinished

    result = poll(ctx)
    assert [outcome.status for _, outcome in result.outcomes] == ["recovered"]
    [body] = world.answers()
    assert "is now `champion`" in body
    [entry] = world.ctx.registry.history(world.model)
    assert entry.to_version == 1 and world.ctx.registry.pending(world.model) is None
    thread = world.ctx.forge.get_thread("issue", str(world.number))
    assert thread.state == "closed" and "Promoted" in thread.body
    assert poll(ctx).outcomes == [], "answered once"


class Killed(BaseException):
    """The process dies here (no except clause of the bot's catches it)."""


def test_no_nothing_was_changed_answer_for_a_change_another_process_began(
    world: World, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One replica moves the alias and dies; the redelivery reaches a replica while Redis is
    down for every attempt. Its answer after the last attempt would say "nothing was changed":
    the registry holds the comment's intent, so it says nothing and leaves it to the next pass."""
    ctx = with_redis(world, redis_server)
    payload = world.post(world.number, "/promote")
    real = Registry.set_alias

    def set_alias(self: Registry, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        raise Killed

    monkeypatch.setattr(Registry, "set_alias", set_alias)
    with pytest.raises(Killed):
        world.handle(payload)
    monkeypatch.setattr(Registry, "set_alias", real)
    assert world.champion() == 1 and world.answers() == []

    redis_server.stop()
    try:
        app = serve_app(ctx, retry_delays=DELAYS)
        app.start()
        try:  # the same comment, delivered again
            assert deliver(app, "github", payload, "issue_comment")[0] == 202
            assert app.drain(60)
        finally:
            app.stop(10)
    finally:
        redis_server.start()
    assert world.answers() == []

    [(_, outcome)] = poll(ctx).outcomes
    assert outcome.status == "recovered"
    [body] = world.answers()
    assert "is now `champion`" in body
