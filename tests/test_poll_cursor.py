"""`poll`'s cursor (bot/intake/poll_cursor.py): only a cursor the bot sealed, for this bot and
this model, recent and not in the future, narrows a pass; anything else is a full read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.intake.poll_cursor import OVERLAP, cursor_value, read_cursor, tag_key
from bot.signing import Keys, new_private
from tests.helpers import TEST_SIGNING_KEY

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)
KEYS = Keys.load(TEST_SIGNING_KEY)
BOT, MODEL = "b0t1d", "churn"


def tags(value: str, bot: str = BOT) -> dict[str, str]:
    return {tag_key(bot): value}


def test_a_sealed_cursor_is_the_pass_start_less_the_overlap() -> None:
    started = NOW - timedelta(minutes=5)
    since, why = read_cursor(tags(cursor_value(started, BOT, MODEL, KEYS)), BOT, MODEL, KEYS, NOW)
    assert why == ""
    assert since == (started - OVERLAP).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stranger() -> Keys:
    return Keys.load(new_private()[0])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "no cursor yet"),
        ("2026-05-04T11:50:00Z", "not the bot's"),  # written by hand: no seal
        (cursor_value(NOW, BOT, MODEL, _stranger()), "not the bot's"),  # another key
        (cursor_value(NOW, "another-bot", MODEL, KEYS), "not the bot's"),  # copied across bots
        (cursor_value(NOW, BOT, "another-model", KEYS), "not the bot's"),  # or across models
        (cursor_value(NOW, BOT, MODEL, KEYS).replace("11:58", "09:58"), "not the bot's"),
        (cursor_value(NOW + timedelta(hours=1), BOT, MODEL, KEYS), "in the future"),
        (cursor_value(NOW - timedelta(days=15), BOT, MODEL, KEYS), "older than 14 days"),
    ],
)
def test_anything_but_a_recent_sealed_cursor_means_a_full_read(value: str, reason: str) -> None:
    since, why = read_cursor(tags(value) if value else {}, BOT, MODEL, KEYS, NOW)
    assert since == ""
    assert reason in why


def test_an_unreadable_sealed_stamp_means_a_full_read() -> None:
    seal = KEYS.seal({"poll_cursor": "yesterday", "bot": BOT, "model": MODEL})
    value = f"yesterday|{seal['kid']}:{seal['sig']}"
    assert read_cursor(tags(value), BOT, MODEL, KEYS, NOW) == ("", "unreadable cursor 'yesterday'")


def test_each_bot_reads_its_own_tag() -> None:
    mine = cursor_value(NOW, BOT, MODEL, KEYS)
    assert read_cursor(tags(mine, bot="other"), BOT, MODEL, KEYS, NOW)[1] == "no cursor yet"
