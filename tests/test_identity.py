"""A bot is its registry and its forge project (bot.config.identity): the id in its Redis keys
and request markers, and two registries on one project that never touch each other's requests.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from bot.ci.request import open_or_update_request
from bot.config.identity import registry_key
from bot.config.settings import Secret, Settings
from bot.threads.markers import read_request_marker
from tests.promotion_env import Playground, make_context

PROD = "https://mlflow.example.com"


def bot_id(**values: object) -> str:
    return Settings(**values).instance_id  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # Credentials, in the URI or beside it, are not who the bot is.
        ({"tracking_uri": PROD}, {"tracking_uri": "https://ci:s3cret@mlflow.example.com"}),
        ({"tracking_uri": PROD}, {"tracking_uri": f"{PROD}/?token=abc"}),
        ({"tracking_uri": PROD}, {"tracking_uri": PROD, "mlflow_password": Secret("pw")}),
        ({"tracking_uri": PROD}, {"tracking_uri": "HTTPS://MLflow.example.com:443/"}),
        (
            {"platform": "gitlab", "gitlab_project": "ML/Soccer"},
            {"platform": "gitlab", "gitlab_project": "ml/soccer", "gitlab_token": Secret("t")},
        ),
        (
            {"platform": "gitlab", "gitlab_project": "42"},
            {"platform": "gitlab", "gitlab_project": "042"},
        ),
    ],
)
def test_the_same_bot_has_the_same_id(a: dict[str, object], b: dict[str, object]) -> None:
    assert bot_id(**a) == bot_id(**b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"tracking_uri": PROD}, {"tracking_uri": "https://mlflow-staging.example.com"}),
        ({"tracking_uri": PROD}, {"tracking_uri": f"{PROD}:5000"}),
        ({"tracking_uri": f"{PROD}/a"}, {"tracking_uri": f"{PROD}/b"}),
        (
            {"platform": "gitlab", "gitlab_project": "ml/soccer"},
            {"platform": "gitlab", "gitlab_project": "ml/tennis"},
        ),
        (
            {"platform": "gitlab", "gitlab_project": "ml/soccer"},
            {"platform": "gitlab", "gitlab_project": "ml/soccer", "gitlab_url": "https://gl.corp"},
        ),
        (
            {"platform": "gitlab", "gitlab_project": "ml/soccer"},
            {"platform": "github", "github_repository": "ml/soccer"},
        ),
    ],
)
def test_another_registry_or_project_is_another_bot(
    a: dict[str, object], b: dict[str, object]
) -> None:
    assert bot_id(**a) != bot_id(**b)


def test_the_id_is_short_and_shows_nothing_of_the_uri() -> None:
    uri = "https://ci:s3cret@mlflow.example.com/?private_token=t0ken&workspace=w"
    shown = bot_id(tracking_uri=uri)
    assert len(shown) == 12 and all(c in "0123456789abcdef" for c in shown)
    key = registry_key(uri)
    assert key == "https://mlflow.example.com?workspace=w"
    assert "s3cret" not in key and "t0ken" not in key
    assert registry_key("sqlite:///mlflow.db") == "sqlite:///mlflow.db"


# --- two registries, one project -----------------------------------------------------------


def playground(tracking_uri: str, model: str, root: Path) -> Playground:
    ctx = make_context(tracking_uri, model, root)
    ctx.settings = replace(ctx.settings, requested_by="dana")  # the CI user who trains
    return Playground(ctx, root)


@pytest.fixture
def production(tracking_uri: str, model_name: str, tmp_path: Path) -> Playground:
    return playground(tracking_uri, model_name, tmp_path)


@pytest.fixture
def staging(model_name: str, tmp_path: Path) -> Playground:
    """A second real registry (an MLflow sqlite store) whose bot serves the same project."""
    uri = f"sqlite:///{tmp_path / 'staging.db'}"
    return playground(uri, model_name, tmp_path)


def test_two_registries_on_one_project_keep_to_their_own_requests(
    production: Playground, staging: Playground
) -> None:
    assert production.ctx.settings.instance_id != staging.ctx.settings.instance_id
    production.setup_people()
    production.train(0.6)
    ours = open_or_update_request(production.ctx)
    marker = read_request_marker(ours.body)
    assert marker is not None and marker.bot == production.ctx.settings.instance_id

    # Staging's v1 is the same model and version: it opens its own request, not production's.
    staging.train(0.7)
    theirs = open_or_update_request(staging.ctx)
    assert theirs.created and theirs.url != ours.url
    # Staging's v2 supersedes staging's v1, and nothing of production's.
    staging.train(0.65)
    newer = open_or_update_request(staging.ctx)
    assert newer.superseded == [theirs.number]
    prod_thread = production.forge.get_thread("issue", ours.number)
    assert prod_thread.state == "open" and not production.answers(prod_thread)

    # A command in production's request is production's alone...
    outcome, _ = staging.comment(prod_thread, "maria", "/promote")
    assert (outcome.status, outcome.detail) == ("ignored", "a request of another bot")
    assert not staging.answers(prod_thread) and staging.champion() is None
    # ...also as written before markers carried the id: the registry that names it decides.
    legacy = re.sub(r" bot=[0-9a-f]{12}", "", prod_thread.body).replace("- [ ]", "- [x]")
    assert legacy != prod_thread.body and "bot=" not in legacy
    production.forge.update_body(prod_thread, legacy)
    outcome, _ = staging.comment(prod_thread, "maria", "/help")
    assert (outcome.status, outcome.detail) == ("ignored", "a request of another bot")
    assert open_or_update_request(staging.ctx).superseded == []
    assert not staging.answers(prod_thread)
    outcome, _ = production.comment(prod_thread, "maria", "/promote")
    assert (outcome.status, outcome.detail) == ("changed", "no champion -> v1")
    assert production.champion() == 1


def test_a_named_bot_is_one_bot_whatever_url_its_processes_use() -> None:
    """`serve` reaches the registry by an internal name, CI by the public one: named alike, they
    share one lock and one id."""
    inside = Settings.from_env(
        {"MLFLOW_TRACKING_URI": "http://mlflow.svc:5000", "PROMOTION_BOT_INSTANCE": "soccer-prod"}
    )
    outside = Settings.from_env(
        {"MLFLOW_TRACKING_URI": PROD, "PROMOTION_BOT_INSTANCE": " soccer-prod "}
    )
    assert inside.instance_id == outside.instance_id
    assert inside.registry_id == outside.registry_id
    staging = Settings.from_env({"MLFLOW_TRACKING_URI": PROD, "PROMOTION_BOT_INSTANCE": "staging"})
    assert staging.instance_id != outside.instance_id
    assert staging.registry_id != outside.registry_id
