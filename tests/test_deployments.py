"""Each champion change also a forge deployment (bot.commands.deployments, the adapters'
`record_deployment`): the requests GitHub and GitLab get, against `responses` mocks shaped like
their documented answers, and through /promote, /rollback and a drift on both forges' fakes; the
local forge's record with the id on the ledger run; a forge that refuses is one warning."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses

from bot.commands import deployments
from bot.commands.external_change import report_drift
from bot.config.ci_commit import CiCommit
from bot.config.params import parse_params
from bot.errors import ForgeAuthError
from bot.forges.base import Deployment
from bot.forges.github import GitHubForge
from bot.forges.gitlab import GitLabForge
from bot.forges.local import LocalForge
from bot.ledger.entry import EXTERNAL
from bot.registry.tags import DEPLOYMENT_TAG
from bot.runtime.context import Context
from tests.fakes.forges import MAIN_HEAD
from tests.fakes.gitlab import FakeGitLab
from tests.forge_fixtures import body_of, github, github_url, gitlab
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
REPO = "/repos/octo-org/models"
CI_SHA = "0c2f1e9d8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"  # a commit of main the CI job runs at


# --- the adapters, against mocks shaped like the documented answers --------------------------
def _github_deployment(rsps: responses.RequestsMock, number: int) -> tuple[Any, Any]:
    made = github("deployment", id=number, environment="model/churn")
    made["url"] = f"https://api.github.com{REPO}/deployments/{number}"
    made["statuses_url"] = f"{made['url']}/statuses"
    create = rsps.post(github_url(f"{REPO}/deployments"), json=made, status=201)
    status = rsps.post(
        github_url(f"{REPO}/deployments/{number}/statuses"),
        json=github("deployment_status", state="success"),
        status=201,
    )
    return create, status


def test_github_with_a_commit_is_the_deployment_and_its_status(
    rsps: responses.RequestsMock,
) -> None:
    create, status = _github_deployment(rsps, 77)
    forge = GitHubForge.from_settings(github_settings())
    change = replace(CHANGE, ref="main", sha=CI_SHA)
    assert forge.record_deployment(change) == "77"
    assert [(c.request.method, urlsplit(c.request.url).path) for c in rsps.calls] == [
        ("POST", f"{REPO}/deployments"),
        ("POST", f"{REPO}/deployments/77/statuses"),
    ]
    assert body_of(create.calls[0]) == {
        "ref": CI_SHA,  # the commit: GitHub resolves nothing
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
        "description": "churn v5 is champion (promote by maria)",
        "auto_inactive": True,
        "environment_url": VERSION_URL,
        "log_url": THREAD_URL,  # GitHub sets target_url from it
    }


def test_github_reads_the_default_branch_once_per_process(rsps: responses.RequestsMock) -> None:
    # The answer names another host (a proxy's API URL, as GitHub Enterprise behind one shows):
    # the read must not turn the later calls to it.
    elsewhere = "https://github.internal.example/api/v3/repos/octo-org/models"
    answer = github("repository", default_branch="trunk", url=elsewhere)
    read = rsps.get(github_url(REPO), json=answer)
    first, _ = _github_deployment(rsps, 77)
    second, _ = _github_deployment(rsps, 78)
    forge = GitHubForge.from_settings(github_settings())
    forge.record_deployment(CHANGE)
    forge.record_deployment(Deployment("churn", "model/churn", 4, "failure", "drift"))
    assert len(read.calls) == 1 and len(rsps.calls) == 5
    assert body_of(first.calls[0])["ref"] == "trunk" == body_of(second.calls[0])["ref"]
    assert "environment_url" not in body_of(rsps.calls[-1])  # none given: none sent


def _gitlab_deployment(rsps: responses.RequestsMock, external_url: str | None) -> Any:
    environment = {"id": 9, "name": "model/churn", "external_url": external_url}
    made = gitlab("deployment", id=4242, environment=environment)
    return rsps.post(f"{P}/deployments", json=made, status=201)


def test_gitlab_with_a_commit_is_the_deployment_then_its_environments_url(
    rsps: responses.RequestsMock,
) -> None:
    create = _gitlab_deployment(rsps, "http://mlflow.example/#/models/churn/versions/4")
    update = rsps.put(f"{P}/environments/9", json=gitlab("environment", external_url=VERSION_URL))
    forge = GitLabForge.from_settings(gitlab_settings())
    change = replace(CHANGE, ref="main", sha=CI_SHA)
    assert forge.record_deployment(change) == "4242"
    assert [c.request.method for c in rsps.calls] == ["POST", "PUT"]  # no environment listed
    assert body_of(create.calls[0]) == {
        "environment": "model/churn",  # GitLab finds or creates it by name
        "sha": CI_SHA,
        "ref": "main",
        "tag": False,
        "status": "success",
    }
    assert body_of(update.calls[0]) == {"external_url": VERSION_URL}  # the id from the answer


def test_gitlab_leaves_an_environment_whose_url_is_already_set(
    rsps: responses.RequestsMock,
) -> None:
    _gitlab_deployment(rsps, VERSION_URL)
    forge = GitLabForge.from_settings(gitlab_settings())
    assert forge.record_deployment(replace(CHANGE, ref="m", sha="a1"))
    assert len(rsps.calls) == 1


def test_gitlab_reads_the_default_branch_once_and_its_head_per_deployment(
    rsps: responses.RequestsMock,
) -> None:
    project = rsps.get(f"{P}", json={"id": 3, "default_branch": "trunk"})
    head = gitlab("branch") | {"name": "trunk"}
    branch = rsps.get(f"{P}/repository/branches/trunk", json=head)
    create = _gitlab_deployment(rsps, VERSION_URL)
    forge = GitLabForge.from_settings(gitlab_settings())
    forge.record_deployment(CHANGE)
    forge.record_deployment(Deployment("churn", "model/churn", 4, "failure", "d", VERSION_URL))
    assert (len(project.calls), len(branch.calls), len(create.calls)) == (1, 2, 2)
    assert body_of(create.calls[1]) | {"sha": head["commit"]["id"]} == {
        "environment": "model/churn",
        "sha": head["commit"]["id"],
        "ref": "trunk",
        "tag": False,
        "status": "failed",  # GitLab's word for it
    }


def test_gitlab_keeps_the_deployment_when_its_url_is_refused(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    _gitlab_deployment(rsps, None)
    rsps.put(f"{P}/environments/9", json={"message": "403 Forbidden"}, status=403)
    forge = GitLabForge.from_settings(gitlab_settings())
    with caplog.at_level(logging.WARNING):
        made = forge.record_deployment(replace(CHANGE, ref="m", sha="a1"))
    assert made == "4242" and "environment's URL not set" in caplog.text


def test_a_refusal_is_an_error_the_caller_can_catch(rsps: responses.RequestsMock) -> None:
    rsps.post(github_url(f"{REPO}/deployments"), json=github("not_accessible_403"), status=403)
    forge = GitHubForge.from_settings(github_settings())
    with pytest.raises(ForgeAuthError):
        forge.record_deployment(Deployment("churn", "model/churn", 5, "success", "x", ref="main"))


# --- the commit a deployment names -------------------------------------------------------------
PINNED = "4f1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5"  # a merged request's head
IN_CI = CiCommit("github", ("octo-org/models",), "main", CI_SHA)
COMMITS = [
    ("a merged request's head first", "", IN_CI, PINNED, ("main", PINNED)),
    ("the CI job's commit", "", IN_CI, "", ("main", CI_SHA)),
    ("the configured branch is the CI job's", "main", IN_CI, "", ("main", CI_SHA)),
    ("another configured branch: its head is the forge's", "release", IN_CI, "", ("release", "")),
    ("outside CI the forge says", "", CiCommit(), "", ("", "")),
    ("outside CI, a merged head", "", CiCommit(), PINNED, ("", PINNED)),
]


@pytest.mark.parametrize(
    ("case", "ref", "ran", "pinned", "expected"), COMMITS, ids=[row[0] for row in COMMITS]
)
def test_the_commit_a_deployment_names(
    case: str, ref: str, ran: CiCommit, pinned: str, expected: tuple[str, str]
) -> None:
    settings = replace(github_settings(), ci_commit=ran)
    params = parse_params({"promotion": {"deployments": {"ref": ref}}})
    assert deployments._commit(Context(settings, params), pinned) == expected


# --- through the commands, on both forges' fakes ----------------------------------------------
def deployment_calls(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    """The forge calls a deployment made since the last reset: method, path under the project,
    JSON body."""
    if isinstance(world.fake, FakeGitLab):
        prefix = urlsplit(world.fake.prefix).path
    else:
        prefix = f"/repos/{world.ctx.settings.github_repository}"
    out = []
    for call in world.rsps.calls:
        path = urlsplit(call.request.url).path
        tail = path.removeprefix(prefix) if path.startswith(prefix) else None
        if tail is None or not (tail == "" or tail.startswith(("/deploy", "/env", "/repository"))):
            continue
        raw = call.request.body
        body = json.loads(raw) if raw else {}
        out.append((call.request.method, tail, body))
    return out


@pytest.fixture(params=["gitlab", "github"])
def ci_world(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path
) -> Iterator[World]:
    """A world whose bot runs in the project's own CI job, on main at CI_SHA."""
    project = "ml-team/soccer" if request.param == "gitlab" else "octo-org/models"
    ran = CiCommit(request.param, (project,), "main", CI_SHA)
    with make_world(request.param, tracking_uri, model_name, tmp_path, ci_commit=ran) as made:
        made.fake.commits.add(CI_SHA)
        yield made


