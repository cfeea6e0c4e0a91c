"""`poll` with its cursor, against the GitLab and GitHub fakes: after one full read a pass asks
only for the requests updated since (one listing however many are open), a new command is still
handled, and a failed pass or a cursor the bot did not seal costs a full read, never a command
(docs/design.md, "Polling")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.intake import poll as poll_module
from bot.intake.poll import poll
from bot.intake.poll_cursor import tag_key
from tests.forge_world import World, make_world

OTHERS = 12  # more open requests of the model, each with chatter
SINCE = {"github": "since", "gitlab": "updated_after"}


def forge_calls(world: World) -> list[str]:
    return [
        f"{c.request.method} {c.request.url}"
        for c in world.rsps.calls
        if "127.0.0.1" not in str(c.request.url)
    ]


def listings(world: World) -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlsplit(call.split(" ", 1)[1]).query)
        for call in forge_calls(world)
        if call.startswith("GET") and call.split("?")[0].endswith(("/issues", "/merge_requests"))
    ]


def crowd(world: World) -> None:
    """OTHERS requests like the model's own, each with a remark and nothing for the bot."""
    fake, thread = world.fake, world.fake.threads[world.number]
    body, title = world.fake.body(world.number), str(thread["title"])
    labels = list(world.ctx.params.promotion.request.labels)
    for _ in range(OTHERS):
        number = fake.add_thread(title, body, labels)
        fake.add_comment(number, "dana", "Looks fine to me.")


@pytest.mark.parametrize("platform", ["gitlab", "github"])
def test_after_a_full_read_an_idle_pass_is_one_listing_and_a_command_still_runs(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Any
) -> None:
    with make_world(platform, tracking_uri, model_name, tmp_path) as world:
        crowd(world)
        world.fake.age(hours=1)  # the requests were opened and discussed an hour ago
        first = poll(world.ctx)
        assert (first.full_read, first.threads, first.outcomes) == ("no cursor yet", 13, [])
        world.rsps.calls.reset()

        idle = poll(world.ctx)

        assert (idle.full_read, idle.threads) == ("", 0), idle.summary()
        [query] = listings(world)
        assert query[SINCE[platform]][0].startswith(idle.since[:19])
        assert len(forge_calls(world)) == 1, forge_calls(world)

        world.fake.clock.catch_up()  # posted now, as a forge stamps it
        world.fake.add_comment(world.number, "maria", "/promote")
        world.rsps.calls.reset()

        result = poll(world.ctx)

        assert [o.status for _, o in result.outcomes] == ["changed"], result.summary()
        assert world.champion() == 1
        assert len(listings(world)) == 1 and result.threads == 1
        read = {c.split("?")[0] for c in forge_calls(world) if c.startswith("GET")}
        comments = {url for url in read if url.endswith(("/notes", "/comments"))}
        assert comments == {c for c in comments if f"/{world.number}/" in c} != set()


@pytest.mark.parametrize("platform", ["gitlab", "github"])
def test_a_failed_pass_leaves_the_cursor_and_the_next_pass_runs_the_command(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Any, monkeypatch: Any
) -> None:
    with make_world(platform, tracking_uri, model_name, tmp_path) as world:
        poll(world.ctx)
        key = tag_key(world.ctx.settings.instance_id)
        cursor = world.ctx.registry.state(world.model).tags[key]
        world.fake.add_comment(world.number, "maria", "/promote")

        def broken(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("the registry fell over")

        with monkeypatch.context() as patch:
            patch.setattr(poll_module, "route_comment", broken)
            assert poll(world.ctx).failures
        assert world.ctx.registry.state(world.model).tags[key] == cursor

        again = poll(world.ctx, now=datetime.now(timezone.utc) + timedelta(seconds=10))

        assert [o.status for _, o in again.outcomes] == ["changed"], again.summary()
        assert world.ctx.registry.state(world.model).tags[key] != cursor


@pytest.mark.parametrize("platform", ["gitlab", "github"])
def test_a_cursor_the_bot_did_not_seal_means_a_full_read(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Any
) -> None:
    """Whoever may write model tags could set a cursor in the future to hide a command."""
    with make_world(platform, tracking_uri, model_name, tmp_path) as world:
        world.fake.add_comment(world.number, "maria", "/promote")
        key = tag_key(world.ctx.settings.instance_id)
        world.ctx.registry.set_model_tag(world.model, key, "2999-01-01T00:00:00Z")

        result = poll(world.ctx)

        assert "not the bot's" in result.full_read
        assert [o.status for _, o in result.outcomes] == ["changed"], result.summary()
        assert all(SINCE[platform] not in query for query in listings(world))


@pytest.mark.parametrize("platform", ["gitlab", "github"])
def test_a_command_on_a_request_closed_since_is_found_through_the_cursor(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Any
) -> None:
    """Rollbacks are typed on done requests: a closed request's new comment moves it too."""
    with make_world(platform, tracking_uri, model_name, tmp_path) as world:
        world.fake.add_comment(world.number, "maria", "/promote")
        assert [o.status for _, o in poll(world.ctx).outcomes] == ["changed"]
        assert world.fake.state(world.number) == "closed"
        world.fake.add_comment(world.number, "maria", "/help")
        world.rsps.calls.reset()

        result = poll(world.ctx, now=datetime.now(timezone.utc) + timedelta(seconds=10))

        assert result.full_read == "" and result.threads == 1, result.summary()
        assert len(result.outcomes) == 1 and len(world.answers()) == 2
        assert len(listings(world)) == 1


@pytest.mark.parametrize("platform", ["github"])
def test_a_change_in_flight_means_a_full_read(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Any
) -> None:
    """A pass that died mid-change left its intent: its command may be older than the cursor,
    and only a full read finds it to finish and answer it."""
    from bot.registry.records import HistoryEntry

    with make_world(platform, tracking_uri, model_name, tmp_path) as world:
        assert poll(world.ctx).full_read == "no cursor yet"
        intent = HistoryEntry(to_version=1, action="promote", actor="maria", comment_id="7")
        world.ctx.registry.set_pending(world.model, intent)

        result = poll(world.ctx)

        assert result.full_read == "a change in flight awaits its answer", result.summary()
        assert result.threads == 1
