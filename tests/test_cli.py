"""The command line for register, gate, status and history (docs/design.md, "Command line"), on
a real MLflow server.

CliRunner drives `cli` in-process; the `error: ...` one-liner is made by `main()`, so the error
format is checked on `python -m bot` in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from tests.helpers import log_training_run
from tests.mlflow_server import free_port

RUN_ID_FILE = Path("data/models/final_run_id.json")


@pytest.fixture
def params_file(tmp_path: Path, model_name: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(f"register_model:\n  model_name: {model_name}\n", encoding="utf-8")
    return path


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def train(tracking_uri: str, **metrics: float) -> str:
    values = {key.replace("_", "."): value for key, value in metrics.items()}
    return log_training_run(tracking_uri, values, run_id_file=RUN_ID_FILE)


def run_bot(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the lifecycle through the CLI -----------------------------------------------------------


@pytest.mark.usefixtures("params_file")
def test_register_gate_status(tracking_uri: str, model_name: str):
    run_id = train(tracking_uri, final_logloss=0.6)
    uri = ("--tracking-uri", tracking_uri)

    registered = invoke("register", *uri)
    assert registered.exit_code == 0, registered.output
    assert registered.stdout == f"{model_name} v1 @smoke\n"
    again = invoke("register", *uri)
    assert again.stdout == f"{model_name} v1 @smoke (already registered)\n"

    gated = invoke("gate", *uri)
    assert gated.exit_code == 0, gated.output
    assert gated.stdout.startswith(f"PASS {model_name} v1: final.logloss 0.6 vs candidate none")
    output = json.loads(Path("data/models/promoted_model.json").read_text())
    assert (output["version"], output["passed"]) == (1, True)

    text = invoke("status", *uri)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == f"model {model_name}"
    [candidate] = [line for line in lines if "@candidate" in line]
    [smoke] = [line for line in lines if "@smoke" in line]
    for line in (candidate, smoke):
        assert "v1" in line and "final.logloss=0.6" in line and run_id in line
    assert lines[-2:] == ["open requests: none", "champion: as the audit ledger records it"]

    [as_json] = json.loads(invoke("status", "--json", *uri).stdout)["models"]
    assert as_json["model"] == model_name
    assert as_json["open_requests"] == []
    assert as_json["aliases"] == [
        {
            "alias": alias,
            "version": 1,
            "run_id": run_id,
            "metric": "final.logloss",
            "value": 0.6,
            "registered_as": "smoke",
        }
        for alias in ("candidate", "smoke")
    ]


@pytest.mark.usefixtures("params_file")
def test_a_failed_gate_exits_0_with_a_warning(tracking_uri: str, model_name: str):
    uri = ("--tracking-uri", tracking_uri)
    train(tracking_uri, final_logloss=0.6)
    assert invoke("register", *uri).exit_code == 0
    assert invoke("gate", *uri).exit_code == 0
    train(tracking_uri, final_logloss=0.7)
    assert invoke("register", *uri).stdout == f"{model_name} v2 @smoke\n"

    result = invoke("--log-format", "json", "gate", *uri)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"FAIL {model_name} v2: final.logloss 0.7 vs candidate 0.6 (tolerance 0.005); failed:"
    )
    assert "warning: v2 stays out of @candidate" in result.stderr
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(e["level"] == "warning" and "gate failed" in e["message"] for e in logged)
    output = json.loads(Path("data/models/promoted_model.json").read_text())
    assert output["passed"] is False and output["reason"].startswith("failed: ")
    [status] = json.loads(invoke("status", "--json", *uri).stdout)["models"]
    assert {row["alias"]: row["version"] for row in status["aliases"]} == {
        "candidate": 1,
        "smoke": 2,
    }


@pytest.mark.usefixtures("params_file")
def test_register_options_run_id_and_alias(tracking_uri: str, model_name: str):
    run_id = log_training_run(tracking_uri, {"final.logloss": 0.9})
    result = invoke(
        "register", "--run-id", run_id, "--alias", "ci-smoke", "--tracking-uri", tracking_uri
    )
    assert result.stdout == f"{model_name} v1 @ci-smoke\n"
    status = invoke("status", "--tracking-uri", tracking_uri)
    assert "@ci-smoke" in status.stdout and "(toy)" in status.stdout
    refused = CliRunner().invoke(cli, ["gate", "--version", "1", "--tracking-uri", tracking_uri])
    assert refused.exit_code == 1
    assert "registered as ci-smoke" in refused.stderr


def test_history_of_a_model_without_changes(tracking_uri: str, params_file: Path, model_name: str):
    ledger = {"PROMOTION_BOT_LEDGER_EXPERIMENT": f"ledger-{model_name}"}  # this test's alone
    result = invoke("history", "--tracking-uri", tracking_uri, env=ledger)
    assert (result.exit_code, result.stdout) == (0, "no champion changes recorded\n")
    as_json = invoke("history", "--json", "--tracking-uri", tracking_uri, env=ledger)
    assert json.loads(as_json.stdout) == []


@pytest.mark.usefixtures("params_file")
def test_status_of_a_model_not_registered_yet(tracking_uri: str, model_name: str):
    result = invoke("status", "--tracking-uri", tracking_uri)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == [
        f"model {model_name}",
        "  no aliases yet (run `promotion-bot register`)",
    ]


# --- where settings come from ----------------------------------------------------------------


@pytest.mark.usefixtures("params_file")
def test_the_tracking_uri_option_beats_the_environment(tracking_uri: str, model_name: str):
    train(tracking_uri, final_logloss=0.6)
    dead = f"http://127.0.0.1:{free_port()}"
    result = invoke("register", "--tracking-uri", tracking_uri, env={"MLFLOW_TRACKING_URI": dead})
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{model_name} v1 @smoke\n"
    # ...and without the option, the environment is used.
    from_env = invoke("status", env={"MLFLOW_TRACKING_URI": tracking_uri})
    assert "@smoke" in from_env.stdout


@pytest.mark.usefixtures("params_file")
def test_the_model_option_and_its_variable_name_the_configured_model(
    tracking_uri: str, model_name: str
):
    """What the GitHub Action's and the GitLab template's `model` input set: a model the params
    configure, never another one (a typo would register a model of its own)."""
    train(tracking_uri, final_logloss=0.6)
    result = invoke(
        "register", "--tracking-uri", tracking_uri, env={"PROMOTION_BOT_MODEL": model_name}
    )
    assert (result.exit_code, result.stdout) == (0, f"{model_name} v1 @smoke\n")
    other = CliRunner().invoke(
        cli, ["status", "--tracking-uri", tracking_uri], env={"PROMOTION_BOT_MODEL": "other"}
    )
    assert other.exit_code == 1
    assert f"--model: no model 'other' in params.yaml; one of: {model_name}" in other.stderr


def test_a_model_option_without_a_params_file_names_the_model(tmp_path: Path, tracking_uri: str):
    """No params.yaml names a model (the action's `model` input alone): `--model` names it,
    checked as a model name is."""
    done = run_bot("status", "--model", "it's", "--tracking-uri", tracking_uri, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: --model: \"it's\": MLflow's search filter cannot express a ' or a trailing \\"
    ]
    named = run_bot("status", "--model", "churn", "--tracking-uri", tracking_uri, cwd=tmp_path)
    assert named.returncode == 0, named.stderr


@pytest.mark.mlflow  # creates the embedded registry
def test_the_default_registry_is_an_embedded_sqlite_file(tmp_path: Path):
    result = invoke("status")  # the local platform: no MLFLOW_TRACKING_URI is fine
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mlflow.db").exists()


def test_params_option_before_or_after_the_command(tracking_uri: str, tmp_path: Path):
    custom = tmp_path / "conf" / "other.yaml"
    custom.parent.mkdir()
    custom.write_text("register_model:\n  model_name: from-custom-file\n", encoding="utf-8")
    for args in (
        ["--params", str(custom), "status"],
        ["status", "--params", str(custom)],
    ):
        result = invoke(*args, "--tracking-uri", tracking_uri)
        assert result.stdout.startswith("model from-custom-file\n"), args


def test_a_bot_error_exits_1_under_the_runner(tracking_uri: str, params_file: Path):
    result = CliRunner().invoke(cli, ["gate", "--tracking-uri", tracking_uri])
    assert result.exit_code == 1
    assert "has no @smoke version" in result.stderr
    assert result.stdout == ""


# --- errors: one line, no traceback unless -v, never a secret ---------------------------------


def test_broken_params_is_one_error_line(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("promotion:\n  approvers:\n    userz: [a]\n")
    done = run_bot("status", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "error: params.yaml: promotion.approvers.userz: unknown key\n"


def test_verbose_shows_the_traceback_then_the_error_line(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("promote_model:\n  tolerance: abc\n")
    done = run_bot("-v", "gate", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "ConfigError" in done.stderr
    assert done.stderr.splitlines()[-1] == "error: params.yaml: promote_model.tolerance: " + (
        "Input should be a valid number"
    )


@pytest.mark.slow  # a process importing MLflow, then its client giving up on the registry
def test_an_unreachable_registry_error_names_no_password(tmp_path: Path):
    uri = f"http://alice:pw-SECRET-1@127.0.0.1:{free_port()}"
    done = run_bot("register", "--run-id", "0" * 32, "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("error: run ") and "is unreachable" in line
    assert "http://***@127.0.0.1:" in line
    assert "SECRET" not in done.stderr + done.stdout and "alice" not in line


def test_a_usage_error_is_one_line_with_a_hint(tmp_path: Path):
    done = run_bot("register", "--alias", "champion", cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: Invalid value for '--alias'")
    assert line.endswith("(see 'promotion-bot register --help')")


# --- history and status read what the registry holds -----------------------------------------


def test_history_prints_every_recorded_change(
    tracking_uri: str, model_name: str, params_file: Path
):
    from bot.registry.client import Registry
    from bot.registry.records import HistoryEntry
    from bot.signing import Keys
    from tests.helpers import TEST_SIGNING_KEY

    registry = Registry(tracking_uri, Keys.load(TEST_SIGNING_KEY))
    registry.ensure_model(model_name)
    first = {"at": "2025-03-01T10:00:00Z", "from": None, "to": 1, "actor": "maria",
             "action": "promote", "reason": "Looks good", "request_url": "https://f/issues/4",
             "comment_id": "11"}  # fmt: skip
    second = {"at": 1740823200, "from": 1, "to": 2, "actor": "olga", "action": "rollback",
              "reason": "", "request_url": "", "comment_id": "12"}  # fmt: skip
    foreign = {"to": 3, "action": None, "actor": None}  # hand-edited: must not crash the listing
    for entry in (first, second, foreign):
        registry.append_history(model_name, HistoryEntry.parse(entry))

    ledger = {"PROMOTION_BOT_LEDGER_EXPERIMENT": f"ledger-{model_name}"}
    shown = invoke("history", "--tracking-uri", tracking_uri, env=ledger)

    # The tag of earlier versions, shown as its import would write it into the ledger, marked as
    # not imported: newest first, one millisecond apart where the tag's times tie or cannot be read.
    assert shown.exit_code == 0, shown.output
    lines = [
        f"2025-03-01T10:00:00.002Z  {model_name}  ?        none -> v3  by ?",
        f"2025-03-01T10:00:00.001Z  {model_name}  rollback v1 -> v2  by olga",
        f"2025-03-01T10:00:00.000Z  {model_name}  promote  none -> v1  by maria — Looks good  "
        "https://f/issues/4",
    ]
    assert shown.stdout.splitlines() == [f"{line}  [NOT IMPORTED: tag only]" for line in lines]
    as_json = json.loads(
        invoke("history", "--json", "--tracking-uri", tracking_uri, env=ledger).stdout
    )
    assert [json.loads(entry["original"]) for entry in as_json[::-1]] == [first, second, foreign]

    # Imported by the operator, who reads every change it writes: the ledger answers the same.
    done = invoke("import-ledger", "--tracking-uri", tracking_uri, env=ledger)
    assert done.stdout.splitlines() == [
        f"{model_name}: imported 3 change(s) from before keys, oldest first:",
        "  2025-03-01T10:00:00.000Z  promote  none -> v1  by maria  https://f/issues/4  "
        "(from the promotion.history tag)",
        "  2025-03-01T10:00:00.001Z  rollback v1 -> v2  by olga  (from the promotion.history tag)",
        "  2025-03-01T10:00:00.002Z  ?        none -> v3  by ?  (from the promotion.history tag)",
    ]
    again = invoke("history", "--tracking-uri", tracking_uri, env=ledger)
    assert again.stdout.splitlines() == [f"{line}  [imported]" for line in lines]


def test_status_survives_a_purged_run(model_name: str):
    """A version whose run was garbage-collected still shows its alias, with no metric."""
    from bot.config.params import parse_params
    from bot.config.settings import Settings
    from bot.errors import NotFoundError
    from bot.registry.versions import VersionInfo
    from bot.reports.status import render_status, status_data
    from bot.runtime.context import Context

    class PurgedRuns:
        def aliases(self, name: str) -> dict[str, int]:
            return {"champion": 4}

        def version(self, name: str, number: int) -> VersionInfo:
            return VersionInfo(model=name, version=number, run_id="gone", source="", status="READY")

        def run(self, run_id: str) -> None:
            raise NotFoundError(f"run {run_id}: not found in the registry")

    ctx = Context(
        settings=Settings(),
        params=parse_params({"register_model": {"model_name": model_name}}),
        registry=PurgedRuns(),
    )
    data = status_data(ctx, model_name)
    assert data.aliases[0].value is None
    assert "@champion   v4    final.logloss=n/a  run gone" in render_status(data)
