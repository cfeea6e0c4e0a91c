"""Helpers for tests: make real MLflow runs the way a training job would."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest


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
