"""Several models served by one `serve`: ten `/promote` on ten models delivered at once, against
one `/promote` alone (docs/design.md, "Webhooks": commands on different models run in parallel).

Everything on 127.0.0.1: the real `mlflow server`, `promotion-bot serve` in its own process with
one params.yaml listing every model (`models:`), and the GitHub fake of tests/fakes/github.py
behind a real HTTP server in this process (tests/fakes/forge_server.py), optionally answering each
call `latency` seconds late, as a forge across the internet does. Each model has v1 as its
candidate and its request open, with the checklist ticked; maria (a maintainer) comments.

A round: three models promoted one after the other (the single `/promote`: median of three),
then ten others at once (one thread per delivery, released together). "Done" is when serve's
`/metrics` counts the command as `changed`, i.e. its job ended: answer, status, close and the
handled-id tag written. Every round checks the end state: each model's champion is v1, one
history entry, one answer in its thread, the thread closed. `serve` runs as shipped (a worker
per model), against an MLflow server with its default workers (as production runs it) and one
with a single worker (as the tests run it), each at every forge latency.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import open_or_update_request
from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.runtime.context import Context
from bot.webhook_auth import sign_github
from tests.fakes.forge_server import FakeForgeServer
from tests.fakes.forges import BOT
from tests.fakes.github import FakeGitHub
from tests.forge_fixtures import FIXTURES
from tests.helpers import TEST_SIGNING_KEY, wait_until_serving
from tests.mlflow_server import free_port

ROOT = Path(__file__).resolve().parent.parent
MODELS = 10  # delivered at once
SINGLES = 3  # promoted one at a time, before them
ROUNDS = 3
LATENCIES = (0.0, 0.05, 0.15)  # seconds per forge call: loopback, a forge 50 or 150 ms away
SECRET = "bench-many-models-secret-not-real"  # noqa: S105 - a local test secret
DEADLINE = 120.0  # seconds for one batch, whatever happens


def run(workdir: Path, servers: dict[str, tuple[str, int]], rounds: int = ROUNDS) -> dict[str, Any]:
    """`servers`: MLflow workers ("default", "1") -> (tracking URI, server pid)."""
    results: dict[str, Any] = {"models_at_once": MODELS, "rounds": rounds, "configs": []}
    for latency in LATENCIES:
        for mlflow_workers, (tracking_uri, mlflow_pid) in servers.items():
            folder = workdir / f"latency-{latency:g}-mlflow-{mlflow_workers}"
            config = _config(folder, tracking_uri, mlflow_pid, latency, "shipped", rounds)
            config["mlflow_workers"] = mlflow_workers
            results["configs"].append(config)
    return results


def _config(
    folder: Path, tracking_uri: str, mlflow_pid: int, latency: float, workers: str, rounds: int
) -> dict[str, Any]:
    fake = FakeGitHub()
    server = FakeForgeServer(fake, FakeGitHub.api).start()
    try:
        names = [
            f"bench-many-{uuid.uuid4().hex[:6]}-{n}" for n in range(rounds * (SINGLES + MODELS))
        ]
        threads = _set_up(folder, tracking_uri, server, names)
        server.latency = latency
        with _serve(folder, tracking_uri, server.url, workers) as (url, serve_pid):
            per_round = SINGLES + MODELS
            rows = []
            for number in range(rounds):
                chunk = names[number * per_round : (number + 1) * per_round]
                pids = {"serve": serve_pid, "mlflow": mlflow_pid}
                rows.append(_round(url, server, tracking_uri, threads, chunk, pids))
        single = [t for row in rows for t in row["single_s"]]
        together = [row["ten_s"] for row in rows]
        median_single = statistics.median(single)
        return {
            "forge_latency_s": latency,
            "workers": "one per model (as shipped)" if workers == "shipped" else "2 (before)",
            "single_promote_s": [round(t, 3) for t in single],
            "ten_at_once_s": [round(t, 3) for t in together],
            "single_median_s": round(median_single, 3),
            "ten_median_s": round(statistics.median(together), 3),
            "ratio": round(statistics.median(together) / median_single, 2),
            "forge_calls_per_promote": sorted({row["forge_calls_per_promote"] for row in rows}),
            # CPU seconds each process spent on the ten (median over the rounds): on 2 cores,
            # the ten cannot finish before half their sum, nor before MLflow's (one process).
            "ten_cpu_s": {
                key: round(statistics.median(row["ten_cpu_s"][key] for row in rows), 2)
                for key in rows[0]["ten_cpu_s"]
            },
        }
    finally:
        server.stop()


def _settings(tracking_uri: str, forge_url: str) -> Settings:
    return Settings(
        tracking_uri=tracking_uri,
        platform="github",
        github_api_url=forge_url,
        github_repository=FakeGitHub.repo,
        github_token=Secret("ghp_bench_not_a_token"),
        bot_username=BOT,
        requested_by="dana",
        signing_key=Secret(TEST_SIGNING_KEY),
    )


def _set_up(
    folder: Path, tracking_uri: str, server: FakeForgeServer, names: list[str]
) -> dict[str, int]:
    """params.yaml with every model; each: v1 trained, the candidate, its request open and
    ticked (not measured)."""
    folder.mkdir(parents=True)
    listed = "".join(f"  - register_model: {{model_name: {name}}}\n" for name in names)
    (folder / "params.yaml").write_text(f"models:\n{listed}", encoding="utf-8")
    threads = {}
    for name in names:
        ctx = Context(_settings(tracking_uri, server.url), parse_params(_model(name)))
        with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints a "View run" link
            run_id = ctx.registry.log_run("bench-many", {"final.logloss": 0.5}, {})
        version = register(ctx, run_id=run_id, alias="smoke").version.version
        gate(ctx, version=version)
        number = int(open_or_update_request(ctx).number)
        with server.lock:
            fake = server.fake
            fake.set_body(number, fake.body(number).replace("- [ ]", "- [x]"))
        threads[name] = number
    return threads


def _model(name: str) -> dict[str, Any]:
    return {"register_model": {"model_name": name}}


@contextlib.contextmanager
def _serve(
    folder: Path, tracking_uri: str, forge_url: str, workers: str
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PROMOTION_BOT_PLATFORM": "github",
        "GITHUB_API_URL": forge_url,
        "GITHUB_REPOSITORY": FakeGitHub.repo,
        "GITHUB_TOKEN": "ghp_bench_not_a_token",
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PROMOTION_BOT_USERNAME": BOT,
        "PROMOTION_BOT_LOCK_DIR": str(folder / "locks"),
        "PROMOTION_BOT_SIGNING_KEY": TEST_SIGNING_KEY,  # serve refuses to start without one
    }
    cap = (
        "" if workers == "shipped" else f"import bot.intake.entry as e; e.MAX_WORKERS = {workers}; "
    )
    code = f"{cap}from bot.cli import main; main()"
    command = [sys.executable, "-c", code, "--params", "params.yaml", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)  # type: ignore[arg-type]
        yield url, process.pid
    finally:
        process.terminate()
        process.communicate(timeout=60)


def _round(
    url: str,
    server: FakeForgeServer,
    tracking_uri: str,
    threads: dict[str, int],
    names: list[str],
    pids: dict[str, int],
) -> dict[str, Any]:
    singles, together = names[:SINGLES], names[SINGLES:]
    single_s = [_batch(url, server, threads, [name]) for name in singles]
    before, cpu = len(server.requests), _cpu(pids)
    ten_s = _batch(url, server, threads, together)
    spent = {key: value - cpu[key] for key, value in _cpu(pids).items()}
    calls = len(server.requests) - before
    _check(server, tracking_uri, threads, names)
    return {
        "single_s": single_s,
        "ten_s": ten_s,
        "forge_calls_per_promote": calls / len(together),
        "ten_cpu_s": spent,
    }


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) so far of serve, the MLflow server (with its workers) and
    this process (the forge fake and the senders)."""
    spent = {name: _process_cpu(pid) for name, pid in pids.items()}
    spent["forge fake and senders"] = time.process_time()
    return spent


