"""The signed, chained ledger (bot/ledger/chain.py, docs/security.md, "The registry writer"),
against the session's real `mlflow server`. The attacker is anyone who can write to MLflow: each
attack below is made with MLflow's own client, as that person would, and `verify` names it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from bot.intake.poll import poll
from bot.ledger.chain import MISSING, REPLAYED, InFlight, linked, walk
from bot.ledger.entry import (
    ABANDONED,
    ABANDONED_YET_FINISHED,
    EXTERNAL,
    LedgerEntry,
    not_abandoned,
)
from bot.ledger.setup import prepare
from bot.ledger.store import Where, now_ms
from bot.registry.tags import ABANDONED_TAG, EXTERNAL_TAG, HISTORY_TAG, LEDGER_TAG, PENDING_TAG
from bot.runtime.context import Context
from bot.signing import NOT_SIGNED, UNTRUSTED, Keys
from tests.helpers import TEST_SIGNING_KEY
from tests.promotion_env import Playground, client, promoted, verified


def test_each_entry_is_signed_and_names_the_one_before_it(pg: Playground) -> None:
    promoted(pg)
    promoted(pg, 0.58)
    newest, oldest = pg.ledger()
    assert newest.trusted and oldest.trusted and newest.kid == pg.ctx.keys.own
    assert (oldest.prev, newest.prev) == ("", oldest.digest)
    code, shown = verified(pg)
    assert (code, shown["breaks"], shown["champion"]) == (0, [], 2)


def test_an_entry_extended_after_it_was_finished_is_not_evidence(pg: Playground) -> None:
    """MLflow refuses a changed param but takes a new one on a finished run: `to.2 = "2"` on
    the entry of v1 reads `12`. Then a hand move to v12 would look approved."""
    promoted(pg)
    [entry] = pg.ledger()
    mlflow = client(pg)
    source = mlflow.get_model_version(pg.model, "1")
    for _ in range(11):
        mlflow.create_model_version(pg.model, source.source, source.run_id)
    mlflow.log_param(entry.ledger_run, "to.2", "2")
    mlflow.set_registered_model_alias(pg.model, "champion", "12")

    [extended] = pg.ledger()
    assert extended.to_version == 12 and not extended.trusted
    assert pg.ctx.ledger.latest(pg.ctx.ledger.experiment_id(), Where(model=pg.model)) is None
    code, shown = verified(pg)
    assert code == 1 and shown["drifted"] and shown["approved"] is None
    [broken] = shown["breaks"]
    assert broken["ledger_run"] == entry.ledger_run and "does not match" in broken["reason"]
    text = pg.cli("verify")
    assert text.exit_code == 1 and f"ledger run {entry.ledger_run}" in text.output
    [line] = pg.cli("history", "--model", pg.model).output.splitlines()
    assert "v12" in line and "[NOT EVIDENCE: its signature does not match" in line


def test_a_redirected_ledger_pointer_names_nothing(pg: Playground) -> None:
    """An experiment of the attacker's own with a copy of the ledger plus one entry, and the
    model's marker pointed at it (under the configured name): the bot reads and writes the
    configured experiment only."""
    promoted(pg)
    v2 = pg.train(0.58)
    mlflow = client(pg)
    evil = mlflow.create_experiment(f"copy-of-the-ledger-{pg.model}")
    for entry in pg.ledger():
        run = mlflow.create_run(evil, start_time=entry.at_ms)
        for key, value in mlflow.get_run(entry.ledger_run).data.params.items():
            mlflow.log_param(run.info.run_id, key, value)
        mlflow.set_terminated(run.info.run_id)
    forged = LedgerEntry(pg.model, "promote", 1, v2, now_ms(), actor="maria")
    run = mlflow.create_run(evil, start_time=forged.at_ms)
    for key, value in forged.to_params().items():
        mlflow.log_param(run.info.run_id, key, value)
    mlflow.set_terminated(run.info.run_id)
    marker = {"experiment": pg.ctx.ledger.experiment, "experiment_id": evil, "model": pg.model}
    mlflow.set_registered_model_tag(pg.model, LEDGER_TAG, json.dumps(marker))
    mlflow.set_registered_model_alias(pg.model, "champion", str(v2))

    assert pg.ctx.ledger.ready(pg.ctx.registry.state(pg.model), pg.model) == ""
    code, shown = verified(pg)
    assert code == 1 and shown["drifted"] and shown["approved"] == 1

    # `status` only reads (and says DRIFT); the next `poll` records the hand move in the
    # configured ledger, not the attacker's.
    assert pg.cli("status").exit_code == 1
    assert pg.cli("poll").exit_code == 0
    real = pg.ctx.ledger.experiment_id()
    assert [(e.action, e.to_version) for e in pg.ledger()] == [(EXTERNAL, v2), ("promote", 1)]
    assert len(mlflow.search_runs([evil])) == 2
    assert pg.ctx.ledger.ready(pg.ctx.registry.state(pg.model), pg.model) == real


def _record_three(pg: Playground) -> list[LedgerEntry]:
    pg.train(0.6, gate_it=False)  # the registered model verify asks about, and v2, v3
    source = client(pg).get_model_version(pg.model, "1")
    for _ in range(2):
        client(pg).create_model_version(pg.model, source.source, source.run_id)
    ledger = pg.ctx.ledger
    experiment_id = ledger.registry.experiment_id(ledger.experiment)
    for version in (1, 2, 3):
        entry = LedgerEntry(pg.model, "promote", version - 1 or None, version, now_ms(), "maria")
        ledger.record(experiment_id, entry, f"three:{pg.model}:{version}")
    return pg.ledger()[::-1]


def test_a_hidden_a_replayed_and_a_planted_entry_each_break_the_chain(pg: Playground) -> None:
    first, second, third = _record_three(pg)
    mlflow = client(pg)
    pg.ctx.registry.set_alias(pg.model, "champion", 3)
    assert verified(pg)[0] == 0

    # Hidden: the middle entry is no longer FINISHED, and the bot never abandoned it: one break,
    # at the hidden run itself (the one after it still names it).
    mlflow.set_terminated(second.ledger_run, status="FAILED")
    code, shown = verified(pg)
    assert code == 1
    assert [(b["ledger_run"], b["reason"]) for b in shown["breaks"]] == [
        (second.ledger_run, not_abandoned("FAILED"))
    ]
    mlflow.set_terminated(second.ledger_run, status="FINISHED")
    assert verified(pg)[0] == 0

    # Replayed: the first entry's signed params copied into a new run after the last one (its
    # signed time is not its run's; at the same time, it would follow no entry: `walk` below).
    experiment_id = pg.ctx.ledger.experiment_id()
    copy = mlflow.create_run(experiment_id, start_time=third.at_ms + 1000)
    for key, value in mlflow.get_run(first.ledger_run).data.params.items():
        mlflow.log_param(copy.info.run_id, key, value)
    mlflow.set_terminated(copy.info.run_id)
    # Planted: an entry in the right shape that the bot never signed.
    planted = LedgerEntry(pg.model, "promote", 3, 1, third.at_ms + 2000, actor="maria")
    plant = mlflow.create_run(experiment_id, start_time=planted.at_ms)
    for key, value in planted.to_params().items():
        mlflow.log_param(plant.info.run_id, key, value)
    mlflow.set_terminated(plant.info.run_id)
    mlflow.set_registered_model_alias(pg.model, "champion", "1")

    code, shown = verified(pg)
    assert code == 1 and shown["drifted"]
    assert [(b["ledger_run"], b["reason"]) for b in shown["breaks"]] == [
        (copy.info.run_id, "its run's start time is not the time it was signed with"),
        (plant.info.run_id, NOT_SIGNED),
    ]
    # The bot's own reads take neither as evidence.
    last = pg.ctx.ledger.newest(experiment_id, pg.model)[0]
    assert last.ledger_run == third.ledger_run


def test_the_walk_names_a_replay_and_a_gap_once() -> None:
    keys = Keys.load(TEST_SIGNING_KEY)
    chain: list[LedgerEntry] = []
    for number in range(1, 5):
        entry = LedgerEntry("m", "promote", None, number, 1000 * number)
        prev = chain[-1].digest if chain else ""
        chain.append(replace(entry, prev=prev).sealed(keys)[0])
    a, b, c, d = (replace(entry, ledger_run=f"run-{i}") for i, entry in enumerate(chain))
    assert walk([a, b, c, d]) == ([a, b, c, d], [])
    kept, breaks = walk([a, b, replace(a, ledger_run="copy"), c, d])
    assert kept == [a, b, c, d] and [(x.entry.ledger_run, x.reason) for x in breaks] == [
        ("copy", REPLAYED)
    ]
    kept, breaks = walk([a, c, d])  # b gone: one break, at c; d follows c
    assert kept == [a, d] and [(x.entry.ledger_run, x.reason) for x in breaks] == [
        ("run-2", MISSING)
    ]
    assert [entry.ledger_run for entry in linked([a, replace(a, ledger_run="copy"), b])] == [
        "run-0",
        "run-1",
    ]


CACHE = (HISTORY_TAG, PENDING_TAG, EXTERNAL_TAG)  # the champion cache and the intent


@pytest.mark.parametrize("status", ["FAILED", "KILLED"])
@pytest.mark.parametrize("moved_back", [False, True], ids=["as-is", "rolled-back-by-hand"])
def test_the_newest_entry_hidden_by_its_status_is_named(
    pg: Playground, status: str, moved_back: bool
) -> None:
    """A registry writer marks the newest entry FAILED (or KILLED): out of every FINISHED query.
    Rolled back by hand, with the champion cache the bot signed before that change written back
    (a valid seal), the ledger would read as it did one change ago. The bot never abandoned
    that run, so `verify` names it and exits 1."""
    first = promoted(pg)
    older = {tag: value for tag, value in pg.ctx.registry.state(pg.model).tags.items()}
    promoted(pg, 0.58)
    newest = pg.ledger()[0]
    mlflow = client(pg)
    mlflow.set_terminated(newest.ledger_run, status)
    if moved_back:
        for tag in CACHE:
            if tag in older:
                mlflow.set_registered_model_tag(pg.model, tag, older[tag])
        mlflow.set_registered_model_alias(pg.model, "champion", str(first))
        state = pg.ctx.registry.state(pg.model)
        assert not state.cache_problems and state.pending is None  # the cache vouches for v1

    code, shown = verified(pg)
    assert code == 1
    [broken] = shown["breaks"]
    assert (broken["ledger_run"], broken["reason"]) == (newest.ledger_run, not_abandoned(status))
    text = pg.cli("verify")
    assert text.exit_code == 1 and "as approved" not in text.output
    assert (
        f"ledger run {newest.ledger_run} ({newest.at}, promote to v2) is not evidence: "
        f"marked {status} but the bot did not abandon it (hidden?)"
    ) in text.output


def _abandoned(pg: Playground, to: int) -> str:
    """A change to `to` the bot began and abandoned (its alias never moved), as `recover_pending`
    does: the run, then its signed abandonment and FAILED."""
    ledger = pg.ctx.ledger
    experiment_id = ledger.experiment_id()
    key = f"attempt:{pg.model}:{to}"
    entry = LedgerEntry(pg.model, "promote", pg.champion(), to, now_ms(), actor="maria")
    ledger.begin(experiment_id, entry, key)
    [run] = ledger.runs_keyed(experiment_id, key)
    ledger.abandon(run)
    return run.run_id


def test_a_change_the_bot_abandoned_is_out_of_the_chain_and_its_seal_binds_it(
    pg: Playground,
) -> None:
    first = promoted(pg)
    second = pg.train(0.58)
    attempt = _abandoned(pg, second)
    run = client(pg).get_run(attempt)
    assert run.info.status == "FAILED" and ABANDONED_TAG in run.data.tags
    assert verified(pg)[0] == 0 and pg.champion() == first
    promoted_again = pg.comment(pg.open_request(second), "olga", "/promote")[0]
    assert promoted_again.status == "changed"
    code, shown = verified(pg)
    assert (code, shown["breaks"], shown["champion"]) == (0, [], second)

    # The abandonment is bound to its run: copied onto the hidden newest entry, it is no seal.
    mlflow = client(pg)
    newest = pg.ledger()[0]
    mlflow.set_tag(newest.ledger_run, ABANDONED_TAG, run.data.tags[ABANDONED_TAG])
    mlflow.set_terminated(newest.ledger_run, "FAILED")
    mlflow.set_registered_model_alias(pg.model, "champion", str(first))
    code, shown = verified(pg)
    assert code == 1 and [b["ledger_run"] for b in shown["breaks"]] == [newest.ledger_run]
    mlflow.set_terminated(newest.ledger_run, "FINISHED")
    mlflow.set_registered_model_alias(pg.model, "champion", str(second))
    assert verified(pg)[0] == 0

    # An abandoned change set FINISHED by hand is no entry: its change never happened.
    mlflow.set_terminated(attempt, "FINISHED")
    code, shown = verified(pg)
    assert code == 1
    assert [(b["ledger_run"], b["reason"]) for b in shown["breaks"]] == [
        (attempt, ABANDONED_YET_FINISHED)
    ]


def _runs(count: int) -> list[LedgerEntry]:
    keys = Keys.load(TEST_SIGNING_KEY)
    chain: list[LedgerEntry] = []
    for number in range(1, count + 1):
        entry = LedgerEntry("m", "promote", None, number, 1000 * number)
        prev = chain[-1].digest if chain else ""
        chain.append(replace(entry, prev=prev).sealed(keys)[0])
    return [replace(entry, ledger_run=f"run-{i}") for i, entry in enumerate(chain)]


def _marked(entry: LedgerEntry, status: str, *, legacy: bool = False) -> LedgerEntry:
    """`entry` as read back from a run someone else set to `status` (the bot never abandoned)."""
    schema = "1" if legacy else entry.schema
    return replace(entry, status=status, problem=not_abandoned(status), schema=schema)


def test_the_walk_keeps_old_failed_attempts_and_names_hidden_entries() -> None:
    a, b, c = _runs(3)
    # b an attempt the bot abandoned, signed: out; c was chained past it (it names a).
    c_past = replace(c, prev=a.digest).sealed(Keys.load(TEST_SIGNING_KEY))[0]
    gone = replace(b, status="FAILED", abandoned=True, problem=ABANDONED)
    assert walk([a, gone, c_past]) == ([a, c_past], [])
    # Before abandonments were signed: a FAILED attempt chained past is fine, as before...
    assert walk([a, _marked(b, "FAILED", legacy=True), c_past]) == ([a, c_past], [])
    # ...but not one nothing chains past (it may be the newest entry, hidden)...
    kept, breaks = walk([a, _marked(b, "FAILED", legacy=True)])
    assert kept == [a] and [x.entry.ledger_run for x in breaks] == ["run-1"]
    # ...and an entry of today's schema never: the bot signs each attempt it abandons.
    kept, breaks = walk([a, _marked(b, "KILLED"), c_past])
    assert kept == [a, c_past] and [(x.entry.ledger_run, x.reason) for x in breaks] == [
        ("run-1", not_abandoned("KILLED"))
    ]
    # A hidden entry in the middle, still named by the next: one break, at the hidden run.
    kept, breaks = walk([a, _marked(b, "FAILED"), c])
    assert kept == [a, c] and [x.entry.ledger_run for x in breaks] == ["run-1"]


def test_a_running_run_is_in_flight_only_while_the_intent_names_it_or_it_is_young() -> None:
    a, b = _runs(2)
    running = replace(_marked(b, "RUNNING"), key="intent:1")
    named = InFlight("intent:1", 2, now_ms=10_000_000, window_ms=30_000)
    assert walk([a, running], named) == ([a], [])
    young = InFlight(now_ms=b.at_ms + 29_000, window_ms=30_000)
    assert walk([a, running], young) == ([a], [])
    for stale in (InFlight(now_ms=10_000_000, window_ms=30_000), InFlight("intent:2", 2)):
        kept, breaks = walk([a, running], stale)
        assert kept == [a] and [x.reason for x in breaks] == [not_abandoned("RUNNING")]
    other_version = InFlight("intent:1", 3, now_ms=10_000_000, window_ms=30_000)
    assert [x.entry.ledger_run for x in walk([a, running], other_version)[1]] == ["run-1"]


def _unsigned(pg: Playground, experiment_id: str, entry: LedgerEntry) -> str:
    """An entry as a version of the bot before keys wrote it."""
    run_id = pg.ctx.registry.create_run(experiment_id, entry.at_ms, entry.run_name(), {})
    pg.ctx.registry.log_params(run_id, entry.to_params())
    pg.ctx.registry.finish_run(run_id)
    return run_id


def test_a_ledger_from_before_keys_is_signed_once_then_nothing_more(pg: Playground) -> None:
    pg.train(0.6, gate_it=False)
    ledger = pg.ctx.ledger
    experiment_id = ledger.registry.experiment_id(ledger.experiment)
    start = now_ms() - 60_000
    old = [
        _unsigned(pg, experiment_id, LedgerEntry(pg.model, "promote", None, 1, start, "maria")),
        _unsigned(pg, experiment_id, LedgerEntry(pg.model, "promote", 1, 1, start + 1, "olga")),
    ]
    before = {"experiment": ledger.experiment, "experiment_id": experiment_id}
    pg.ctx.registry.set_model_tag(pg.model, LEDGER_TAG, json.dumps(before))
    pg.ctx.registry.set_alias(pg.model, "champion", 1)
    code, shown = verified(pg)
    assert code == 1 and "import-ledger" in shown["breaks"][0]["reason"]
    assert any("2 unsigned ledger run(s)" in problem for problem in shown["problems"]), shown

    prepare(ledger, pg.model, pg.ctx.registry.state(pg.model))  # the first start with a key
    assert [entry.trusted for entry in pg.ledger()] == [False, False]  # it imports nothing
    dry = pg.cli("import-ledger", "--dry-run")
    assert dry.exit_code == 0 and [entry.trusted for entry in pg.ledger()] == [False, False]
    assert "would import 2 change(s)" in dry.output and f"ledger run {old[1]}" in dry.output
    done = pg.cli("import-ledger")  # the operator's step
    assert done.exit_code == 0 and "imported 2 change(s)" in done.output, done.output
    copies = pg.ledger()[::-1]
    signed = [entry for entry in copies if entry.trusted]
    assert [(e.imported, e.supersedes, e.actor) for e in signed] == [
        (True, old[0], "maria"),
        (True, old[1], "olga"),
    ]
    assert signed[1].prev == signed[0].digest
    assert verified(pg) == (0, verified(pg)[1]) and verified(pg)[1]["breaks"] == []
    history = pg.cli("history", "--model", pg.model).output.splitlines()
    assert len(history) == 2  # each change once, the signed copy
    again = pg.cli("import-ledger")
    assert again.output == f"{pg.model}: nothing to import\n" and len(pg.ledger()) == 4

    # Once the bot has signed a change of its own, an unsigned run is never imported again,
    # even when the marker is removed to make the bot "start" once more.
    pg.comment(pg.open_request(pg.train(0.58)), "maria", "/promote")
    planted = _unsigned(
        pg, experiment_id, LedgerEntry(pg.model, "rollback", 2, 1, now_ms(), actor="maria")
    )
    pg.ctx.registry.delete_model_tag(pg.model, LEDGER_TAG)
    prepare(ledger, pg.model, pg.ctx.registry.state(pg.model))
    refused = pg.cli("import-ledger")
    assert refused.exit_code == 1 and "already holds an entry the bot signed" in refused.output
    assert planted not in {entry.supersedes for entry in pg.ledger()}
    code, shown = verified(pg)
    assert code == 1 and [b["ledger_run"] for b in shown["breaks"]] == [planted]
    assert not any("import-ledger" in problem for problem in shown["problems"])


def _forge_a_first_start(pg: Playground, champion: int) -> None:
    """The attack on the first start with a key: the ledger experiment renamed away (so the
    configured name finds none), the model's marker deleted, and an unsigned history written
    that says `champion` was approved."""
    mlflow = client(pg)
    mlflow.rename_experiment(pg.ctx.ledger.experiment_id(), f"away-{pg.model}")
    mlflow.delete_registered_model_tag(pg.model, LEDGER_TAG)
    forged = {"at": "2026-01-02T00:00:00Z", "from": None, "to": champion, "actor": "mallory",
              "action": "promote", "reason": "approved", "request_url": "https://f/issues/1",
              "comment_id": "999"}  # fmt: skip
    mlflow.set_registered_model_tag(pg.model, HISTORY_TAG, json.dumps([forged]))


def test_a_forged_history_on_a_renamed_ledger_is_not_imported_by_a_pass(
    pg: Playground, caplog: pytest.LogCaptureFixture
) -> None:
    """A hand move made to look approved: the next `poll` starts a new ledger, imports nothing
    from the history and says which command would; no signed entry vouches for the history,
    and `verify` fails throughout."""
    promoted(pg)
    v2 = pg.train(0.65, gate_it=False)
    client(pg).set_registered_model_alias(pg.model, "champion", str(v2))  # by hand
    _forge_a_first_start(pg, v2)
    code, shown = verified(pg)
    assert code == 1 and shown["approved"] is None
    assert any(f"import-ledger --model {pg.model}" in line for line in shown["problems"]), shown

    logging.getLogger().addHandler(caplog.handler)  # the CLI above set the root's handlers
    try:
        result = poll(pg.ctx)  # the bot's next pass
    finally:
        logging.getLogger().removeHandler(caplog.handler)

    assert not result.failures and not result.check_failures, result.summary()
    [warning] = [r.getMessage() for r in caplog.records if "import-ledger" in r.getMessage()]
    assert "1 in the promotion.history tag" in warning
    # A new ledger, its marker signed, and nothing in it: the history is not imported, and no
    # hand move is recorded against a history only the operator can judge (the poll says so).
    assert pg.ledger() == [] and pg.ctx.ledger.ready(pg.ctx.registry.state(pg.model), pg.model)
    assert "not recorded" in result.summary() and "import-ledger" in result.summary()
    code, shown = verified(pg)
    assert code == 1 and shown["approved"] is None
    assert any(f"import-ledger --model {pg.model}" in line for line in shown["problems"]), shown
    status = pg.cli("status")
    assert status.exit_code == 1 and "champion: not checked: " in status.output
    # What the operator would be shown, with the thread to check it against; nothing written.
    dry = pg.cli("import-ledger", "--dry-run")
    assert f"none -> v{v2}  by mallory  https://f/issues/1" in dry.output and pg.ledger() == []


def test_a_forged_history_on_a_renamed_ledger_is_not_imported_by_a_change(
    pg: Playground,
) -> None:
    """The same attack with the champion left alone (the history rewritten to name another
    approver), then a `/promote`: nothing is imported, and the history can no longer be."""
    promoted(pg)
    _forge_a_first_start(pg, 1)
    version = promoted(pg, 0.58)  # the bot's next pass: a change
    entries = pg.ledger()
    assert [(e.action, e.to_version, e.trusted) for e in entries] == [
        ("promote", version, True),
        ("promote", 1, True),  # the bot's own intent of v1, recorded again from its seal
    ]
    assert not any(e.imported or e.actor == "mallory" for e in entries)
    assert "mallory" not in pg.cli("history", "--model", pg.model).output
    refused = pg.cli("import-ledger")
    assert refused.exit_code == 1 and len(pg.ledger()) == 2
    assert verified(pg)[0] == 0  # the champion is the one approved, through the bot


def test_a_ledger_signed_only_by_a_key_this_bot_does_not_trust_says_so(
    pg: Playground, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run with another key than the one that wrote the ledger (the demo's folder without the
    demo's environment, a monitor missing `promotion.trusted_keys`): not "DRIFT", which would
    send someone to roll back a champion that is fine, but what it cannot tell and why. Still
    exit 1: nothing this bot trusts approves the champion, and a key it does not know may be a
    registry writer's, so the advice is about the bot's own key, never "trust this one"."""
    promoted(pg)
    promoted(pg, 0.58)
    writer = pg.ctx.keys.own
    monkeypatch.setenv("PROMOTION_BOT_SIGNING_KEY", "6f" * 32)

    code, shown = verified(pg)
    assert (code, shown["exit_code"], shown["foreign_keys"]) == (1, 1, [writer])
    text = pg.cli("verify")
    assert text.exit_code == 1 and "DRIFT" not in text.output
    said = "no record this bot trusts: all 2 ledger entries are signed by a key it does not trust"
    said += f" ({writer})"
    assert said in text.output and "a key you do not know is not the bot's" in text.output
    assert "import-ledger" not in text.output  # that is for runs from before keys
    status = pg.cli("status")
    assert status.exit_code == 1 and "DRIFT" not in status.output
    assert "champion: v2: no record this bot trusts: all 2 ledger entries" in status.output

    # With the key that wrote them, an entry signed by another key on top (a registry writer's
    # own key) is a break of a chain that decides: drift, not "cannot tell".
    monkeypatch.setenv("PROMOTION_BOT_SIGNING_KEY", TEST_SIGNING_KEY)
    newest = pg.ledger()[0]
    planted = LedgerEntry(pg.model, "promote", 1, 2, newest.at_ms + 1000, actor="maria")
    _entry, params = replace(planted, prev=newest.digest).sealed(Keys.load("6f" * 32))
    mlflow = client(pg)
    run = mlflow.create_run(pg.ctx.ledger.experiment_id(), start_time=planted.at_ms)
    for key, value in params.items():
        mlflow.log_param(run.info.run_id, key, value)
    mlflow.set_terminated(run.info.run_id)
    mlflow.set_registered_model_alias(pg.model, "champion", "1")
    code, shown = verified(pg)
    assert (code, shown["foreign_keys"], shown["drifted"]) == (1, [], True)
    [broken] = shown["breaks"]
    assert broken["ledger_run"] == run.info.run_id and broken["reason"].startswith(UNTRUSTED)


