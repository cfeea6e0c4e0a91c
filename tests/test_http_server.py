"""The webhook server over real HTTP on loopback (waitress in a thread), plus a few WSGI edges."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from bot.commands.external_change import AliasChange
from bot.config.settings import Secret, Settings
from bot.intake.http_server import HttpServer, log_route_warnings
from bot.intake.wsgi import MAX_BODY, WebhookApp
from bot.threads.thread import CommentEvent, ProjectRef
from bot.webhook_auth import sign_github, sign_mlflow
from tests.mlflow_server import free_port
from tests.webhook_fixtures import load_webhook, raw_webhook

GITHUB_SECRET = "gh-webhook-secret-1"
GITLAB_SECRET = "gl-webhook-secret-1"
MLFLOW_SECRET = "mlflow-webhook-secret-1"
SETTINGS = Settings(
    github_webhook_secret=Secret(GITHUB_SECRET),
    gitlab_webhook_secret=Secret(GITLAB_SECRET),
    mlflow_webhook_secret=Secret(MLFLOW_SECRET),
)


@dataclass
class Recorder:
    """A dispatch / on_alias_change that records what it got; optionally blocks or fails."""

    gate: threading.Event | None = None
    fail_first: bool = False
    fail_always: bool = False
    delay: float = 0.0
    calls: list[Any] = field(default_factory=list)  # every attempt, failed ones too
    handled: list[Any] = field(default_factory=list)  # the attempts that succeeded
    started: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def __call__(self, item: Any, _command: Any = None) -> None:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        if self.delay:
            time.sleep(self.delay)
        first = not self.calls
        self.calls.append(item)
        self.finished.set()
        if self.fail_always or (self.fail_first and first):
            raise RuntimeError("boom in dispatch")
        self.handled.append(item)


@dataclass
class Served:
    app: WebhookApp
    url: str
    dispatch: Recorder
    alias: Recorder

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.url}{path}", data=body, headers=headers, timeout=10)

    def github(
        self,
        payload: dict[str, Any] | bytes,
        event: str = "issue_comment",
        delivery: str | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature or sign_github(GITHUB_SECRET, body),
        }
        return self.post("/webhooks/github", body, headers)

    def gitlab(
        self,
        payload: dict[str, Any] | bytes,
        event: str = "Note Hook",
        delivery: str | None = None,
        token: str | None = GITLAB_SECRET,
    ) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Gitlab-Event": event,
            "Idempotency-Key": delivery or str(uuid.uuid4()),
        }
        if token is not None:
            headers["X-Gitlab-Token"] = token
        return self.post("/webhooks/gitlab", body, headers)

    def mlflow(
        self,
        payload: dict[str, Any],
        delivery: str | None = None,
        timestamp: int | None = None,
        secret: str = MLFLOW_SECRET,
    ) -> requests.Response:
        body = json.dumps(payload).encode()
        delivery = delivery or str(uuid.uuid4())
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": sign_mlflow(secret, delivery, stamp, body),
        }
        return self.post("/webhooks/mlflow", body, headers)


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start the production HTTP stack (HttpServer = waitress) for an app, on a free port."""
    running: list[tuple[HttpServer, threading.Thread, WebhookApp]] = []

    def start(
        settings: Settings = SETTINGS,
        dispatch: Recorder | None = None,
        alias: Recorder | None = None,
        **options: Any,
    ) -> Served:
        dispatch = dispatch or Recorder()
        alias = alias or Recorder()
        app = WebhookApp(settings, dispatch, alias, **options)
        server = HttpServer(app, "127.0.0.1", 0)
        app.start()
        thread = threading.Thread(target=server.serve_forever, kwargs={"grace": 2}, daemon=True)
        thread.start()
        running.append((server, thread, app))
        host, port = server.addresses[0]
        return Served(app, f"http://{host}:{port}", dispatch, alias)

    yield start
    for server, thread, app in running:
        server.shutdown()
        thread.join(10)
        app.stop(5)


# --- accepted comments ----------------------------------------------------------------------------


