"""The status page's bounded drift check (bot/reports/drift_view.py, `vouch` in
bot/ledger/chain.py), against the session's real `mlflow server`. Each attack is made with
MLflow's own client, as a registry writer would: the newest entries either decide and catch it,
or cannot decide and the whole chain is walked, as `verify` walks it."""

from __future__ import annotations

import pytest

from bot.ledger.chain import vouch
from bot.ledger.entry import LedgerEntry
from bot.ledger.store import now_ms
from bot.registry.model_state import Head
from bot.registry.tags import HISTORY_TAG, PENDING_TAG
from bot.reports.drift_view import NEWEST, drift_view
from bot.reports.page import page_data
from tests.promotion_env import Playground, client, counted, promoted


@pytest.fixture
def two(pg: Playground) -> tuple[int, int]:
    pg.setup_people()
    return promoted(pg, 0.6), promoted(pg, 0.55)


def test_the_newest_entries_decide_in_one_search(pg: Playground, two: tuple[int, int]) -> None:
    ctx, registry = counted(pg)
    view = drift_view(ctx, pg.model)
    assert view.bounded and len(view.newest) == 2 and view.result.entries == 2
    assert (view.result.check.champion, view.result.check.drifted) == (two[1], False)
    assert registry.searches == [NEWEST]  # no walk of the chain
    assert "newest 2 ledger entries" in view.checked() and "promotion-bot verify" in view.checked()


def test_a_hand_move_is_drift_from_the_newest_entries(pg: Playground, two: tuple[int, int]) -> None:
    third = pg.train(0.5)
    client(pg).set_registered_model_alias(pg.model, "champion", str(third))
    ctx, registry = counted(pg)
    view = drift_view(ctx, pg.model)
    assert view.bounded and registry.searches == [NEWEST]
    check = view.result.check
    assert (check.drifted, check.champion, check.approved_version) == (True, third, two[1])


def test_a_tampered_newest_entry_makes_the_page_walk_the_chain(
    pg: Playground, two: tuple[int, int]
) -> None:
    """`to.2` logged on the newest entry (MLflow takes a new param on a finished run) makes it
    read another version: its seal no longer matches, so it decides nothing."""
    newest = pg.ledger()[0]
    client(pg).log_param(newest.ledger_run, "to.2", "2")
    ctx, registry = counted(pg)
    view = drift_view(ctx, pg.model)
    assert not view.bounded and f"ledger run {newest.ledger_run} is not evidence" in view.walked
    assert registry.searches == [NEWEST, 1000]  # the newest, then the whole chain
    [broken] = view.result.breaks
    assert broken.entry.ledger_run == newest.ledger_run
    assert view.result.check.drifted and view.result.check.approved_version == two[0]
    assert "the whole chain (2 entries)" in view.checked()


def test_an_entry_planted_on_top_is_not_the_head(pg: Playground, two: tuple[int, int]) -> None:
    """A run the registry writer adds to the ledger as the newest `promote`, unsigned, with a
    hand move to its version: it is no evidence, and not the head the bot signed either."""
    third = pg.train(0.5)
    mlflow = client(pg)
    forged = LedgerEntry(pg.model, "promote", two[1], third, now_ms(), actor="maria")
    run = mlflow.create_run(pg.ctx.ledger.experiment_id(), start_time=forged.at_ms)
    for key, value in forged.to_params().items():
        mlflow.log_param(run.info.run_id, key, value)
    mlflow.set_terminated(run.info.run_id)
    mlflow.set_registered_model_alias(pg.model, "champion", str(third))

    view = drift_view(pg.ctx, pg.model)
    assert not view.bounded and f"ledger run {run.info.run_id} is not evidence" in view.walked
    assert view.result.check.drifted and view.result.check.approved_version == two[1]
    assert [b.entry.ledger_run for b in view.result.breaks] == [run.info.run_id]


def test_a_replayed_champion_cache_is_not_taken_as_the_head(pg: Playground) -> None:
    """The champion cache the bot signed after the first change, written back after the second
    one, with a hand move back to the first champion: the cache vouches for it, the ledger's
    newest entry does not."""
    pg.setup_people()
    first = promoted(pg, 0.6)
    older = pg.ctx.registry.state(pg.model).tags[HISTORY_TAG]
    second = promoted(pg, 0.55)
    mlflow = client(pg)
    mlflow.set_registered_model_tag(pg.model, HISTORY_TAG, older)
    mlflow.delete_registered_model_tag(pg.model, PENDING_TAG)  # else the change reads in flight
    mlflow.set_registered_model_alias(pg.model, "champion", str(first))

    view = drift_view(pg.ctx, pg.model)
    assert not view.bounded and "is not the head" in view.walked
    check = view.result.check
    assert (check.drifted, check.champion, check.approved_version) == (True, first, second)


