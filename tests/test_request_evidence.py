"""What a thread is about comes from the registry, never from its description
(docs/security.md, "Description text and markers"); an internal note is answered internally.

A request description is text anyone who may edit it can change: its hidden marker only says
where to look. `/promote` acts only in the thread the version's `promotion.requested_in` tag
names, the self-approval rule reads the requester from the version's tags only, and a marker a
person damaged is one request answered as damaged while every other request keeps working.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.ci.request import open_or_update_request
from bot.forges.local import LocalForge
from bot.intake.entry import local_comment
from bot.intake.poll import poll
from bot.registry.versions import requester_tags
from bot.threads.thread import Thread
from tests.forge_fixtures import body_of
from tests.forge_world import World, make_world
from tests.promotion_env import Playground

_VERSION = re.compile(r"(<!-- promotion-bot:request [^>]*?)version=\S+")


def _edit_marker(pg: Playground, thread: Thread, **fields: str) -> None:
    """What a person editing the description in the web UI can do to the hidden marker."""
    body = pg.thread(thread).body
    for key, value in fields.items():
        pattern = re.compile(rf"(<!-- promotion-bot:request [^>]*?){key}=\S+")
        body = pattern.sub(lambda m, v=f"{key}={value}": m.group(1) + v, body)
    pg.forge.update_body(thread, body)


def _drop_field(pg: Playground, thread: Thread, key: str) -> None:
    pattern = rf"(<!-- promotion-bot:request(?: [^>]*?)?) {key}=\S+"
    body = re.sub(pattern, r"\1", pg.thread(thread).body)
    pg.forge.update_body(thread, body)


def _as_requester(pg: Playground, who: str) -> Playground:
    """The same playground, with `request` run by `who` (PROMOTION_BOT_REQUESTED_BY)."""
    settings = pg.ctx.settings.with_overrides(requested_by=who)
    return dataclasses.replace(pg, ctx=dataclasses.replace(pg.ctx, settings=settings))


# --- the requester only from the registry --------------------------------------------------------


def test_self_approval_holds_when_register_did_not_know_the_requester(pg: Playground) -> None:
    """register ran without PROMOTION_BOT_REQUESTED_BY, `request` with it; then dana edits the
    description to name someone else and approves her own training run."""
    pg.forge.set_role("dana", "maintainer")
    version = pg.train(0.6)
    assert pg.ctx.registry.version(pg.model, version).requested_by == ""
    opened = open_or_update_request(_as_requester(pg, "dana").ctx)
    assert pg.ctx.registry.version(pg.model, version).requested_by == "dana"  # recorded there
    thread = pg.forge.get_thread("issue", opened.number)
    pg.forge.update_body(thread, thread.body.replace("- [ ]", "- [x]"))
    _edit_marker(pg, thread, requested_by="someone-else")

    outcome, _ = pg.comment(thread, "dana", "/promote")

    assert (outcome.status, outcome.detail) == ("refused", "self_approval")
    assert pg.champion() is None
    # The rule never read the marker: another approver goes through.
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"


def test_request_never_overwrites_the_requester_register_recorded(pg: Playground) -> None:
    version = pg.train(0.6)
    for key, value in requester_tags(pg.ctx.keys, pg.model, version, "dana", "").items():
        pg.ctx.registry.set_version_tag(pg.model, version, key, value)
    open_or_update_request(_as_requester(pg, "erin").ctx)
    assert pg.ctx.registry.version(pg.model, version).requested_by == "dana"


# --- the thread a version's request is -----------------------------------------------------------


def test_a_marker_edited_to_another_version_cannot_promote_it(pg: Playground) -> None:
    """#1 is v1's request (ticked); v2 became the candidate with its own request #2 (unticked).
    Editing #1's marker to v2 must not let a /promote in #1 promote v2 past #2's checklist."""
    first = pg.train(0.6)
    old = pg.open_request(first)
    second = pg.train(0.58)
    current = pg.open_request(second, ticked=False)
    _edit_marker(pg, old, version=str(second))

    outcome, _ = pg.comment(old, "maria", "/promote")

    assert outcome.status == "ignored"
    assert "registry names another thread" in outcome.detail
    assert pg.champion() is None and pg.answers(old) == []
    refused = pg.comment(current, "maria", "/promote")[0]
    assert (refused.status, refused.detail) == ("refused", "checklist")  # #2's own rules stand


def test_a_request_the_registry_does_not_record_is_answered_never_acted_on(
    pg: Playground,
) -> None:
    """A request opened before the registry kept the thread (or whose tag write failed):
    one answer saying to re-run `request`; re-running it makes the thread work."""
    version = pg.train(0.6)
    thread = pg.open_request(version, record=False)

    outcome, event = pg.comment(thread, "maria", "/promote")

    assert (outcome.status, outcome.detail) == ("unrecorded", f"v{version} has no recorded request")
    [answer] = [c.body for c in pg.answers(thread)]
    assert "promotion-bot request" in answer and f"comment={event.comment_id}" in answer
    assert pg.champion() is None
    pg.record_request(version, thread, "dana")  # what re-running `request` writes
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"


