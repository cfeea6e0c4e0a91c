"""A command counts only as the forge keeps it, and once (docs/design.md, "Which comments the
bot acts on").

- GitLab `poll` skips notes edited after they were posted (a Maintainer may edit anyone's note),
  except when the move of `updated_at` is the discussion being resolved.
- A delivery is acted on only when the thread the handler lists has its comment, with the same
  author id and text, not edited: a deleted command is retracted, a forged one is nobody's
  `serve` retries first, for replication lag.
- Handled commands are remembered in the registry (`promotion.handled`), where people cannot
  delete them: deleting the bot's answer revives nothing; a change whose answer was lost is
  re-announced only while it is the latest, and the hook is never called again.
- An internal note's reason stays out of the registry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses

from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import open_or_update_request
from bot.intake.poll import poll
from bot.registry.model_state import (
    HANDLED_MAX_CHARS,
    ModelState,
    handled_value,
    parse_handled,
)
from bot.registry.tags import HANDLED_TAG
from bot.signing import Keys
from tests.fakes.forges import BOT, FakeForge
from tests.forge_world import World, make_world
from tests.helpers import TEST_SIGNING_KEY, log_training_run

HOOK = "https://hooks.example.com/reload"


def _edit(world: World, comment: dict[str, Any], new_body: str) -> None:
    """What the forge's API shows after someone edits a comment: new body, `updated_at` moved."""
    comment["body"] = new_body
    stamp = world.fake.clock.tick()
    comment["updated_at"] = stamp if world.platform == "gitlab" else stamp[:19] + "Z"


def _delete_bot_answers(fake: FakeForge, number: int) -> None:
    """What deleting the bot's comments in the web UI leaves."""
    fake.comments[number][:] = [c for c in fake.comments[number] if _login(c) != BOT]


def _login(comment: dict[str, Any]) -> str:
    user = comment.get("author") or comment.get("user") or {}
    return str(user.get("username") or user.get("login") or "")


def _statuses(result: Any) -> list[str]:
    return [outcome.status for _cid, outcome in result.outcomes]


# --- a GitLab note edited after it was posted is no command --------------------------------------


