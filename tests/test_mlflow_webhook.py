"""MLflow alias webhooks: parsing, the external-change report, and a real MLflow delivering one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.ci.request_body import RequestData, Side, render_request_body, request_title
from bot.commands.change import move_champion
from bot.commands.external_change import AliasChange, report_external_change
from bot.config import Params
from bot.context import Context
from bot.forges.local import LocalForge
from bot.intake.payloads import PayloadError, parse_alias_change
from bot.records import Change
from bot.registry import ModelState, Registry
from bot.settings import Secret, Settings
from bot.tags import HISTORY_TAG, PENDING_TAG
from bot.timestamps import utc_now_iso
from bot.versions import RunInfo, VersionInfo
from tests.helpers import log_training_run
from tests.mlflow_server import MlflowServer, start_mlflow_server

MODEL = "soccer-match-outcome"
LABELS = ["model-promotion"]
_ENVELOPE_AT = "2025-03-05T16:40:00.123456+00:00"


def _envelope(action: str = "created", **data: Any) -> dict[str, Any]:
    return {
        "entity": "model_version_alias",
        "action": action,
        "timestamp": _ENVELOPE_AT,
        "data": {"name": MODEL, "alias": "champion", **data},
    }


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            _envelope(version="7"),
            AliasChange(MODEL, "champion", 7, "d", "created", _ENVELOPE_AT),
        ),
        (
            _envelope(version=12),
            AliasChange(MODEL, "champion", 12, "d", "created", _ENVELOPE_AT),
        ),
        (
            _envelope("deleted"),
            AliasChange(
                MODEL, "champion", None, "d", "deleted", "2025-03-05T16:40:00.123456+00:00"
            ),
        ),
        ({**_envelope(version="7"), "entity": "prompt_alias"}, None),
        ({**_envelope(version="7"), "entity": "model_version"}, None),
        ({**_envelope(version="7"), "action": "updated"}, None),
    ],
)
def test_parse_alias_change(payload: dict[str, Any], expected: AliasChange | None) -> None:
    assert parse_alias_change(payload, "d") == expected


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"action": "created"},
        {"entity": "model_version_alias", "action": "created"},
        {**_envelope(), "data": {"name": MODEL, "alias": "champion"}},  # no version
        _envelope(version="v7"),
        _envelope(version="0"),
        _envelope(version=True),
        {**_envelope(version="7"), "data": {"name": "", "alias": "champion", "version": "7"}},
        {**_envelope(version="7"), "data": {"name": MODEL, "alias": 3, "version": "7"}},
    ],
)
def test_malformed_alias_payloads_raise(payload: object) -> None:
    with pytest.raises(PayloadError):
        parse_alias_change(payload, "d")


# --- reporting, with a fake registry --------------------------------------------------------------


@dataclass
class FakeRegistry:
    """The model as the bot keeps it: the champion alias, the history, the intent in flight."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    intent: dict[str, Any] | None = None
    champion: int | None = None
    reads: int = 0

    def state(self, name: str) -> ModelState:
        self.reads += 1
        if name != MODEL:
            return ModelState({}, {})
        tags = {HISTORY_TAG: json.dumps(self.entries)}
        if self.intent is not None:
            tags[PENDING_TAG] = json.dumps(self.intent)
        aliases = {"champion": self.champion} if self.champion is not None else {}
        return ModelState(aliases, tags)


def _entry(to: int, at: str = "2025-03-01T09:00:00Z", actor: str = "dana") -> dict[str, Any]:
    return {"at": at, "from": to - 1, "to": to, "actor": actor, "action": "promote"}


def _context(tmp_path: Path, registry: Any) -> Context:
    settings = Settings(platform="local", local_dir=tmp_path / "forge")
    ctx = Context(settings=settings, params=Params())
    ctx.__dict__["registry"] = registry  # cached_property: the fake stands in for MLflow
    return ctx


def _request(forge: LocalForge, model: str, version: int) -> str:
    """A request as the product renders it, from fixed values (no registry is read)."""
    ctx = Context(settings=Settings(platform="local", local_dir=forge.root), params=Params())
    info = VersionInfo(model=model, version=version, run_id="r1")
    data = RequestData(candidate=Side(info, RunInfo(run_id="r1", experiment_id="0")), champion=None)
    body = render_request_body(ctx, info, data=data)
    return forge.open_issue(request_title(model, version), body, LABELS).number