def test_github_pr_comment_is_accepted_and_dispatched_once(serve: Callable[..., Served]) -> None:
    served = serve()
    response = served.github(raw_webhook("github_issue_comment_pr"), delivery="gh-d-1")
    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    assert served.app.drain(5)
    assert served.dispatch.calls == [
        CommentEvent(
            platform="github",
            thread_kind="merge_request",
            thread_number="31",
            comment_id="2712345601",
            author="dana",
            body="/promote\r\nChecked the metrics and the drift report.",
            action="created",
            author_id="5810042",
            created_at="2025-03-04T10:15:00Z",
            project=ProjectRef(id="186853002", path="ml-team/soccer-model"),
            delivery_id="gh-d-1",
        )
    ]


def test_github_issue_comment(serve: Callable[..., Served]) -> None:
    served = serve()
    assert served.github(load_webhook("github_issue_comment_issue")).status_code == 202
    assert served.app.drain(5)
    [event] = served.dispatch.calls
    assert (event.thread_kind, event.thread_number, event.comment_id) == (
        "issue",
        "8",
        "2712345602",
    )
    assert event.body.startswith("/rollback 5")


@pytest.mark.parametrize(
    ("fixture", "kind", "number", "comment_id"),
    [
        ("gitlab_note_merge_request", "merge_request", "12", "3101"),
        ("gitlab_note_issue", "issue", "7", "3102"),
    ],
)
def test_gitlab_note_hooks(
    serve: Callable[..., Served], fixture: str, kind: str, number: str, comment_id: str
) -> None:
    served = serve()
    response = served.gitlab(raw_webhook(fixture), delivery="gl-d-1")
    assert response.status_code == 202
    assert served.app.drain(5)
    [event] = served.dispatch.calls
    assert (event.platform, event.thread_kind, event.thread_number) == ("gitlab", kind, number)
    assert (event.comment_id, event.author, event.delivery_id) == (comment_id, "dana", "gl-d-1")


def test_github_form_encoded_delivery(serve: Callable[..., Served]) -> None:
    """GitHub's other content type: payload=<urlencoded JSON>, signed as sent."""
    served = serve()
    body = "payload=" + quote(raw_webhook("github_issue_comment_pr").decode())
    response = served.post(
        "/webhooks/github",
        body.encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": "gh-form-1",
            "X-Hub-Signature-256": sign_github(GITHUB_SECRET, body.encode()),
        },
    )
    assert response.status_code == 202
    assert served.app.drain(5)
    assert [e.comment_id for e in served.dispatch.calls] == ["2712345601"]


# --- refused deliveries ---------------------------------------------------------------------------


