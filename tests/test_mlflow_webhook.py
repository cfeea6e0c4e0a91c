"""MLflow alias webhooks: parsing, the external-change report, and a real MLflow delivering one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.ci.request_body import RequestData, Side, render_request_body, request_title
from bot.commands.change import move_champion
from bot.commands.external_change import AliasChange, report_external_change
from bot.config.params import Params
from bot.config.settings import Secret, Settings
from bot.forges.local import LocalForge
from bot.intake.payloads import PayloadError, parse_alias_change
from bot.ledger.store import Where
from bot.registry.client import Registry
from bot.registry.records import Change
from bot.registry.versions import RunInfo, VersionInfo
from bot.runtime.context import Context
from bot.timestamps import utc_now_iso
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


# --- reporting, against the session's real registry -----------------------------------------------


@dataclass
class Bot:
    """A model with versions 1..7 in the real registry, the bot's context, and its forge."""

    registry: Registry
    ctx: Context
    forge: LocalForge

    @property
    def model(self) -> str:
        return self.ctx.model

    def change(self, to: int, action: str = "promote", actor: str = "dana") -> None:
        """A change of the bot, as `/promote` or `/rollback` makes it."""
        change = Change(self.model, None, to, actor, action, "", "", f"c{to}", utc_now_iso())  # type: ignore[arg-type]
        move_champion(self.registry, "champion", change, ledger=self.ctx.ledger)

    def by_hand(self, version: int | None) -> None:
        """Someone in the MLflow UI."""
        if version is None:
            self.registry._models.delete_registered_model_alias(self.model, "champion")
        else:
            self.registry.set_alias(self.model, "champion", version)

    def report(self, version: int | None, delivery: str = "d", action: str = "created") -> str:
        event = AliasChange(self.model, "champion", version, delivery, action)  # type: ignore[arg-type]
        return report_external_change(self.ctx, event).status

    def externals(self) -> list[tuple[int | None, int | None]]:
        experiment_id = self.ctx.ledger.experiment_id()
        entries = self.ctx.ledger.entries(experiment_id, Where(model=self.model))
        return [(e.from_version, e.to_version) for e in entries if e.action == "external"][::-1]


@pytest.fixture
def bot(tmp_path: Path, tracking_uri: str, model_name: str) -> Bot:
    registry = Registry(tracking_uri)
    registry.ensure_model(model_name)
    for _ in range(7):
        run_id = log_training_run(tracking_uri, {"final.logloss": 0.6})
        registry.create_version(model_name, f"runs:/{run_id}/model", run_id)
    settings = Settings(platform="local", local_dir=tmp_path / "forge", tracking_uri=tracking_uri)
    params = Params.model_validate({"register_model": {"model_name": model_name}})
    ctx = Context(settings=settings, params=params)
    return Bot(ctx.registry, ctx, LocalForge(tmp_path / "forge"))


def _request(forge: LocalForge, model: str, version: int, tracking_uri: str) -> str:
    """A request as the product renders it, from fixed values (no registry is read), by the
    bot of `tracking_uri`: its marker carries that bot's id."""
    settings = Settings(platform="local", local_dir=forge.root, tracking_uri=tracking_uri)
    ctx = Context(settings=settings, params=Params())
    info = VersionInfo(model=model, version=version, run_id="r1")
    data = RequestData(candidate=Side(info, RunInfo(run_id="r1", experiment_id="0")), champion=None)
    body = render_request_body(ctx, info, data=data)
    return forge.open_issue(request_title(model, version), body, LABELS).number


def _comments(forge: LocalForge, number: str) -> list[str]:
    return [c.body for c in forge.list_comments(forge.get_thread("issue", number))]


@pytest.fixture
def threads(bot: Bot) -> list[str]:
    """Two requests of the model (older, newer), then a newer one of another model."""
    forge, model, uri = bot.forge, bot.model, bot.registry.tracking_uri
    return [_request(forge, model, v, uri) for v in (5, 6)] + [_request(forge, "other", 1, uri)]


