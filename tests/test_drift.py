"""Drift on every path (docs/design.md, "Drift"): a champion moved with MLflow's own client is
recorded in the ledger and reported once, whether `poll`, the MLflow webhook or `status` sees it
first, and `verify` exits 1 until the approved champion is back.

Both forges through their real adapters (python-gitlab, PyGithub over the stateful fakes), the
session's real `mlflow server`, the webhook through `serve`'s WSGI app and its workers.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from bot.cli import main
from bot.config.settings import Secret
from bot.intake.entry import serve_app
from bot.intake.poll import poll
from bot.ledger.entry import LedgerEntry
from bot.ledger.store import Where
from bot.runtime.context import Context
from bot.webhook_auth import sign_mlflow
from tests.forge_world import World, make_world
from tests.helpers import log_training_run
from tests.mlflow_server import free_port

MLFLOW_SECRET = "mlflow-hook-secret"
REPORT = "outside promotion-bot"
PROMOTE = {"gitlab": "@promotion-bot promote", "github": "/promote"}


@pytest.fixture(params=["gitlab", "github"])
def world(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path
) -> Iterator[World]:
    """v1 made champion by `/promote`, v2 trained; the MLflow route's secret set."""
    with make_world(
        request.param,
        tracking_uri,
        model_name,
        tmp_path,
        mlflow_webhook_secret=Secret(MLFLOW_SECRET),
    ) as world:
        assert world.handle(world.post(world.number, PROMOTE[world.platform])).status == "changed"
        run_id = log_training_run(tracking_uri, {"final.logloss": 0.7})
        world.ctx.registry.create_version(model_name, f"runs:/{run_id}/model", run_id)
        yield world


def by_hand(world: World, version: int) -> None:
    """Someone moves the champion with MLflow's own client, not through the bot."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=world.ctx.settings.tracking_uri)
    client.set_registered_model_alias(world.model, "champion", str(version))


def reports(world: World) -> list[str]:
    return [body for body in world.answers() if REPORT in body]


def externals(world: World) -> list[tuple[int | None, int | None]]:
    ledger = world.ctx.ledger
    entries = ledger.entries(ledger.experiment_id(), Where(model=world.model))
    return [(e.from_version, e.to_version) for e in entries if e.action == "external"][::-1]


def fresh(world: World) -> Context:
    """A new process's context (nothing cached), as each `poll` or `serve` run has."""
    return Context(settings=world.ctx.settings, params=world.ctx.params)


def deliver_alias_event(app: Any, world: World, version: int) -> int:
    """MLflow's signed `model_version_alias.created` delivery to `serve`'s app."""
    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "2026-03-03T14:00:00.000000+00:00",
            "data": {"name": world.model, "alias": "champion", "version": str(version)},
        }
    ).encode()
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/mlflow",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_X_MLFLOW_DELIVERY_ID": delivery,
        "HTTP_X_MLFLOW_TIMESTAMP": stamp,
        "HTTP_X_MLFLOW_SIGNATURE": sign_mlflow(MLFLOW_SECRET, delivery, stamp, body),
    }
    seen: list[str] = []
    b"".join(app(environ, lambda status, _headers: seen.append(status)))
    return int(seen[0].split()[0])


def webhook(world: World, version: int, deliveries: int = 1) -> None:
    app = serve_app(fresh(world), retry_delays=(0.05, 0.1))
    app.start()
    try:
        for _ in range(deliveries):
            assert deliver_alias_event(app, world, version) == 202
        assert app.drain(30)
    finally:
        app.stop(5)


@dataclass(frozen=True)
class Ran:
    exit_code: int
    output: str


def verify(world: World, *args: str, tracking_uri: str = "") -> Ran:
    return run_cli(world, "verify", *args, tracking_uri=tracking_uri)


