"""Helpers for tests: make real MLflow runs the way a training job would."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The signing key of every test bot (docs/security.md): a fixed seed, so that a test may check
# what the bot signed. Never a key of any deployment.
TEST_SIGNING_KEY = "5e" * 32


def log_training_run(
    tracking_uri: str,
    metrics: dict[str, float],
    tags: dict[str, str] | None = None,
    experiment: str = "promotion-bot-tests",
    run_id_file: Path | None = None,
) -> str:
    """Log a run with `metrics` and a tiny artifact under `model/`; optionally write run_id_file."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, tags=tags or {})
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    if run_id_file is not None:
        run_id_file.parent.mkdir(parents=True, exist_ok=True)
        run_id_file.write_text(json.dumps({"run_id": run.info.run_id}))
    return str(run.info.run_id)


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`promotion-bot ARGS` in this process, as the installed script runs: (exit code, out, err).

    The CLI points the root logger at this test's captured stderr; it is put back afterwards,
    so a later test never logs into a closed capture.
    """
    from bot.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(sys, "argv", ["promotion-bot", *args])
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        root.handlers[:], root.level = handlers, level
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def start_serve(folder: Path, port: int, *flags: str, secret: str) -> subprocess.Popen[str]:
    """`promotion-bot [FLAGS] serve` in its own process: local platform, MLflow route open, a
    tracking URI nothing listens on (only a reported alias change would call it)."""
    from tests.mlflow_server import free_port

    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "PROMOTION_BOT_PLATFORM": "local",
        "PROMOTION_BOT_LOCAL_DIR": str(folder / "forge"),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "MLFLOW_WEBHOOK_SECRET": secret,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *flags, "serve", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_serving(url: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(f"{url}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)
