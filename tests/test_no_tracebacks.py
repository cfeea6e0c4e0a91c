"""One line per failure unless -v, everywhere: `poll` with an unreachable
registry, and `serve`'s worker retries on the MLflow webhook path. With -v the traceback shows.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests

from bot.webhook_auth import sign_mlflow
from tests.helpers import run_main, start_serve, wait_until_serving
from tests.mlflow_server import free_port
from tests.promotion_env import Playground

ROOT = Path(__file__).resolve().parent.parent
SECRET = "mlflow-hook-secret-for-tracebacks"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_poll_with_an_unreachable_registry(
    pg: Playground,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fmt: str,
) -> None:
    thread = pg.open_request(pg.train(0.6))
    comment = pg.forge.add_comment(thread.number, "maria", "/promote")  # not handled yet
    (tmp_path / "params.yaml").write_text(
        f"register_model:\n  model_name: {pg.model}\n", encoding="utf-8"
    )
    monkeypatch.setenv("PROMOTION_BOT_PLATFORM", "local")
    monkeypatch.setenv("PROMOTION_BOT_LOCAL_DIR", str(pg.forge.root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")

    code, _, quiet = run_main(monkeypatch, capsys, "--log-format", fmt, "poll")
    assert code == 1
    assert "Traceback" not in quiet and '"traceback"' not in quiet
    assert f"comment {comment.id} on #{thread.number} failed" in quiet
    # RegistryUnavailable: the RegistryError of a first read that failed (nothing read or written)
    assert "RegistryUnavailable: " in quiet and "is unreachable" in quiet
    last = quiet.strip().splitlines()[-1]
    said = "1 command(s) failed; the champion check failed; see above"
    if fmt == "json":  # the error too is a JSON line
        assert (json.loads(last)["level"], json.loads(last)["message"]) == ("error", said)
    else:
        assert last == f"error: {said}"

    code, _, verbose = run_main(monkeypatch, capsys, "--log-format", fmt, "-v", "poll")
    assert code == 1
    assert "Traceback (most recent call last)" in verbose.replace("\\n", "\n")


def _deliver_alias_change(port: int) -> None:
    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": "m", "alias": "champion", "version": "2"},
        }
    ).encode()
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign_mlflow(SECRET, delivery, stamp, body),
    }
    url = f"http://127.0.0.1:{port}/webhooks/mlflow"
    response = requests.post(url, data=body, headers=headers, timeout=5)
    assert response.status_code == 202, response.text


@pytest.mark.slow
def test_serve_worker_retries_on_the_mlflow_webhook_path(tmp_path: Path) -> None:
    """Three attempts (1 s and 4 s apart) against a dead registry: one line each without -v."""
    runs = {}
    for flags in ((), ("-v",)):
        folder = tmp_path / ("verbose" if flags else "quiet")
        folder.mkdir()
        (folder / "params.yaml").write_text("register_model:\n  model_name: m\n", encoding="utf-8")
        port = free_port()
        runs[flags] = (start_serve(folder, port, *flags, secret=SECRET), port)
    try:
        for process, port in runs.values():
            wait_until_serving(f"http://127.0.0.1:{port}", process)
            _deliver_alias_change(port)
        time.sleep(0.5)
        outputs = {}
        for flags, (process, _) in runs.items():
            process.send_signal(signal.SIGTERM)  # stops after the queued job's last attempt
            _, outputs[flags] = process.communicate(timeout=60)
    finally:
        for process, _ in runs.values():
            if process.poll() is None:
                process.kill()
    quiet, verbose = outputs[()], outputs[("-v",)]
    assert "Traceback" not in quiet, quiet
    for attempt in ("attempt 1 of 3), retrying in 1 s", "attempt 3 of 3), giving up"):
        lines = [line for line in quiet.splitlines() if attempt in line]
        assert len(lines) == 1, quiet
        assert "(RegistryError: " in lines[0] and "unreachable" in lines[0]
    assert verbose.count("Traceback (most recent call last)") == 3, verbose