def run_cli(world: World, command: str, *args: str, tracking_uri: str = "") -> Ran:
    """`promotion-bot verify` as a monitor runs it: through the installed script's entry point,
    whose exit code is the answer (click's test runner would hide a code the script loses), with
    the registry alone, no forge credentials."""
    uri = tracking_uri or world.ctx.settings.tracking_uri
    params = world.tmp_path / "params.yaml"
    params.write_text(f"register_model:\n  model_name: {world.model}\n", encoding="utf-8")
    common = ["--params", str(params), "--platform", "local", "--tracking-uri", uri]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    argv = ["promotion-bot", command, *args, *common]
    try:
        with (
            mock.patch.object(sys, "argv", argv),
            redirect_stdout(out),
            redirect_stderr(err),
            pytest.raises(SystemExit) as exited,
        ):
            main()
    finally:
        root.handlers[:], root.level = handlers, level
    return Ran(int(exited.value.code or 0), out.getvalue() + err.getvalue())


def test_poll_records_and_reports_a_hand_move_once(world: World) -> None:
    by_hand(world, 2)

    first = poll(fresh(world))

    assert first.failures == [] and len(first.champions) == 1
    assert first.champions[0][1].status == "reported"
    [report] = reports(world)
    assert "was moved to v2 outside promotion-bot" in report and "`/rollback 1`" in report
    assert externals(world) == [(1, 2)]
    again = poll(fresh(world))
    assert again.champions == [] and again.failures == []
    assert len(reports(world)) == 1 and externals(world) == [(1, 2)]


def test_the_webhook_reports_a_hand_move_once_and_poll_after_it_adds_nothing(world: World) -> None:
    by_hand(world, 2)

    webhook(world, 2, deliveries=2)  # a retry of the same event, or a second event for it

    assert len(reports(world)) == 1 and externals(world) == [(1, 2)]
    assert poll(fresh(world)).champions == []
    assert len(reports(world)) == 1 and externals(world) == [(1, 2)]


def test_poll_first_then_the_webhook_adds_nothing(world: World) -> None:
    by_hand(world, 2)
    assert poll(fresh(world)).champions != []
    webhook(world, 2)
    assert len(reports(world)) == 1 and externals(world) == [(1, 2)]


def test_poll_and_the_webhook_at_the_same_time_report_once(world: World) -> None:
    by_hand(world, 2)
    polled: list[Any] = []
    racer = threading.Thread(target=lambda: polled.append(poll(fresh(world))))
    racer.start()
    webhook(world, 2)
    racer.join(60)
    assert polled and polled[0].failures == []
    assert len(reports(world)) == 1 and externals(world) == [(1, 2)]


def test_status_reads_only_and_exits_1_while_the_champion_drifted(world: World) -> None:
    """`status` as someone runs it by hand: it says DRIFT and exits 1 as `verify` does, and
    records nothing, posts nothing; `poll` does that, once."""
    by_hand(world, 2)
    drift = "champion: DRIFT: v2 was set outside promotion-bot (approved: v1)"

    seen = run_cli(world, "status")
    assert seen.exit_code == 1, seen.output
    assert drift in seen.output
    assert reports(world) == [] and externals(world) == []

    assert poll(fresh(world)).failures == []
    assert len(reports(world)) == 1 and externals(world) == [(1, 2)]
    # Recorded and reported, but still not the approved champion: status keeps saying so.
    again = run_cli(world, "status", "--json")
    assert again.exit_code == 1, again.output
    assert '"drifted": true' in again.output
    assert len(reports(world)) == 1 and externals(world) == [(1, 2)]

    outcome = world.handle(world.post(world.number, "/rollback 1\nPut back the approved model."))
    assert outcome.status == "changed", outcome
    restored = run_cli(world, "status")
    assert restored.exit_code == 0, restored.output
    assert "champion: as the audit ledger records it" in restored.output