def _hide_every_entry(pg: Playground) -> None:
    """A registry writer marks every ledger run of the model FAILED (out of the FINISHED reads)."""
    mlflow = client(pg)
    for entry in pg.ledger():
        mlflow.set_terminated(entry.ledger_run, "FAILED")


def test_hidden_entries_do_not_make_the_cache_history_from_before_keys(pg: Playground) -> None:
    """Every signed entry hidden, then a hand move: the signed cache's entries must not read as
    history waiting for the operator's import (which records and reports nothing), and the
    import must stay refused: the bot has signed changes of this model, hidden or not."""
    pg.setup_people()
    first = promoted(pg)
    worse = pg.train(0.9)
    [real] = pg.history()
    _hide_every_entry(pg)
    mlflow = client(pg)
    fake = {**real, "from": first, "to": worse, "at": "2030-01-01T00:00:00Z"}
    mlflow.set_registered_model_tag(pg.model, HISTORY_TAG, json.dumps([real, fake]))
    mlflow.set_registered_model_alias(pg.model, "champion", str(worse))

    told = pg.cli("verify")
    assert told.exit_code == 1 and "import-ledger" not in told.output, told.output
    assert "no record this bot trusts" not in told.output  # hidden is not "foreign keys"
    dry = pg.cli("import-ledger", "--dry-run")
    assert dry.exit_code == 1 and "nothing imported" in dry.output, dry.output
    result = poll(Context(settings=pg.ctx.settings, params=pg.ctx.params))  # another process
    [(_model, outcome)] = result.champions
    assert outcome.status == "reported", outcome