def _comments(forge: LocalForge, number: str) -> list[str]:
    return [c.body for c in forge.list_comments(forge.get_thread("issue", number))]


@pytest.fixture
def threads(tmp_path: Path) -> tuple[LocalForge, list[str]]:
    """Two requests of the model (older, newer), then a newer one of another model."""
    forge = LocalForge(tmp_path / "forge")
    numbers = [_request(forge, MODEL, 5), _request(forge, MODEL, 6), _request(forge, "other", 1)]
    return forge, numbers


def test_an_external_change_is_reported_once_in_the_latest_request(
    tmp_path: Path, threads: tuple[LocalForge, list[str]]
) -> None:
    forge, (older, latest, other) = threads
    registry = FakeRegistry([_entry(5), _entry(6, actor="erin")], champion=4)
    ctx = _context(tmp_path, registry)
    change = AliasChange(MODEL, "champion", 4, "dlv-1", at="2025-03-05T16:40:00+00:00")

    outcome = report_external_change(ctx, change)

    assert outcome.status == "reported"
    assert registry.reads == 1  # one read of the model decides
    [body] = _comments(forge, latest)
    assert "champion of soccer-match-outcome was moved to v4 outside promotion-bot" in body
    assert "v6 by @erin at 2025-03-01T09:00:00Z" in body
    assert "`/rollback 6`" in body
    assert "<!-- promotion-bot:external state=4_2025-03-01T09:00:00Z -->" in body
    assert _comments(forge, older) == [] and _comments(forge, other) == []
    # The same delivery again, or another delivery about the same move: still one comment.
    assert report_external_change(ctx, change).status == "duplicate"
    again = AliasChange(MODEL, "champion", 4, "dlv-2")
    assert report_external_change(ctx, again).status == "duplicate"
    assert len(_comments(forge, latest)) == 1


def test_each_new_disagreement_is_reported_even_back_to_an_earlier_one(
    tmp_path: Path, threads: tuple[LocalForge, list[str]]
) -> None:
    forge, (_, latest, _) = threads
    registry = FakeRegistry([_entry(6)], champion=4)
    ctx = _context(tmp_path, registry)
    for version in (4, 3, 4):
        registry.champion = version
        change = AliasChange(MODEL, "champion", version, f"dlv-{version}")
        assert report_external_change(ctx, change).status == "reported"
    bodies = _comments(forge, latest)
    assert [("moved to v4" in b, "moved to v3" in b) for b in bodies] == [
        (True, False),
        (False, True),
        (True, False),
    ]


def test_the_event_says_something_moved_the_registry_says_what(
    tmp_path: Path, threads: tuple[LocalForge, list[str]]
) -> None:
    """The report shows the champion as the registry has it when the worker reads it."""
    forge, (_, latest, _) = threads
    ctx = _context(tmp_path, FakeRegistry([_entry(6)], champion=3))
    report_external_change(ctx, AliasChange(MODEL, "champion", 2, "dlv-late"))
    [body] = _comments(forge, latest)
    assert "moved to v3" in body and "v2" not in body.split("outside")[0]


def test_a_deleted_champion_is_reported(
    tmp_path: Path, threads: tuple[LocalForge, list[str]]
) -> None:
    forge, (_, latest, _) = threads
    ctx = _context(tmp_path, FakeRegistry([_entry(6)], champion=None))
    report_external_change(ctx, AliasChange(MODEL, "champion", None, "dlv-2", "deleted"))
    [body] = _comments(forge, latest)
    assert "champion of soccer-match-outcome was deleted outside promotion-bot" in body
    assert "`/rollback 6`" in body


