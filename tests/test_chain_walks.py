"""`serve`'s background walks of the whole chains (bot/reports/chain_walks.py) and what the
status page says of them, against the session's real `mlflow server`: 24 signed, chained
entries written straight through the ledger, more than the page's newest entries. An older
entry edited by hand is found by the next walk, not by a page build; the page shows the walk's
verdict with its time, and the newer entries that follow the walk's tip."""

from __future__ import annotations

from dataclasses import replace

import pytest
from mlflow import MlflowClient

from bot.ledger.entry import LedgerEntry
from bot.ledger.store import now_ms
from bot.registry.model_state import Head
from bot.registry.records import HistoryEntry
from bot.reports.chain_walks import AGAIN_SECONDS, EVERY_SECONDS, ChainWalks
from bot.reports.drift_view import NEWEST
from bot.reports.page import ModelPage, page_data
from tests.ledger_history import (
    leave_as_the_bot_does,
    onto_versions,
    planned_changes,
    write_changes,
)
from tests.promotion_env import Playground, counted

ENTRIES = 24  # the 25th of the plan is a move seen outside the bot: end on an approved one


@pytest.fixture
def chained(pg: Playground) -> list[LedgerEntry]:
    """24 changes between three versions, oldest first, as sealed."""
    for step in range(3):
        pg.train(0.6 - 0.02 * step, gate_it=False)
    ledger = pg.ctx.ledger
    experiment_id = ledger.registry.experiment_id(ledger.experiment)
    changes = onto_versions(planned_changes(pg.model, ENTRIES), 3)
    written = write_changes(ledger, experiment_id, changes)
    leave_as_the_bot_does(ledger, experiment_id, written)
    return written


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def shown(pg: Playground, walks: ChainWalks) -> ModelPage:
    (model,) = page_data(pg.ctx, now_ms(), walks).models
    assert model.error == "", model.error
    return model


def test_a_walk_finds_an_older_entry_edited_by_hand(
    pg: Playground, chained: list[LedgerEntry]
) -> None:
    clock = Clock()
    walks = ChainWalks(clock=clock)
    before = shown(pg, walks)
    assert before.whole_chain.startswith("not walked yet") and not before.drifted
    assert walks.walk_due(pg.ctx) == [pg.model] and walks.walk_due(pg.ctx) == []
    walked = shown(pg, walks)
    assert f"{ENTRIES} entries, no break" in walked.whole_chain and not walked.drifted

    # The oldest entry, far below the page's newest entries, extended by hand.
    oldest = chained[0]
    [run] = [e for e in pg.ledger() if e.digest == oldest.digest]
    MlflowClient(tracking_uri=pg.ctx.settings.tracking_uri).log_param(
        run.ledger_run, "reason.2", " and more"
    )
    ctx, registry = counted(pg)
    still = page_data(ctx, now_ms(), walks).models[0]
    assert registry.searches == [NEWEST]  # a build reads the newest entries only
    assert (still.check_scope, still.drifted) == ("newest", False)  # not seen until the walk

    clock.now += EVERY_SECONDS - 1
    assert walks.walk_due(pg.ctx) == []
    clock.now += 1
    assert walks.walk_due(pg.ctx) == [pg.model]
    found = shown(pg, walks)
    assert found.drifted and found.check_scope == "newest"
    # The edited entry, and the one after it, whose `prev` names the entry as it was signed.
    assert any(run.ledger_run in problem for problem in found.problems), found.problems
    assert f"{ENTRIES} entries, 2 not evidence or missing (listed above)" in found.whole_chain


def test_newer_entries_follow_the_walk_until_they_are_too_many(
    pg: Playground, chained: list[LedgerEntry]
) -> None:
    clock = Clock()
    walks = ChainWalks(clock=clock)
    walks.walk_due(pg.ctx)
    ledger = pg.ctx.ledger
    experiment_id = ledger.experiment_id()
    head = chained[-1]
    for step in range(NEWEST + 1):
        champion = 1 + (head.to_version or 0) % 3
        entry = replace(head, from_version=head.to_version, to_version=champion, prev="")
        sealed, _params = ledger.sealed(experiment_id, replace(entry, at_ms=head.at_ms + 60_000))
        ledger.record(experiment_id, sealed, f"more:{step}", head=head)
        head = sealed
        change = HistoryEntry(champion, sealed.from_version, None, sealed.actor, at=sealed.at)
        pg.ctx.registry.append_history(
            pg.model, change, known=(), head=Head(sealed.digest, sealed.at_ms, experiment_id)
        )
        pg.ctx.registry.set_alias(pg.model, "champion", champion)
        if step == 0:
            one = shown(pg, walks)
            assert one.whole_chain.endswith("; the 1 newer entry follows it"), one.whole_chain
            assert not one.drifted and not walks.due(pg.model)
    many = shown(pg, walks)
    assert many.whole_chain.endswith("newer entries not walked yet") and not many.drifted
    assert not walks.due(pg.model)  # soon, not at once: a page build must not walk in a loop
    clock.now += AGAIN_SECONDS
    assert walks.due(pg.model) and walks.walk_due(pg.ctx) == [pg.model]
    assert f"{ENTRIES + NEWEST + 1} entries, no break" in shown(pg, walks).whole_chain
