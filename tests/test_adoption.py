"""A team's first week with the bot, as a new user meets it on the command line: a typo in
`--model`, no registry configured, no requester, a DVC params.yaml, a misspelt metric
(docs/configuration.md). Each test runs the commands the user ran, on a real MLflow server."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.registry.client import Registry
from tests.helpers import log_training_run
from tests.test_cli import run_bot

RUN_ID_FILE = Path("data/models/final_run_id.json")
NO_REQUESTER = {"PROMOTION_BOT_REQUESTED_BY": None, "GITLAB_USER_LOGIN": None, "GITHUB_ACTOR": None}


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def write_params(text: str) -> Path:
    path = Path("params.yaml")
    path.write_text(text, encoding="utf-8")
    return path


def lines(result: Result) -> list[str]:
    """The bot's own lines on stderr (MLflow logs its own there too)."""
    return [line for line in result.stderr.splitlines() if line.startswith(("warning:", "Error:"))]


# --- a typo in --model ---------------------------------------------------------------------------

COMMANDS = [
    ("register",),
    ("gate",),
    ("request",),
    ("status",),
    ("history",),
    ("verify",),
    ("poll",),
    ("handle", "--event-name", "issue_comment", "--event-file", "event.json"),
    ("serve", "--port", "0"),
    ("comment", "1", "/promote", "--as", "maria"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_refuses_a_model_the_params_do_not_name(
    tracking_uri: str, model_name: str, command: tuple[str, ...]
) -> None:
    write_params(f"register_model:\n  model_name: {model_name}\n")
    log_training_run(tracking_uri, {"final.logloss": 0.6}, run_id_file=RUN_ID_FILE)

    result = invoke(*command, "--model", "nope", "--tracking-uri", tracking_uri)

    assert result.exit_code == (2 if command[0] == "verify" else 1), result.output
    assert f"--model: no model 'nope' in params.yaml; one of: {model_name}" in result.stderr
    assert not Registry(tracking_uri).model_exists("nope")  # register made no model of it


def test_the_typo_is_one_error_line(tracking_uri: str, model_name: str, tmp_path: Path) -> None:
    write_params(f"register_model:\n  model_name: {model_name}\n")
    done = run_bot("status", "--model", "nope", "--tracking-uri", tracking_uri, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: --model: no model 'nope' in params.yaml; one of: {model_name}"
    ]
    named = run_bot("status", "--model", model_name, "--tracking-uri", tracking_uri, cwd=tmp_path)
    assert named.returncode == 0, named.stderr


@pytest.mark.parametrize("params", [None, "promote_model:\n  tolerance: 0.01\n"])
def test_params_that_name_no_model_take_the_name_from_model(
    tracking_uri: str, model_name: str, params: str | None
) -> None:
    """The action's and the includes' `model` input with no params.yaml (or one that names no
    model): `--model` names the registered model, in CI too; nothing else is refused."""
    if params is not None:
        write_params(params)
    log_training_run(tracking_uri, {"final.logloss": 0.6}, run_id_file=RUN_ID_FILE)
    env = {"GITLAB_CI": "true", "MLFLOW_TRACKING_URI": tracking_uri, "GITLAB_PROJECT": "1"}
    result = invoke("register", "--model", model_name, "--platform", "local", env=env)
    assert result.exit_code == 0, result.output
    assert Registry(tracking_uri).model_exists(model_name)
    bad = invoke("status", "--model", "it's", "--platform", "local", env=env)
    assert bad.exit_code == 1 and lines(bad)[0].startswith("Error: --model: ")


# --- no registry configured ----------------------------------------------------------------------


@pytest.mark.parametrize("ci", ["GITLAB_CI", "GITHUB_ACTIONS"])
def test_no_registry_in_ci_is_an_error_not_a_local_file(tmp_path: Path, ci: str) -> None:
    write_params("register_model:\n  model_name: churn\n")
    result = invoke("status", env={ci: "true"})
    assert result.exit_code == 1
    platform = "gitlab" if ci == "GITLAB_CI" else "github"
    assert lines(result) == [
        f"Error: MLFLOW_TRACKING_URI: not set: on the {platform} platform the bot needs the "
        "team's registry (or --tracking-uri); only the local platform and `demo` use an "
        "embedded sqlite:///mlflow.db"
    ]
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("params", [None, "promote_model:\n  tolerance: 0.01\n"])
def test_no_model_name_in_ci_is_an_error(tracking_uri: str, params: str | None) -> None:
    if params is not None:
        write_params(params)
    result = invoke("status", env={"GITLAB_CI": "true", "MLFLOW_TRACKING_URI": tracking_uri})
    assert result.exit_code == 1
    where = "params.yaml: " if params is not None else "no params.yaml here, so "
    assert lines(result) == [
        f"Error: {where}register_model.model_name is not set: name the registered model to "
        "promote (the default 'soccer-match-outcome' is the demo's, used on the local platform "
        "only)"
    ]


# --- no requester --------------------------------------------------------------------------------


def test_register_and_request_say_that_nobody_is_recorded_as_the_requester(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    write_params(f"register_model:\n  model_name: {model_name}\n")
    log_training_run(tracking_uri, {"final.logloss": 0.6}, run_id_file=RUN_ID_FILE)
    uri = ("--tracking-uri", tracking_uri, "--local-dir", str(tmp_path / "forge"))
    warning = (
        "warning: no requester: PROMOTION_BOT_REQUESTED_BY (or GITLAB_USER_LOGIN / GITHUB_ACTOR) "
        f"is not set, so the registry records nobody as having triggered {model_name} v1: every "
        "/promote of it will be refused until it is set and `promotion-bot request` runs again "
        "(or promotion.approvers.allow_self_approval: true)"
    )

    registered = invoke("register", *uri, env=NO_REQUESTER)
    assert registered.exit_code == 0, registered.output
    assert lines(registered) == [warning]
    assert invoke("gate", *uri).exit_code == 0
    requested = invoke("request", *uri, env=NO_REQUESTER)

    assert requested.exit_code == 0, requested.output
    assert lines(requested) == [warning]
    issue = tmp_path / "forge" / "threads" / "1.json"  # the local platform's request
    assert "**every `/promote` is refused**" in issue.read_text(encoding="utf-8")
    named = invoke("request", *uri, env={"PROMOTION_BOT_REQUESTED_BY": "dana"})
    assert named.exit_code == 0 and lines(named) == []  # recorded now: no warning
    assert "every `/promote` is refused" not in issue.read_text(encoding="utf-8")


# --- a DVC params.yaml ---------------------------------------------------------------------------


def test_a_dvc_params_file_with_its_stages_sections_is_read(
    tracking_uri: str, model_name: str
) -> None:
    write_params(
        "prepare:\n  split: 0.2\n  seed: 20170428\n"
        "train:\n  n_est: 50\n  min_split: 0.01\n"
        f"register_model:\n  model_name: {model_name}\n"
    )
    log_training_run(tracking_uri, {"final.logloss": 0.6}, run_id_file=RUN_ID_FILE)
    registered = invoke("register", "--tracking-uri", tracking_uri)
    assert (registered.exit_code, registered.stdout) == (0, f"{model_name} v1 @smoke\n")
    typo = write_params(
        f"train: {{}}\npromtion: {{}}\nregister_model: {{model_name: {model_name}}}\n"
    )
    refused = invoke("status", "--params", str(typo), "--tracking-uri", tracking_uri)
    assert refused.exit_code == 1
    assert "promtion: unknown section; did you mean promotion?" in refused.stderr


# --- a metric the run does not have ---------------------------------------------------------------


def test_gate_lists_the_metrics_the_run_has(tracking_uri: str, model_name: str) -> None:
    write_params(
        f"register_model:\n  model_name: {model_name}\npromote_model:\n  metric: final.loglos\n"
    )
    metrics = {"final.logloss": 0.6, "final.accuracy": 0.7}
    log_training_run(tracking_uri, metrics, run_id_file=RUN_ID_FILE)
    assert invoke("register", "--tracking-uri", tracking_uri).exit_code == 0

    result = invoke("gate", "--tracking-uri", tracking_uri)

    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        "has no metric 'final.loglos' (promote_model.metric): did you mean `final.logloss`? "
        "it has `final.accuracy`, `final.logloss`"
    )


def test_the_requests_failed_gate_names_the_metrics_the_run_has(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    write_params(
        f"register_model:\n  model_name: {model_name}\n"
        "promotion:\n  gates:\n    thresholds: {final.acuracy: {min: 0.5}}\n"
    )
    metrics = {"final.logloss": 0.6, "final.accuracy": 0.7}
    log_training_run(tracking_uri, metrics, run_id_file=RUN_ID_FILE)
    uri = ("--tracking-uri", tracking_uri, "--local-dir", str(tmp_path / "forge"))
    assert invoke("register", *uri).exit_code == 0
    assert invoke("gate", *uri).exit_code == 0

    shown = invoke("request", "--dry-run", *uri)

    assert shown.exit_code == 0, shown.output
    assert (
        "- ❌ `threshold:final.acuracy:min`: `final.acuracy` missing on the candidate run (did "
        "you mean `final.accuracy`? it has `final.accuracy`, `final.logloss`)"
    ) in shown.stdout