@pytest.mark.parametrize(
    ("registry", "change"),
    [
        # the champion is the history's last `to`: the bot's own move (or a no-op re-set)
        (FakeRegistry([_entry(5), _entry(6)], champion=6), AliasChange(MODEL, "champion", 6, "d")),
        # MLflow fired between the bot's intent record and its history entry
        (
            FakeRegistry([_entry(5)], intent=_entry(6), champion=6),
            AliasChange(MODEL, "champion", 6, "d"),
        ),
        # the bot moved 5 -> 6 -> 7; the event for 6 is read after the second move
        (FakeRegistry([_entry(6), _entry(7)], champion=7), AliasChange(MODEL, "champion", 6, "d")),
        # nothing recorded and nothing set (set by hand and deleted again: both were events)
        (FakeRegistry([], champion=None), AliasChange(MODEL, "champion", None, "d", "deleted")),
        # not this bot's model, or not the champion alias
        (FakeRegistry([_entry(6)], champion=2), AliasChange("other", "champion", 1, "d")),
        (FakeRegistry([_entry(6)], champion=2), AliasChange(MODEL, "candidate", 9, "d")),
    ],
)
def test_changes_the_bot_accounts_for_are_not_reported(
    tmp_path: Path,
    threads: tuple[LocalForge, list[str]],
    registry: FakeRegistry,
    change: AliasChange,
) -> None:
    forge, numbers = threads
    outcome = report_external_change(_context(tmp_path, registry), change)
    assert outcome.status == "ignored"
    assert all(_comments(forge, number) == [] for number in numbers)


def test_an_old_record_of_the_same_version_does_not_hide_a_new_external_move(
    tmp_path: Path, threads: tuple[LocalForge, list[str]]
) -> None:
    forge, (_, latest, _) = threads
    registry = FakeRegistry(
        [_entry(5, "2025-03-01T09:00:00Z"), _entry(6, "2025-03-02T09:00:00Z")], champion=5
    )
    change = AliasChange(MODEL, "champion", 5, "d", at="2025-03-05T16:40:00+00:00")
    assert report_external_change(_context(tmp_path, registry), change).status == "reported"
    assert len(_comments(forge, latest)) == 1


def test_no_request_thread_means_nothing_to_post(tmp_path: Path) -> None:
    ctx = _context(tmp_path, FakeRegistry([_entry(6)], champion=3))
    outcome = report_external_change(ctx, AliasChange(MODEL, "champion", 3, "d"))
    assert (outcome.status, outcome.detail) == ("ignored", "no request thread")


def _set_author(forge: LocalForge, number: str, author: str) -> None:
    """What a person's own issue looks like on the local forge: the same file, another author."""
    path = forge.root / "threads" / f"{number}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["author"] = author
    path.write_text(json.dumps(data), encoding="utf-8")


def test_a_persons_issue_quoting_a_request_marker_gets_no_report(
    tmp_path: Path, threads: tuple[LocalForge, list[str]]
) -> None:
    forge, (_, latest, _) = threads
    # The newest labelled issue carries the model's marker, but a person opened it.
    quoted = _request(forge, MODEL, 7)
    _set_author(forge, quoted, "mallory")
    ctx = _context(tmp_path, FakeRegistry([_entry(6)], champion=4))

    outcome = report_external_change(ctx, AliasChange(MODEL, "champion", 4, "dlv-p"))

    assert outcome.status == "reported"
    assert _comments(forge, quoted) == []
    assert len(_comments(forge, latest)) == 1


