"""No secret value ever shows: not on stdout, not on stderr, not in any log record, not in -v.

Every secret the bot can know is set to a distinctive value (the tokens, the three webhook
secrets, the hook secret, a password inside MLFLOW_TRACKING_URI), then CLI commands fail in
the ways they do in real life, verbosely and as JSON logs. The log records are read raw, before
the CLI's redacting filter had a chance to mask them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner

import bot.logs
from bot.ci.gate import gate
from bot.ci.register import register
from bot.cli import cli
from bot.errors import RegistryError
from bot.registry.client import Registry
from bot.urls import redact_url
from tests.helpers import log_training_run
from tests.mlflow_server import free_port
from tests.promotion_env import Playground, make_context

PASSWORD = "Pw-0f6b2e91c4"
SECRETS = {
    "GITLAB_TOKEN": "glpat-Tk9xQ7c3Vb2mN8zR1aYe",
    "GITHUB_TOKEN": "ghp_Sx4Lk2Jd8Hq0Wm6Zr3Np5Tb7Vc1",
    "GITLAB_WEBHOOK_SECRET": "gl-hook-5d8e1a7f",
    "GITHUB_WEBHOOK_SECRET": "gh-hook-9c2b4f60",
    "MLFLOW_WEBHOOK_SECRET": "mlf-hook-3e7a0d1c",
    "PROMOTION_BOT_HOOK_SECRET": "serve-hook-6b1f9e2a",
}
VALUES = [*SECRETS.values(), PASSWORD]
GITLAB = "https://gitlab.example.com"
GITHUB = "https://api.github.com"


def with_password(uri: str) -> str:
    return uri.replace("http://", f"http://ci-bot:{PASSWORD}@", 1)


def assert_clean(*texts: str) -> None:
    for text in texts:
        for value in VALUES:
            assert value not in text, (
                f"a secret leaked: ...{text[max(0, text.find(value) - 80) :][:200]}"
            )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_name: str) -> dict[str, str]:
    values = {
        **SECRETS,
        "MLFLOW_TRACKING_URI": with_password(f"http://127.0.0.1:{free_port()}"),  # closed
        "PROMOTION_BOT_PLATFORM": "local",
        "PROMOTION_BOT_LOCAL_DIR": str(tmp_path / "forge"),
        "GITLAB_URL": GITLAB,
        "GITLAB_PROJECT": "ml-team/soccer-model",
        "GITHUB_REPOSITORY": "ml-team/soccer-model",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "params.yaml").write_text(
        f"register_model:\n  model_name: {model_name}\n", encoding="utf-8"
    )
    return values


@pytest.fixture
def raw_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Any:
    """caplog at DEBUG, placed before the CLI's own (redacting) handler so it sees raw records."""
    real = bot.logs.configure

    def configure(*args: Any, **kwargs: Any) -> Any:
        redactor = real(*args, **kwargs)
        root = logging.getLogger()
        root.handlers.insert(0, caplog.handler)
        root.setLevel(logging.DEBUG)
        logging.getLogger("bot").setLevel(logging.DEBUG)
        return redactor

    monkeypatch.setattr(bot.logs, "configure", configure)
    caplog.set_level(logging.DEBUG)
    return caplog


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output + (result.stderr or "")


def run_bot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the registry cannot be reached ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["-v", "status"],
        ["-vv", "--log-format", "json", "history"],
        ["-v", "--log-format", "json", "gate", "--version", "1"],
        ["-vv", "register", "--run-id", "abc123"],
    ],
    ids=["status", "history-json", "gate-json", "register"],
)
@pytest.mark.usefixtures("env")
def test_unreachable_registry_errors_name_it_without_the_password(
    raw_logs: pytest.LogCaptureFixture, args: list[str]
) -> None:
    code, output = invoke(*args)

    assert code == 1
    assert "unreachable" in output and "http://***@127.0.0.1" in output
    assert "Traceback" in output  # -v shows it, masked
    assert_clean(output, raw_logs.text)


def test_unreachable_registry_while_polling_a_request(
    env: dict[str, str], raw_logs: pytest.LogCaptureFixture, tracking_uri: str, model_name: str
) -> None:
    """`poll` logs the failure with its traceback (log.exception): that path is masked too."""
    root = Path(env["PROMOTION_BOT_LOCAL_DIR"]).parent
    pg = Playground(make_context(tracking_uri, model_name, root), root)
    pg.setup_people()
    thread = pg.open_request(pg.train(0.6))
    pg.forge.add_comment(thread.number, "maria", "/promote")

    code, output = invoke("-vv", "--log-format", "json", "poll")

    assert code == 1 and "failed: comment" in output  # a scheduled poll job turns red
    assert "comment" in raw_logs.text and "unreachable" in raw_logs.text
    assert_clean(output, raw_logs.text)
    # The approver is told once, "not carried out" (docs/design.md, "When a service is down"),
    # with no address or password of the registry.
    [answer] = pg.answers(thread)
    assert "was not carried out" in answer.body and pg.champion() is None
    assert_clean(answer.body, "")


