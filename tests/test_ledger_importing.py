"""What waits for the operator's import (bot/ledger/importing.py, `waiting`): pure, from the
model read and its chain. The import itself, against MLflow: tests/test_ledger.py and
tests/test_ledger_chain.py."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.ledger.entry import EXTERNAL, LedgerEntry
from bot.ledger.importing import imported_entry, waiting
from bot.registry.model_state import ModelState
from bot.registry.records import HistoryEntry
from bot.registry.tags import HISTORY_TAG
from bot.signing import NOT_SIGNED

MODEL = "churn"
TAG = [
    {"at": "2025-03-01T10:00:00Z", "from": None, "to": 1, "actor": "maria", "action": "promote",
     "request_url": "https://f/issues/1", "comment_id": "11"},
    {"at": "2025-03-02T10:00:00Z", "from": 1, "to": 2, "actor": "olga", "action": "promote",
     "request_url": "https://f/issues/2", "comment_id": "12"},
]  # fmt: skip


def state(tag: list[dict[str, object]] | None = None) -> ModelState:
    tags = {HISTORY_TAG: json.dumps(tag)} if tag is not None else {}
    return ModelState(aliases={"champion": 2}, tags=tags, model=MODEL)


def run(entry: LedgerEntry, run_id: str, problem: str = "") -> LedgerEntry:
    """`entry` as read back from a run: signed and trusted (""), or not."""
    return replace(entry, ledger_run=run_id, problem=problem)


def as_imported(index: int) -> LedgerEntry:
    return imported_entry(MODEL, HistoryEntry.parse(TAG[index]), 0)


def test_an_empty_ledger_waits_for_the_whole_tag() -> None:
    found = waiting(MODEL, state(TAG), [])
    assert [(e.to_version, e.actor, e.imported) for e in found.history] == [
        (1, "maria", True),
        (2, "olga", True),
    ]
    assert found and found.unsigned == ()
    assert found.notice() == (
        "2 change(s) from before signing keys (2 in the promotion.history tag) are not in the "
        "signed ledger: check them against the request threads, then run "
        "`promotion-bot import-ledger --model churn`"
    )


def test_nothing_waits_without_a_tag_or_runs() -> None:
    assert not waiting(MODEL, state(), [])


def test_what_was_imported_waits_no_more_and_a_second_copy_of_an_entry_does() -> None:
    first = run(as_imported(0), "r1")
    assert [e.to_version for e in waiting(MODEL, state(TAG), [first]).history] == [2]
    twice = [TAG[0], TAG[0]]  # the same entry twice in the tag is two entries
    assert len(waiting(MODEL, state(twice), [first]).history) == 1


def test_unsigned_runs_wait_until_a_signed_copy_stands_for_them() -> None:
    old = run(LedgerEntry(MODEL, "promote", None, 1, 1_000, "maria"), "old", NOT_SIGNED)
    assert [e.ledger_run for e in waiting(MODEL, state(), [old]).unsigned] == ["old"]
    copy = run(replace(old, imported=True, supersedes="old"), "copy")
    assert not waiting(MODEL, state(), [old, copy])
    # A run whose seal fails for another reason (an untrusted key, changed since) is no
    # history from before keys: `verify` names it as a break, nothing imports it.
    tampered = replace(old, problem="the signature does not match (changed after signing)")
    assert not waiting(MODEL, state(), [tampered])


def test_a_change_the_ledger_has_from_the_bot_is_not_copied_from_the_tag() -> None:
    own_unsigned = run(
        LedgerEntry(MODEL, "promote", None, 1, 1_000, "maria", comment_id="11"), "old", NOT_SIGNED
    )
    found = waiting(MODEL, state(TAG), [own_unsigned])
    assert [e.to_version for e in found.history] == [2] and len(found.unsigned) == 1


def test_once_the_bot_signed_an_entry_of_its_own_nothing_waits() -> None:
    old = run(LedgerEntry(MODEL, "promote", None, 1, 1_000, "maria"), "old", NOT_SIGNED)
    for own in (
        LedgerEntry(MODEL, "promote", 1, 2, 2_000, "olga"),
        LedgerEntry(MODEL, EXTERNAL, 1, 2, 2_000, seen_by="poll"),  # a hand move it saw
    ):
        assert not waiting(MODEL, state(TAG), [old, run(own, "new")])