def test_a_rollback_works_in_any_thread_the_history_shows_a_change_from(pg: Playground) -> None:
    """No extra registry read: the history (read under the lock anyway) proves the thread."""
    first = pg.train(0.6)
    done = pg.open_request(first)
    assert pg.comment(done, "maria", "/promote")[0].status == "changed"
    second = pg.train(0.58)
    assert pg.comment(pg.open_request(second), "maria", "/promote")[0].status == "changed"
    _edit_marker(pg, done, version="99")  # the marker no longer says anything true
    outcome, _ = pg.comment(done, "olga", f"/rollback {first}")
    assert outcome.status == "changed" and pg.champion() == first


def test_a_version_the_registry_does_not_have_is_ignored(pg: Playground) -> None:
    thread = pg.open_request(pg.train(0.6))
    _edit_marker(pg, thread, version="77")
    outcome, _ = pg.comment(thread, "maria", "/promote")
    assert outcome.status == "ignored" and "not in the registry" in outcome.detail
    assert pg.answers(thread) == []


# --- a damaged marker is one request answered as damaged -----------------------------------------

DAMAGE = {
    "letters": ("version", "abc"),
    "superscript-two": ("version", "²"),
    "zero": ("version", "0"),
    "no-version": ("version", None),
    "no-model": ("model", None),
}


def _damage(pg: Playground, thread: Thread, how: str) -> None:
    key, value = DAMAGE[how]
    if value is None:
        _drop_field(pg, thread, key)
    else:
        _edit_marker(pg, thread, **{key: value})


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_marker_is_answered_once_and_changes_nothing(pg: Playground, how: str) -> None:
    thread = pg.open_request(pg.train(0.6))
    _damage(pg, thread, how)

    outcome, event = pg.comment(thread, "maria", "/promote")
    again = pg.event(thread, pg.forge.list_comments(thread)[0])

    assert outcome.status == "damaged"
    [answer] = [c.body for c in pg.answers(thread)]
    assert "description is damaged" in answer and "promotion-bot request" in answer
    assert f"comment={event.comment_id}" in answer
    assert pg.champion() is None
    from bot.commands.handler import handle_comment

    assert handle_comment(pg.ctx, again).status == "duplicate"  # once


@pytest.mark.parametrize("how", ["letters", "superscript-two", "no-model"])
def test_comment_on_a_damaged_request_is_an_answer_not_a_crash(pg: Playground, how: str) -> None:
    """`promotion-bot comment` used to end in `unexpected ValueError`."""
    thread = pg.open_request(pg.train(0.6))
    _damage(pg, thread, how)
    outcome = local_comment(pg.ctx, thread.number, "/help", "maria")
    assert outcome.status == "damaged"


def test_poll_answers_a_damaged_request_and_goes_on_with_the_others(pg: Playground) -> None:
    """One damaged request must not make every later scheduled `poll` exit 1."""
    first = pg.train(0.6)
    damaged = pg.open_request(first)
    pg.forge.add_comment(damaged.number, "maria", "/promote")
    _damage(pg, damaged, "letters")
    second = pg.train(0.58)
    healthy = pg.open_request(second)
    pg.forge.add_comment(healthy.number, "maria", "/promote")

    result = poll(pg.ctx)

    assert sorted(o.status for _cid, o in result.outcomes) == ["changed", "damaged"]
    assert result.failures == []
    assert pg.champion() == second
    assert poll(pg.ctx).outcomes == []  # answered: the next run has nothing to do
    assert pg.cli("poll").exit_code == 0


@pytest.mark.parametrize("how", list(DAMAGE))
def test_request_repairs_the_damaged_request_of_the_candidate(pg: Playground, how: str) -> None:
    """`request` finds the candidate's thread by the registry tag and rewrites its body."""
    version = pg.train(0.6)
    opened = open_or_update_request(pg.ctx)
    thread = pg.forge.get_thread("issue", opened.number)
    pg.forge.update_body(thread, thread.body.replace("- [ ] Metrics", "- [x] Metrics"))
    _damage(pg, thread, how)

    again = open_or_update_request(pg.ctx)

    assert (again.created, again.number) == (False, opened.number)
    repaired = pg.thread(thread)
    assert f"version={version} " in repaired.body and f"model={pg.model} " in repaired.body
    assert "- [x] Metrics" in repaired.body  # the ticks survive the repair
    assert [t.number for t in pg.forge.find_threads([], state="all")] == [opened.number]


# --- an internal note is answered internally -----------------------------------------------------


