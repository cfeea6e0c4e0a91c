"""The registry unreachable from the start of a `/promote` (docs/design.md, "When a service is
down"): after `serve`'s last attempt the approver is told, once, that nothing was changed and that
the command must be repeated — and that is true: `poll` does not take the command up again (the
answer marks it handled), and the repeated command goes through once the registry is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import bot.intake.entry
from bot.errors import BotError, RegistryUnavailable
from bot.intake.entry import serve_app
from bot.intake.poll import poll
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.threads.markers import answered_comment_ids
from tests.forge_world import World, deliver, make_world
from tests.mlflow_server import free_port

PASSWORD = "reg-pw-5e21"
DELAYS = (0.05, 0.1)


@pytest.fixture
def world(tracking_uri: str, model_name: str, tmp_path: Path) -> Iterator[World]:
    with make_world("github", tracking_uri, model_name, tmp_path) as world:
        yield world


def serve_once(ctx: Context, world: World, body: str) -> str:
    app = serve_app(ctx, retry_delays=DELAYS)
    app.start()
    try:
        payload = world.post(world.number, body)
        assert deliver(app, "github", payload, "issue_comment")[0] == 202
        assert app.drain(60)
    finally:
        app.stop(10)
    return str(payload["comment"]["id"])


def test_after_the_last_attempt_the_approver_is_told_and_can_repeat(world: World) -> None:
    down = f"http://bot:{PASSWORD}@127.0.0.1:{free_port()}"
    unreachable = Context(
        settings=replace(world.ctx.settings, tracking_uri=down), params=world.ctx.params
    )

    first = serve_once(unreachable, world, "/promote")

    [answer] = world.answers()
    assert answered_comment_ids([answer]) == {first}
    assert "was not carried out: the model registry could not be reached" in answer
    assert "tried 3 times over 0.15 s" in answer and "Nothing was changed by this command" in answer
    assert "Comment the command again" in answer and "`poll` skips it" in answer
    assert PASSWORD not in answer and "127.0.0.1" not in answer
    assert world.champion() is None and world.ctx.registry.history(world.model) == ()

    # The registry is back: poll leaves the answered command alone, as the answer says...
    assert poll(world.ctx).outcomes == []
    assert world.champion() is None
    # ...and the repeated command goes through, answered once.
    second = serve_once(world.ctx, world, "/promote")
    assert world.champion() == 1
    assert answered_comment_ids(world.answers()) == {first, second}
    assert len(world.answers()) == 2


def test_no_such_answer_when_an_attempt_failed_after_it_could_have_written(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt that got past the first registry read may have left a change for the next
    pass to finish: saying "nothing was changed" could be false, so nothing is said."""
    failures = iter([RegistryUnavailable("down"), RuntimeError("failed mid-change")])

    def handle(_ctx: Any, _event: Any, _thread: Any = None, **_options: Any) -> Outcome:
        raise next(failures, RegistryUnavailable("down"))

    monkeypatch.setattr(bot.intake.entry, "route_comment", handle)
    serve_once(world.ctx, world, "/promote")
    assert world.answers() == []


def unreachable(world: World) -> Context:
    down = f"http://bot:{PASSWORD}@127.0.0.1:{free_port()}"
    return Context(settings=replace(world.ctx.settings, tracking_uri=down), params=world.ctx.params)


def test_handle_on_github_actions_answers_once_and_fails_the_job(world: World) -> None:
    """`handle` gets one run per delivery (no redelivery): the approver is told at once, and the
    job still fails, saying so, for whoever watches the workflow runs."""
    payload = world.post(world.number, "/promote")
    down = replace(world, ctx=unreachable(world))

    with pytest.raises(BotError) as failed:
        down.handle(payload)

    message = str(failed.value)
    assert "the command was not carried out; the thread was told to repeat it" in message
    assert PASSWORD not in message
    [answer] = world.answers()
    assert answered_comment_ids([answer]) == {str(payload["comment"]["id"])}
    assert "was not carried out: the model registry could not be reached" in answer
    assert "promotion-bot could not reach the model registry. Nothing was changed" in answer
    assert PASSWORD not in answer and "127.0.0.1" not in answer
    # The registry is back: poll leaves the answered command alone, as the answer says.
    assert poll(world.ctx).outcomes == [] and world.champion() is None


def test_poll_answers_once_while_the_registry_is_down(world: World) -> None:
    """A scheduled `poll` with the registry down: the command is answered on the first run, the
    run fails (red job); the next run, still down, adds nothing to the thread."""
    comment = world.post(world.number, "/promote")
    down = unreachable(world)

    first = poll(down)
    assert len(first.failures) == 1, first.summary()
    assert "answered: repeat the command" in first.failures[0]
    [answer] = world.answers()
    assert answered_comment_ids([answer]) == {str(comment["comment"]["id"])}
    assert "could not be reached" in answer and "Comment the command again" in answer

    second = poll(down)
    assert second.failures == [] and second.outcomes == []
    assert len(world.answers()) == 1 and world.champion() is None
