"""Helpers for tests: make real MLflow runs the way a training job would."""

from __future__ import annotations

import json
from pathlib import Path


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
