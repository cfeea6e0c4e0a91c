"""`poll`: unanswered commands on the model's requests, handled oldest first, exactly once."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.forges.local import LocalForge
from bot.intake.poll import poll
from tests.promotion_env import Playground


def test_poll_handles_unanswered_commands_across_requests_oldest_first(pg: Playground):
    first = pg.train(0.6)
    done = pg.open_request(first)
    pg.comment(done, "maria", "/promote")  # handled at once: answered, must not run again
    second = pg.train(0.58)
    open_request = pg.open_request(second)
    other = pg.open_request(second, model="another-model")  # not this bot's model
    # Comments that arrived while nobody listened: a rollback on the closed request is older
    # than the /promote on the open one, so it runs first.
    pg.forge.add_comment(done.number, "olga", f"/rollback {first}")  # already champion: refused
    pg.forge.add_comment(open_request.number, "sam", "lgtm")  # chatter
    pg.forge.add_comment(open_request.number, "maria", "/promote\nchecked")
    pg.forge.add_comment(other.number, "maria", "/promote")

    result = poll(pg.ctx)

    assert [o.status for _cid, o in result.outcomes] == ["refused", "changed"]
    assert result.failures == []
    assert pg.champion() == second
    assert [(h["from"], h["to"]) for h in pg.history()] == [(None, first), (first, second)]
    assert pg.answers(other) == []
    # a second pass finds nothing new: nothing is handled or answered twice
    again = poll(pg.ctx)
    assert again.outcomes == [] and len(pg.history()) == 2
    assert len(pg.answers(open_request)) == 1 and len(pg.answers(done)) == 2


def test_poll_ignores_edited_comments(pg: Playground, monkeypatch: pytest.MonkeyPatch):
    thread = pg.open_request(pg.train(0.6))
    pg.forge.add_comment(thread.number, "maria", "/promote")
    real = LocalForge.list_comments

    def edited(self: LocalForge, *args: Any, **kwargs: Any) -> Any:
        return [replace(c, edited=True) for c in real(self, *args, **kwargs)]

    monkeypatch.setattr(LocalForge, "list_comments", edited)
    assert poll(pg.ctx).outcomes == []
    assert pg.champion() is None


def test_poll_skips_closed_requests_after_the_window(pg: Playground):
    version = pg.train(0.6)
    thread = pg.open_request(version)
    pg.forge.close(thread)
    pg.forge.add_comment(thread.number, "maria", "/help")
    later = datetime.now(timezone.utc) + timedelta(days=30)
    assert poll(pg.ctx, now=later).threads == 0
    assert poll(pg.ctx).threads == 1  # recently closed: still read, for rollbacks


def test_poll_cli_exits_1_when_a_command_failed(
    pg: Playground, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = pg.open_request(pg.train(0.6))
    pg.forge.add_comment(thread.number, "maria", "/promote")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("registry fell over")

    monkeypatch.setattr("bot.intake.poll.route_comment", broken)
    result = pg.cli("poll")
    assert result.exit_code == 1, result.output
    assert "failed" in result.output


# --- labelled spam cannot hide the bot's requests ------------------------------------------------


@pytest.mark.parametrize("platform", ["gitlab", "github"])
def test_labelled_issues_by_people_cannot_push_the_request_out_of_the_listing(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Any
) -> None:
    """Whoever may label issues opens 250 of them; the forges' listings return one page of the
    newest. The bot asks for its own threads only, in the same one call."""
    from tests.forge_world import make_world

    with make_world(platform, tracking_uri, model_name, tmp_path) as world:
        for i in range(250):
            world.fake.add_thread(f"question {i}", "hi", ["model-promotion"], author="dana")
        world.fake.add_comment(world.number, "maria", "/promote")
        world.rsps.calls.reset()

        result = poll(world.ctx)

        assert world.champion() == 1, result.summary()
        listings = [
            c.request.url
            for c in world.rsps.calls
            if c.request.url.split("?")[0].endswith(("/issues", "/merge_requests"))
        ]
        assert len(listings) == 1, listings
