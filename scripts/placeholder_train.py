"""Stand-in for the team's training step: replace this file's call in CI with the real training.

It does what the bot needs from any training job, and nothing else:

- logs one MLflow run (to MLFLOW_TRACKING_URI) with the metrics `final.logloss` and
  `final.accuracy`, the run tags `git_sha` and `data_version` when they are known, and a tiny
  artifact under `model/` (the version source the bot registers is `runs:/<run_id>/model`);
- writes `{"run_id": "..."}` to `register_model.run_id_file` (params.yaml; default
  `data/models/final_run_id.json`), which `promotion-bot register` reads next.

Usage: python scripts/placeholder_train.py [--logloss 0.61] [--accuracy 0.55] [--experiment NAME]
Only MLflow (and PyYAML, which MLflow itself depends on) is needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("placeholder_train")

DEFAULT_RUN_ID_FILE = "data/models/final_run_id.json"
DEFAULT_EXPERIMENT = "model-training"
# As promotion-bot bounds them: an unreachable server fails in seconds, not MLflow's minutes of
# retries (the environment still wins).
BOUNDED_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
}


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"error: {name}={raw!r} is not a number") from None


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Log a placeholder training run to MLflow and write the run id file."
    )
    parser.add_argument(
        "--logloss",
        type=float,
        default=_env_float(env, "PLACEHOLDER_LOGLOSS", 0.61),
        help="final.logloss to log [env PLACEHOLDER_LOGLOSS; default 0.61]",
    )
    parser.add_argument(
        "--accuracy",
        type=float,
        default=_env_float(env, "PLACEHOLDER_ACCURACY", 0.55),
        help="final.accuracy to log [env PLACEHOLDER_ACCURACY; default 0.55]",
    )
    parser.add_argument(
        "--experiment",
        default=env.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
        help=f"MLflow experiment [env MLFLOW_EXPERIMENT_NAME; default {DEFAULT_EXPERIMENT}]",
    )
    parser.add_argument(
        "--data-version",
        default=env.get("DATA_VERSION", ""),
        help="data_version run tag [env DATA_VERSION; omitted when unknown]",
    )
    parser.add_argument(
        "--run-id-file",
        default=None,
        help="where to write the run id [default: register_model.run_id_file from --params]",
    )
    parser.add_argument("--params", default="params.yaml", help="[default: params.yaml]")
    parser.add_argument("--tracking-uri", default=None, help="[env MLFLOW_TRACKING_URI]")
    return parser.parse_args(argv)


def run_id_file_from_params(params_path: str, model: str = "") -> str:
    """The bot reads the run id from the model's `register_model.run_id_file`: write it where it
    will look. With several models (`models:`) that is the model PROMOTION_BOT_MODEL names, as
    the bot's own loader reads it (per-model defaults included)."""
    path = Path(params_path)
    if not path.exists():
        return DEFAULT_RUN_ID_FILE
    try:
        from bot.config.model_set import load_models
    except ImportError:  # training without the bot installed: read the single-model key
        import yaml  # a dependency of MLflow itself

        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        section = data.get("register_model") if isinstance(data, dict) else None
        value = section.get("run_id_file") if isinstance(section, dict) else None
        return str(value) if value else DEFAULT_RUN_ID_FILE
    params = load_models(path).pick(model or None, required=True)
    return params.register_model.run_id_file


def run_tags(env: Mapping[str, str], data_version: str) -> dict[str, str]:
    """Provenance tags the promotion gates can require (`gates.required_tags`)."""
    tags: dict[str, str] = {"training.placeholder": "true"}
    git_sha = env.get("CI_COMMIT_SHA") or env.get("GITHUB_SHA") or ""
    if git_sha:
        tags["git_sha"] = git_sha
        tags["mlflow.source.git.commit"] = git_sha  # what the MLflow UI shows as the commit
    if data_version:
        tags["data_version"] = data_version
    return tags


def log_run(args: argparse.Namespace, tags: dict[str, str]) -> str:
    """Log the run with its metrics, tags and a tiny `model/` artifact; return its id."""
    import mlflow

    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)
    with mlflow.start_run(run_name="placeholder-training") as run:
        mlflow.log_metrics({"final.logloss": args.logloss, "final.accuracy": args.accuracy})
        mlflow.set_tags(tags)
        with tempfile.TemporaryDirectory() as tmp:
            card = {"kind": "placeholder", "note": "replace scripts/placeholder_train.py"}
            Path(tmp, "placeholder.json").write_text(json.dumps(card), encoding="utf-8")
            mlflow.log_artifacts(tmp, artifact_path="model")
        return str(run.info.run_id)


def shown_uri(uri: str) -> str:
    """The tracking URI without its password (never printed), or what MLflow falls back to."""
    if not uri:
        return "./mlruns (MLFLOW_TRACKING_URI is not set)"
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"***@{host}{port}", parts.path, "", ""))


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Max retries exceeded" in text or "Connection refused" in text or isinstance(exc, OSError):
        return (
            "the server is unreachable (start one, e.g. `mlflow server --port 5000`, "
            "or fix MLFLOW_TRACKING_URI)"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"{type(exc).__name__}: {first[:200]}"


def write_run_id(path: str, run_id: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"run_id": run_id}) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # a retry line per attempt is noise
    env = os.environ
    args = parse_args(argv, env)
    run_id_file = args.run_id_file or run_id_file_from_params(
        args.params, env.get("PROMOTION_BOT_MODEL", "")
    )
    for key, value in BOUNDED_HTTP.items():
        os.environ.setdefault(key, value)
    try:
        run_id = log_run(args, run_tags(env, args.data_version))
    except Exception as exc:  # one line, as the bot says it; -v is the real training's business
        where = shown_uri(args.tracking_uri or env.get("MLFLOW_TRACKING_URI", ""))
        print(f"error: could not log the run to MLflow at {where}: {_reason(exc)}", file=sys.stderr)
        return 1
    write_run_id(run_id_file, run_id)
    log.info(
        "run %s in experiment %s: final.logloss=%g final.accuracy=%g; run id written to %s",
        run_id,
        args.experiment,
        args.logloss,
        args.accuracy,
        run_id_file,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
