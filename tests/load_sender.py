"""A webhook load generator run as its own process: `python -m tests.load_sender PORT N C SECRET`.

Sends N signed GitHub `issue_comment` deliveries to 127.0.0.1:PORT from C concurrent senders
(a new connection each, as forges do): every tenth a `/promote`, every 25th a redelivery of an
earlier delivery (same X-GitHub-Delivery). Bounded by count and a deadline. Prints one JSON
object: statuses, the command comment ids sent, latency percentiles and throughput.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import statistics
import sys
import threading
import time
from collections import Counter
from typing import Any

DEADLINE = 120.0


def delivery(i: int, secret: str) -> tuple[bytes, dict[str, str]]:
    command = i % 10 == 0
    payload = {
        "action": "created",
        "issue": {"number": 1 + i % 7, "title": "Promote m v3", "state": "open", "labels": []},
        "comment": {
            "id": 10_000 + i,
            "body": "/promote" if command else f"Looks fine to me ({i})",
            "user": {"login": f"user{i % 13}", "id": 500 + i % 13, "type": "User"},
            "created_at": "2026-11-26T10:00:00Z",
        },
        "repository": {"full_name": "acme/models"},
        "sender": {"login": f"user{i % 13}", "id": 500 + i % 13},
    }
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": f"delivery-{i}",
        "X-Hub-Signature-256": f"sha256={signature}",
    }
    return body, headers


def plan(count: int) -> list[int]:
    """Delivery indexes to send: each once, plus a redelivery of an earlier one every 25th."""
    order: list[int] = []
    for i in range(count):
        order.append(i)
        if i % 25 == 24:
            order.append(i - 20)
    return order[:count]


def main() -> None:
    port, count, senders, secret = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    order = plan(count)
    items = [delivery(i, secret) for i in order]
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    cursor = iter(range(len(items)))
    deadline = time.monotonic() + DEADLINE

    def sender() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            body, headers = items[index]
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/webhooks/github", body, headers)
                response = conn.getresponse()
                response.read()
                conn.close()
                status = response.status
            except OSError as exc:
                with lock:
                    errors.append(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] += 1
                latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    result: dict[str, Any] = {
        "sent": len(items),
        "answered": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "command_ids": sorted({str(10_000 + i) for i in order if i % 10 == 0}),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "per_second": round(len(latencies) / wall, 1) if wall else None,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