def test_bad_or_missing_github_signatures_are_401(serve: Callable[..., Served]) -> None:
    served = serve()
    body = raw_webhook("github_issue_comment_pr")
    assert served.github(body, signature="sha256=" + "0" * 64).status_code == 401
    assert served.github(body, signature=sign_github("wrong secret", body)).status_code == 401
    assert served.github(body, signature=sign_github(GITHUB_SECRET, body + b" ")).status_code == 401
    unsigned = served.post(
        "/webhooks/github", body, {"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "x"}
    )
    assert unsigned.status_code == 401
    assert "X-Hub-Signature-256" in unsigned.json()["error"]
    assert served.app.drain(5)
    assert served.dispatch.calls == []


def test_bad_or_missing_gitlab_tokens_are_401(serve: Callable[..., Served]) -> None:
    served = serve()
    body = raw_webhook("gitlab_note_issue")
    assert served.gitlab(body, token="gl-webhook-secret-2").status_code == 401
    assert served.gitlab(body, token="").status_code == 401
    assert served.gitlab(body, token=None).status_code == 401
    assert served.app.drain(5)
    assert served.dispatch.calls == []


def test_a_route_without_a_secret_refuses_every_delivery(serve: Callable[..., Served]) -> None:
    served = serve(Settings(github_webhook_secret=Secret(GITHUB_SECRET)))
    refused = served.gitlab(raw_webhook("gitlab_note_issue"), token="")
    assert refused.status_code == 403
    assert refused.json() == {"error": "webhook secret not configured"}
    assert served.mlflow({"entity": "model_version_alias"}).status_code == 403
    assert served.github(raw_webhook("github_issue_comment_issue")).status_code == 202
    assert served.app.drain(5)
    assert [e.platform for e in served.dispatch.calls] == ["github"]


def test_a_body_over_one_mebibyte_is_413(serve: Callable[..., Served]) -> None:
    served = serve()
    body = b'{"pad": "' + b"x" * (2 * MAX_BODY) + b'"}'
    response = served.github(body)
    assert response.status_code == 413
    assert served.dispatch.calls == []


@pytest.mark.parametrize(
    ("body", "event", "error"),
    [
        (b'{"action": "created", "issue": ', "issue_comment", "malformed JSON"),
        (b"\xff\xfe not utf-8", "issue_comment", "malformed JSON"),
        (b'{"action": "created", "issue": {"number": 8}}', "issue_comment", "comment"),
        (b"[1, 2, 3]", "issue_comment", "payload"),
        (b'{"action": "created"}', "", "X-GitHub-Event"),
    ],
)
def test_malformed_payloads_are_400(
    serve: Callable[..., Served], body: bytes, event: str, error: str
) -> None:
    served = serve()
    response = served.github(body, event=event)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert served.dispatch.calls == []


def test_gitlab_note_missing_fields_is_400(serve: Callable[..., Served]) -> None:
    served = serve()
    payload = load_webhook("gitlab_note_merge_request")
    del payload["user"]
    response = served.gitlab(payload)
    assert response.status_code == 400
    assert "user" in response.json()["error"]


# --- events that need no work ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "fixture", "event"),
    [
        ("github", "github_ping", "ping"),
        ("github", "github_pull_request_opened", "pull_request"),
        ("github", "github_issue_comment_deleted", "issue_comment"),
        ("github", "github_issue_comment_by_bot", "issue_comment"),
        ("github", "github_issue_comment_edited", "issue_comment"),
        ("gitlab", "gitlab_note_issue_edited", "Note Hook"),
        ("gitlab", "gitlab_note_commit", "Note Hook"),
        ("gitlab", "gitlab_merge_request_hook", "Merge Request Hook"),
    ],
)
def test_events_without_work_are_200_and_not_dispatched(
    serve: Callable[..., Served], platform: str, fixture: str, event: str
) -> None:
    served = serve()
    send = served.github if platform == "github" else served.gitlab
    response = send(raw_webhook(fixture), event=event)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert served.app.drain(5)
    assert served.dispatch.calls == []


def test_chatter_is_not_queued(serve: Callable[..., Served]) -> None:
    served = serve()
    for text in ("LGTM, thanks!", "> /promote\nquoting", "    /promote", "see `/promote`"):
        payload = load_webhook("github_issue_comment_issue")
        payload["comment"]["body"] = text
        assert served.github(payload).json() == {"status": "ignored", "reason": "not a command"}
    mention = load_webhook("github_issue_comment_issue")
    mention["comment"]["body"] = "@some-bot rollback 3"  # the handler checks the bot's name
    assert served.github(mention).status_code == 202


# --- de-duplication -------------------------------------------------------------------------------


def test_the_same_delivery_twice_is_dispatched_once(serve: Callable[..., Served]) -> None:
    served = serve()
    body = raw_webhook("github_issue_comment_pr")
    assert served.github(body, delivery="same-1").status_code == 202
    again = served.github(body, delivery="same-1")
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert served.app.drain(5)
    assert len(served.dispatch.calls) == 1


