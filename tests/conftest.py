"""Shared fixtures: a real MLflow server for the session, isolated working directories."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.forge_world import World, make_world
from tests.helpers import TEST_SIGNING_KEY
from tests.mlflow_server import MlflowServer, start_mlflow_server
from tests.promotion_env import MakePlayground, Playground, make_context
from tests.redis_server import RedisServer, start_redis_server

# Keep MLflow's own retries short in every test process (the bot sets the same defaults).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

_model_counter = itertools.count(1)

# The fixtures that start the session's real `mlflow server`. A test using one, directly or through
# another fixture (tracking_uri, world, pg...), needs MLflow: marked `mlflow` at collection, so
# `-m "not slow and not mlflow"` is the fast run. A test starting a server of its own says so.
MLFLOW_FIXTURES = frozenset({"mlflow_server"})


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MLFLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mlflow)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis_server(tmp_path_factory.mktemp("redis-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(_redis_session: RedisServer) -> RedisServer:
    """A real `redis-server` of the session on a loopback port, running (a test may stop it)."""
    if not _redis_session.answers():
        _redis_session.stop()
        _redis_session.start()
    return _redis_session


@pytest.fixture
def tracking_uri(mlflow_server: MlflowServer) -> str:
    return mlflow_server.url


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A model name no other test uses, so tests can share one server."""
    return f"m{next(_model_counter)}-{request.node.name[:40]}".replace("[", "-").replace("]", "")


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """GitLab and GitHub mocked at HTTP level: every mock a test adds must be called. The real
    MLflow server on loopback stays reachable (its URL may carry a user:password@ part)."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add_passthru(re.compile(r"http://([^/@]*@)?127\.0\.0\.1[:/]"))
        yield mock


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own folder with no CI variables leaking in from the machine."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("GITLAB_", "GITHUB_", "CI_", "PROMOTION_BOT_")) or name in (
            "CI",
            "MLFLOW_TRACKING_URI",
        ):
            monkeypatch.delenv(name, raising=False)
    # Every bot of the tests signs (docs/security.md): a test of the missing key removes it.
    monkeypatch.setenv("PROMOTION_BOT_SIGNING_KEY", TEST_SIGNING_KEY)
    return tmp_path


@pytest.fixture(params=["gitlab", "github"])
def world(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path
) -> Iterator[World]:
    """A promotion world on each real forge adapter (tests/forge_world.py)."""
    with make_world(request.param, tracking_uri, model_name, tmp_path) as made:
        yield made


@pytest.fixture
def make_pg(tracking_uri: str, model_name: str, tmp_path: Path) -> MakePlayground:
    """A promotion playground (real registry, local forge, people with roles) per test."""

    def make(**promotion: Any) -> Playground:
        pg = Playground(make_context(tracking_uri, model_name, tmp_path, promotion), tmp_path)
        pg.setup_people()
        return pg

    return make


@pytest.fixture
def pg(make_pg: MakePlayground) -> Playground:
    return make_pg()
