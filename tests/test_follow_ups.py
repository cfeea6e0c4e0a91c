"""The follow-ups of a champion change (bot/commands/follow_ups.py) come after its answer, in the
order docs/design.md ("The change", steps 7 and 8) gives: the answer and its reaction, the
request's status section, the close of a promoted issue, the hook. Against the real registry and
the local forge, whose calls are recorded in order.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import post_promote_hook
from bot.commands.handler import handle_comment
from tests.promotion_env import MakePlayground, Playground

HOOK = "https://serving.example/deploy"
RECORDED = (
    "post_comment",
    "react",
    "get_thread",
    "update_body",
    "update_and_close",
    "close",
    "merge",
)


def recorded(pg: Playground, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The forge calls of `RECORDED` and the hook's calls, in the order they are made."""
    calls: list[str] = []
    for name in RECORDED:
        real = getattr(pg.forge, name)

        def spy(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(pg.forge, name, spy)

    def hook(url: str, payload: dict[str, Any], *_args: Any, **_kwargs: Any) -> None:
        calls.append(f"hook {payload['action']} v{payload['to']}")

    monkeypatch.setattr(post_promote_hook, "call_hook", hook)
    return calls


def test_a_promote_is_answered_then_followed_up(
    make_pg: MakePlayground, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = make_pg(post_promote_hook=HOOK)
    version = pg.train(0.6)
    thread = pg.open_request(version)
    calls = recorded(pg, monkeypatch)

    outcome, event = pg.comment(thread, "maria", "/promote")

    assert outcome.status == "changed", outcome
    answer = calls.index("post_comment")
    assert calls[answer:] == [
        "post_comment",  # the answer
        "react",
        "get_thread",  # the status section, rewritten on the body as it is now
        "update_and_close",  # and the close, in the same write
        f"hook promote v{version}",
    ]
    assert pg.thread(thread).state == "closed"
    del calls[:]
    assert handle_comment(pg.ctx, event).status == "duplicate"  # a redelivery
    assert [call for call in calls if call != "get_thread"] == []  # nothing written again


def test_a_rollback_closes_nothing_but_calls_the_hook(
    make_pg: MakePlayground, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = make_pg(post_promote_hook=HOOK)
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.55)
    thread = pg.open_request(second)
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"
    calls = recorded(pg, monkeypatch)

    outcome, _ = pg.comment(thread, "maria", f"/rollback {first}")

    assert outcome.status == "changed", outcome
    answer = calls.index("post_comment")
    assert calls[answer:] == [
        "post_comment",
        "react",
        "get_thread",
        "update_body",
        f"hook rollback v{first}",
    ]
