"""The whole journey on both forges: `request` -> `/promote` -> `/rollback` -> `poll`.

python-gitlab and PyGithub talk over `responses` to the stateful fakes the benchmark uses too
(tests/fakes/), the registry is the real MLflow server of the session. Deliveries arrive as
the forge sends them: a webhook to `serve`'s app, an Actions event file to `handle`, and a
comment whose webhook never came, found by `poll`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import open_or_update_request
from bot.intake.poll import poll
from bot.threads.markers import answered_comment_ids, read_request_marker
from tests.fakes.forges import BOT
from tests.forge_world import World, make_world
from tests.helpers import log_training_run

# GitLab EE (the fake's /metadata says so) eats a note that is only `/promote`.
PROMOTE = {"gitlab": f"@{BOT} promote", "github": "/promote"}


def train(world: World, logloss: float) -> int:
    """A training run registered as `smoke` and gated, as the pipeline's CI jobs do."""
    run_id = log_training_run(world.ctx.settings.tracking_uri, {"final.logloss": logloss})
    version = register(world.ctx, run_id=run_id, alias="smoke").version.version
    assert gate(world.ctx, version=version).passed
    return version


def thread_url(world: World, number: int) -> str:
    thread = world.fake.threads[number]
    return str(thread.get("web_url") or thread["html_url"])


@pytest.mark.parametrize("platform", ["gitlab", "github"])
def test_request_promote_rollback_poll(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    with make_world(platform, tracking_uri, model_name, tmp_path) as world:
        registry, fake, first = world.ctx.registry, world.fake, world.number
        promote = PROMOTE[platform]

        # `request` opened v1's thread: the body names v1 and shows the command that works here,
        # and the registry records the thread as v1's request.
        marker = read_request_marker(fake.body(first))
        assert marker is not None and (marker.model, marker.version) == (model_name, 1)
        assert promote in fake.body(first)
        assert registry.version(model_name, 1).requested_in == thread_url(world, first)

        # An approver's /promote reaches `serve` as the forge's webhook.
        status, answer = world.serve(world.post(first, promote))
        assert (status, answer["status"]) == (202, "accepted")
        assert world.champion() == 1
        assert fake.state(first) == "closed"  # close_on_promote

        # A better v2 passes the gate; `request` opens its thread (v1's is done).
        assert train(world, 0.55) == 2
        second = int(open_or_update_request(world.ctx).number)
        assert registry.version(model_name, 2).requested_in == thread_url(world, second)
        fake.set_body(second, fake.body(second).replace("- [ ]", "- [x]"))

        # /promote and then /rollback reach `handle` as Actions event files.
        assert world.handle(world.post(second, promote)).status == "changed"
        assert world.champion() == 2
        outcome = world.handle(world.post(second, "/rollback 1\nDrift alert on live data."))
        assert (outcome.status, world.champion()) == ("changed", 1)

        # A command whose webhook never came: `poll` finds it, and only it.
        world.post(second, "/rollback 2")
        result = poll(world.ctx)
        assert [outcome.status for _, outcome in result.outcomes] == ["changed"]
        assert result.failures == [] and world.champion() == 2
        assert poll(world.ctx).outcomes == []  # answered: nothing left to do

        # The audit trail: one history entry per change, each `from` the previous `to`.
        history = [(h.action, h.from_version, h.to_version) for h in registry.history(model_name)]
        assert history == [
            ("promote", None, 1),
            ("promote", 1, 2),
            ("rollback", 2, 1),
            ("rollback", 1, 2),
        ]
        # Exactly one answer per command, each naming the comment it answers.
        for number in (first, second):
            commands = world.comment_ids(number, "maria")
            answers = world.answers(number)
            assert len(answers) == len(commands) and answered_comment_ids(answers) == commands
