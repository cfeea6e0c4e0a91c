"""The registry layer, against a real `mlflow server` (REST) and a direct `sqlite:///` URI.

MLflow answers differently over the two (str vs int versions, error codes); the layer must not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import bot.registry.client as registry_module
from bot.errors import ConfigError, NotFoundError, RegistryError
from bot.registry.client import Registry
from bot.registry.records import HistoryEntry
from bot.registry.tags import HISTORY_TAG, PENDING_TAG
from bot.signing import NOT_SIGNED, Keys
from bot.urls import redact_url
from tests.helpers import TEST_SIGNING_KEY, log_training_run
from tests.mlflow_server import free_port

# The MLflow adapter: every test reaches MLflow, the server (asked for by name in `uri`, which
# the fixture-based marking cannot see) or an embedded sqlite registry.
pytestmark = pytest.mark.mlflow


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedded registry for the module: creating its tables takes a few seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite-registry') / 'mlflow.db'}"


@pytest.fixture(params=["server", "sqlite"])
def uri(request: pytest.FixtureRequest, sqlite_uri: str) -> str:
    if request.param == "server":
        return str(request.getfixturevalue("tracking_uri"))
    return sqlite_uri


@pytest.fixture
def registry(uri: str) -> Registry:
    return Registry(uri, Keys.load(TEST_SIGNING_KEY))


def new_version(registry: Registry, model: str, logloss: float = 0.6) -> tuple[int, str]:
    run_id = log_training_run(registry.tracking_uri, {"final.logloss": logloss})
    registry.ensure_model(model)
    info = registry.create_version(model, f"runs:/{run_id}/model", run_id)
    return info.version, run_id


# --- versions are ints, missing things are None or NotFoundError ---------------------------


def test_versions_are_ints_everywhere(registry: Registry, model_name: str):
    v1, run1 = new_version(registry, model_name)
    v2, _ = new_version(registry, model_name)
    assert (v1, v2) == (1, 2)
    assert type(v1) is int
    registry.set_alias(model_name, "smoke", v2)

    assert registry.aliases(model_name) == {"smoke": 2}
    assert all(type(v) is int for v in registry.aliases(model_name).values())
    by_alias = registry.version_by_alias(model_name, "smoke")
    assert by_alias is not None and by_alias.version == 2 and type(by_alias.version) is int
    info = registry.version(model_name, "1")
    assert (info.version, info.run_id, info.model) == (1, run1, model_name)
    assert info.source == f"runs:/{run1}/model"
    assert info.created_at_ms > 0
    assert registry.version_by_run(model_name, run1) == registry.version(model_name, 1)


def test_state_reads_aliases_and_tags_in_one_call(registry: Registry, model_name: str):
    new_version(registry, model_name)
    new_version(registry, model_name)
    registry.set_alias(model_name, "candidate", 2)
    registry.set_alias(model_name, "champion", 1)
    registry.set_model_tag(model_name, "team", "ml")
    state = registry.state(model_name)
    assert state.aliases == {"candidate": 2, "champion": 1}
    assert state.tags["team"] == "ml"
    assert state.history == () and state.pending is None


def test_a_missing_alias_is_none(registry: Registry, model_name: str):
    new_version(registry, model_name)
    assert registry.version_by_alias(model_name, "champion") is None
    assert registry.aliases(model_name) == {}


def test_a_missing_model_has_no_aliases_history_or_versions(registry: Registry, model_name: str):
    assert not registry.model_exists(model_name)
    assert registry.aliases(model_name) == {}
    assert registry.version_by_alias(model_name, "smoke") is None
    assert stored_history(registry, model_name) == []


def test_a_missing_version_or_run_is_not_found(registry: Registry, model_name: str):
    new_version(registry, model_name)
    with pytest.raises(NotFoundError, match=rf"^{model_name} version 9: not found"):
        registry.version(model_name, 9)
    with pytest.raises(NotFoundError, match=r"^run 0123456789abcdef0123456789abcdef: not found"):
        registry.run("0123456789abcdef0123456789abcdef")


def test_ensure_model_is_idempotent(registry: Registry, model_name: str):
    registry.ensure_model(model_name)
    registry.ensure_model(model_name)
    assert registry.model_exists(model_name)


def test_run_reads_metrics_params_and_user_tags(registry: Registry):
    run_id = log_training_run(
        registry.tracking_uri, {"final.logloss": 0.61, "final.accuracy": 0.7}, tags={"git_sha": "a"}
    )
    run = registry.run(run_id)
    assert run.run_id == run_id
    assert run.metrics == {"final.logloss": 0.61, "final.accuracy": 0.7}
    assert run.tags == {"git_sha": "a"}  # mlflow.* system tags are left out
    assert run.experiment_id


# --- version_by_run -----------------------------------------------------------------------


def test_version_by_run(registry: Registry, model_name: str):
    v1, run1 = new_version(registry, model_name)
    _, run2 = new_version(registry, model_name)
    found = registry.version_by_run(model_name, run1)
    assert found is not None and found.version == v1 and found.run_id == run1
    other = log_training_run(registry.tracking_uri, {"final.logloss": 1.0})
    assert registry.version_by_run(model_name, other) is None
    # The lowest version wins when a run was registered twice (idempotence keeps that one).
    registry.create_version(model_name, f"runs:/{run2}/model", run2)
    again = registry.version_by_run(model_name, run2)
    assert again is not None and again.version == 2


@pytest.mark.parametrize("bad", ["x' or name='y", "a b", ""])
def test_version_by_run_refuses_a_malformed_run_id(registry: Registry, model_name: str, bad: str):
    with pytest.raises(RegistryError, match=r"is not a valid MLflow run id"):
        registry.version_by_run(model_name, bad)


# --- tags: history and pending (docs/design.md, "Registry tags") ----------------------------


def entry(to: int, reason: str = "ok", **more: object) -> dict[str, object]:
    return {"at": f"2025-01-0{to % 9 + 1}T00:00:00Z", "from": None, "to": to, "actor": "maria",
            "action": "promote", "reason": reason, "request_url": "https://f/i/1",
            "comment_id": str(to), **more}  # fmt: skip


def append(registry: Registry, name: str, stored: dict[str, object]) -> None:
    registry.append_history(name, HistoryEntry.parse(stored))


def stored_history(registry: Registry, name: str) -> list[dict[str, object]]:
    """The history as the registry stores it."""
    return [dict(item.stored) for item in registry.history(name)]


def tags(registry: Registry, name: str) -> dict[str, str]:
    return registry.state(name).tags


def test_history_appends_in_order(registry: Registry, model_name: str):
    registry.ensure_model(model_name)
    assert stored_history(registry, model_name) == []
    append(registry, model_name, entry(1))
    append(registry, model_name, entry(2, reason="multi\nline ✓"))
    assert stored_history(registry, model_name) == [entry(1), entry(2, reason="multi\nline ✓")]
    raw = json.loads(tags(registry, model_name)[HISTORY_TAG])
    assert raw["entries"] == stored_history(registry, model_name)
    assert raw["model"] == model_name and raw["kid"] and raw["sig"]  # the bot's seal


def test_history_keeps_the_newest_history_limit_entries(
    registry: Registry, model_name: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(registry_module, "HISTORY_LIMIT", 3)
    registry.ensure_model(model_name)
    for to in range(1, 6):
        append(registry, model_name, entry(to))
    assert [e["to"] for e in stored_history(registry, model_name)] == [3, 4, 5]


def test_history_fits_the_sql_column_of_a_model_tag(registry: Registry, model_name: str):
    """MLflow's SQL stores keep a model tag value in VARCHAR(5000): PostgreSQL refuses more."""
    registry.ensure_model(model_name)
    for to in range(1, 16):
        append(registry, model_name, entry(to, reason=f"{to}: " + "é" * 600))
    raw = tags(registry, model_name)[HISTORY_TAG]
    assert len(raw) <= registry_module.HISTORY_MAX_CHARS
    history = stored_history(registry, model_name)
    assert history[-1]["to"] == 15  # the newest is always kept; the oldest dropped off
    assert [e["to"] for e in history] == list(range(16 - len(history), 16))
    assert len(history) >= 5
    # A long reason is shortened in the tag (the thread keeps it whole).
    assert history[-1]["reason"].startswith("15: éé") and history[-1]["reason"].endswith("…")
    assert len(history[-1]["reason"]) == registry_module.HISTORY_REASON_CHARS


