"""bot.commands.admission: a delivered comment becomes Command | Usage | Ignored once, and every
path after it (serve's queue, routing, the handler, poll) takes that result instead of the text."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import bot.commands.admission
import bot.commands.grammar
from bot.commands.admission import (
    BOTS_OWN,
    EDITED,
    NOT_A_COMMAND,
    Admitted,
    Ignored,
    admit,
    for_this_bot,
)
from bot.commands.grammar import Command, Usage
from bot.config.params import Params
from bot.config.settings import Secret, Settings
from bot.intake.poll import poll
from bot.intake.wsgi import WebhookApp
from bot.runtime.context import Context
from bot.threads.thread import CommentEvent, ProjectRef
from bot.webhook_auth import sign_github
from tests.promotion_env import Playground
from tests.webhook_fixtures import raw_webhook

APP_BOT = "promo[bot]"  # a GitHub App's login: people mention it as @promo
MISSING = Usage("rollback", "a version (or `previous`) is required: `/rollback 7`")


def event(body: str, author: str = "maria", **fields: Any) -> CommentEvent:
    return CommentEvent("local", "issue", "1", "101", author, body, **fields)


@pytest.mark.parametrize(
    ("body", "action", "expected"),
    [
        ("/promote", "created", Command("promote")),
        ("/rollback v3\nbad calibration", "created", Command("rollback", 3, "bad calibration")),
        # a mention of any name is kept: the bot's own name is not known without the network
        ("@other-bot help", "created", Command("help", form="mention")),
        ("/rollback", "created", MISSING),
        ("/promote", "edited", EDITED),
        ("LGTM, ship it", "created", NOT_A_COMMAND),
        ("> /promote", "created", NOT_A_COMMAND),
        ("", "created", NOT_A_COMMAND),
    ],
)  # fmt: skip
def test_admit(body: str, action: str, expected: Admitted) -> None:
    assert admit(event(body, action=action)) == expected


def test_a_mention_keeps_the_name_it_was_sent_to() -> None:
    admitted = admit(event("@Other-Bot rollback 4"))
    assert isinstance(admitted, Command) and admitted.to == "Other-Bot"
    # where it was sent is no part of what it asks
    assert admit(event("@promo rollback 4")) == admitted


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    forge = tmp_path / "forge"
    return Context(Settings(platform="local", local_dir=forge, bot_username=APP_BOT), Params())


def ours(ctx: Context, body: str, author: str = "maria") -> CommentEvent:
    return event(body, author, project=ctx.forge.project_ref())


@pytest.mark.parametrize(
    ("body", "author", "expected"),
    [
        ("/promote", "maria", Command("promote")),
        ("@promo promote", "maria", Command("promote", form="mention")),  # an App, by its slug
        ("@PROMO[bot] help", "maria", Command("help", form="mention")),
        ("@other-bot promote", "maria", NOT_A_COMMAND),  # another bot's command
        ("/promote", "promo[bot]", BOTS_OWN),
        ("/promote", "Promo[BOT]", BOTS_OWN),  # usernames compare without letter case
        ("/promote", "promo", Command("promote")),  # a person may be called like the slug
        ("lgtm", "maria", NOT_A_COMMAND),
    ],
)
def test_for_this_bot(ctx: Context, body: str, author: str, expected: Admitted) -> None:
    assert for_this_bot(ctx, ours(ctx, body, author)) == expected


def test_another_projects_command_is_ignored_and_says_why(ctx: Context) -> None:
    elsewhere = event("/promote", project=ProjectRef(path="/somewhere/else"))
    admitted = for_this_bot(ctx, elsewhere)
    assert isinstance(admitted, Ignored)
    assert admitted.reason.startswith("a comment in /somewhere/else; this bot serves ")


def test_chatter_builds_no_forge_client(ctx: Context) -> None:
    assert for_this_bot(ctx, event("thanks!")) == NOT_A_COMMAND
    assert "forge" not in ctx.__dict__  # the cached client was never built


def test_admitting_again_reads_nothing_and_changes_nothing(ctx: Context, reads: list[str]) -> None:
    comment = ours(ctx, "@promo rollback 2")
    first = for_this_bot(ctx, comment)
    assert reads == ["@promo rollback 2"]
    assert for_this_bot(ctx, comment, first) == first == Command("rollback", 2, form="mention")
    assert reads == ["@promo rollback 2"]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every comment text the grammar reads, wherever it is asked from."""
    seen: list[str] = []
    real = bot.commands.grammar.read_comment

    def counted(body: str) -> Command | Usage | None:
        seen.append(body)
        return real(body)

    monkeypatch.setattr(bot.commands.grammar, "read_comment", counted)
    monkeypatch.setattr(bot.commands.admission, "read_comment", counted)
    yield seen


def test_serve_reads_the_comment_once_and_queues_the_command(reads: list[str]) -> None:
    dispatched: list[tuple[CommentEvent, Command | Usage]] = []
    app = WebhookApp(
        Settings(github_webhook_secret=Secret("s")),
        lambda comment, command: dispatched.append((comment, command)),
    )
    body = raw_webhook("github_issue_comment_pr")
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/github",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_X_GITHUB_EVENT": "issue_comment",
        "HTTP_X_GITHUB_DELIVERY": "d-1",
        "HTTP_X_HUB_SIGNATURE_256": sign_github("s", body),
    }
    app.start()
    try:
        answer = json.loads(b"".join(app(environ, lambda *_args: None)))
        assert answer == {"status": "accepted"} and app.drain(5)
    finally:
        app.stop(5)
    [(comment, command)] = dispatched
    assert command == Command("promote", reason="Checked the metrics and the drift report.")
    assert reads == [comment.body]


def test_every_path_reads_a_command_once(pg: Playground, reads: list[str]) -> None:
    """The handler (`handle`, `comment`) and `poll` read each comment's text once, however far
    it goes: routing, the handler, the change and the answer take the parsed command."""
    thread = pg.open_request(pg.train(0.6))
    outcome, _ = pg.comment(thread, "maria", "/promote\nchecked")
    assert outcome.status == "changed"
    assert reads == ["/promote\nchecked"]
    pg.forge.add_comment(thread.number, "sam", "lgtm")
    pg.forge.add_comment(thread.number, "maria", "/help")
    result = poll(pg.ctx)
    assert [o.status for _cid, o in result.outcomes] == ["help"]
    # the answered /promote and the bot's own answers are not read again
    assert reads == ["/promote\nchecked", "lgtm", "/help"]


def test_an_edited_event_is_ignored_by_the_handler_without_reading(
    pg: Playground, reads: list[str]
) -> None:
    thread = pg.open_request(pg.train(0.6))
    posted = pg.forge.add_comment(thread.number, "maria", "/promote")
    from bot.commands.handler import handle_comment

    outcome = handle_comment(pg.ctx, replace(pg.event(thread, posted), action="edited"))
    assert (outcome.status, outcome.detail) == ("ignored", EDITED.reason)
    assert reads == []