@pytest.mark.usefixtures("env")
def test_unsupported_tracking_uri_is_refused_masked_at_load_time(
    raw_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow's own exception would quote the whole URI, password included: it never gets there.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"weird://ci-bot:{PASSWORD}@127.0.0.1:9/x")
    code, output = invoke("-v", "status")

    assert code == 1
    assert "unexpected" not in output
    assert "tracking URI: 'weird://***@127.0.0.1:9/x': MLflow has no model registry" in output
    assert_clean(output, raw_logs.text)


@pytest.mark.parametrize(
    "message",
    [
        "API request to http://ci-bot:{pw}@10.0.0.9:5000/api/2.0/mlflow/registered-models/get "
        "failed with timeout exception HTTPConnectionPool(...). To increase the timeout, ...",
        "API request to http://ci-bot:{pw}@10.0.0.9:5000/api/2.0/mlflow/registered-models/get "
        "failed with exception MaxRetryError(...)",
        "Proxy at http://ci-bot:{pw}@10.0.0.9:5000 refused the request",
    ],
    ids=["timeout", "gave-up", "other"],
)
def test_registry_errors_never_quote_a_uri_with_its_password(message: str) -> None:
    from mlflow.exceptions import MlflowException

    registry = Registry(with_password("http://10.0.0.9:5000"))

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise MlflowException(message.format(pw=PASSWORD))

    registry._client.get_registered_model = fails  # type: ignore[method-assign]
    with pytest.raises(RegistryError) as caught:
        registry.aliases("m")
    assert PASSWORD not in str(caught.value)
    assert redact_url(registry.tracking_uri) in str(caught.value)


# --- the forge refuses the token -------------------------------------------------------------


@pytest.fixture
def reachable(env: dict[str, str], tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The real registry, reached through a URI that carries a password (MLflow ignores it)."""
    uri = with_password(tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.mark.usefixtures("reachable")
def test_gitlab_401_echoing_the_token_is_masked(
    raw_logs: pytest.LogCaptureFixture,
    rsps: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PROMOTION_BOT_PLATFORM", "gitlab")
    token = SECRETS["GITLAB_TOKEN"]
    rsps.get(
        re.compile(rf"{re.escape(GITLAB)}/api/v4/.*"),
        status=401,
        json={"message": f"401 Unauthorized: token {token} is revoked"},
    )
    event = Path(__file__).parent / "fixtures" / "webhooks" / "gitlab_note_issue.json"

    status_code, status_out = invoke("-vv", "--log-format", "json", "status")
    handle_code, handle_out = invoke(
        "-v", "handle", "--event-name", "Note Hook", "--event-file", str(event)
    )

    assert status_code == 0 and "unavailable (ForgeAuthError)" in status_out
    assert handle_code == 1 and "GITLAB_TOKEN" in handle_out  # says what to check
    assert any(token in (call.request.headers.get("PRIVATE-TOKEN") or "") for call in rsps.calls)
    assert_clean(status_out, handle_out, raw_logs.text)


@pytest.mark.usefixtures("reachable")
def test_github_401_echoing_the_token_is_masked(
    raw_logs: pytest.LogCaptureFixture,
    rsps: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMOTION_BOT_PLATFORM", "github")
    token = SECRETS["GITHUB_TOKEN"]
    rsps.add(
        responses.Response(
            method=responses.GET,
            url=re.compile(rf"{re.escape(GITHUB)}(:443)?/.*"),
            status=401,
            json={"message": f"Bad credentials: {token}", "status": "401"},
        )
    )

    code, output = invoke("-vv", "--log-format", "json", "status")

    assert code == 0 and "unavailable (ForgeAuthError)" in output
    assert rsps.calls, "GitHub was never called"
    assert_clean(output, raw_logs.text)


# --- broken params, dry runs, and the real process -------------------------------------------


@pytest.mark.usefixtures("reachable")
def test_a_secret_pasted_into_params_is_masked_in_the_config_error(
    raw_logs: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    token = SECRETS["GITLAB_TOKEN"]
    (tmp_path / "params.yaml").write_text(
        f"promotion:\n  approvers:\n    min_role: {token}\n", encoding="utf-8"
    )
    code, output = invoke("-v", "status")

    assert code == 1 and "promotion.approvers.min_role" in output and "unknown role" in output
    assert_clean(output, raw_logs.text)


def request_candidate(tracking_uri: str, model_name: str, root: Path) -> int:
    ctx = make_context(tracking_uri, model_name, root)
    run_id = log_training_run(tracking_uri, {"final.logloss": 0.6, "final.accuracy": 0.7})
    version = register(ctx, run_id=run_id, alias="smoke").version.version
    gate(ctx, version=version)
    return version


def test_request_dry_run_on_the_local_platform_shows_no_secret(
    reachable: str,
    raw_logs: pytest.LogCaptureFixture,
    tracking_uri: str,
    model_name: str,
    tmp_path: Path,
) -> None:
    version = request_candidate(tracking_uri, model_name, tmp_path)

    code, output = invoke("-vv", "--log-format", "json", "request", "--dry-run")

    assert code == 0, output
    assert f"version={version}" in output and "would call:" in output
    assert_clean(output, raw_logs.text)
    assert not (tmp_path / "forge").exists()  # a dry run writes nothing


@pytest.mark.usefixtures("env")
def test_python_m_bot_output_is_clean(
    tracking_uri: str, model_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = run_bot("-vv", "--log-format", "json", "status", cwd=tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"weird://ci-bot:{PASSWORD}@127.0.0.1:9/x")
    unexpected = run_bot("-v", "history", cwd=tmp_path)
    version = request_candidate(tracking_uri, model_name, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", with_password(tracking_uri))
    dry_run = run_bot("-vv", "--log-format", "json", "request", "--dry-run", cwd=tmp_path)

    assert failing.returncode == 1 and "unreachable" in failing.stderr
    last = json.loads(failing.stderr.strip().splitlines()[-1])  # --log-format json: a JSON line
    assert (last["level"], last["exit_code"]) == ("error", 1) and "Traceback" in last["traceback"]
    assert unexpected.returncode == 1 and "Traceback" in unexpected.stderr
    assert dry_run.returncode == 0 and f"version={version}" in dry_run.stdout
    for proc in (failing, unexpected, dry_run):
        assert_clean(proc.stdout, proc.stderr)