def test_promote_and_rollback_send_two_calls_each_naming_the_ci_commit(
    ci_world: World, tracking_uri: str
) -> None:
    world = ci_world
    assert world.handle(world.post(world.number, "/promote", author="maria")).status == "changed"
    first = world.champion()
    assert first is not None
    number = open_ticked_request(world.ctx, world.fake, tracking_uri)
    assert world.handle(world.post(number, "/promote", author="maria")).status == "changed"
    world.rsps.calls.reset()
    assert world.handle(world.post(number, f"/rollback {first}", author="olga")).status == "changed"
    sent = deployment_calls(world)
    version_url = world.ctx.registry.version_url(world.model, first)
    thread_url = world.fake.threads[number].get("web_url") or world.fake.threads[number]["html_url"]
    description = f"{world.model} v{first} is champion (rollback by olga)"
    if world.platform == "github":
        assert sent == [
            (
                "POST",
                "/deployments",
                {
                    "ref": CI_SHA,
                    "task": "deploy:model",
                    "auto_merge": False,
                    "required_contexts": [],
                    "payload": {"model": world.model, "version": first, "source": "promotion-bot"},
                    "environment": f"model/{world.model}",
                    "description": description,
                    "transient_environment": False,
                    "production_environment": True,
                },
            ),
            (
                "POST",
                "/deployments/3/statuses",
                {
                    "state": "success",
                    "description": description,
                    "auto_inactive": True,
                    "environment_url": version_url,
                    "log_url": thread_url,
                },
            ),
        ]
    else:
        body = {
            "environment": f"model/{world.model}",
            "sha": CI_SHA,
            "ref": "main",
            "tag": False,
            "status": "success",
        }
        assert sent == [
            ("POST", "/deployments", body),
            ("PUT", "/environments/100", {"external_url": version_url}),
        ]
    assert len(world.fake.deployments) == 3
    assert sorted(_deployment_tags(world)) == [f"{world.platform}:{n}" for n in (1, 2, 3)]