@pytest.mark.parametrize("status", ["FAILED", "KILLED"])
@pytest.mark.parametrize("cache", [False, True], ids=["cache-as-is", "older-cache-written-back"])
def test_a_hidden_newest_entry_is_named(pg: Playground, status: str, cache: bool) -> None:
    """The newest entry set FAILED or KILLED (out of every FINISHED query) and the champion moved
    back by hand, with or without the champion cache the bot signed before it written back (a
    valid seal that names the entry before as the head): the bounded check reads every run
    whatever its status, finds the hidden entry on top, and walks; the page says broken, not
    "as the audit ledger records it"."""
    pg.setup_people()
    first = promoted(pg, 0.6)
    older = dict(pg.ctx.registry.state(pg.model).tags)
    promoted(pg, 0.55)
    newest = pg.ledger()[0]
    mlflow = client(pg)
    mlflow.set_terminated(newest.ledger_run, status)
    if cache:
        for tag in (HISTORY_TAG, PENDING_TAG):
            mlflow.set_registered_model_tag(pg.model, tag, older[tag])
    mlflow.set_registered_model_alias(pg.model, "champion", str(first))

    view = drift_view(pg.ctx, pg.model)
    hidden = f"marked {status} but the bot did not abandon it (hidden?)"
    assert not view.bounded and view.walked == (
        f"ledger run {newest.ledger_run} is not evidence: {hidden}"
    )
    assert [(b.entry.ledger_run, b.reason) for b in view.result.breaks] == [
        (newest.ledger_run, hidden)
    ]
    assert view.result.exit_code == 1
    [model] = page_data(pg.ctx, now_ms()).models
    assert model.drifted and "NOT VERIFIED" in model.drift
    assert "as the audit ledger records it" not in model.drift
    assert any(newest.ledger_run in problem for problem in model.problems)


def test_a_change_the_bot_abandoned_leaves_the_newest_entries_deciding(pg: Playground) -> None:
    """An attempt whose alias never moved, abandoned by the bot (signed): out of the chain, and
    the newest entries still decide in one search."""
    pg.setup_people()
    first = promoted(pg, 0.6)
    second = pg.train(0.55)
    ledger = pg.ctx.ledger
    experiment_id = ledger.experiment_id()
    attempt = LedgerEntry(pg.model, "promote", first, second, now_ms(), actor="maria")
    ledger.begin(experiment_id, attempt, "attempt:1")
    [run] = ledger.runs_keyed(experiment_id, "attempt:1")
    ledger.abandon(run)

    ctx, registry = counted(pg)
    view = drift_view(ctx, pg.model)
    assert view.bounded and registry.searches == [NEWEST]
    assert [entry.to_version for entry in view.newest] == [first]
    assert view.result.exit_code == 0


def _entry(to: int, at_ms: int, digest: str, prev: str, problem: str = "") -> LedgerEntry:
    return LedgerEntry("m", "promote", None, to, at_ms, prev=prev, digest=digest, problem=problem)


def test_vouch_names_what_the_newest_entries_lack() -> None:
    """The pure rule, one case each: the head, a seal, a link."""
    a, b = _entry(1, 1_000, "a", ""), _entry(2, 2_000, "b", "a")
    head = Head("b", 2_000, "7")
    assert vouch([b, a], head, "7") == ""
    assert "no head" in vouch([b, a], None, "7")
    assert "no head" in vouch([b, a], Head("b", 2_000, "8"), "7")  # another experiment's
    assert "not among the newest 1 entries" in vouch([a], head, "7")
    assert "not among the newest 2" in vouch([b, a], Head("b", 2_001, "7"), "7")
    assert "not the head" in vouch([_entry(3, 3_000, "c", "b"), b, a], head, "7")  # newer
    assert "not evidence: forged" in vouch([b, _entry(1, 1_000, "a", "", "forged")], head, "7")
    assert "does not follow" in vouch([b, _entry(1, 900, "x", "")], head, "7")
    assert "no ledger entry" in vouch([], head, "7")