def test_the_same_comment_under_another_delivery_id_is_a_duplicate(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    assert served.gitlab(raw_webhook("gitlab_note_issue"), delivery="a").status_code == 202
    again = served.gitlab(raw_webhook("gitlab_note_issue"), delivery="b")
    assert again.json() == {"status": "duplicate"}
    other = load_webhook("gitlab_note_issue")
    other["object_attributes"]["id"] = 3999
    assert served.gitlab(other, delivery="c").status_code == 202
    assert served.app.drain(5)
    assert [e.comment_id for e in served.dispatch.calls] == ["3102", "3999"]


# --- answering first, working after ---------------------------------------------------------------


def test_the_answer_comes_before_the_work(serve: Callable[..., Served]) -> None:
    gate = threading.Event()
    served = serve(dispatch=Recorder(gate=gate))
    response = served.github(raw_webhook("github_issue_comment_pr"))
    # The 202 is here while dispatch is still running (blocked on the gate).
    assert response.status_code == 202
    assert served.dispatch.started.wait(5)
    assert not served.dispatch.finished.is_set()
    gate.set()
    assert served.app.drain(5)
    assert served.dispatch.finished.is_set()


def test_a_failing_dispatch_does_not_kill_the_worker(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    served = serve(dispatch=Recorder(fail_always=True), workers=1, sleep=lambda _s: None)
    assert served.github(raw_webhook("github_issue_comment_pr")).status_code == 202
    assert served.github(raw_webhook("github_issue_comment_issue")).status_code == 202
    assert served.app.drain(5)
    assert [e.comment_id for e in served.dispatch.calls] == ["2712345601"] * 3 + ["2712345602"] * 3
    failure = next(r for r in caplog.records if "giving up" in r.getMessage())
    assert failure.levelno == logging.ERROR
    assert failure.exc_info is not None and "boom in dispatch" in caplog.text
    assert requests.get(f"{served.url}/healthz", timeout=5).status_code == 200


def test_a_failed_job_is_retried_with_backoff_and_handled_once(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    sleeps: list[float] = []
    served = serve(dispatch=Recorder(fail_first=True), sleep=sleeps.append)
    response = served.github(raw_webhook("github_issue_comment_pr"), delivery="flaky-1")
    assert response.status_code == 202
    assert served.app.drain(5)
    # One failed attempt (a lock timeout, say), one wait, one success: handled once.
    assert [e.comment_id for e in served.dispatch.calls] == ["2712345601"] * 2
    assert [e.comment_id for e in served.dispatch.handled] == ["2712345601"]
    assert sleeps == [1.0]
    retry = next(r for r in caplog.records if "retrying in 1 s" in r.getMessage())
    assert retry.levelno == logging.WARNING and retry.exc_info is not None
    assert not any("giving up" in r.getMessage() for r in caplog.records)
    # Done: the same delivery (or the same comment) again is still a duplicate.
    again = served.github(raw_webhook("github_issue_comment_pr"), delivery="flaky-1")
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert served.app.drain(5)
    assert len(served.dispatch.calls) == 2


def test_a_job_failing_every_attempt_is_forgotten_so_a_redelivery_is_taken(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    sleeps: list[float] = []
    served = serve(dispatch=Recorder(fail_always=True), sleep=sleeps.append)
    assert (
        served.github(raw_webhook("github_issue_comment_pr"), delivery="down-1").status_code == 202
    )
    assert served.app.drain(5)
    assert len(served.dispatch.calls) == 3
    assert sleeps == [1.0, 4.0]
    assert sum("giving up" in r.getMessage() for r in caplog.records) == 1
    assert len(served.app.seen) == 0  # both the delivery and the comment key released
    # The maintainer presses "Redeliver" on the forge: taken and tried again, not a duplicate.
    served.dispatch.fail_always = False
    redelivery = served.github(raw_webhook("github_issue_comment_pr"), delivery="down-1")
    assert (redelivery.status_code, redelivery.json()) == (202, {"status": "accepted"})
    assert served.app.drain(5)
    assert len(served.dispatch.calls) == 4
    assert [e.delivery_id for e in served.dispatch.handled] == ["down-1"]


def test_a_failed_alias_report_is_forgotten_too(serve: Callable[..., Served]) -> None:
    served = serve(alias=Recorder(fail_always=True), retry_delays=(0.0,), sleep=lambda _s: None)
    assert served.mlflow(_alias_payload(), delivery="mlf-down").status_code == 202
    assert served.app.drain(5)
    assert len(served.alias.calls) == 2  # retry_delays=(0,): two attempts
    assert served.mlflow(_alias_payload(), delivery="mlf-down").status_code == 202


def test_a_full_queue_is_503_and_the_retry_is_not_a_duplicate(
    serve: Callable[..., Served],
) -> None:
    gate = threading.Event()
    served = serve(dispatch=Recorder(gate=gate), workers=1, queue_size=1)
    assert served.github(raw_webhook("github_issue_comment_pr")).status_code == 202
    assert served.dispatch.started.wait(5)  # the worker holds the first one
    assert served.github(raw_webhook("github_issue_comment_issue")).status_code == 202  # queued
    payload = load_webhook("github_issue_comment_issue")
    payload["comment"]["id"] = 2712345699
    busy = served.github(payload, delivery="retry-me")
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "30"
    assert requests.get(f"{served.url}/healthz", timeout=5).status_code == 503
    gate.set()
    assert served.app.drain(5)
    assert served.github(payload, delivery="retry-me").status_code == 202
    assert served.app.drain(5)
    assert len(served.dispatch.calls) == 3


def test_graceful_stop_finishes_the_queued_work(serve: Callable[..., Served]) -> None:
    served = serve(dispatch=Recorder(delay=0.2), workers=1)
    for comment_id in (1, 2, 3):
        payload = load_webhook("github_issue_comment_issue")
        payload["comment"]["id"] = comment_id
        assert served.github(payload).status_code == 202
    assert served.app.stop(10) is True
    assert [e.comment_id for e in served.dispatch.calls] == ["1", "2", "3"]
    # Stopped: new work is refused and the health check says so.
    payload = load_webhook("github_issue_comment_issue")
    payload["comment"]["id"] = 4
    assert served.github(payload).status_code == 503
    assert requests.get(f"{served.url}/healthz", timeout=5).status_code == 503


# --- only the configured forge's route ------------------------------------------------------------


def test_the_other_forges_route_is_404_whatever_its_secret(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(SETTINGS, platform="gitlab")
    served = serve(settings, allowed_platforms=[settings.platform])
    # A well-signed GitHub delivery: its issue numbers and user ids mean nothing on GitLab.
    github = served.github(raw_webhook("github_issue_comment_pr"), delivery="gh-elsewhere")
    assert github.status_code == 404
    assert github.json() == {"error": "not found: this bot takes no github deliveries"}
    assert requests.get(f"{served.url}/webhooks/github", timeout=5).status_code == 404
    record = next(r for r in caplog.records if "takes no github" in r.getMessage())
    assert (record.delivery_id, record.platform) == ("gh-elsewhere", "github")  # type: ignore[attr-defined]
    # The configured forge and MLflow are served as ever.
    assert served.gitlab(load_webhook("gitlab_note_merge_request")).status_code == 202
    assert served.mlflow(_alias_payload()).status_code == 202
    assert served.app.drain(5)
    assert [e.platform for e in served.dispatch.calls] == ["gitlab"]
    assert len(served.alias.calls) == 1
    assert served.app.allows("gitlab") and served.app.allows("mlflow")
    assert not served.app.allows("github")


def test_a_local_bot_serves_only_mlflow(serve: Callable[..., Served]) -> None:
    served = serve(allowed_platforms=["local"])
    assert served.github(raw_webhook("github_issue_comment_pr")).status_code == 404
    assert served.gitlab(load_webhook("gitlab_note_merge_request")).status_code == 404
    assert served.mlflow(_alias_payload()).status_code == 202
    assert served.app.drain(5)
    assert served.dispatch.calls == []


def test_start_up_warns_about_a_secret_for_another_forge(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(
        platform="gitlab",
        github_webhook_secret=Secret(GITHUB_SECRET),
        mlflow_webhook_secret=Secret(MLFLOW_SECRET),
    )
    app = WebhookApp(settings, Recorder(), allowed_platforms=[settings.platform])
    with caplog.at_level(logging.WARNING, logger="bot.intake.http_server"):
        log_route_warnings(settings, app)
    messages = sorted(r.getMessage() for r in caplog.records)
    assert messages == [
        "GITHUB_WEBHOOK_SECRET is set, but this bot serves gitlab: /webhooks/github answers 404",
        "GITLAB_WEBHOOK_SECRET is not set: /webhooks/gitlab refuses every delivery",
    ]
    assert GITHUB_SECRET not in caplog.text


# --- other routes ---------------------------------------------------------------------------------


def test_healthz_and_unknown_routes(serve: Callable[..., Served]) -> None:
    served = serve()
    health = requests.get(f"{served.url}/healthz", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok", "queued": 0})
    assert requests.get(f"{served.url}/nope", timeout=5).status_code == 404
    wrong = requests.get(f"{served.url}/webhooks/github", timeout=5)
    assert (wrong.status_code, wrong.headers["Allow"]) == (405, "POST")
    assert requests.post(f"{served.url}/healthz", timeout=5).status_code == 405


def test_an_unexpected_error_is_500_with_a_traceback_in_the_log(
    serve: Callable[..., Served],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr("bot.intake.sources.github_comment_event", broken)
    served = serve()
    response = served.github(raw_webhook("github_issue_comment_pr"), delivery="d-500")
    assert (response.status_code, response.json()) == (500, {"error": "internal error"})
    record = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert record.exc_info is not None
    assert (record.delivery_id, record.platform) == ("d-500", "github")  # type: ignore[attr-defined]
    assert served.github(raw_webhook("github_issue_comment_issue")).status_code == 500


def test_logs_carry_context_and_never_a_secret_or_signature(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    served = serve()
    body = raw_webhook("github_issue_comment_pr")
    bad = sign_github("not the secret", body)
    served.github(body, signature=bad, delivery="log-1")
    served.gitlab(raw_webhook("gitlab_note_issue"), token="wrong-token-value", delivery="log-2")
    served.github(body, delivery="log-3")
    assert served.app.drain(5)
    records = [r for r in caplog.records if r.name.startswith("bot.")]
    assert {r.delivery_id for r in records} >= {"log-1", "log-2", "log-3"}  # type: ignore[attr-defined]
    assert all(hasattr(r, "platform") for r in records)
    for leaked in (GITHUB_SECRET, GITLAB_SECRET, bad, bad.removeprefix("sha256="), "wrong-token"):
        assert leaked not in caplog.text
    assert "Checked the metrics" not in caplog.text  # no bodies in the log


# --- MLflow ---------------------------------------------------------------------------------------


def _alias_payload(alias: str = "champion", version: str = "7", **more: Any) -> dict[str, Any]:
    return {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2025-03-05T16:40:00.000000+00:00",
        "data": {"name": "soccer-match-outcome", "alias": alias, "version": version},
        **more,
    }


def test_mlflow_champion_change_reaches_the_callback(serve: Callable[..., Served]) -> None:
    served = serve()
    response = served.mlflow(_alias_payload(), delivery="ml-1")
    assert response.status_code == 202
    assert served.app.drain(5)
    assert served.alias.calls == [
        AliasChange(
            model="soccer-match-outcome",
            alias="champion",
            version=7,
            delivery_id="ml-1",
            at="2025-03-05T16:40:00.000000+00:00",
        )
    ]
    assert served.mlflow(_alias_payload(), delivery="ml-1").json() == {"status": "duplicate"}
    assert served.dispatch.calls == []


def test_mlflow_signature_and_freshness_are_checked(serve: Callable[..., Served]) -> None:
    served = serve()
    stale = served.mlflow(_alias_payload(), timestamp=int(time.time()) - 301)
    assert stale.status_code == 401
    assert "X-MLflow-Timestamp" in stale.json()["error"]
    assert served.mlflow(_alias_payload(), secret="another secret").status_code == 401
    unsigned = served.post(
        "/webhooks/mlflow", json.dumps(_alias_payload()).encode(), {"X-MLflow-Delivery-Id": "x"}
    )
    assert unsigned.status_code == 401
    assert served.app.drain(5)
    assert served.alias.calls == []


def test_mlflow_events_that_need_no_work(serve: Callable[..., Served]) -> None:
    served = serve(champion_alias="prod")
    assert served.mlflow(_alias_payload(alias="candidate")).json()["status"] == "ignored"
    other = {"entity": "model_version", "action": "created", "data": {"name": "m"}}
    assert served.mlflow(other).json()["status"] == "ignored"
    prompt = _alias_payload(alias="prod", entity="prompt_alias")
    assert served.mlflow(prompt).json()["status"] == "ignored"
    assert served.mlflow(_alias_payload(alias="prod")).status_code == 202
    assert served.mlflow({"entity": "model_version_alias"}).status_code == 400
    assert served.app.drain(5)
    assert [c.alias for c in served.alias.calls] == ["prod"]


# --- WSGI edges (no sockets) ----------------------------------------------------------------------


class _Input(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(-1 if size is None else size)
        return super().read(size)


def _call(app: WebhookApp, environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    seen: list[str] = []
    chunks = app(environ, lambda status, _headers: seen.append(status))
    return seen[0], json.loads(b"".join(chunks))


def _environ(body: _Input, **extra: Any) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/github",
        "wsgi.input": body,
        "HTTP_X_GITHUB_EVENT": "issue_comment",
        **extra,
    }


def test_a_large_content_length_is_refused_without_reading() -> None:
    app = WebhookApp(SETTINGS, Recorder())
    body = _Input(b"{}")
    status, answer = _call(app, _environ(body, CONTENT_LENGTH=str(MAX_BODY + 1)))
    assert status == "413 Request Entity Too Large"
    assert answer["error"].startswith("body over")
    assert body.asked == []


def test_a_missing_content_length_reads_at_most_the_limit_plus_one() -> None:
    app = WebhookApp(SETTINGS, Recorder())
    body = _Input(b"x" * (2 * MAX_BODY))
    status, _ = _call(app, _environ(body, **{"wsgi.input_terminated": True}))
    assert status.startswith("413")
    assert body.asked == [MAX_BODY + 1]
    # Without a length and without an end marker, nothing is read (PEP 3333): empty body.
    body = _Input(b"{}")
    status, _ = _call(app, _environ(body))
    assert status.startswith("401") and body.asked == []


# --- run_server: SIGTERM stops gracefully ---------------------------------------------------------

_SERVER_SCRIPT = textwrap.dedent(
    """
    import logging, sys, time
    from pathlib import Path
    from bot.config.settings import Secret, Settings
    from bot.intake.http_server import run_server
    from bot.intake.wsgi import WebhookApp

    out = Path(sys.argv[2])

    def dispatch(event, _command):
        time.sleep(0.5)  # slow work still in hand when SIGTERM arrives
        with out.open("a") as f:
            f.write(event.comment_id + "\\n")

    logging.basicConfig(level=logging.INFO)
    settings = Settings(github_webhook_secret=Secret(sys.argv[3]))
    run_server(settings, "127.0.0.1", int(sys.argv[1]), WebhookApp(settings, dispatch, workers=1))
    with out.open("a") as f:
        f.write("returned\\n")
    """
)


@pytest.mark.slow
def test_sigterm_stops_after_the_queued_work(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "done.txt"
    script = tmp_path / "serve.py"
    script.write_text(_SERVER_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(out), GITHUB_SECRET],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.05)
        served = Served(app=None, url=url, dispatch=Recorder(), alias=Recorder())  # type: ignore[arg-type]
        for comment_id in (11, 12):
            payload = load_webhook("github_issue_comment_issue")
            payload["comment"]["id"] = comment_id
            assert served.github(payload).status_code == 202
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    assert out.read_text().split() == ["11", "12", "returned"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=1)


def test_a_body_of_exactly_one_mebibyte_is_taken(serve: Callable[..., Served]) -> None:
    """waitress refuses a body *at* its max_request_body_size: the limit is MAX_BODY + 1."""
    served = serve()
    payload = load_webhook("github_issue_comment_issue")
    payload["pad"] = ""
    size = len(json.dumps(payload).encode())
    payload["pad"] = "x" * (MAX_BODY - size)
    body = json.dumps(payload).encode()
    assert len(body) == MAX_BODY
    assert served.github(body).status_code == 202