def test_an_external_change_is_reported_once_in_the_latest_request(
    bot: Bot, threads: list[str]
) -> None:
    older, latest, other = threads
    bot.change(5)
    bot.change(6, actor="erin")
    bot.by_hand(4)

    assert bot.report(4, "dlv-1") == "reported"

    [body] = _comments(bot.forge, latest)
    assert f"champion of {bot.model} was moved to v4 outside promotion-bot" in body
    assert "v6 by @erin at " in body
    assert "`/rollback 6`" in body
    assert "<!-- promotion-bot:external state=4_" in body
    assert _comments(bot.forge, older) == [] and _comments(bot.forge, other) == []
    assert bot.externals() == [(6, 4)]
    # The same delivery again, or another delivery about the same move: recorded, so quiet.
    assert bot.report(4, "dlv-1") == "ignored"
    assert bot.report(4, "dlv-2") == "ignored"
    assert len(_comments(bot.forge, latest)) == 1
    assert bot.externals() == [(6, 4)]


def test_each_new_disagreement_is_reported_even_back_to_an_earlier_one(
    bot: Bot, threads: list[str]
) -> None:
    latest = threads[1]
    bot.change(6)
    for version in (4, 3, 4):
        bot.by_hand(version)
        assert bot.report(version, f"dlv-{version}") == "reported"
    bodies = _comments(bot.forge, latest)
    assert [("moved to v4" in b, "moved to v3" in b) for b in bodies] == [
        (True, False),
        (False, True),
        (True, False),
    ]
    assert bot.externals() == [(6, 4), (4, 3), (3, 4)]


def test_a_hand_move_back_to_the_approved_champion_is_recorded_not_reported(
    bot: Bot, threads: list[str]
) -> None:
    bot.change(6)
    bot.by_hand(4)
    assert bot.report(4) == "reported"
    bot.by_hand(6)  # someone put it back
    assert bot.report(6) == "ignored"
    assert len(_comments(bot.forge, threads[1])) == 1
    assert bot.externals() == [(6, 4), (4, 6)]  # --at answers v6 again from that moment


def test_the_event_says_something_moved_the_registry_says_what(
    bot: Bot, threads: list[str]
) -> None:
    """The report shows the champion as the registry has it when the worker reads it."""
    bot.change(6)
    bot.by_hand(3)
    bot.report(2, "dlv-late")
    [body] = _comments(bot.forge, threads[1])
    assert "moved to v3" in body and "v2" not in body.split("outside")[0]


def test_a_deleted_champion_is_reported(bot: Bot, threads: list[str]) -> None:
    bot.change(6)
    bot.by_hand(None)
    assert bot.report(None, "dlv-2", "deleted") == "reported"
    [body] = _comments(bot.forge, threads[1])
    assert f"champion of {bot.model} was deleted outside promotion-bot" in body
    assert "`/rollback 6`" in body
    assert bot.externals() == [(6, None)]


def test_changes_the_bot_accounts_for_are_not_reported(bot: Bot, threads: list[str]) -> None:
    # the champion is the last recorded `to`: the bot's own moves (or a no-op re-set)
    bot.change(5)
    assert bot.report(5) == "ignored"
    bot.change(6)
    bot.change(7)
    assert bot.report(6) == "ignored"  # the event for 6, read after the move to 7
    # MLflow fired between the bot's intent and its record: the intent accounts for it
    intent = Change(bot.model, 7, 3, "dana", "rollback", "", "", "c-flight", utc_now_iso())
    bot.registry.set_pending(bot.model, intent.entry())
    bot.by_hand(3)
    assert bot.report(3) == "ignored"
    # another model, or not the champion alias
    other = AliasChange("other", "champion", 1, "d")
    assert report_external_change(bot.ctx, other).status == "ignored"
    candidate = AliasChange(bot.model, "candidate", 2, "d")
    assert report_external_change(bot.ctx, candidate).status == "ignored"
    assert all(_comments(bot.forge, number) == [] for number in threads)
    assert bot.externals() == []


