"""Each champion change also a forge deployment (bot.commands.deployments, the adapters'
`record_deployment`): the requests GitHub and GitLab get, against `responses` mocks shaped like
their documented answers; the local forge's record after a /promote and a /rollback, with the id
on the ledger run; a drift as a failed deployment; a forge that refuses is one warning."""

from __future__ import annotations

import logging

import pytest
import responses

from bot.commands.external_change import report_drift
from bot.errors import ForgeAuthError
from bot.forges.base import Deployment
from bot.forges.github import GitHubForge
from bot.forges.gitlab import GitLabForge
from bot.forges.local import LocalForge
from bot.registry.tags import DEPLOYMENT_TAG
from bot.runtime.context import Context
from tests.forge_fixtures import body_of, github, github_url, gitlab, query_of
from tests.forge_world import World, make_world, open_ticked_request
from tests.promotion_env import Playground
from tests.test_forge_github import settings as github_settings
from tests.test_forge_gitlab import P
from tests.test_forge_gitlab import settings as gitlab_settings

VERSION_URL = "http://mlflow.example/#/models/churn/versions/5"
THREAD_URL = "https://forge.example/ml/models/issues/3"
CHANGE = Deployment(
    model="churn",
    environment="model/churn",
    version=5,
    state="success",
    description="churn v5 is champion (promote by maria)",
    environment_url=VERSION_URL,
    log_url=THREAD_URL,
)


def test_github_creates_a_deployment_and_its_status(rsps: responses.RequestsMock) -> None:
    repo = "/repos/octo-org/models"
    rsps.get(github_url(repo), json=github("repository"))
    made = github("deployment", id=77, environment="model/churn", ref="main")
    made["statuses_url"] = f"https://api.github.com{repo}/deployments/77/statuses"
    made["url"] = f"https://api.github.com{repo}/deployments/77"
    create = rsps.post(github_url(f"{repo}/deployments"), json=made, status=201)
    status = rsps.post(
        github_url(f"{repo}/deployments/77/statuses"),
        json=github("deployment_status", state="success"),
        status=201,
    )
    forge = GitHubForge.from_settings(github_settings())
    assert forge.record_deployment(CHANGE) == "77"
    assert body_of(create.calls[0]) == {
        "ref": "main",  # the repository's default branch (one read)
        "task": "deploy:model",
        "auto_merge": False,
        "required_contexts": [],
        "payload": {"model": "churn", "version": 5, "source": "promotion-bot"},
        "environment": "model/churn",
        "description": "churn v5 is champion (promote by maria)",
        "transient_environment": False,
        "production_environment": True,
    }
    assert body_of(status.calls[0]) == {
        "state": "success",
        "target_url": THREAD_URL,  # GitHub's log_url
        "description": "churn v5 is champion (promote by maria)",
        "environment_url": VERSION_URL,
        "auto_inactive": True,
    }


def test_github_with_a_commit_reads_no_branch(rsps: responses.RequestsMock) -> None:
    repo = "/repos/octo-org/models"
    made = github("deployment", id=78)
    made["url"] = f"https://api.github.com{repo}/deployments/78"
    create = rsps.post(github_url(f"{repo}/deployments"), json=made, status=201)
    rsps.post(github_url(f"{repo}/deployments/78/statuses"), json=github("deployment_status"))
    forge = GitHubForge.from_settings(github_settings())
    drift = Deployment("churn", "model/churn", 4, "failure", "drift", sha="abc123")
    assert forge.record_deployment(drift) == "78"
    assert body_of(create.calls[0])["ref"] == "abc123"
    assert len(rsps.calls) == 2


