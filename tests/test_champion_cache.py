"""The champion cache (`promotion.history`, `promotion.external`) is signed and carries the head
of the model's ledger chain, so a change chains its entry without searching the ledger
(docs/security.md, "The registry writer and the signing key"; docs/design.md, "Registry tags").
Each attack is made with MLflow's own client against the session's real `mlflow server`."""

from __future__ import annotations

import json

from bot.commands.external_change import report_drift
from bot.ledger.chain import REPLAYED
from bot.registry.tags import EXTERNAL_TAG, HISTORY_TAG, PENDING_TAG
from tests.promotion_env import Playground, client, promoted, verified


def model_tags(pg: Playground) -> dict[str, str]:
    return dict(client(pg).get_registered_model(pg.model).tags)


def test_each_change_leaves_the_chains_head_in_the_signed_cache(pg: Playground) -> None:
    """The head the cache records is the ledger's newest entry: what the next change names."""
    promoted(pg, 0.6)
    promoted(pg, 0.58)
    cache = json.loads(model_tags(pg)[HISTORY_TAG])
    assert cache["model"] == pg.model and cache["kid"] == pg.ctx.keys.own
    newest = pg.ledger()[0]
    assert cache["head"]["digest"] == newest.digest and cache["head"]["at_ms"] == newest.at_ms
    assert pg.ledger()[0].prev == pg.ledger()[1].digest
    assert verified(pg)[0] == 0


def test_a_cache_deleted_forged_or_replayed_leaves_the_head_to_the_ledger(pg: Playground) -> None:
    """Deleted, rewritten with a head of the writer's choosing, or set back to an older value
    the bot signed: the cache cannot vouch for the head, the ledger is searched, and the next
    entry follows the real newest one."""
    promoted(pg, 0.6)
    older = model_tags(pg)[HISTORY_TAG]  # signed by the bot, one change ago
    promoted(pg, 0.59)
    mlflow = client(pg)
    for loss, tamper in ((0.58, "delete"), (0.57, "forge"), (0.56, "replay")):
        current = json.loads(model_tags(pg)[HISTORY_TAG])
        forged = {**current, "head": {**current["head"], "digest": "ab" * 32}}
        if tamper == "delete":
            mlflow.delete_registered_model_tag(pg.model, HISTORY_TAG)
        else:
            value = json.dumps(forged) if tamper == "forge" else older
            mlflow.set_registered_model_tag(pg.model, HISTORY_TAG, value)
        promoted(pg, loss)
        newest, before = pg.ledger()[:2]
        assert newest.prev == before.digest  # the search decided
        code, shown = verified(pg)
        assert code == 0 and shown["breaks"] == [] and shown["problems"] == []
        current = json.loads(model_tags(pg)[HISTORY_TAG])  # signed again, with the real head
        assert current["kid"] == pg.ctx.keys.own and current["head"]["digest"] == newest.digest


def test_a_consistent_replay_of_older_records_is_named_by_verify(pg: Playground) -> None:
    """The bot's own older cache and intent set back together, and the champion moved back by
    hand to the version they name: the registry alone cannot tell this from the past. `verify`
    (which reads the ledger) says the champion drifted, and the entry of the next change, which
    follows the head that older cache names, is named as out of the chain."""
    first = promoted(pg, 0.6)
    older = {tag: model_tags(pg)[tag] for tag in (HISTORY_TAG, PENDING_TAG)}
    promoted(pg, 0.59)
    mlflow = client(pg)
    for tag, value in older.items():
        mlflow.set_registered_model_tag(pg.model, tag, value)
    mlflow.set_registered_model_alias(pg.model, "champion", str(first))
    code, shown = verified(pg)
    assert code == 1 and shown["drifted"]

    third = promoted(pg, 0.58)
    code, shown = verified(pg)
    [broken] = shown["breaks"]
    assert code == 1 and broken["to"] == third and broken["reason"] == REPLAYED


