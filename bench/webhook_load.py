"""Webhook answer time and throughput at 1, 10 and 50 concurrent senders, on 127.0.0.1 only.

A closed loop: each sender posts a delivery, waits for the answer, posts the next, on a new
connection each time (as forges do). Deliveries are signed GitHub `issue_comment` events: mostly
chatter (answered 200 "not a command"), every tenth a `/promote` (202, queued for a no-op
dispatch: the work happens after the answer, so it is not part of the answer time). Bounded:
a fixed number of deliveries per level and a deadline; the server stops by itself (SIGTERM).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.startup import clean_env
from tests.forge_fixtures import FIXTURES
from tests.mlflow_server import free_port

HERE = Path(__file__).resolve().parent
SECRET = "bench-webhook-secret-not-real"  # noqa: S105 - a local test secret
COMMAND_EVERY = 10
LEVEL_DEADLINE = 120.0  # seconds per concurrency level, whatever happens
Delivery = tuple[bytes, dict[str, str]]


def deliveries(count: int, first_id: int) -> list[Delivery]:
    base = json.loads((FIXTURES / "webhooks" / "github_issue_comment_issue.json").read_text())
    out = []
    for i in range(count):
        payload = copy.deepcopy(base)
        payload["comment"]["id"] = first_id + i
        payload["comment"]["body"] = (
            "/promote" if i % COMMAND_EVERY == 0 else f"Looks good to me ({i}), thanks!"
        )
        body = json.dumps(payload).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        out.append((body, headers))
    return out


def _post(port: int, delivery: Delivery) -> tuple[int, float]:
    body, headers = delivery
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/webhooks/github", body, headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


def _send_all(port: int, items: list[Delivery], senders: int) -> tuple[list[float], Counter[int]]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    position = iter(range(len(items)))
    deadline = time.monotonic() + LEVEL_DEADLINE

    def sender() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(position, None)
            if index is None:
                return
            try:
                status, seconds = _post(port, items[index])
            except OSError:
                status, seconds = 0, float("nan")
            with lock:
                statuses[status] += 1
                if status:
                    latencies.append(seconds)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LEVEL_DEADLINE + 15)
    return latencies, statuses


def _start_server(workdir: Path, bare: bool = False) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    stats = workdir / f"server-{port}.json"
    env = clean_env(GITHUB_WEBHOOK_SECRET=SECRET)
    flags = ["--bare"] if bare else []
    with (workdir / f"server-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "webhook_server.py"), str(port), str(stats), *flags],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process, port, stats
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the webhook server did not answer /healthz in 30 s")


def _stop_server(process: subprocess.Popen[bytes], stats: Path) -> dict[str, Any]:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    return dict(json.loads(stats.read_text())) if stats.exists() else {}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far (Linux /proc), None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def ms(value: float) -> float:
    return round(value * 1000, 2)


def run_level(
    workdir: Path, senders: int, count: int, warmup: int = 50, bare: bool = False
) -> dict[str, Any]:
    first_id = 10_000_000 * (senders + 1)
    items = deliveries(count + warmup, first_id)
    process, port, stats_path = _start_server(workdir, bare)
    try:
        _send_all(port, items[:warmup], min(senders, warmup))
        server_cpu, client_cpu = cpu_seconds(process.pid), _own_cpu()
        started = time.perf_counter()
        latencies, statuses = _send_all(port, items[warmup:], senders)
        wall = time.perf_counter() - started
        server_end, client_cpu = cpu_seconds(process.pid), _own_cpu() - client_cpu
        if server_cpu is not None and server_end is not None:
            server_cpu = server_end - server_cpu
    finally:
        stats = _stop_server(process, stats_path)
    app = stats.get("app_seconds", [])[warmup + 1 :]  # after the /healthz probe and warm-up
    return {
        "senders": senders,
        "deliveries": sum(statuses.values()),
        "commands": sum(1 for i in range(warmup, warmup + count) if i % COMMAND_EVERY == 0),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "wall_s": round(wall, 3),
        "throughput_per_s": round(len(latencies) / wall, 1) if wall else None,
        "answer_ms": {
            "p50": ms(pct(latencies, 50)),
            "p90": ms(pct(latencies, 90)),
            "p99": ms(pct(latencies, 99)),
            "max": ms(max(latencies)) if latencies else None,
        },
        "app_ms": {"p50": ms(pct(app, 50)), "p99": ms(pct(app, 99))},
        # CPU per delivery: what bounds throughput (2 cores shared by server and client).
        "server_cpu_ms_per_delivery": _per(server_cpu, len(latencies)),
        "client_cpu_ms_per_delivery": _per(client_cpu, len(latencies)),
        "dispatched_after_answer": stats.get("dispatched"),
        "_latencies": latencies,  # for `compared`; dropped before the results are written
    }


def _per(cpu: float | None, count: int) -> float | None:
    return round(cpu * 1000 / count, 3) if cpu is not None and count else None


def compared(workdir: Path, senders: int, count: int) -> dict[str, Any]:
    """The bot's answer times as a ratio of a bare app's on the same server, threads and load.

    Each sends `count` deliveries in two halves, in the order bare, bot, bot, bare: a machine
    whose load drifts during the level weighs on both alike.
    """
    half = max(count // 2, 1)
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "bot": []}
    for kind in ("bare", "bot", "bot", "bare"):
        runs[kind].append(run_level(workdir, senders, half, bare=kind == "bare"))
    level, bare = _merged(runs["bot"]), _merged(runs["bare"])
    level["bare_answer_ms"] = bare["answer_ms"]
    level["bare_statuses"] = bare["statuses"]
    level["ratio_to_bare"] = {
        q: round(level["answer_ms"][q] / bare["answer_ms"][q], 2)
        for q in ("p50", "p99")
        if bare["answer_ms"][q]
    }
    return level


def _merged(halves: list[dict[str, Any]]) -> dict[str, Any]:
    """One level from its halves: percentiles over every answer; other figures from the first
    half, counts summed."""
    latencies = [t for half in halves for t in half.pop("_latencies")]
    out = dict(halves[0])
    out["deliveries"] = sum(half["deliveries"] for half in halves)
    out["commands"] = sum(half["commands"] for half in halves)
    statuses: Counter[str] = Counter()
    for half in halves:
        statuses.update(half["statuses"])
    out["statuses"] = dict(sorted(statuses.items()))
    out["answer_ms"] = {
        "p50": ms(pct(latencies, 50)),
        "p90": ms(pct(latencies, 90)),
        "p99": ms(pct(latencies, 99)),
        "max": ms(max(latencies)) if latencies else None,
    }
    return out


def run(workdir: Path, count: int, levels: tuple[int, ...] = (1, 10, 50)) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    return {
        "bare": "the same server, 4 threads and load, every POST answered 202 without the app "
        "(bench/webhook_server.py --bare); each level in halves, bare, bot, bot, bare",
        "server": "bot.intake.http_server.run_server (waitress, 4 threads) "
        "+ bot.intake.wsgi.WebhookApp, 2 workers, no-op dispatch; own process",
        "client": "Python threads, one new HTTP/1.1 connection per delivery; same machine",
        "payload_bytes": len(deliveries(1, 1)[0][0]),
        "command_share": f"1 in {COMMAND_EVERY}",
        "cpus": os.cpu_count(),
        "levels": [compared(workdir, senders, count) for senders in levels],
    }