def test_gitlab_sets_the_environment_url_then_creates_the_deployment(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(
        f"{P}", json={"id": 3, "default_branch": "main", "path_with_namespace": "ml-team/soccer"}
    )
    branch = gitlab("branch") | {"name": "main"}
    rsps.get(f"{P}/repository/branches/main", json=branch)
    listed = rsps.get(f"{P}/environments", json=[gitlab("environment") | {"name": "model/churn"}])
    update = rsps.put(f"{P}/environments/9", json=gitlab("environment", external_url=VERSION_URL))
    create = rsps.post(f"{P}/deployments", json=gitlab("deployment", id=4242), status=201)
    forge = GitLabForge.from_settings(gitlab_settings())
    assert forge.record_deployment(CHANGE) == "4242"
    assert query_of(listed.calls[0])["name"] == "model/churn"
    assert body_of(update.calls[0])["external_url"] == VERSION_URL
    assert body_of(create.calls[0]) == {
        "environment": "model/churn",
        "sha": branch["commit"]["id"],
        "ref": "main",
        "tag": False,
        "status": "success",
    }


def test_gitlab_creates_a_missing_environment_and_maps_a_failure(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(f"{P}/environments", json=[])
    made = rsps.post(f"{P}/environments", json=gitlab("environment"), status=201)
    create = rsps.post(f"{P}/deployments", json=gitlab("deployment", status="failed"), status=201)
    forge = GitLabForge.from_settings(gitlab_settings())
    drift = Deployment(
        "churn", "model/churn", 4, "failure", "d", VERSION_URL, ref="main", sha="f00"
    )
    assert forge.record_deployment(drift) == "42"
    assert body_of(made.calls[0]) == {"name": "model/churn", "external_url": VERSION_URL}
    assert body_of(create.calls[0])["status"] == "failed"


def test_a_refusal_is_an_error_the_caller_can_catch(rsps: responses.RequestsMock) -> None:
    repo = "/repos/octo-org/models"
    rsps.post(
        github_url(f"{repo}/deployments"),
        json=github("not_accessible_403"),
        status=403,
    )
    forge = GitHubForge.from_settings(github_settings())
    with pytest.raises(ForgeAuthError):
        forge.record_deployment(Deployment("churn", "model/churn", 5, "success", "x", ref="main"))


# --- through the commands, on the local forge -------------------------------------------------
ON = {"deployments": {"enabled": True}}


@pytest.fixture
def pg(make_pg):  # type: ignore[no-untyped-def]
    """A playground whose params turn deployments on (they are off by default)."""
    return make_pg(**ON)


def test_promote_and_rollback_are_deployments_with_their_ids_on_the_ledger(pg: Playground):
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.55)
    thread = pg.open_request(second)
    pg.comment(thread, "olga", "/promote")
    pg.comment(thread, "maria", f"/rollback {first}")
    made = pg.forge.deployments()
    assert [(d["environment"], d["version"], d["state"]) for d in made] == [
        (f"model/{pg.model}", first, "success"),
        (f"model/{pg.model}", second, "success"),
        (f"model/{pg.model}", first, "success"),  # a rollback: a new deployment of the older one
    ]
    assert made[2]["description"] == f"{pg.model} v{first} is champion (rollback by maria)"
    assert made[2]["log_url"] == thread.url
    assert made[2]["environment_url"] == pg.ctx.registry.version_url(pg.model, first)
    assert made[2]["payload"]["version"] == first
    runs = {run.run_id: run for run in pg.ledger_runs()}
    noted = sorted(run.tags.get(DEPLOYMENT_TAG, "") for run in runs.values())
    assert noted == ["local:1", "local:2", "local:3"]
    assert all(DEPLOYMENT_TAG not in run.params for run in runs.values())  # sealed params intact


def test_a_drift_the_bot_finds_is_a_failed_deployment(pg: Playground):
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.55)
    pg.ctx.registry.set_alias(pg.model, "champion", second)  # by hand, in the MLflow UI
    report_drift(pg.ctx, "poll")
    made = pg.forge.deployments()[-1]
    assert (made["version"], made["state"]) == (second, "failure")
    assert f"set outside promotion-bot (approved: v{first})" in made["description"]


class RefusingForge(LocalForge):
    def record_deployment(self, deployment: Deployment) -> str:
        raise ForgeAuthError("GitHub: create a deployment: 403 Resource not accessible")


def test_a_forge_that_refuses_is_one_warning_and_the_change_stands(
    pg: Playground, caplog: pytest.LogCaptureFixture
):
    forge = RefusingForge(pg.ctx.settings.local_dir)
    pg.ctx = Context(pg.ctx.settings, pg.ctx.params, forge=forge)
    first = pg.train(0.6)
    with caplog.at_level(logging.WARNING):
        outcome, _ = pg.comment(pg.open_request(first), "maria", "/promote")
    assert outcome.status == "changed" and pg.champion() == first
    warnings = [r.getMessage() for r in caplog.records if "deployment" in r.getMessage()]
    assert len(warnings) == 1 and "403" in warnings[0]


def test_deployments_are_off_by_default(make_pg):  # type: ignore[no-untyped-def]
    pg = make_pg()
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    assert pg.champion() == first and pg.forge.deployments() == []


# --- the done-when: both forges' deployment history after a /promote and a /rollback ----------
@pytest.fixture(params=["gitlab", "github"])
def world(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path
):
    """The forge worlds of tests/forge_world.py, with deployments turned on."""
    with make_world(request.param, tracking_uri, model_name, tmp_path, ON) as made:
        yield made


def test_the_forge_history_shows_the_promote_and_the_rollback(world: World, tracking_uri: str):
    assert world.handle(world.post(world.number, "/promote", author="maria")).status == "changed"
    first = world.champion()
    assert first is not None
    number = open_ticked_request(world.ctx, world.fake, tracking_uri)
    assert world.handle(world.post(number, "/promote", author="maria")).status == "changed"
    outcome = world.handle(world.post(number, f"/rollback {first}", author="olga"))
    assert outcome.status == "changed" and world.champion() == first
    made = world.fake.deployments
    environment = f"model/{world.model}"
    assert [d["environment"] for d in made] == [environment] * 3
    version_page = f"/#/models/{world.model}/versions/{first}"
    if world.platform == "github":
        assert [d["payload"]["version"] for d in made] == [first, first + 1, first]
        statuses = [d["statuses"][0] for d in made]
        assert [s["state"] for s in statuses] == ["success"] * 3
        assert statuses[-1]["environment_url"].endswith(version_page)
        thread = world.fake.threads[number]["html_url"]
        assert [s["target_url"] for s in statuses[1:]] == [thread, thread]  # the log URL
        assert "rollback by olga" in made[-1]["description"]
    else:  # GitLab: the version is the environment's URL; a deployment has no log URL
        assert [d["status"] for d in made] == ["success"] * 3
        assert world.fake.environments[environment]["external_url"].endswith(version_page)
