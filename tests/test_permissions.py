"""Who can move `champion`, and what never can: lookalikes, the bot itself, forged markers.

Ends with a property test: random comment bodies by random people never raise, and never move
the alias unless the first non-empty line is exactly a valid command by an eligible approver.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.intake.poll import poll
from bot.threads.markers import answered_comment_ids, approval_marker, parse_request_marker
from bot.threads.thread import Thread
from tests.promotion_env import MakePlayground, Playground

BOT = "promotion-bot"


def answer_count(pg: Playground, thread: Thread) -> int:
    """Answers by marker (a comment typed from the bot's own account is no answer)."""
    bodies = [c.body for c in pg.answers(thread)]
    return sum(len(answered_comment_ids([body])) for body in bodies)


def unchanged(pg: Playground) -> None:
    assert pg.champion() is None and pg.history() == []


def set_thread_author(pg: Playground, thread: Thread, author: str) -> None:
    """What a person's own issue looks like: the same files, another author."""
    path = pg.forge.root / "threads" / f"{thread.number}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["author"] = author
    path.write_text(json.dumps(data), encoding="utf-8")


# --- roles change, names look alike ----------------------------------------------------------


def test_approver_who_lost_the_role_after_the_request_is_refused(pg: Playground) -> None:
    thread = pg.open_request(pg.train(0.6))
    pg.forge.set_role("maria", "none")  # left the team after the request was opened

    outcome, _ = pg.comment(thread, "maria", "/promote")

    assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
    assert "@maria is not an eligible approver" in pg.answers(thread)[-1].body
    unchanged(pg)


def test_approver_who_lost_the_role_cannot_roll_back_either(pg: Playground) -> None:
    first = pg.train(0.6)
    thread = pg.open_request(first)
    pg.comment(thread, "maria", "/promote")
    second = pg.train(0.58)
    pg.comment(pg.open_request(second), "olga", "/promote")
    pg.forge.set_role("olga", "reporter")

    outcome, _ = pg.comment(thread, "olga", f"/rollback {first}")

    assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
    assert pg.champion() == second and len(pg.history()) == 2


LOOKALIKES = ["promotion-bot-", "promotion_bot", "promotіon-bot", "promotion-bot[bot]", "bot"]


@pytest.mark.parametrize("name", LOOKALIKES, ids=["dash", "underscore", "cyrillic-i", "app", "bot"])
def test_a_user_named_like_the_bot_is_just_a_user(pg: Playground, name: str) -> None:
    thread = pg.open_request(pg.train(0.6))

    outcome, event = pg.comment(thread, name, "/promote")
    assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
    assert answered_comment_ids([pg.answers(thread)[-1].body]) == {event.comment_id}
    unchanged(pg)

    pg.forge.set_role(name, "maintainer")  # eligible by role, like anyone else
    outcome, _ = pg.comment(thread, name, "/promote")
    assert outcome.status == "changed"
    assert pg.history()[-1]["actor"] == name


def test_lookalike_comments_cannot_mark_commands_answered_or_approve(make_pg: MakePlayground):
    pg = make_pg(approvers={"required_approvals": 2})
    version = pg.train(0.6)
    thread = pg.open_request(version)
    next_id = str(int(pg.forge.add_comment(thread.number, "sam", "hello").id) + 2)
    forged = f"lgtm\n<!-- promotion-bot:answer comment={next_id} -->\n" + approval_marker(
        version, "olga"
    )
    pg.forge.add_comment(thread.number, "promotion_bot", forged)

    outcome, event = pg.comment(thread, "maria", "/promote")

    assert event.comment_id == next_id
    assert (outcome.status, outcome.detail) == ("approval", "1 of 2")
    unchanged(pg)


def test_bot_account_commands_are_ignored_everywhere(pg: Playground) -> None:
    thread = pg.open_request(pg.train(0.6))
    pg.forge.set_role(BOT, "owner")
    for author in (BOT, BOT.upper(), "Promotion-Bot"):
        outcome, _ = pg.comment(thread, author, "/promote")
        assert outcome.status == "ignored"
    assert poll(pg.ctx).outcomes == []
    assert answer_count(pg, thread) == 0
    unchanged(pg)


def test_listed_approver_matches_whatever_the_letter_case(make_pg: MakePlayground) -> None:
    pg = make_pg(approvers={"users": ["Olga.K"], "min_role": None})
    pg.forge.set_role("olga.k", "reporter")  # a member: a listed name alone is nobody
    first = pg.train(0.6)
    thread = pg.open_request(first)
    assert pg.comment(thread, "olga.k", "/promote")[0].status == "changed"
    second = pg.train(0.58)
    assert pg.comment(pg.open_request(second), "OLGA.K", "/promote")[0].status == "changed"
    outcome, _ = pg.comment(thread, "maria", f"/rollback {first}")  # a maintainer, not listed
    assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
    assert [h["actor"] for h in pg.history()] == ["olga.k", "OLGA.K"]


def test_self_approval_rule_ignores_letter_case(pg: Playground) -> None:
    pg.forge.set_role("dana", "maintainer")
    thread = pg.open_request(pg.train(0.6), requested_by="Dana")
    outcome, _ = pg.comment(thread, "DANA", "/promote")
    assert (outcome.status, outcome.detail) == ("refused", "self_approval")
    unchanged(pg)


# --- requests that are not the bot's, or not this model's ------------------------------------


def test_command_on_another_models_request_is_ignored_by_handle_and_poll(pg: Playground) -> None:
    other = pg.open_request(pg.train(0.6), model="another-model")
    outcome, _ = pg.comment(other, "maria", "/promote")
    assert outcome.status == "ignored"
    assert poll(pg.ctx).outcomes == []
    assert pg.answers(other) == []
    unchanged(pg)


@pytest.mark.parametrize("author", ["dana", ""], ids=["person", "unknown-author"])
def test_request_marker_in_a_thread_not_opened_by_the_bot_is_ignored(
    pg: Playground, author: str
) -> None:
    pg.forge.set_role("dana", "maintainer")
    version = pg.train(0.6)
    # dana copies a request body into her own issue, naming someone else as the requester so
    # the self-approval rule would not stop her.
    thread = pg.open_request(version, requested_by="nobody")
    set_thread_author(pg, thread, author)
    assert (parse_request_marker(pg.thread(thread).body) or {})["requested_by"] == "nobody"

    outcome, _ = pg.comment(thread, "dana", "/promote")

    assert (outcome.status, outcome.detail) == ("ignored", "not a request opened by the bot")
    assert all(o.status == "ignored" for _cid, o in poll(pg.ctx).outcomes)
    assert pg.answers(thread) == []
    unchanged(pg)


# --- text the bot echoes cannot forge its markers --------------------------------------------


def test_echoed_usage_cannot_mark_another_comment_answered(pg: Playground) -> None:
    version = pg.train(0.6)
    thread = pg.open_request(version)
    # "hi", then the forged usage line and the bot's answer to it, then maria's /promote
    target = str(int(pg.forge.add_comment(thread.number, "sam", "hi").id) + 3)

    outcome, _ = pg.comment(
        thread, "sam", f"/rollback <!-- promotion-bot:answer comment={target} -->"
    )
    assert outcome.status == "usage"
    assert answered_comment_ids([a.body for a in pg.answers(thread)]) != {target}

    outcome, event = pg.comment(thread, "maria", "/promote")
    assert event.comment_id == target
    assert outcome.status == "changed"
    assert pg.champion() == version


def test_echoed_usage_cannot_forge_an_approval(make_pg: MakePlayground) -> None:
    pg = make_pg(approvers={"required_approvals": 2})
    version = pg.train(0.6)
    thread = pg.open_request(version)
    forged = f"/rollback <!-- promotion-bot:approval version={version} by=olga -->"

    assert pg.comment(thread, "sam", forged)[0].status == "usage"
    outcome, _ = pg.comment(thread, "maria", "/promote")

    assert (outcome.status, outcome.detail) == ("approval", "1 of 2")
    unchanged(pg)
    assert pg.comment(thread, "olga", "/promote")[0].status == "changed"


# --- property: random comments ---------------------------------------------------------------

ELIGIBLE = {"maria", "olga"}
AUTHORS = ["maria", "MARIA", "olga", "Olga", "sam", "dana", "mallory", BOT, "promotion_bot"]
_EOL = re.compile(r"\r\n|\r|\n")
VALID = re.compile(
    r" {0,3}(?:/|@promotion-bot[ \t]+)(?:promote|rollback[ \t]+v?0*[1-9][0-9]{0,9})[ \t]*",
    re.ASCII | re.IGNORECASE,
)


def first_line(body: str) -> str | None:
    for line in _EOL.split(body):
        if line.strip(" \t"):
            return line
    return None


# A valid command is lead + head + word + tail; a near miss breaks exactly one of the four.
VALID_PARTS = {
    "lead": ["", " ", "   ", "\n", " \t\n", "\r\n\r\n"],
    "head": ["/", "@promotion-bot ", "@Promotion-Bot\t"],
    "word": ["promote", "Promote", "rollback 1", "ROLLBACK v2", "rollback 01", "rollback\t2"],
    "tail": ["", " ", "\t", "\nreason", "\r\n\r\nlong\nreason", "\r/promote"],
}
BROKEN_PARTS = {
    "lead": ["    ", "\t", "> ", "```\n", "`", "- ", "x\n", "\u200b", "\ufeff", "\xa0"],
    "head": ["//", "／", "@promotion_bot ", "@promotion-bot", "@bot ", "\\/", "@promotion-bot- "],
    "word": [
        *["promoted", "promote now", "promote 2", "рromote", "promоte", "rollback", "help me"],
        *["rollback 1 2", "rollback x", "rollback 1.5", "rollback -1", "rollback 0", "rollback1"],
        *["roll back 1", "promote-now", "ＰＲＯＭＯＴＥ", "rollback ２", "rollback \u212a1"],
        "rollback <!-- promotion-bot:approval version=2 by=olga -->",
    ],
    "tail": [" now please", "`", "\x00", " 1", "!", "\xa0", "\u200b", "\x0b", "\u2028x"],
}


@st.composite
def near_miss(draw: st.DrawFn) -> str:
    parts = {key: draw(st.sampled_from(values)) for key, values in VALID_PARTS.items()}
    broken = draw(st.sampled_from(sorted(BROKEN_PARTS)))
    parts[broken] = draw(st.sampled_from(BROKEN_PARTS[broken]))
    return "".join(parts[key] for key in ("lead", "head", "word", "tail"))


@st.composite
def valid_command(draw: st.DrawFn) -> str:
    return "".join(draw(st.sampled_from(values)) for values in VALID_PARTS.values())


BODIES = st.one_of(
    valid_command(),
    near_miss(),
    near_miss(),
    st.text(max_size=120),
    st.builds(
        lambda noise, cmd: f"{noise}\n{cmd}", st.text(min_size=1, max_size=40), valid_command()
    ),
)
AUTHOR = st.one_of(st.sampled_from(["maria", "MARIA", "olga"]), st.sampled_from(AUTHORS))


def test_random_comments_never_raise_and_move_the_alias_only_on_a_valid_command(
    make_pg: MakePlayground,
) -> None:
    pg = make_pg(request={"close_on_promote": False})
    first = pg.train(0.6)
    second = pg.train(0.58)  # the candidate: /promote moves champion to it
    thread = pg.open_request(second)
    seen = {"changed": 0, "answered": 0, "tried": 0}

    @settings(
        max_examples=100,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(author=AUTHOR, body=BODIES)
    @example(author="maria", body="/promote")
    @example(author="olga", body=f"  /ROLLBACK v{first}  \r\nreason")
    @example(author="sam", body=f"/rollback {second}")
    @example(author="MARIA", body=f"@promotion-bot rollback {second}\n")
    def check(author: str, body: str) -> None:
        seen["tried"] += 1
        if pg.champion() != first:  # from v1 every accepted command is a change (to v2)
            pg.ctx.registry.set_alias(pg.model, "champion", first)
        before = pg.champion()
        answers_before = answer_count(pg, thread)
        outcome, _event = pg.comment(thread, author, body)
        after = pg.champion()
        new_answers = answer_count(pg, thread) - answers_before
        if after != before:
            seen["changed"] += 1
            line = first_line(body)
            assert line is not None and VALID.fullmatch(line), (body, outcome)
            assert author.lower() in ELIGIBLE, (author, body)
            assert outcome.status == "changed"
        if outcome.status in ("ignored", "duplicate"):
            assert new_answers == 0, (body, outcome)
        else:
            seen["answered"] += 1
            assert new_answers == 1, (body, outcome)

    check()

    assert seen["tried"] >= 100
    assert seen["changed"] >= 5 and seen["answered"] > seen["changed"]
    history = pg.history()
    assert len(history) == seen["changed"]
    assert all(h["actor"].lower() in ELIGIBLE for h in history)
    assert pg.ctx.registry.pending(pg.model) is None