def test_a_history_written_by_hand_is_no_rollback_target_and_is_named(pg: Playground) -> None:
    """A version never made champion, written into the history tag by hand (unsigned, or the
    bot's signed value edited), would become a `/rollback` target."""
    promoted(pg, 0.6)
    never = pg.train(0.7, gate_it=False)
    thread = pg.open_request(never)
    cache = json.loads(model_tags(pg)[HISTORY_TAG])
    entry = {**cache["entries"][0], "to": never, "comment_id": "7"}
    edited = {**cache, "entries": [*cache["entries"], entry]}
    mlflow = client(pg)
    for value in ([*cache["entries"], entry], edited):
        mlflow.set_registered_model_tag(pg.model, HISTORY_TAG, json.dumps(value))
        assert pg.ctx.registry.state(pg.model).history == ()
        code, shown = verified(pg)
        assert code == 1 and any(HISTORY_TAG in problem for problem in shown["problems"])
        outcome, _event = pg.comment(thread, "maria", f"/rollback {never}")
        assert outcome.status == "refused"
        assert pg.champion() != never


def test_an_external_note_written_by_hand_hides_no_hand_move(pg: Playground) -> None:
    """`promotion.external` written by hand to say the champion was already seen at the version
    it was moved to by hand: the cheap filter does not take it, the ledger decides, and the
    move is recorded."""
    promoted(pg, 0.6)
    second = pg.train(0.65, gate_it=False)
    newest = pg.ctx.registry.state(pg.model).history[-1]
    after = f"{newest.comment_id}/{newest.to_version}/{newest.at}"
    mlflow = client(pg)
    mlflow.set_registered_model_alias(pg.model, "champion", str(second))
    mlflow.set_registered_model_tag(
        pg.model, EXTERNAL_TAG, json.dumps({"to": second, "after": after, "model": pg.model})
    )
    outcome, check = report_drift(pg.ctx, "poll")
    assert check is not None and check.drifted
    assert outcome.status == "reported"  # in the newest request thread
    latest = pg.ledger()[0]
    assert (latest.action, latest.to_version) == ("external", second)
    assert json.loads(model_tags(pg)[EXTERNAL_TAG])["kid"] == pg.ctx.keys.own  # signed now


def test_an_unsigned_history_with_no_ledger_is_no_approval(pg: Playground) -> None:
    """The ledger gone (renamed away, its marker deleted) and an unsigned history naming the
    hand-set champion as approved: `verify` names the tag and does not pass."""
    version = pg.train(0.6)
    mlflow = client(pg)
    mlflow.set_registered_model_alias(pg.model, "champion", str(version))  # by hand
    forged = [{"from": None, "to": version, "actor": "maria", "action": "promote"}]
    mlflow.set_registered_model_tag(pg.model, HISTORY_TAG, json.dumps(forged))
    code, shown = verified(pg)
    assert code == 1
    assert any(HISTORY_TAG in problem for problem in shown["problems"]), shown


def test_a_deleted_cache_makes_the_last_intent_no_change_in_flight(pg: Playground) -> None:
    """The last change's signed intent stays on the model, and the cache says it is done. A
    registry writer deletes the cache (no other write) and moves the champion by hand: the
    intent must not read as a change in flight, or `poll`, `verify` and the page all say "in
    flight" instead of drift. The ledger's newest entry is that intent's change: done."""
    from bot.intake.poll import poll
    from bot.reports.drift_view import drift_view
    from bot.runtime.context import Context

    pg.setup_people()
    promoted(pg, 0.6)
    failed_gate = pg.train(0.9)
    mlflow = client(pg)
    mlflow.delete_registered_model_tag(pg.model, HISTORY_TAG)
    mlflow.set_registered_model_alias(pg.model, "champion", str(failed_gate))

    code, shown = verified(pg)
    assert (code, shown["drifted"], shown["in_flight"]) == (1, True, None)
    fresh = Context(settings=pg.ctx.settings, params=pg.ctx.params)
    assert drift_view(fresh, pg.model).result.check.drifted
    result = poll(Context(settings=pg.ctx.settings, params=pg.ctx.params))
    assert [outcome.status for _model, outcome in result.champions] == ["reported"]