def test_only_a_persons_issue_means_nothing_to_post(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge")
    quoted = _request(forge, MODEL, 7)
    _set_author(forge, quoted, "mallory")
    ctx = _context(tmp_path, FakeRegistry([_entry(6)], champion=4))
    outcome = report_external_change(ctx, AliasChange(MODEL, "champion", 4, "dlv-q"))
    assert (outcome.status, outcome.detail) == ("ignored", "no request thread")
    assert _comments(forge, quoted) == []


# --- reporting, against a real registry -----------------------------------------------------------


def _two_versions(tracking_uri: str, model: str) -> Registry:
    registry = Registry(tracking_uri)
    registry.ensure_model(model)
    for _ in range(2):
        run_id = log_training_run(tracking_uri, {"final.logloss": 0.6})
        registry.create_version(model, f"runs:/{run_id}/model", run_id)
    return registry


def _real_world(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> tuple[Registry, Context, LocalForge]:
    """Two versions in a real registry, and a bot on the local forge for the model."""
    registry = _two_versions(tracking_uri, model_name)
    settings = Settings(platform="local", local_dir=tmp_path / "forge", tracking_uri=tracking_uri)
    params = Params.model_validate({"register_model": {"model_name": model_name}})
    return registry, Context(settings=settings, params=params), LocalForge(tmp_path / "forge")


def test_real_registry_own_change_is_quiet_and_a_direct_set_is_reported(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    registry, ctx, forge = _real_world(tmp_path, tracking_uri, model_name)
    number = _request(forge, model_name, 2)

    change = Change(model_name, None, 2, "dana", "promote", "", "", "c1", utc_now_iso())
    move_champion(registry, "champion", change)
    own = AliasChange(model_name, "champion", 2, "dlv-own")
    assert report_external_change(ctx, own).status == "ignored"
    assert _comments(forge, number) == []

    registry.set_alias(model_name, "champion", 1)  # someone in the MLflow UI
    external = AliasChange(model_name, "champion", 1, "dlv-ext")
    assert report_external_change(ctx, external).status == "reported"
    [body] = _comments(forge, number)
    assert f"champion of {model_name} was moved to v1 outside promotion-bot" in body
    assert "`/rollback 2`" in body


def test_a_hand_move_back_to_a_version_the_bot_set_minutes_ago_is_reported(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    """/promote v2, /rollback 1, then champion set to v2 by hand: the registry now disagrees
    with the history, however recently the bot itself had set v2 (issue 10, item 4)."""
    registry, ctx, forge = _real_world(tmp_path, tracking_uri, model_name)
    number = _request(forge, model_name, 2)
    for action, to in (("promote", 2), ("rollback", 1)):
        move_champion(
            registry,
            "champion",
            Change(model_name, None, to, "maria", action, "", "", f"c{to}", utc_now_iso()),
        )
        own = AliasChange(model_name, "champion", to, f"dlv-own-{to}", at=utc_now_iso())
        assert report_external_change(ctx, own).status == "ignored"

    registry.set_alias(model_name, "champion", 2)  # someone in the MLflow UI, a minute later
    by_hand = AliasChange(model_name, "champion", 2, "dlv-hand", at=utc_now_iso())

    assert report_external_change(ctx, by_hand).status == "reported"
    [body] = _comments(forge, number)
    assert f"champion of {model_name} was moved to v2 outside promotion-bot" in body
    assert "`/rollback 1`" in body


# --- a real MLflow server delivering the webhook --------------------------------------------------


@pytest.fixture(scope="module")
def webhook_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A private MLflow server allowed to deliver webhooks over http to loopback."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
        patch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
        server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-webhooks"))
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_mlflow_delivers_a_signed_alias_event_we_accept(webhook_mlflow: MlflowServer) -> None:
    from mlflow import MlflowClient

    from bot.intake.http_server import HttpServer
    from bot.intake.wsgi import WebhookApp

    received: list[AliasChange] = []
    arrived = threading.Event()

    def on_alias_change(change: AliasChange) -> None:
        received.append(change)
        arrived.set()

    secret = "real-mlflow-secret"
    app = WebhookApp(
        Settings(mlflow_webhook_secret=Secret(secret)), lambda _e: None, on_alias_change
    )
    server = HttpServer(app, "127.0.0.1", 0)
    app.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.addresses[0]
        client = MlflowClient(tracking_uri=webhook_mlflow.url)
        client.create_webhook(
            name="promotion-bot",
            url=f"http://{host}:{port}/webhooks/mlflow",
            events=["model_version_alias.created"],
            secret=secret,
        )
        registry = _two_versions(webhook_mlflow.url, "webhook-model")
        registry.set_alias("webhook-model", "candidate", 1)  # delivered, ignored: not champion
        registry.set_alias("webhook-model", "champion", 2)
        assert arrived.wait(30), webhook_mlflow.log_path.read_text()[-2000:]
        assert app.drain(5)
    finally:
        server.shutdown()
        thread.join(10)
        app.stop(5)
    [change] = received
    assert (change.model, change.alias, change.version) == ("webhook-model", "champion", 2)
    assert change.delivery_id and change.at