def test_verify_exits_1_until_the_approved_champion_is_restored(world: World) -> None:
    role = "maintainer" if world.platform == "gitlab" else "maintain"
    agreed = verify(world)
    assert agreed.exit_code == 0, agreed.output
    assert agreed.output.startswith(
        f"{world.model}: champion v1, as approved: v1 (promote by maria ({role}) at "
    )
    by_hand(world, 2)
    drifted = verify(world)
    assert drifted.exit_code == 1, drifted.output
    assert "DRIFT: champion is v2, set outside promotion-bot" in drifted.output
    assert "`/rollback 1` restores it" in drifted.output
    poll(fresh(world))  # reported and recorded: still not the approved champion
    assert verify(world).exit_code == 1
    [as_json] = json.loads(verify(world, "--format", "json").output)["models"]
    assert (as_json["drifted"], as_json["champion"], as_json["approved"]) == (True, 2, 1)
    assert (as_json["model"], as_json["exit_code"], as_json["problems"]) == (world.model, 1, [])

    outcome = world.handle(world.post(world.number, "/rollback 1\nPut back the approved model."))

    assert outcome.status == "changed", outcome
    restored = verify(world)
    assert restored.exit_code == 0, restored.output
    assert "champion v1, as approved: v1 (rollback by maria" in restored.output


def test_verify_exits_0_after_a_hand_restore(world: World) -> None:
    by_hand(world, 2)
    assert verify(world).exit_code == 1
    by_hand(world, 1)
    assert verify(world).exit_code == 0


def test_verify_exits_2_when_it_cannot_tell(world: World) -> None:
    down = verify(world, tracking_uri=f"http://bot:pw-71c@127.0.0.1:{free_port()}")
    assert down.exit_code == 2, down.output
    assert "unreachable" in down.output and "pw-71c" not in down.output
    misspelt = verify(world, "--model", f"{world.model}-typo")
    assert misspelt.exit_code == 2, misspelt.output  # refused: the params name no such model
    assert f"--model: no model '{world.model}-typo' in " in misspelt.output
    assert misspelt.output.strip().endswith(f"; one of: {world.model}")


def test_history_of_a_model_nobody_knows_is_an_error_not_an_empty_history(world: World) -> None:
    typo = f"{world.model}-typo"
    for args in (("--model", typo), ("--model", typo, "--at", "2026-01-01T00:00:00Z")):
        ran = run_cli(world, "history", *args)
        assert ran.exit_code == 1, ran.output  # the params name no such model: never "no changes"
        assert f"error: --model: no model '{typo}' in " in ran.output
        assert ran.output.strip().endswith(f"; one of: {world.model}")
    known = run_cli(world, "history", "--model", world.model)
    assert known.exit_code == 0 and "none -> v1" in known.output


def test_a_ledger_entry_deleted_in_mlflow_fails_verify(world: World) -> None:
    """An admin can delete a run: `history` still shows it, flagged, and `verify` says so."""
    from mlflow import MlflowClient

    [entry] = world.ctx.ledger.entries(world.ctx.ledger.experiment_id(), Where(model=world.model))
    MlflowClient(tracking_uri=world.ctx.settings.tracking_uri).delete_run(entry.ledger_run)

    result = verify(world)

    assert result.exit_code == 1, result.output
    assert (
        f"ledger run {entry.ledger_run}" in result.output
        and "was deleted in MLflow" in result.output
    )
    [again] = world.ctx.ledger.entries(world.ctx.ledger.experiment_id(), Where(model=world.model))
    assert again.deleted and again.to_version == 1


# --- the champion the bot found: bot.ledger.drift.adopted_champion -------------------------------


def _entry(action: str, before: int | None, after: int | None) -> LedgerEntry:
    return LedgerEntry(model="m", action=action, from_version=before, to_version=after, at_ms=1)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], None),
        ([("promote", 1, 2)], 1),  # serving before the bot, replaced by its first change
        ([("promote", None, 2)], None),  # no champion before
        ([("external", None, 1), ("promote", 1, 2)], 1),  # poll saw it first: still the one
        ([("external", None, 1), ("external", 1, 3), ("promote", 3, 4)], None),  # set by hand
        ([("external", None, 1)], None),  # no change of the bot yet
    ],
)  # fmt: skip
def test_adopted_champion(entries: list[tuple[str, int | None, int | None]], expected: int | None):
    from bot.ledger.drift import adopted_champion

    assert adopted_champion([_entry(*one) for one in entries]) == expected