def test_gitlab_poll_ignores_a_colleagues_note_edited_into_the_second_approval(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """maria (Maintainer) edits olga's old chatter note into `/promote`: one person, two votes."""
    promotion = {"approvers": {"required_approvals": 2}}
    with make_world("gitlab", tracking_uri, model_name, tmp_path, promotion) as world:
        chatter = world.fake.add_comment(world.number, "olga", "I'll look at the drift report")
        world.fake.add_comment(world.number, "maria", "@promotion-bot promote")
        assert _statuses(poll(world.ctx)) == ["approval"]

        _edit(world, chatter, "@promotion-bot promote")
        again = poll(world.ctx)

        assert again.outcomes == [] and again.failures == []
        assert world.champion() is None


def test_gitlab_poll_ignores_the_requesters_edit_of_a_colleagues_note(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    with make_world("gitlab", tracking_uri, model_name, tmp_path, requested_by="maria") as world:
        world.fake.add_comment(world.number, "maria", "@promotion-bot promote")
        assert [o.detail for _c, o in poll(world.ctx).outcomes] == ["self_approval"]
        chatter = world.fake.add_comment(world.number, "olga", "Thanks, looks fine so far.")
        assert poll(world.ctx).outcomes == []

        _edit(world, chatter, "@promotion-bot promote")  # maria edits olga's note
        poll(world.ctx)

        assert world.champion() is None


def test_gitlab_poll_acts_on_a_command_whose_discussion_was_resolved(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """Resolving a discussion moves its notes' `updated_at` too: that is no edit."""
    with make_world("gitlab", tracking_uri, model_name, tmp_path) as world:
        note = world.fake.add_comment(world.number, "maria", "@promotion-bot promote")
        resolved = world.fake.clock.tick()
        note.update(resolvable=True, resolved=True, resolved_at=resolved, updated_at=resolved)
        note["resolved_by"] = {"id": 31, "username": "olga"}

        assert _statuses(poll(world.ctx)) == ["changed"]
        assert world.champion() == 1


# --- the comment must be in the thread, as the forge keeps it ------------------------------------


@pytest.mark.parametrize("path", ["handle", "serve"])
def test_a_command_the_forge_does_not_have_is_not_acted_on(world: World, path: str) -> None:
    """Forged with the webhook secret, or deleted before the bot got to it."""
    payload = world.payload("/promote", author="maria")
    assert world.fake.comments[world.number] == []
    if path == "handle":
        outcome = world.handle(payload)
        assert outcome.status == "ignored" and "no such comment" in outcome.detail
    else:
        world.serve(payload, retry_delays=(0, 0))
    assert world.champion() is None
    assert world.answers() == []


def test_a_deleted_command_redelivered_later_is_not_acted_on(world: World) -> None:
    payload = world.post(world.number, "/promote", author="maria")
    world.fake.comments[world.number].clear()  # maria deletes it: she changed her mind
    world.serve(payload, retry_delays=(0, 0))  # the forge's retry, or "Resend request", later
    assert world.champion() is None and world.answers() == []


def test_a_delivery_whose_text_differs_from_the_forges_comment_is_not_acted_on(
    world: World,
) -> None:
    """Same comment id, another text than the forge keeps (a forged or replayed delivery)."""
    payload = world.post(world.number, "Looks good, but let's wait.", author="maria")
    if world.platform == "gitlab":
        payload["object_attributes"]["note"] = "/promote"
    else:
        payload["comment"]["body"] = "/promote"
    outcome = world.handle(payload)
    assert outcome.status == "ignored", outcome
    assert world.champion() is None and world.answers() == []


def test_a_delivery_naming_another_author_than_the_forges_comment_is_not_acted_on(
    world: World,
) -> None:
    """dana (no approver) wrote the /promote; the delivery says maria did."""
    payload = world.post(world.number, "/promote", author="dana")
    if world.platform == "gitlab":
        payload["user"].update(id=18, username="maria")
    else:
        payload["comment"]["user"].update(id=18, login="maria")
    outcome = world.handle(payload)
    assert outcome.status == "ignored", outcome
    assert world.champion() is None and world.answers() == []


def test_serve_retries_a_comment_the_forge_does_not_list_yet(world: World) -> None:
    """Replication lag: the first attempt does not find the comment; the retry does."""
    payload = world.payload("/promote", author="maria")
    key = "object_attributes" if world.platform == "gitlab" else "comment"
    comment_id = payload[key]["id"]

    def comment_arrives(_seconds: float) -> None:
        if not world.fake.comments[world.number]:
            posted = world.fake.add_comment(world.number, "maria", "/promote")
            posted["id"] = comment_id

    world.serve(payload, retry_delays=(0, 0), sleep=comment_arrives)
    assert world.champion() == 1


# --- handled commands are remembered where nobody can delete them --------------------------------


def test_a_refused_promote_stays_refused_after_its_answer_is_deleted(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """Monday: refused (checklist). Friday: devon (Write, no approver) ticks the list and
    deletes the refusal, so that `poll` runs maria's old, void /promote when devon chooses."""
    with make_world("github", tracking_uri, model_name, tmp_path) as world:
        body = world.fake.body(world.number)
        world.fake.set_body(world.number, body.replace("- [x]", "- [ ]"))
        world.fake.add_comment(world.number, "maria", "/promote")
        assert [o.detail for _c, o in poll(world.ctx).outcomes] == ["checklist"]

        world.fake.set_body(world.number, body)
        _delete_bot_answers(world.fake, world.number)
        again = poll(world.ctx)

        assert _statuses(again) == ["duplicate"], again.summary()
        assert world.champion() is None and world.answers() == []


@pytest.mark.parametrize("command", ["/help", "/rollback v"])
def test_help_and_usage_are_not_answered_twice_after_a_deleted_answer(
    world: World, command: str
) -> None:
    world.post(world.number, command, author="dana")
    first = poll(world.ctx)
    assert _statuses(first) == ["help" if command == "/help" else "usage"]
    _delete_bot_answers(world.fake, world.number)
    assert _statuses(poll(world.ctx)) == ["duplicate"]
    assert world.answers() == []


def test_deleting_an_old_answer_neither_reannounces_a_superseded_change_nor_calls_the_hook(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    promotion = {"post_promote_hook": HOOK}
    with make_world("github", tracking_uri, model_name, tmp_path, promotion) as world:
        hooks: list[bytes] = []
        world.rsps.add_callback(
            responses.POST, HOOK, callback=lambda r: (hooks.append(r.body), (200, {}, ""))[1]
        )
        first = world.number
        world.fake.add_comment(first, "maria", "/promote")
        poll(world.ctx)
        v2 = _train_and_request(world, 0.55)
        second = int(v2[1])
        world.fake.add_comment(second, "maria", "/promote")
        poll(world.ctx)
        assert world.champion() == v2[0] and len(hooks) == 2

        _delete_bot_answers(world.fake, first)  # a Write-role user deletes one old answer
        result = poll(world.ctx)

        assert _statuses(result) == ["duplicate"], result.summary()
        assert world.champion() == v2[0] and len(hooks) == 2
        assert not any(re.search(r"v1 is now `champion`", body) for body in world.answers(first))


def test_a_lost_answer_is_posted_while_its_change_is_the_latest_but_the_hook_is_not_called(
    tracking_uri: str, model_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass died after the record, before the answer: the next pass answers (no second
    change), and never calls the hook for it (it may have been called)."""
    promotion = {"post_promote_hook": HOOK}
    with make_world("github", tracking_uri, model_name, tmp_path, promotion) as world:
        hooks: list[bytes] = []
        world.rsps.add_callback(
            responses.POST, HOOK, callback=lambda r: (hooks.append(r.body), (200, {}, ""))[1]
        )
        world.fake.add_comment(world.number, "maria", "/promote")
        from bot.commands.replies import Replies

        real = Replies.changed

        def killed(*_args: Any, **_kwargs: Any) -> None:
            raise SystemExit("killed before the answer")

        monkeypatch.setattr(Replies, "changed", killed)
        with pytest.raises(SystemExit):
            poll(world.ctx)
        monkeypatch.setattr(Replies, "changed", real)
        assert world.champion() == 1 and world.answers() == []

        result = poll(world.ctx)

        assert _statuses(result) == ["recovered"], result.summary()
        assert any("v1 is now `champion`" in body for body in world.answers())
        assert hooks == []
        assert _statuses(poll(world.ctx)) == []  # answered: nothing more


def test_a_lost_answer_whose_change_was_overtaken_says_so_once_without_the_hook(
    tracking_uri: str, model_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass died after the record, before the answer, and another command moved the champion
    on before any pass came back (a lost lease, a crash): the comment still gets its one answer,
    saying what it did and that it was overtaken, never "is now champion", and no hook."""
    promotion = {"post_promote_hook": HOOK}
    with make_world("github", tracking_uri, model_name, tmp_path, promotion) as world:
        hooks: list[bytes] = []
        world.rsps.add_callback(
            responses.POST, HOOK, callback=lambda r: (hooks.append(r.body), (200, {}, ""))[1]
        )
        first = world.number
        world.fake.add_comment(first, "maria", "/promote")
        from bot.commands.replies import Replies

        real = Replies.changed

        def killed(*_args: Any, **_kwargs: Any) -> None:
            raise SystemExit("killed before the answer")

        monkeypatch.setattr(Replies, "changed", killed)
        with pytest.raises(SystemExit):
            poll(world.ctx)
        monkeypatch.setattr(Replies, "changed", real)
        v2, second = _train_and_request(world, 0.55)
        assert world.handle(world.post(int(second), "/promote")).status == "changed"
        assert world.champion() == v2 and len(hooks) == 1

        result = poll(world.ctx)

        assert _statuses(result) == ["recovered"], result.summary()
        # The thread's other bot comment is `request`'s note that v2 superseded this request.
        [answer] = [body for body in world.answers(first) if "answer comment=" in body]
        assert "overtaken" in answer and f"it is now v{v2}" in answer
        assert "is now `champion`" not in answer
        assert world.champion() == v2 and len(hooks) == 1
        assert _statuses(poll(world.ctx)) == []  # answered once: nothing more


def test_the_handled_ids_stay_within_one_sql_tag_and_keep_the_newest() -> None:
    """MLflow's SQL stores keep a model tag in 5,000 characters: ten-digit comment ids (GitLab
    note ids, GitHub comment ids today) fit 445 at a time behind the bot's seal, the oldest
    dropping off first."""
    keys = Keys.load(TEST_SIGNING_KEY)
    ids = [str(2_000_000_000 + n) for n in range(600)]
    value = ""
    for comment_id in ids:
        value = handled_value(parse_handled(value), comment_id, keys)
    kept = parse_handled(value)
    assert len(value) <= HANDLED_MAX_CHARS
    assert len(kept) == 445 and kept[-1] == ids[-1] and kept[0] == ids[600 - 445]
    state = ModelState({}, {HANDLED_TAG: value}, keys)
    assert state.handled == tuple(kept)
    # Ids written by hand (or a signed list extended) silence no comment: none is handled.
    for forged in (",".join(kept), value.replace(ids[-1], "2712345601", 1), f"1,{value}"):
        assert ModelState({}, {HANDLED_TAG: forged}, keys).handled == ()


def test_handled_ids_are_recorded_on_the_model(world: World) -> None:
    world.post(world.number, "/help", author="dana")
    poll(world.ctx)
    tags = world.ctx.registry.state(world.model).tags
    [answered] = world.comment_ids(world.number, "dana")
    assert parse_handled(tags[HANDLED_TAG]) == [answered]


# --- an internal note's reason stays out of the registry -----------------------------------------

PRIVATE_REASON = "customer ACME's churn model misbehaves, see incident INC-4711 (confidential)"


def test_an_internal_notes_reason_stays_out_of_the_registry(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    with make_world("gitlab", tracking_uri, model_name, tmp_path) as world:
        payload = world.post(world.number, f"/promote\n{PRIVATE_REASON}", author="maria")
        payload["object_attributes"]["internal"] = True
        world.fake.comments[world.number][-1]["internal"] = True

        outcome = world.handle(payload, event_name="Confidential Note Hook")

        assert outcome.status == "changed"
        history = world.ctx.registry.history(world.model)
        assert PRIVATE_REASON not in json.dumps([dict(e.stored) for e in history])
        [entry] = history
        note = payload["object_attributes"]["id"]
        assert entry.reason == f"(internal note) {entry.request_url}#note_{note}"
        [answer] = world.answers()
        assert "INC-4711" in answer  # the answer is internal itself: it may say why


def _train_and_request(world: World, logloss: float) -> tuple[int, str]:
    ctx = world.ctx
    run_id = log_training_run(ctx.settings.tracking_uri, {"final.logloss": logloss})
    version = register(ctx, run_id=run_id, alias="smoke").version.version
    gate(ctx, version=version)
    number = open_or_update_request(ctx).number
    world.fake.set_body(int(number), world.fake.body(int(number)).replace("- [ ]", "- [x]"))
    return version, number


def test_a_delivery_cannot_make_an_internal_note_public(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """The forge's `internal` flag decides too: a replayed or forged delivery that drops it
    still gets an internal answer, which may repeat the reason."""
    with make_world("gitlab", tracking_uri, model_name, tmp_path) as world:
        payload = world.post(world.number, f"/promote\n{PRIVATE_REASON}", author="maria")
        world.fake.comments[world.number][-1]["internal"] = True
        assert payload["object_attributes"].get("internal") is not True

        assert world.handle(payload).status == "changed"

        posts = [
            json.loads(call.request.body)
            for call in world.rsps.calls
            if call.request.method == "POST" and call.request.url.split("?")[0].endswith("/notes")
        ]
        assert posts and all(post.get("internal") is True for post in posts)
