"""A run someone planted in the ledger experiment with a field of the wrong shape.

Anyone who may write runs to the ledger experiment can plant one (docs/security.md, "The
registry"), and so can another tool sharing it. One param a JSON number where a list belongs
(`approvers=5`) once made every reader of the ledger fail: `history` for every model (the
experiment is shared), `verify` ("cannot tell" for every model) and the drift check of `poll`
and the MLflow webhook, so that a champion then moved by hand went unreported. A field of the
wrong shape now reads as empty; the other entries and the drift check go on, and `verify`
names the run as no evidence (it is not signed by the bot).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from bot.intake.poll import poll
from bot.reports.audit import Query, history_entries
from bot.runtime.context import Context
from tests.forge_world import World, make_world
from tests.helpers import log_training_run

PROMOTE = {"gitlab": "@promotion-bot promote", "github": "/promote"}


@pytest.fixture(params=["gitlab", "github"])
def world(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path
) -> Iterator[World]:
    """v1 made champion by `/promote`, v2 trained; a ledger experiment of this test alone."""
    experiment = f"attack2/ledger-{uuid.uuid4().hex[:8]}"
    with make_world(
        request.param, tracking_uri, model_name, tmp_path, ledger_experiment=experiment
    ) as world:
        assert world.handle(world.post(world.number, PROMOTE[world.platform])).status == "changed"
        run_id = log_training_run(tracking_uri, {"final.logloss": 0.7})
        world.ctx.registry.create_version(model_name, f"runs:/{run_id}/model", run_id)
        yield world


def plant_malformed_run(world: World, model: str, param: str = "approvers") -> None:
    """A FINISHED run in the ledger experiment, dated a year back, claiming v1 (the approved
    champion) was promoted — harmless in content, with one param a JSON number."""
    client = MlflowClient(tracking_uri=world.ctx.settings.tracking_uri)
    experiment_id = world.ctx.ledger.experiment_id()
    assert experiment_id, "the /promote created the ledger experiment"
    newest = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"])[0]
    start = newest.info.start_time - 365 * 24 * 3600 * 1000
    run = client.create_run(experiment_id, start_time=start, run_name="x")
    for key, value in {
        "schema": "1",
        "model": model,
        "action": "promote",
        "to": "1",
        "actor": "someone",
        param: "5",
    }.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, "FINISHED")


def fresh(world: World) -> Context:
    return Context(settings=world.ctx.settings, params=world.ctx.params)


def test_history_of_every_model_survives_a_malformed_run_of_another_model(world: World) -> None:
    plant_malformed_run(world, model="another-teams-model")

    entries = history_entries(fresh(world), Query())  # every model, as `history` does

    assert [(e.model, e.to_version) for e in entries if e.model == world.model] == [
        (world.model, 1)
    ]


@pytest.mark.parametrize("param", ["approvers", "gates", "checklist"])
def test_verify_still_tells_with_a_malformed_run_in_the_ledger(world: World, param: str) -> None:
    from bot.cli import cli

    plant_malformed_run(world, model=world.model, param=param)
    params = world.tmp_path / "params.yaml"
    params.write_text(f"register_model:\n  model_name: {world.model}\n", encoding="utf-8")
    settings = world.ctx.settings

    args = ["verify", "--params", str(params), "--platform", "local"]
    result = CliRunner().invoke(
        cli,
        [*args, "--tracking-uri", settings.tracking_uri],
        env={"PROMOTION_BOT_LEDGER_EXPERIMENT": settings.ledger_experiment},
    )

    # v1 is champion and the bot's own entry approves it; the planted run is named as no
    # evidence (docs/security.md, "The registry writer"): 1, not "cannot tell" (2).
    assert result.exit_code == 1, result.output
    head, planted = result.output.splitlines()
    assert "champion v1, NOT VERIFIED: the ledger's chain is broken" in head
    assert "the newest approved change that is evidence: v1 (promote by maria (" in head
    assert planted.endswith("is not evidence: not signed by the bot")


def test_a_malformed_run_does_not_hide_a_hand_move_from_poll(world: World) -> None:
    plant_malformed_run(world, model=world.model)
    MlflowClient(tracking_uri=world.ctx.settings.tracking_uri).set_registered_model_alias(
        world.model, "champion", "2"
    )

    result = poll(fresh(world))

    assert result.check_failures == [], result.check_failures
    reports = [body for body in world.answers() if "outside promotion-bot" in body]
    assert len(reports) == 1, "the hand move to v2 was not reported"
