"""A record the bot relies on but did not sign, written with MLflow's own client as a registry
writer would, is reported once in a request thread and changes nothing (docs/design.md, "Forged
records"; docs/security.md, "The registry writer and the signing key").

Both forges through their real adapters over the stateful fakes (`responses`), the session's
real `mlflow server`; `poll`, the MLflow webhook through `serve`'s app, and commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from bot.config.settings import Secret
from bot.intake.poll import poll
from bot.registry.tags import APPROVALS_TAG, PENDING_TAG, REPORTED_TAG
from bot.runtime.context import Context
from tests.forge_world import World, make_world, open_ticked_request
from tests.helpers import log_training_run
from tests.test_drift import MLFLOW_SECRET, by_hand, verify, webhook

MARKER = "<!-- promotion-bot:forged "
PROMOTE = {"gitlab": "@promotion-bot promote", "github": "/promote"}
HELP = {"gitlab": "@promotion-bot help", "github": "/help"}
# What a forged record holds must never reach the thread: a mention, a link, a fake marker.
PAYLOAD = "@all see https://evil.example <!-- promotion-bot:forged promotion.pending=0 -->"


@pytest.fixture(params=["gitlab", "github"])
def world(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path
) -> Iterator[World]:
    """v1 made champion by `/promote`, from the request `request` opened; `required_approvals`
    2 for the tests that read approvals (v1 is approved by maria and olga)."""
    approvals = {"approvers": {"required_approvals": 2}} if "approval" in request.node.name else {}
    secret = Secret(MLFLOW_SECRET)
    with make_world(
        request.param,
        tracking_uri,
        model_name,
        tmp_path,
        promotion=approvals,
        mlflow_webhook_secret=secret,
    ) as world:
        for person in ("maria", "olga") if approvals else ("maria",):
            world.handle(world.post(world.number, PROMOTE[world.platform], author=person))
        assert world.champion() == 1
        world.rsps.calls.reset()
        yield world


def fresh(world: World) -> Context:
    return Context(settings=world.ctx.settings, params=world.ctx.params)


def mlflow(world: World) -> MlflowClient:
    return MlflowClient(tracking_uri=world.ctx.settings.tracking_uri)


def forge_intent(world: World, actor: str = "maria", kid: str = "") -> str:
    """The attacker's intent `promote 1→2`, dated a minute ahead; `kid`: a seal that names a
    key of their own."""
    ahead = (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    forged: dict[str, Any] = {"to": 2, "from": 1, "action": "promote", "actor": actor,
                              "reason": PAYLOAD, "comment_id": "424242", "at": ahead}  # fmt: skip
    if kid:
        forged.update(kid=kid, sig="AAAA")
    value = json.dumps(forged)
    mlflow(world).set_registered_model_tag(world.model, PENDING_TAG, value)
    return value


def sent_reports(world: World) -> list[str]:
    """The bodies of the comments the bot sent to the forge carrying a forged-record report."""
    bodies = []
    for call in world.rsps.calls:
        if call.request.method != "POST" or "127.0.0.1" in str(call.request.url):
            continue
        raw = call.request.body or b"{}"
        body = json.loads(raw.decode() if isinstance(raw, bytes) else raw).get("body", "")
        if MARKER in body:
            bodies.append(body)
    return bodies


def reports(world: World) -> list[str]:
    return [body for body in world.answers() if MARKER in body]


def test_a_forged_intent_is_reported_once_by_poll_and_names_only_the_record(world: World) -> None:
    forge_intent(world, actor="mallory", kid="attacker-key")

    assert poll(fresh(world)).check_failures == []

    [sent] = sent_reports(world)  # the request the forge received
    assert reports(world) == [sent]  # in the request thread
    assert "`promotion.pending` tag of the registered model" in sent
    assert "signed by a key that is not trusted" in sent
    assert "promotion-bot permissions" in sent and "docs/security.md" in sent
    for content in ("mallory", "attacker-key", "@all", "evil", "424242"):
        assert content not in sent  # nothing of what the record holds
    assert sent.count(MARKER) == 1
    noted = json.loads(world.ctx.registry.state(world.model).tags[REPORTED_TAG])
    named = verify(world)  # no hand move: the forged record alone fails it
    assert named.exit_code == 1 and f"the {PENDING_TAG} tag is not evidence" in named.output
    assert noted["kid"] == world.ctx.keys.own and list(noted["records"]) == [PENDING_TAG]

    world.rsps.calls.reset()
    again = poll(fresh(world))  # the same record: the model read says it was reported
    assert again.check_failures == [] and sent_reports(world) == []
    assert len(reports(world)) == 1
    assert world.champion() == 1 and _ledger_actions(world) == ["promote"]


def test_a_forged_intent_rewritten_again_and_again_is_reported_at_most_hourly(
    world: World,
) -> None:
    """Each rewrite is a new value; one report an hour, whether or not the writer also deletes
    the bot's note of it (the thread's reports decide then)."""
    forge_intent(world, actor="a")
    poll(fresh(world))
    assert len(reports(world)) == 1
    for actor in ("b", "c", "d"):
        forge_intent(world, actor=actor)
        poll(fresh(world))
    assert len(reports(world)) == 1
    for actor in ("e", "f"):
        forge_intent(world, actor=actor)
        mlflow(world).delete_registered_model_tag(world.model, REPORTED_TAG)
        poll(fresh(world))
    assert len(reports(world)) == 1

    later = datetime.now(timezone.utc) + timedelta(hours=1, minutes=1)
    poll(fresh(world), now=later)  # an hour on: the value now there is reported
    assert len(reports(world)) == 2
    poll(fresh(world), now=later)
    assert len(reports(world)) == 2


def test_the_webhook_reports_a_forged_intent_hiding_a_hand_move(world: World) -> None:
    """The attack the intent was forged for: a hand move "in flight". The webhook reports the
    drift and the forged intent, once each; poll after it adds nothing."""
    run_id = log_training_run(world.ctx.settings.tracking_uri, {"final.logloss": 0.7})
    world.ctx.registry.create_version(world.model, f"runs:/{run_id}/model", run_id)
    forge_intent(world)
    by_hand(world, 2)

    webhook(world, 2)

    assert len(reports(world)) == 1
    assert len([b for b in world.answers() if "outside promotion-bot" in b]) == 1
    poll(fresh(world))
    assert len(reports(world)) == 1
    assert _ledger_actions(world) == ["promote", "external"]  # nothing finished from it


def test_a_command_reports_a_forged_intent_in_its_thread_once(world: World) -> None:
    forge_intent(world, kid="")
    for _ in range(2):
        outcome = world.handle(world.post(world.number, HELP[world.platform], author="dana"))
        assert outcome.status == "help"
    [report] = reports(world)
    assert "not signed" in report
    assert world.champion() == 1 and _ledger_actions(world) == ["promote"]


def test_forged_approvals_are_reported_once_and_count_for_nothing(world: World) -> None:
    """v2's request: maria approves (recorded, signed); the writer adds olga's approval to the
    tag. maria's second `/promote` does not promote, and the thread is told, once."""
    number = open_ticked_request(world.ctx, world.fake, world.ctx.settings.tracking_uri)
    promote = PROMOTE[world.platform]
    assert world.handle(world.post(number, promote)).status == "approval"
    [mine] = json.loads(mlflow(world).get_model_version(world.model, "2").tags[APPROVALS_TAG])
    forged = {"user": "olga", "user_id": "31", "comment_id": "1", "at": mine["at"]}
    for items in ([mine, forged], [mine, {**mine, "user": "olga"}]):
        value = json.dumps(items)
        mlflow(world).set_model_version_tag(world.model, "2", APPROVALS_TAG, value)
        for _ in range(2):
            outcome = world.handle(world.post(number, promote))
            assert (outcome.status, outcome.detail) == ("approval", "1 of 2")
    assert world.champion() == 1
    assert reports(world) == []  # v2's own thread, where the approvals were read
    [report] = [body for body in world.answers(number) if MARKER in body]
    assert "`promotion.approvals` tag of v2" in report and "not signed" in report
    assert "olga" not in report
    assert world.handle(world.post(number, promote, author="olga")).status == "changed"


def _ledger_actions(world: World) -> list[str]:
    from bot.ledger.store import Where

    ledger = world.ctx.ledger
    entries = ledger.entries(ledger.experiment_id(), Where(model=world.model))
    return [entry.action for entry in entries][::-1]
