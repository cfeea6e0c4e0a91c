"""Records the bot keeps in registry tags are evidence only when it signed them (docs/security.md,
"The registry writer"): each attack is made with MLflow's own client against the session's real
`mlflow server`, as anyone who can write to it would."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from bot.commands.external_change import report_drift
from bot.commands.handler import handle_comment
from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.registry.records import Approval
from bot.registry.tags import (
    APPROVALS_TAG,
    HANDLED_TAG,
    PENDING_TAG,
    REQUESTED_BY_TAG,
)
from bot.runtime.context import Context
from bot.signing import private_key, public_text
from tests.helpers import TEST_SIGNING_KEY
from tests.promotion_env import MakePlayground, Playground, client, verified


def test_a_forged_intent_hides_no_hand_move_and_never_becomes_an_entry(pg: Playground) -> None:
    """An intent `promote 1→2 by maria`, dated a minute ahead, then `champion` moved by hand:
    the bot neither calls it a change in flight nor finishes it into an approved entry."""
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.58)
    thread = pg.open_request(second)
    ahead = (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    forged = {"to": second, "from": first, "action": "promote", "actor": "maria", "reason": "",
              "request_url": thread.url, "comment_id": "424242", "at": ahead}  # fmt: skip
    mlflow = client(pg)
    mlflow.set_registered_model_tag(pg.model, PENDING_TAG, json.dumps(forged))
    mlflow.set_registered_model_alias(pg.model, "champion", str(second))

    code, shown = verified(pg)
    assert code == 1 and shown["drifted"] and shown["in_flight"] is None
    assert any(PENDING_TAG in problem for problem in shown["problems"])

    outcome, _event = pg.comment(thread, "sam", "/help")  # anyone's next comment
    assert outcome.status == "help"
    assert ("promote", second, "maria") not in [
        (entry.action, entry.to_version, entry.actor) for entry in pg.ledger()
    ]
    assert pg.champion() == second and verified(pg)[0] == 1


def test_an_approval_written_by_hand_counts_for_nothing(make_pg: MakePlayground) -> None:
    """With two approvals required, a second approver added to `promotion.approvals` (or the
    bot's own record copied to another version) does not let one real approval promote."""
    pg = make_pg(approvers={"required_approvals": 2})
    version = pg.train(0.6)
    thread = pg.open_request(version)
    forged = {"user": "olga", "user_id": "", "comment_id": "1", "at": "2026-01-01T00:00:00Z"}
    mlflow = client(pg)
    mlflow.set_model_version_tag(pg.model, str(version), APPROVALS_TAG, json.dumps([forged]))

    outcome, _event = pg.comment(thread, "maria", "/promote")
    assert (outcome.status, outcome.detail) == ("approval", "1 of 2")
    assert pg.champion() is None
    [mine] = json.loads(mlflow.get_model_version(pg.model, str(version)).tags[APPROVALS_TAG])
    assert mine["user"] == "maria" and mine["kid"] == pg.ctx.keys.own  # the forged one dropped

    # maria's signed approval, renamed to olga, or copied onto another version: nothing.
    other = pg.train(0.65, gate_it=False)
    renamed = {**mine, "user": "olga"}
    for target, items in ((version, [mine, renamed]), (other, [mine])):
        mlflow.set_model_version_tag(pg.model, str(target), APPROVALS_TAG, json.dumps(items))
    raw = mlflow.get_model_version(pg.model, str(other)).tags[APPROVALS_TAG]
    assert Approval.parse_signed(raw, pg.ctx.keys, pg.model, other) == (
        [],
        ["signed for another model or version"],
    )
    outcome, _event = pg.comment(thread, "maria", "/promote")
    assert (outcome.status, outcome.detail) == ("approval", "1 of 2")
    assert pg.champion() is None
    outcome, _event = pg.comment(thread, "olga", "/promote")  # the real second approval
    assert outcome.status == "changed" and pg.champion() == version


def test_a_rewritten_requester_lets_nobody_approve_their_own_training(pg: Playground) -> None:
    """maria triggered the training; `promotion.requested_by` rewritten to someone else would
    let her approve it. The record is no evidence: refused until `request` records it again."""
    version = pg.train(0.6)
    thread = pg.open_request(version, requested_by="maria")
    client(pg).set_model_version_tag(pg.model, str(version), REQUESTED_BY_TAG, "erin")

    outcome, _event = pg.comment(thread, "maria", "/promote")
    assert (outcome.status, outcome.detail) == ("refused", "requester_unsigned")
    assert "not written by promotion-bot" in pg.answers(thread)[-1].body
    assert pg.champion() is None

    pg.record_request(version, thread, "maria")  # what the next `request` run writes
    recorded = pg.ctx.registry.version(pg.model, version)
    assert recorded.requested_by == "maria" and not recorded.requester_problem(pg.ctx.keys)
    assert recorded.tags[REQUESTED_BY_TAG].startswith("maria|")  # the seal rides in the tag
    outcome, _event = pg.comment(thread, "maria", "/promote")
    assert (outcome.status, outcome.detail) == ("refused", "self_approval")
    assert pg.comment(thread, "olga", "/promote")[0].status == "changed"


def test_a_reader_without_the_key_sees_drift_and_records_nothing(pg: Playground) -> None:
    """`status` run by a monitor on a forge without PROMOTION_BOT_SIGNING_KEY: the hand move is
    seen, and no unsigned record is written (the bot's next pass with the key records it)."""
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.65, gate_it=False)
    client(pg).set_registered_model_alias(pg.model, "champion", str(second))
    settings = Settings(tracking_uri=pg.ctx.settings.tracking_uri, platform="gitlab",
                        gitlab_project="1", gitlab_token=Secret("t"))  # fmt: skip
    public = public_text(private_key(TEST_SIGNING_KEY).public_key())  # params.yaml lists it
    params = {"register_model": {"model_name": pg.model}, "promotion": {"trusted_keys": [public]}}
    reader = Context(settings=settings, params=parse_params(params, "params.yaml"))
    outcome, check = report_drift(reader, "status")
    assert outcome.status == "ignored" and "no signing key" in outcome.detail
    assert check is not None and check.drifted
    assert [entry.action for entry in pg.ledger()] == ["promote"]


def test_handled_ids_written_by_hand_silence_no_command(pg: Playground) -> None:
    """The id of a /promote not handled yet, written into `promotion.handled` by hand, would
    make the bot take it for a duplicate and never answer it."""
    version = pg.train(0.6)
    thread = pg.open_request(version)
    posted = pg.forge.add_comment(thread.number, "maria", "/promote")
    client(pg).set_registered_model_tag(pg.model, HANDLED_TAG, posted.id)
    assert handle_comment(pg.ctx, pg.event(thread, posted)).status == "changed"
    assert pg.ctx.registry.state(pg.model).handled == (posted.id,)  # signed by the bot now
    assert handle_comment(pg.ctx, pg.event(thread, posted)).status == "duplicate"