def test_without_a_known_commit_the_default_branch_is_read_once(
    world: World, tracking_uri: str
) -> None:
    """Outside CI (`serve`): GitHub reads the repository once per process (its ref then names
    the branch); GitLab the project once, and the branch's head for each deployment."""
    world.handle(world.post(world.number, "/promote", author="maria"))
    first = [(method, path) for method, path, _ in deployment_calls(world)]
    open_ticked_request(world.ctx, world.fake, tracking_uri)  # v2
    world.ctx.registry.set_alias(world.model, "champion", 2)  # by hand, then seen by `poll`
    world.rsps.calls.reset()
    report_drift(world.ctx, "poll")
    again = [(method, path) for method, path, _ in deployment_calls(world)]
    if world.platform == "github":
        assert first == [("GET", ""), ("POST", "/deployments"), ("POST", "/deployments/1/statuses")]
        assert again == [("POST", "/deployments"), ("POST", "/deployments/2/statuses")]
        assert [d["ref"] for d in world.fake.deployments] == ["main", "main"]
    else:
        head = ("GET", "/repository/branches/main")
        url = ("PUT", "/environments/100")
        assert first == [("GET", ""), head, ("POST", "/deployments"), url]
        assert again == [head, ("POST", "/deployments"), url]
        assert [d["sha"] for d in world.fake.deployments] == [MAIN_HEAD, MAIN_HEAD]


