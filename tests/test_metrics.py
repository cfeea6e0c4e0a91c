"""`GET /metrics` after a scripted run of `serve`'s real app (docs/design.md, "Metrics and
readiness"): every count equals what the run did. Parsed with prometheus_client's own parser.

The app and its workers run in this process (tests/forge_world.py: PyGithub over `responses` to
the GitHub fake, the session's MLflow server). One comment's handling fails once and is retried,
another fails on every attempt.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import bot.intake.entry
from bot.config.settings import Secret, Settings
from bot.intake.entry import serve_app
from bot.intake.wsgi import WebhookApp
from bot.registry.records import Outcome
from bot.threads.thread import CommentEvent
from bot.webhook_auth import sign_github
from tests.forge_world import World, deliver, make_world

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def world(tracking_uri: str, model_name: str, tmp_path: Path) -> Iterator[World]:
    with make_world("github", tracking_uri, model_name, tmp_path) as world:
        yield world


def get(app: WebhookApp, path: str) -> tuple[int, dict[str, str], bytes]:
    seen: list[Any] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": io.BytesIO(b"")}
    body = b"".join(app(environ, lambda status, headers: seen.extend([status, headers])))
    return int(seen[0].split()[0]), dict(seen[1]), body


def samples(app: WebhookApp) -> Samples:
    status, headers, body = get(app, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_what_a_scripted_run_did(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bot.intake.entry.route_comment
    attempts: dict[str, int] = {}

    def flaky(ctx: Any, event: CommentEvent, thread: Any = None, **options: Any) -> Outcome:
        """`/help` with the reason "flaky" fails once; with "broken", always."""
        attempts[event.comment_id] = attempts.get(event.comment_id, 0) + 1
        if "broken" in event.body or ("flaky" in event.body and attempts[event.comment_id] == 1):
            raise RuntimeError("the forge hiccuped")
        return real(ctx, event, thread, **options)

    monkeypatch.setattr(bot.intake.entry, "route_comment", flaky)
    app = serve_app(world.ctx, retry_delays=(0.01, 0.01))
    app.start()
    try:
        script = [
            ("/promote\nShip it.", 202),
            ("thanks, looks good", 200),  # chatter: ignored before the queue
            ("/rollback 9", 202),  # no such version: refused
            ("/help", 202),
            ("/help\nflaky", 202),  # fails once, then answered
            ("/help\nbroken", 202),  # fails three times: given up
        ]
        payloads = []
        for body, expected in script:
            payloads.append(world.post(world.number, body))
            assert deliver(app, "github", payloads[-1], "issue_comment")[0] == expected
            assert app.drain(30)
        assert deliver(app, "github", payloads[0], "issue_comment") == (
            200,
            {"status": "duplicate"},
        )
        assert unsigned(app, payloads[0]) == 401
        found = samples(app)
    finally:
        app.stop(10)

    deliveries = "promotion_bot_deliveries_total"
    assert value(found, deliveries, route="github", status="accepted") == 5
    assert value(found, deliveries, route="github", status="ignored") == 1
    assert value(found, deliveries, route="github", status="duplicate") == 1
    assert value(found, deliveries, route="github", status="unauthorized") == 1
    assert sum(v for (name, _), v in found.items() if name == deliveries) == 8

    commands = "promotion_bot_commands_total"
    assert value(found, commands, command="promote", outcome="changed") == 1
    assert value(found, commands, command="rollback", outcome="refused") == 1
    assert value(found, commands, command="help", outcome="help") == 2
    assert value(found, commands, command="help", outcome="failed") == 1
    assert sum(v for (name, _), v in found.items() if name == commands) == 5

    assert value(found, "promotion_bot_champion_changes_total", action="promote") == 1
    assert value(found, "promotion_bot_champion_changes_total", action="rollback") == 0
    assert value(found, "promotion_bot_job_retries_total", route="github") == 1 + 2
    histogram = "promotion_bot_delivery_to_answer_seconds"
    assert value(found, f"{histogram}_count", route="github") == 4  # the jobs that succeeded
    assert value(found, f"{histogram}_bucket", route="github", le="+Inf") == 4
    assert 0 < value(found, f"{histogram}_sum", route="github") < 60
    assert value(found, "promotion_bot_queue_depth") == 0
    assert world.champion() == 1


def unsigned(app: WebhookApp, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/github",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_X_GITHUB_EVENT": "issue_comment",
        "HTTP_X_HUB_SIGNATURE_256": sign_github("not the secret", body),
    }
    seen: list[str] = []
    b"".join(app(environ, lambda status, _headers: seen.append(status)))
    return int(seen[0].split()[0])


def test_each_app_counts_in_its_own_registry() -> None:
    settings = Settings(github_webhook_secret=Secret("s"))
    first, second = (
        WebhookApp(settings, lambda _e, _c: None),
        WebhookApp(settings, lambda _e, _c: None),
    )
    first.metrics.delivery("github", 401, {})
    assert (
        value(
            samples(first), "promotion_bot_deliveries_total", route="github", status="unauthorized"
        )
        == 1
    )
    assert (
        value(
            samples(second), "promotion_bot_deliveries_total", route="github", status="unauthorized"
        )
        == 0
    )