def test_a_corrupt_or_unsigned_history_tag_reads_as_empty(registry: Registry, model_name: str):
    """docs/security.md: a history the bot did not sign is no evidence; the next change writes
    a signed one (the ledger keeps every entry)."""
    registry.ensure_model(model_name)
    registry.set_model_tag(model_name, HISTORY_TAG, "not json")
    assert stored_history(registry, model_name) == []
    registry.set_model_tag(model_name, HISTORY_TAG, '[{"to": 1}, 5, "x"]')
    state = registry.state(model_name)
    assert stored_history(registry, model_name) == [] and state.history_problem
    assert [dict(e.stored) for e in state.unchecked_history] == [{"to": 1}]  # for the import
    append(registry, model_name, entry(2))
    assert stored_history(registry, model_name) == [entry(2)]


def test_pending_set_read_clear(registry: Registry, model_name: str):
    registry.ensure_model(model_name)
    assert registry.pending(model_name) is None
    registry.clear_pending(model_name)  # nothing pending: no error
    intent = entry(3, reason="ünïcode " * 250)
    registry.set_pending(model_name, HistoryEntry.parse(intent))
    assert (registry.pending(model_name) or HistoryEntry(None)).stored == intent
    assert len(tags(registry, model_name)[PENDING_TAG]) < 5000
    registry.clear_pending(model_name)
    assert registry.pending(model_name) is None
    assert PENDING_TAG not in tags(registry, model_name)


