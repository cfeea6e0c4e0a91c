"""bot.intake.entry: `handle` routes an event file to the right parser; `serve` opens only the
configured forge's comment route."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.config.params import Params
from bot.config.settings import Secret, Settings
from bot.errors import BotError
from bot.forges.local import LocalForge
from bot.intake.entry import handle_event_file, serve
from bot.intake.wsgi import WebhookApp
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.threads.thread import CommentEvent
from tests.webhook_fixtures import load_webhook


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(Settings(platform="local", local_dir=tmp_path / "forge"), Params())


@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> list[CommentEvent]:
    """The events `handle_event_file` passes to the handler (which has its own tests)."""
    seen: list[CommentEvent] = []

    def record(_ctx: Context, event: CommentEvent) -> Outcome:
        seen.append(event)
        return Outcome("handled", f"comment {event.comment_id}")

    monkeypatch.setattr("bot.intake.entry.route_comment", record)
    return seen


def _event_file(tmp_path: Path, payload: object) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("event_name", "fixture", "platform", "comment_id"),
    [
        ("Note Hook", "gitlab_note_merge_request", "gitlab", "3101"),
        ("Confidential Note Hook", "gitlab_note_issue_confidential", "gitlab", "3103"),
        ("issue_comment", "github_issue_comment_pr", "github", "2712345601"),
    ],
)
def test_comment_events_reach_the_handler(
    ctx: Context,
    handled: list[CommentEvent],
    tmp_path: Path,
    event_name: str,
    fixture: str,
    platform: str,
    comment_id: str,
) -> None:
    outcome = handle_event_file(ctx, event_name, _event_file(tmp_path, load_webhook(fixture)))
    assert outcome == Outcome("handled", f"comment {comment_id}")
    [event] = handled
    assert (event.platform, event.comment_id, event.action) == (platform, comment_id, "created")


@pytest.mark.parametrize(
    ("event_name", "fixture"),
    [
        ("ping", "github_ping"),
        ("push", "github_pull_request_opened"),
        ("Push Hook", "gitlab_note_issue"),
        ("pull_request", "github_pull_request_opened"),
    ],
)
def test_events_without_work_are_ignored(
    ctx: Context, handled: list[CommentEvent], tmp_path: Path, event_name: str, fixture: str
) -> None:
    outcome = handle_event_file(ctx, event_name, _event_file(tmp_path, load_webhook(fixture)))
    assert outcome == Outcome("ignored", f"{event_name} events need no work")
    assert handled == []


def test_bad_event_files_are_bot_errors(
    ctx: Context, handled: list[CommentEvent], tmp_path: Path
) -> None:
    with pytest.raises(BotError, match="cannot read the event file"):
        handle_event_file(ctx, "issue_comment", str(tmp_path / "missing.json"))
    not_json = tmp_path / "bad.json"
    not_json.write_text("{", encoding="utf-8")
    with pytest.raises(BotError, match="not a JSON event payload"):
        handle_event_file(ctx, "issue_comment", str(not_json))
    broken = _event_file(tmp_path, {"object_kind": "note"})
    with pytest.raises(BotError, match="malformed Confidential Note Hook payload"):
        handle_event_file(ctx, "Confidential Note Hook", broken)
    assert handled == []


# --- serve: only the configured forge -------------------------------------------------------------


def test_serve_opens_only_the_configured_forges_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        platform="gitlab",
        gitlab_webhook_secret=Secret("gl"),
        github_webhook_secret=Secret("gh"),
        mlflow_webhook_secret=Secret("ml"),
    )
    echoed: list[str] = []
    # No MLflow and no GitLab here: serve only builds them early to fail fast.
    ctx = Context(
        settings,
        Params(),
        echo=echoed.append,
        registry=object(),
        forge=LocalForge(tmp_path / "forge"),
    )
    started: list[WebhookApp] = []

    def run_server(
        _settings: Settings, host: str, port: int, app: WebhookApp, announce: Any
    ) -> None:
        started.append(app)
        announce([f"http://{host}:{port}"])  # the real one calls it once bound

    monkeypatch.setattr("bot.intake.http_server.run_server", run_server)
    serve(ctx, "127.0.0.1", 8080)

    [app] = started
    assert [name for name in ("gitlab", "github", "mlflow") if app.allows(name)] == [
        "gitlab",
        "mlflow",
    ]
    assert echoed == [
        "promotion-bot serving on http://127.0.0.1:8080 — accepting /webhooks/gitlab, "
        "/webhooks/mlflow"
    ]


def test_serve_local_takes_only_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        platform="local", local_dir=tmp_path / "forge", github_webhook_secret=Secret("gh")
    )
    ctx = Context(settings, Params(), echo=lambda _line: None, registry=object())
    started: list[Any] = []
    monkeypatch.setattr(
        "bot.intake.http_server.run_server", lambda *args, **_: started.append(args[3])
    )
    serve(ctx, "127.0.0.1", 8080)
    [app] = started
    assert not app.allows("github") and not app.allows("gitlab") and app.allows("mlflow")
