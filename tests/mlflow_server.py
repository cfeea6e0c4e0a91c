"""Start and stop a real `mlflow server` (sqlite backend) for the tests and the benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in: float = 0.0  # seconds until /health answered

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def start_mlflow_server(
    workdir: Path,
    timeout: float = 120.0,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    workers: int | None = 1,
) -> MlflowServer:
    """`mlflow server` on a free loopback port, in its own process group; waits for /health.
    `extra_args` / `extra_env` start another app (tests/mlflow_auth_server.py: basic-auth);
    `workers` None: MLflow's default number of workers (the benchmark's production-like one)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "mlflow-server.log"
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **(extra_env or {}))
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [
        str(mlflow_bin) if mlflow_bin.exists() else "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--default-artifact-root",
        str(workdir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(["--workers", str(workers)] if workers is not None else []),
        *extra_args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    server = MlflowServer(url=url, process=process, log_path=log_path)
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                server.started_in = time.monotonic() - started
                return server
        except requests.RequestException:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"mlflow server did not answer /health in {timeout:.0f}s")