def test_an_intent_the_bot_did_not_sign_is_no_intent(registry: Registry, model_name: str):
    registry.ensure_model(model_name)
    registry.set_pending(model_name, HistoryEntry.parse(entry(3)))
    signed = json.loads(tags(registry, model_name)[PENDING_TAG])
    for forged in ({**signed, "to": 4}, entry(4), {**entry(4), "kid": signed["kid"]}):
        registry.set_model_tag(model_name, PENDING_TAG, json.dumps(forged))
        state = registry.state(model_name)
        assert state.pending is None and state.intent_problem
    registry.set_model_tag(model_name, PENDING_TAG, json.dumps(signed))
    assert Registry(registry.tracking_uri).state(model_name).pending is None  # no key, no trust
    with pytest.raises(ConfigError, match="PROMOTION_BOT_SIGNING_KEY"):
        Registry(registry.tracking_uri).set_pending(model_name, HistoryEntry.parse(entry(3)))


def test_an_intent_copied_from_another_model_is_no_intent(registry: Registry, model_name: str):
    """The bot's own signed intent of one model, copied onto another: not that model's change."""
    other = f"{model_name}-other"
    registry.ensure_model(model_name)
    registry.ensure_model(other)
    registry.set_pending(model_name, HistoryEntry.parse(entry(3)))
    registry.set_model_tag(other, PENDING_TAG, tags(registry, model_name)[PENDING_TAG])
    assert registry.pending(model_name) is not None
    copied = registry.state(other)
    assert copied.pending is None and copied.intent_problem == "signed for another model"


@pytest.mark.parametrize("raw", ["{broken", "[1, 2]", '"text"'])
def test_an_unreadable_pending_tag_is_none(registry: Registry, model_name: str, raw: str):
    registry.ensure_model(model_name)
    registry.set_model_tag(model_name, PENDING_TAG, raw)
    assert registry.pending(model_name) is None
    assert registry.state(model_name).intent_problem == NOT_SIGNED  # named, and reported


def test_version_tags(registry: Registry, model_name: str):
    version, _ = new_version(registry, model_name)
    registry.set_version_tag(model_name, version, "promotion.registered_as", "smoke")
    assert registry.version(model_name, version).tags == {"promotion.registered_as": "smoke"}


# --- URIs and links ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://alice:s3cret@mlflow:5000/x?a=1", "http://***@mlflow:5000/x?a=1"),
        ("https://token@mlflow.example.com", "https://***@mlflow.example.com"),
        ("http://u:p@ss@host/", "http://***@host/"),
        ("http://u:pw@[::1]:5000", "http://***@[::1]:5000"),
        ("postgresql://u:p%40w@db/mlflow", "postgresql://***@db/mlflow"),
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ],
)
def test_redact_url_hides_user_and_password(uri: str, shown: str):
    assert redact_url(uri) == shown


def test_links_for_people(sqlite_uri: str):
    remote = Registry("http://alice:s3cret@mlflow.example.com:5000/")
    assert remote.ui_base() == "http://mlflow.example.com:5000"
    assert remote.version_url("m", 3) == "http://mlflow.example.com:5000/#/models/m/versions/3"
    assert Registry(sqlite_uri).ui_base() == ""
    assert Registry(sqlite_uri).version_url("m", 3) == ""


# --- an unreachable registry: a bounded, clear, secret-free error --------------------------


@pytest.fixture
def bot_http_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the test suite's retry settings so the bot's own bounded defaults apply."""
    for key in registry_module._BOUNDED_HTTP:
        monkeypatch.delenv(key, raising=False)


@pytest.mark.usefixtures("bot_http_defaults")
@pytest.mark.parametrize("userinfo", ["", "alice:pa55-SECRET@"])
def test_an_unreachable_registry_fails_fast_with_a_clear_error(userinfo: str):
    uri = f"http://{userinfo}127.0.0.1:{free_port()}"  # nothing listens there
    registry = Registry(uri)
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        registry.aliases("m")
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert elapsed < 30, f"took {elapsed:.0f}s: the bounded retries are not applied"
    assert message.startswith(f"model 'm': the registry at {redact_url(uri)} is unreachable")
    assert "SECRET" not in message and "alice" not in message


def test_runs_page_on_an_embedded_sqlite_registry(tmp_path: Path) -> None:
    """The README's local setup has no server (`sqlite:///mlflow.db`): MLflow's sqlite store
    gives the next page's token as bytes, which must reach the next search as the token it is
    (`import-ledger` reads a second page exactly when it skips unsigned runs)."""
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = registry.experiment_id("pages", create=True)
    made = {registry.create_run(experiment_id, 1_000 + n, f"run-{n}", {}) for n in range(3)}
    first, token = registry.search_runs([experiment_id], "", max_results=2)
    assert len(first) == 2 and token
    rest, end = registry.search_runs([experiment_id], "", max_results=2, page_token=token)
    assert {run.run_id for run in [*first, *rest]} == made and end == ""
