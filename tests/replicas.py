"""Replicas for the shared-lock tests: `promotion-bot serve` and `poll` as separate processes
(each its own lock folder, as on separate machines) sharing one Redis, the session's MLflow
server, and a GitHub fake served over HTTP (tests/fakes/forge_server.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.webhook_auth import sign_github
from tests.fakes.forges import BOT
from tests.forge_world import WEBHOOK_SECRET
from tests.helpers import wait_until_serving
from tests.mlflow_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def replica_env(world: Any, forge_url: str, lock_url: str, lock_dir: Path) -> dict[str, str]:
    settings = world.ctx.settings
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PROMOTION_BOT_PLATFORM": "github",
        "GITHUB_API_URL": forge_url,
        "GITHUB_REPOSITORY": settings.github_repository,
        "GITHUB_TOKEN": "ghp_replica_not_a_token",
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "PROMOTION_BOT_USERNAME": BOT,
        "PROMOTION_BOT_LOCK_URL": lock_url,
        "PROMOTION_BOT_LOCK_DIR": str(lock_dir),
    }


def write_params(folder: Path, model: str) -> Path:
    path = folder / "params.yaml"
    path.write_text(f"register_model:\n  model_name: {model}\n", encoding="utf-8")
    return path


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def deliver(self, payload: dict[str, Any], delivery: str) -> tuple[int, str]:
        """A signed issue_comment delivery, as GitHub sends it; (HTTP status, answer status)."""
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign_github(WEBHOOK_SECRET, body),
        }
        url = f"{self.url}/webhooks/github"
        answer = requests.post(url, data=body, headers=headers, timeout=10)
        return answer.status_code, str(answer.json().get("status", ""))

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of GET /metrics, parsed by prometheus_client's own parser."""
        text = requests.get(f"{self.url}/metrics", timeout=10).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_replica(name: str, env: dict[str, str], params: Path, folder: Path) -> Replica:
    port = free_port()
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "--params", str(params), "serve", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Replica(name, f"http://127.0.0.1:{port}", process, log)


def wait_ready(replicas: list[Replica], seconds: float = 60) -> None:
    for replica in replicas:
        wait_until_serving(replica.url, replica.process, seconds)  # type: ignore[arg-type]


def start_poll(env: dict[str, str], params: Path, folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "--params", str(params), "poll"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def new_delivery() -> str:
    return str(uuid.uuid4())