def test_a_drift_is_a_failed_deployment_kept_on_its_external_ledger_run(
    ci_world: World, tracking_uri: str
) -> None:
    world = ci_world
    world.handle(world.post(world.number, "/promote", author="maria"))
    approved = world.champion()
    number = open_ticked_request(world.ctx, world.fake, tracking_uri)
    world.ctx.registry.set_alias(world.model, "champion", approved + 1)  # in the MLflow UI
    world.rsps.calls.reset()
    outcome, _ = report_drift(world.ctx, "poll")
    assert outcome.status == "reported"
    sent = deployment_calls(world)
    description = (
        f"{world.model}: v{approved + 1} set outside promotion-bot (approved: v{approved})"
    )
    version_url = world.ctx.registry.version_url(world.model, approved + 1)
    if world.platform == "github":
        assert [(m, p) for m, p, _ in sent] == [
            ("POST", "/deployments"),
            ("POST", "/deployments/2/statuses"),
        ]
        assert sent[0][2]["description"] == description and sent[0][2]["ref"] == CI_SHA
        assert sent[1][2] == {
            "state": "failure",
            "description": description,
            "auto_inactive": False,
            "environment_url": version_url,
            "log_url": world.fake.threads[number]["html_url"],
        }
    else:
        assert sent[0] == (
            "POST",
            "/deployments",
            {
                "environment": f"model/{world.model}",
                "sha": CI_SHA,
                "ref": "main",
                "tag": False,
                "status": "failed",
            },
        )
        assert sent[1] == ("PUT", "/environments/100", {"external_url": version_url})
    external = [run for run in _ledger_runs(world) if run.params.get("action") == EXTERNAL]
    assert [run.tags.get(DEPLOYMENT_TAG) for run in external] == [f"{world.platform}:2"]
    assert all(DEPLOYMENT_TAG not in run.params for run in external)  # sealed params intact


def test_a_refusing_forge_is_one_warning_per_day_and_the_changes_stand(
    world: World,
    tracking_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world.fake.refuse_deployments = 403  # a token without deployments: write, or not Developer
    now = [1000.0]
    monkeypatch.setattr(deployments, "_clock", lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert world.handle(world.post(world.number, "/promote")).status == "changed"
        asked = deployment_calls(world)
        number = open_ticked_request(world.ctx, world.fake, tracking_uri)
        world.rsps.calls.reset()
        assert world.handle(world.post(number, "/promote")).status == "changed"
        assert deployment_calls(world) == []  # remembered by this process: not asked again
        now[0] += deployments.ASK_AGAIN_AFTER_S  # a day later it asks once more
        assert world.handle(world.post(number, "/rollback 1", author="olga")).status == "changed"
        asked_again = deployment_calls(world)
    refused = [r.getMessage() for r in caplog.records if "refused the deployment" in r.getMessage()]
    assert len(refused) == 2 and "403" in refused[0]  # the first change, then a day later
    assert [m for m, p, _ in asked if p == "/deployments"] == ["POST"]
    assert [m for m, p, _ in asked_again if p == "/deployments"] == ["POST"]
    assert world.champion() == 1 and world.fake.deployments == []
    assert len(world.answers()) == 1 and len(world.answers(number)) == 2  # every change answered


def test_the_switch_turns_them_off(tracking_uri: str, model_name: str, tmp_path: Path) -> None:
    off = {"deployments": {"enabled": False}}
    with make_world("github", tracking_uri, model_name, tmp_path, off) as world:
        assert world.handle(world.post(world.number, "/promote")).status == "changed"
        assert deployment_calls(world) == [] and world.fake.deployments == []


def test_on_by_default() -> None:
    assert parse_params({}).promotion.deployments.enabled is True


def _ledger_runs(world: World) -> list[Any]:
    experiment_id = world.ctx.ledger.experiment_id()
    runs, _ = world.ctx.registry.search_runs([experiment_id], "", max_results=100)
    return [run for run in runs if run.params.get("model") == world.model]


def _deployment_tags(world: World) -> list[str]:
    return [run.tags[DEPLOYMENT_TAG] for run in _ledger_runs(world) if DEPLOYMENT_TAG in run.tags]


# --- the local forge ---------------------------------------------------------------------------
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


def test_a_drift_the_bot_finds_is_a_failed_deployment_on_its_ledger_run(pg: Playground):
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.55)
    pg.ctx.registry.set_alias(pg.model, "champion", second)  # by hand, in the MLflow UI
    report_drift(pg.ctx, "poll")
    made = pg.forge.deployments()[-1]
    assert (made["version"], made["state"]) == (second, "failure")
    assert f"set outside promotion-bot (approved: v{first})" in made["description"]
    external = [run for run in pg.ledger_runs() if run.params.get("action") == EXTERNAL]
    assert [run.tags.get(DEPLOYMENT_TAG) for run in external] == [f"local:{made['id']}"]


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


# --- the done-when: both forges' deployment history after a /promote and a /rollback ----------
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
        assert [s["log_url"] for s in statuses[1:]] == [thread, thread]
        assert "rollback by olga" in made[-1]["description"]
    else:  # GitLab: the version is the environment's URL; a deployment has no log URL
        assert [d["status"] for d in made] == ["success"] * 3
        assert world.fake.environments[environment]["external_url"].endswith(version_page)