def test_nothing_recorded_and_nothing_set_is_quiet(bot: Bot, threads: list[str]) -> None:
    """Set by hand and deleted again: both were events, and nothing is left to report."""
    assert bot.report(None, "d", "deleted") == "ignored"
    assert all(_comments(bot.forge, number) == [] for number in threads)


def test_an_old_record_of_the_same_version_does_not_hide_a_new_external_move(
    bot: Bot, threads: list[str]
) -> None:
    bot.change(5)
    bot.change(6)
    bot.by_hand(5)
    assert bot.report(5) == "reported"
    assert len(_comments(bot.forge, threads[1])) == 1


def test_no_request_thread_means_nothing_to_post_but_the_ledger_records_it(bot: Bot) -> None:
    bot.change(6)
    bot.by_hand(3)
    outcome = report_external_change(bot.ctx, AliasChange(bot.model, "champion", 3, "d"))
    assert (outcome.status, outcome.detail) == ("ignored", "no request thread")
    assert bot.externals() == [(6, 3)]


def _set_author(forge: LocalForge, number: str, author: str) -> None:
    """What a person's own issue looks like on the local forge: the same file, another author."""
    path = forge.root / "threads" / f"{number}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["author"] = author
    path.write_text(json.dumps(data), encoding="utf-8")


def test_a_persons_issue_quoting_a_request_marker_gets_no_report(
    bot: Bot, threads: list[str]
) -> None:
    latest = threads[1]
    # The newest labelled issue carries the model's marker, but a person opened it.
    quoted = _request(bot.forge, bot.model, 7, bot.registry.tracking_uri)
    _set_author(bot.forge, quoted, "mallory")
    bot.change(6)
    bot.by_hand(4)

    assert bot.report(4, "dlv-p") == "reported"
    assert _comments(bot.forge, quoted) == []
    assert len(_comments(bot.forge, latest)) == 1


def test_only_a_persons_issue_means_nothing_to_post(bot: Bot) -> None:
    quoted = _request(bot.forge, bot.model, 7, bot.registry.tracking_uri)
    _set_author(bot.forge, quoted, "mallory")
    bot.change(6)
    bot.by_hand(4)
    outcome = report_external_change(bot.ctx, AliasChange(bot.model, "champion", 4, "dlv-q"))
    assert (outcome.status, outcome.detail) == ("ignored", "no request thread")
    assert _comments(bot.forge, quoted) == []


def test_a_hand_move_back_to_a_version_the_bot_set_minutes_ago_is_reported(
    bot: Bot, threads: list[str]
) -> None:
    """/promote v2, /rollback 1, then champion set to v2 by hand: the registry now disagrees
    with the ledger, however recently the bot itself had set v2."""
    bot.change(2, "promote", "maria")
    assert bot.report(2) == "ignored"
    bot.change(1, "rollback", "maria")
    assert bot.report(1) == "ignored"

    bot.by_hand(2)  # someone in the MLflow UI, a minute later

    assert bot.report(2, "dlv-hand") == "reported"
    [body] = _comments(bot.forge, threads[1])
    assert f"champion of {bot.model} was moved to v2 outside promotion-bot" in body
    assert "`/rollback 1`" in body


def _two_versions(tracking_uri: str, model: str) -> Registry:
    registry = Registry(tracking_uri)
    registry.ensure_model(model)
    for _ in range(2):
        run_id = log_training_run(tracking_uri, {"final.logloss": 0.6})
        registry.create_version(model, f"runs:/{run_id}/model", run_id)
    return registry


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
@pytest.mark.mlflow  # its own server, not the session's fixture
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
        Settings(mlflow_webhook_secret=Secret(secret)), lambda _e, _c: None, on_alias_change
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