def _process_cpu(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # the process, or its child
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _batch(url: str, server: FakeForgeServer, threads: dict[str, int], names: list[str]) -> float:
    """Deliver `/promote` on each model's request at once; seconds until every job is done."""
    deliveries = []
    with server.lock:  # the comments exist on the forge before their webhooks arrive
        for name in names:
            comment = server.fake.add_comment(threads[name], "maria", "/promote")
            deliveries.append(_payload(threads[name], comment))
    wanted = _changed(url) + len(names)
    gate_open = threading.Barrier(len(deliveries) + 1)
    answers: list[int] = []

    def send(body: bytes, headers: dict[str, str]) -> None:
        gate_open.wait()
        reply = requests.post(f"{url}/webhooks/github", data=body, headers=headers, timeout=10)
        answers.append(reply.status_code)

    senders = [threading.Thread(target=send, args=delivery) for delivery in deliveries]
    for sender in senders:
        sender.start()
    started = time.perf_counter()
    gate_open.wait()
    deadline = started + DEADLINE
    while _changed(url) < wanted:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{len(names)} /promote not done within {DEADLINE} s")
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    for sender in senders:
        sender.join()
    if answers != [202] * len(names):
        raise RuntimeError(f"deliveries answered {answers}")
    return elapsed


def _payload(number: int, comment: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    payload = json.loads((FIXTURES / "webhooks" / "github_issue_comment_issue.json").read_text())
    payload["repository"].update(full_name=FakeGitHub.repo)
    payload["issue"]["number"] = number
    payload["comment"].update(id=comment["id"], body=comment["body"])
    payload["comment"]["user"].update(login="maria", id=18)
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign_github(SECRET, body),
    }
    return body, headers


def _changed(url: str) -> int:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "promotion_bot_commands_total"
            and sample.labels == {"command": "promote", "outcome": "changed"}
        )
    )


def _check(
    server: FakeForgeServer, tracking_uri: str, threads: dict[str, int], names: list[str]
) -> None:
    """Each model: champion v1, one history entry, one answer in its thread, the thread closed."""
    from bot.registry.client import Registry

    registry = Registry(tracking_uri)
    for name in names:
        history = registry.history(name)
        if registry.aliases(name).get("champion") != 1 or len(history) != 1:
            raise RuntimeError(f"{name}: champion or history wrong: {history}")
        with server.lock:
            number = threads[name]
            answers = [c for c in server.fake.comments[number] if c["user"]["login"] == BOT]
            state = server.fake.state(number)
        if len(answers) != 1 or state != "closed":
            raise RuntimeError(f"{name}: {len(answers)} answers, thread {state}")