def test_an_internal_note_is_answered_with_an_internal_note(pg: Playground) -> None:
    thread = pg.open_request(pg.train(0.6))
    outcome, _ = pg.comment(thread, "maria", "/promote\nIncident 4711: fraud spike", internal=True)
    assert outcome.status == "changed"
    [answer] = [c for c in pg.forge.list_comments(thread) if c.author == "promotion-bot"]
    assert answer.internal is True and "Incident 4711" in answer.body
    public = pg.comment(thread, "olga", "/help")[0]
    assert public.status == "help"
    assert [c.internal for c in pg.answers(thread)] == [True, False]


@pytest.fixture
def gitlab_world(tracking_uri: str, model_name: str, tmp_path: Path) -> Iterator[World]:
    with make_world("gitlab", tracking_uri, model_name, tmp_path) as world:
        yield world


def _note_posts(world: World) -> list[dict[str, object]]:
    return [
        body_of(call)
        for call in world.rsps.calls
        if call.request.method == "POST" and str(call.request.url).split("?")[0].endswith("/notes")
    ]


@pytest.mark.parametrize("delivery", ["serve", "handle"])
def test_a_gitlab_internal_note_gets_an_internal_answer(gitlab_world: World, delivery: str) -> None:
    world = gitlab_world
    payload = world.post(world.number, "@promotion-bot promote\nIncident 4711: fraud spike")
    payload["object_attributes"]["internal"] = True
    world.fake.comments[world.number][-1]["internal"] = True
    if delivery == "serve":
        assert gitlab_world.serve(payload, "Confidential Note Hook")[0] == 202
    else:
        assert gitlab_world.handle(payload, "Confidential Note Hook").status == "changed"
    [post] = _note_posts(gitlab_world)
    assert post["internal"] is True and "Incident 4711" in str(post["body"])


def test_poll_answers_an_internal_gitlab_note_internally(gitlab_world: World) -> None:
    note = gitlab_world.fake.add_comment(gitlab_world.number, "maria", "/help")
    note["internal"] = True
    assert [o.status for _cid, o in poll(gitlab_world.ctx).outcomes] == ["help"]
    [post] = _note_posts(gitlab_world)
    assert post["internal"] is True


def test_a_public_gitlab_note_gets_a_public_answer(gitlab_world: World) -> None:
    world = gitlab_world
    assert world.handle(world.post(world.number, "/help")).status == "help"
    [post] = _note_posts(gitlab_world)
    assert "internal" not in post


def test_damaged_marker_through_serve_is_answered_without_a_traceback(
    gitlab_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: three tracebacks (the job and its two retries) and no answer."""
    world = gitlab_world
    body = world.fake.body(world.number)
    world.fake.set_body(world.number, _VERSION.sub(r"\1version=²", body))
    status, _ = world.serve(world.post(world.number, "@promotion-bot promote"))
    assert status == 202
    [answer] = world.answers()
    assert "description is damaged" in answer
    assert not [r for r in caplog.records if r.exc_info]
    assert world.champion() is None


def test_local_forge_keeps_the_internal_flag(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge")
    thread = forge.open_issue("t", "b", [])
    forge.post_comment(thread, "private", internal=True)
    forge.add_comment(thread.number, "maria", "public")
    assert [c.internal for c in forge.list_comments(thread)] == [True, False]


# --- a marker removed, or edited to another model ------------------------------------------------

_MARKER = re.compile(r"<!--\s*promotion-bot:request[^>]*-->")


@pytest.mark.parametrize("edit", ["removed", "other-model"])
def test_a_request_the_registry_names_is_answered_as_damaged_whatever_its_marker(
    world: World, edit: str
) -> None:
    """Deleting the marker (the most damaged form) used to silence the request: no answer."""
    body = world.fake.body(world.number)
    if edit == "removed":
        body = _MARKER.sub("", body)
    else:
        body = body.replace(f"model={world.model} ", "model=some-other-model ", 1)
    world.fake.set_body(world.number, body)

    outcome = world.handle(world.post(world.number, "/promote"))

    assert outcome.status == "damaged", outcome
    assert world.champion() is None
    [answer] = world.answers()
    assert "description is damaged" in answer and "promotion-bot request" in answer


def test_a_thread_without_marker_the_registry_does_not_name_stays_ignored(world: World) -> None:
    """An issue the bot opened that is no request (or another bot's request): no answer."""
    number = world.fake.add_thread("Release notes", "no marker here", ["model-promotion"])
    outcome = world.handle(world.post(number, "/promote"))
    assert outcome.status == "ignored" and world.answers(number) == []


def test_poll_answers_a_request_whose_marker_was_removed(pg: Playground) -> None:
    thread = pg.open_request(pg.train(0.6))
    pg.forge.update_body(thread, _MARKER.sub("", pg.thread(thread).body))
    pg.forge.add_comment(thread.number, "maria", "/promote")

    result = poll(pg.ctx)

    assert [o.status for _cid, o in result.outcomes] == ["damaged"], result.summary()
    assert pg.champion() is None
