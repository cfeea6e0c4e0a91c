"""`serve`'s Prometheus metrics, served as text at `GET /metrics` (docs/design.md, "Metrics and
readiness").

Each app has a registry of its own, not prometheus_client's global one: two apps in one process
(the tests) never add up each other's counts. Labels are closed sets (route names, fixed status
words, command names, outcome statuses), so no label can grow with what senders put in a
delivery, and none names a model, a person or a URL.

    promotion_bot_deliveries_total{route, status}       every POST to a webhook route
    promotion_bot_commands_total{command, outcome}      comment jobs, by their final outcome
    promotion_bot_champion_changes_total{action}        promote / rollback made by this process
    promotion_bot_delivery_to_answer_seconds{route}     from receiving a delivery to its job done
    promotion_bot_job_retries_total{route}              attempts after a job's first
    promotion_bot_queue_depth                           jobs waiting for a worker
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.registry.records import Outcome

# The words a delivery is counted under: the answer's own status where it has one, else its code.
STATUS_WORDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "error",
    503: "busy",
}
ANSWERED = frozenset({"accepted", "duplicate", "ignored"})
# The classic text format every Prometheus version scrapes (the names here need no escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Forges wait for nobody: most answers take a second or less, a retried job 5 s and more.
ANSWER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "promotion_bot_deliveries",
            "Webhook deliveries by route and how they were answered",
            ["route", "status"],
            registry=self.registry,
        )
        self.commands = Counter(
            "promotion_bot_commands",
            "Comment commands handled, by command and final outcome (failed: after every retry)",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.changes = Counter(
            "promotion_bot_champion_changes",
            "Champion changes made by this process",
            ["action"],
            registry=self.registry,
        )
        self.answer_seconds = Histogram(
            "promotion_bot_delivery_to_answer_seconds",
            "Seconds from receiving a delivery to its job being done",
            ["route"],
            buckets=ANSWER_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "promotion_bot_job_retries",
            "Job attempts after the first, by route",
            ["route"],
            registry=self.registry,
        )
        depth = Gauge(
            "promotion_bot_queue_depth", "Jobs waiting for a worker", registry=self.registry
        )
        depth.set_function(queue_depth)

    def delivery(self, route: str, code: int, body: Mapping[str, Any]) -> None:
        status = str(body.get("status", ""))
        word = status if status in ANSWERED else STATUS_WORDS.get(code, str(code))
        self.deliveries.labels(route=route, status=word).inc()

    def command(self, command: str, outcome: str) -> None:
        self.commands.labels(command=command or "none", outcome=outcome).inc()

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


class MeteredRun:
    """A job's run, counted: its retries, its outcome (comments: under `command`), a champion
    change, and the time from receiving the delivery to the job done."""

    def __init__(
        self,
        metrics: Metrics,
        route: str,
        received: float,
        run: Callable[[], object],
        command: str | None = None,
    ) -> None:
        self._metrics = metrics
        self._route = route
        self._received = received
        self._run = run
        self._command = command
        self.failures: list[BaseException] = []  # one per failed attempt, for the give-up

    def run(self) -> object:
        if self.failures:
            self._metrics.retries.labels(route=self._route).inc()
        try:
            outcome = self._run()
        except Exception as exc:
            self.failures.append(exc)
            raise
        status = outcome.status if isinstance(outcome, Outcome) else "handled"
        if self._command is not None:
            self._metrics.command(self._command, status)
        if isinstance(outcome, Outcome) and outcome.change is not None and status == "changed":
            self._metrics.changes.labels(action=outcome.change.action).inc()
        elapsed = time.monotonic() - self._received
        self._metrics.answer_seconds.labels(route=self._route).observe(elapsed)
        return outcome
