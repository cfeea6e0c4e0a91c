"""A new request notifies its approvers (docs/design.md, "The promotion request"): who is picked
(bot/ci/recipients.py), and what python-gitlab and PyGithub send for it, asserted on the
requests themselves; someone the forge cannot assign is skipped with a warning and the request
still opens."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from bot.ci.gate import gate
from bot.ci.recipients import recipients
from bot.ci.register import register
from bot.ci.request import RequestResult, open_or_update_request
from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.forges._retry import RetryPolicy
from bot.forges.github import GitHubForge
from bot.forges.gitlab import GitLabForge
from bot.forges.local import LocalForge
from bot.runtime.context import Context
from bot.threads.thread import Recipients
from tests.fakes.forges import FakeForge, make_fake
from tests.forge_fixtures import body_of, github, github_url, gitlab, query_of
from tests.forge_world import world_settings
from tests.helpers import log_training_run

# --- who: the configuration, the requester and the bot ---------------------------------------


@pytest.mark.parametrize(
    ("request_cfg", "users", "kind", "assignees", "reviewers"),
    [
        ({}, [], "issue", (), ()),
        ({}, ["maria", "Dana", "olga"], "issue", ("maria", "olga"), ()),  # never the requester
        ({}, ["maria", "olga"], "merge_request", ("maria", "olga"), ("maria", "olga")),
        ({"assignees": ["lee"]}, ["maria"], "merge_request", ("lee",), ("maria",)),
        ({"assignees": [], "reviewers": ["org/ml"]}, ["maria"], "merge_request", (), ("org/ml",)),
        ({"assignees": ["MARIA", "maria", "promotion-bot"]}, [], "issue", ("MARIA",), ()),
        ({"reviewers": ["lee"]}, ["maria"], "issue", ("maria",), ()),  # issues have no reviewers
    ],
)
def test_who_is_notified(
    request_cfg: dict[str, Any],
    users: list[str],
    kind: Any,
    assignees: tuple[str, ...],
    reviewers: tuple[str, ...],
) -> None:
    promotion = {"request": request_cfg, "approvers": {"users": users}}
    params = parse_params({"promotion": promotion})
    people = recipients(params, kind, requester="dana", bot="promotion-bot")
    assert people == Recipients(assignees, reviewers)


@pytest.mark.parametrize(
    ("request_cfg", "message"),
    [
        ({"assignees": ["org/ml"]}, "a team cannot be assigned"),
        ({"reviewers": ["a/b/c"]}, "neither a username nor a team"),
        ({"assignees": ["@maria"]}, "not a username"),
        ({"reviewers": "maria"}, "expected a list"),
    ],
)
def test_bad_recipients_are_refused_at_load_time(request_cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        parse_params({"promotion": {"request": request_cfg}})


# --- request on both forges: the real registry, python-gitlab / PyGithub over `responses` -----


@pytest.fixture
def fake_world(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str
) -> Iterator[tuple[FakeForge, responses.RequestsMock]]:
    """The fake forge of `request.param`, a candidate v1 trained; only later calls recorded."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(tracking_uri)
        fake = make_fake(request.param)
        fake.install(rsps)
        train_candidate(fake, tracking_uri, model_name, 0.6)
        rsps.calls.reset()  # type: ignore[no-untyped-call]
        yield fake, rsps
    assert not fake.errors


def train_candidate(fake: FakeForge, tracking_uri: str, model: str, logloss: float) -> None:
    """What `register` + `gate` leave behind: a new version, the candidate."""
    params = parse_params({"register_model": {"model_name": model}})
    ctx = Context(settings=world_settings(fake, tracking_uri), params=params)
    run_id = log_training_run(tracking_uri, {"final.logloss": logloss})
    gate(ctx, version=register(ctx, run_id=run_id, alias="smoke").version.version)


def run_request(fake: FakeForge, tracking_uri: str, model: str, users: list[str]) -> RequestResult:
    """`promotion-bot request`, with dana as the requester and `users` as the approvers."""
    params = parse_params(
        {"register_model": {"model_name": model}, "promotion": {"approvers": {"users": users}}}
    )
    ctx = Context(settings=world_settings(fake, tracking_uri), params=params)
    return open_or_update_request(ctx)


def forge_writes(rsps: responses.RequestsMock) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) of every call to the forge, in order (reads with no body)."""
    calls = []
    for call in rsps.calls:
        url = str(call.request.url)
        if "127.0.0.1" in url:
            continue
        path = url.split("/api/v4", 1)[-1].split("api.github.com", 1)[-1].removeprefix(":443")
        body = body_of(call) if call.request.body else None
        calls.append((call.request.method, path, body))
    return calls


@pytest.mark.parametrize("fake_world", ["gitlab"], indirect=True)
def test_gitlab_request_assigns_the_approvers_and_skips_a_non_member(
    fake_world: tuple[FakeForge, responses.RequestsMock],
    tracking_uri: str,
    model_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, rsps = fake_world

    with caplog.at_level(logging.WARNING):
        result = run_request(fake, tracking_uri, model_name, ["maria", "dana", "olga", "ghost"])

    assert result.created and result.url
    calls = forge_writes(rsps)
    lookups = [c for c in calls if c[1].startswith("/users?")]
    assert [c[1].split("username=")[1].split("&")[0] for c in lookups] == ["maria", "olga", "ghost"]
    (opened,) = [c for c in calls if c[0] == "POST" and c[1].endswith("/issues")]
    assert opened[2]["assignee_ids"] == [18, 31]  # maria, olga; ghost has no account; dana asked
    thread = fake.threads[int(result.number)]
    assert [user["username"] for user in thread["assignees"]] == ["maria"]
    assert result.not_notified == ["olga (assignee)", "ghost (assignee)"]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert f"#{result.number} was opened, but the forge did not record olga (assignee)" in warning


@pytest.mark.parametrize("fake_world", ["github"], indirect=True)
def test_github_request_assigns_the_approvers_with_the_issue(
    fake_world: tuple[FakeForge, responses.RequestsMock], tracking_uri: str, model_name: str
) -> None:
    fake, rsps = fake_world

    result = run_request(fake, tracking_uri, model_name, ["maria", "dana"])

    writes = [c for c in forge_writes(rsps) if c[0] != "GET"]
    assert writes == [
        ("POST", "/repos/octo-org/models/issues", writes[0][2]),  # one call: no extra round trip
    ]
    assert writes[0][2]["assignees"] == ["maria"]
    assert [u["login"] for u in fake.threads[int(result.number)]["assignees"]] == ["maria"]
    assert result.not_notified == []


@pytest.mark.parametrize("fake_world", ["github"], indirect=True)
def test_github_request_opens_despite_an_assignee_github_refuses(
    fake_world: tuple[FakeForge, responses.RequestsMock],
    tracking_uri: str,
    model_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, rsps = fake_world

    with caplog.at_level(logging.WARNING):
        result = run_request(fake, tracking_uri, model_name, ["maria", "olga"])

    assert result.created
    statuses = [call.response.status_code for call in rsps.calls if call.request.method == "POST"]
    writes = [c for c in forge_writes(rsps) if c[0] != "GET"]
    number = result.number
    assert [(method, path) for method, path, _ in writes] == [
        ("POST", "/repos/octo-org/models/issues"),  # refused: olga is no collaborator (422)
        ("POST", "/repos/octo-org/models/issues"),  # opened without assignees
        ("POST", f"/repos/octo-org/models/issues/{number}/assignees"),  # GitHub keeps maria
    ]
    assert statuses[:3] == [422, 201, 201]
    assert writes[0][2]["assignees"] == ["maria", "olga"]
    assert "assignees" not in writes[1][2]
    assert writes[2][2] == {"assignees": ["maria", "olga"]}
    assert len(fake.threads) == 1  # one issue, not two
    assert [u["login"] for u in fake.threads[int(number)]["assignees"]] == ["maria"]
    assert result.not_notified == ["olga (assignee)"]
    assert any("olga (assignee)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("fake_world", ["gitlab", "github"], indirect=True)
def test_a_superseding_request_notifies_again_and_a_re_run_does_not(
    fake_world: tuple[FakeForge, responses.RequestsMock], tracking_uri: str, model_name: str
) -> None:
    fake, rsps = fake_world
    first = run_request(fake, tracking_uri, model_name, ["maria"])
    rsps.calls.reset()  # type: ignore[no-untyped-call]
    again = run_request(fake, tracking_uri, model_name, ["maria"])
    assert (again.created, again.number) == (False, first.number)
    assert not [c for c in forge_writes(rsps) if "/users?" in c[1] or c[0] == "POST"]

    train_candidate(fake, tracking_uri, model_name, 0.55)
    newer = run_request(fake, tracking_uri, model_name, ["maria"])
    assert newer.created and newer.superseded == [first.number]
    assignees = fake.threads[int(newer.number)]["assignees"]
    assert [u.get("username") or u.get("login") for u in assignees] == ["maria"]


# --- merge requests: assignees and reviewers, at the adapters ----------------------------------

GITLAB_P = "https://gitlab.example.com/api/v4/projects/ml-team%2Fsoccer"
PEOPLE = Recipients(
    assignees=("maria", "olga"), reviewers=("Maria", "ghost", "octo-org/ml-reviewers")
)


def gitlab_forge() -> GitLabForge:
    settings = Settings(
        platform="gitlab",
        gitlab_url="https://gitlab.example.com",
        gitlab_project="ml-team/soccer",
        gitlab_token=Secret("glpat-test-not-a-token"),
    )
    return GitLabForge.from_settings(settings, retry=RetryPolicy(sleeper=lambda _s: None))


def github_forge() -> GitHubForge:
    settings = Settings(
        platform="github",
        github_repository="octo-org/models",
        github_token=Secret("ghp_test_not_a_token"),
    )
    return GitHubForge.from_settings(settings, retry=RetryPolicy(sleeper=lambda _s: None))


def gitlab_user(name: str, uid: int) -> dict[str, Any]:
    return gitlab("users")[0] | {"id": uid, "username": name}


def test_gitlab_merge_request_carries_assignee_and_reviewer_ids(
    rsps: responses.RequestsMock,
) -> None:
    users = "https://gitlab.example.com/api/v4/users"
    rsps.get(users, match=[_username("maria")], json=[gitlab_user("maria", 18)])
    rsps.get(users, match=[_username("olga")], json=[gitlab_user("olga", 31)])
    rsps.get(users, match=[_username("ghost")], json=[])
    answer = gitlab("merge_request")
    answer.update(assignees=[gitlab_user("maria", 18)], reviewers=[gitlab_user("maria", 18)])
    rsps.post(f"{GITLAB_P}/merge_requests", json=answer, status=201)

    thread = gitlab_forge().open_merge_request(
        "Promote m v7", "body", ["model-promotion"], "promotion/m/v7", "main", PEOPLE
    )

    lookups = [query_of(call)["username"] for call in rsps.calls[:-1]]
    assert lookups == ["maria", "olga", "ghost"]  # Maria is maria: asked once; a team never
    sent = body_of(rsps.calls[-1])
    assert (sent["assignee_ids"], sent["reviewer_ids"]) == ([18, 31], [18])
    assert (thread.assignees, thread.reviewers) == (("maria",), ("maria",))


def _username(name: str) -> Any:
    return responses.matchers.query_param_matcher({"username": name}, strict_match=False)


def test_github_pull_request_asks_each_reviewer_alone_when_one_is_refused(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    pull = github("pull_request")
    number = pull["number"]
    maria = github("issue")["user"] | {"login": "maria"}
    team = {"slug": "ml-reviewers", "name": "ML reviewers"}
    rsps.post(github_url("/repos/octo-org/models/pulls"), json=pull, status=201)
    rsps.post(github_url(f"/repos/octo-org/models/issues/{number}/labels"), json=github("labels"))
    issue = github("issue_of_pull") | {"number": number, "assignees": [maria]}
    rsps.post(github_url(f"/repos/octo-org/models/issues/{number}/assignees"), json=issue)
    reviews = github_url(f"/repos/octo-org/models/pulls/{number}/requested_reviewers")
    refused = github("validation_error_422") | {
        "message": "Reviews may only be requested from collaborators. One or more of the users "
        "or teams you specified is not a collaborator of the octo-org/models repository."
    }
    for status, answer in [
        (422, refused),  # everyone at once: refused because of one name
        (201, pull | {"requested_reviewers": [maria]}),  # Maria
        (422, refused),  # ghost
        (201, pull | {"requested_reviewers": [maria], "requested_teams": [team]}),  # the team
    ]:
        rsps.post(reviews, json=answer, status=status)

    with caplog.at_level(logging.WARNING):
        thread = github_forge().open_merge_request(
            "Promote m v7", "body", ["model-promotion"], "promotion/m/v7", "main", PEOPLE
        )

    asked = [body_of(call) for call in rsps.calls if "requested_reviewers" in call.request.url]
    assert asked == [
        {"reviewers": ["Maria", "ghost"], "team_reviewers": ["ml-reviewers"]},
        {"reviewers": ["Maria"], "team_reviewers": []},
        {"reviewers": ["ghost"], "team_reviewers": []},
        {"reviewers": [], "team_reviewers": ["ml-reviewers"]},
    ]
    assigned = [body_of(call) for call in rsps.calls if call.request.url.endswith("/assignees")]
    assert assigned == [{"assignees": ["maria", "olga"]}]
    assert thread.assignees == ("maria",)
    assert thread.reviewers == ("maria", "octo-org/ml-reviewers")
    assert "GitHub refused a review request for ghost" in caplog.text


def test_github_review_requests_that_fail_otherwise_leave_the_pull_request_open(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    pull = github("pull_request")
    rsps.post(github_url("/repos/octo-org/models/pulls"), json=pull, status=201)
    rsps.post(
        github_url(f"/repos/octo-org/models/pulls/{pull['number']}/requested_reviewers"),
        json={"message": "Resource not accessible by integration"},
        status=403,
    )
    with caplog.at_level(logging.WARNING):
        thread = github_forge().open_merge_request(
            "t", "b", [], "promotion/m/v7", "main", Recipients(reviewers=("maria",))
        )
    assert thread.number == str(pull["number"]) and thread.reviewers == ()
    assert "could not request reviews" in caplog.text


# --- the local forge, as the demo shows it -----------------------------------------------------


def test_local_forge_assigns_members_only_and_says_so(tmp_path: Path) -> None:
    shown: list[str] = []
    forge = LocalForge(tmp_path / "forge", echo=shown.append)
    forge.set_role("maria", "maintainer")
    thread = forge.open_issue("t", "b", ["l"], Recipients(assignees=("maria", "olga")))
    assert thread.assignees == ("maria",)
    assert forge.get_thread("issue", thread.number).assignees == ("maria",)
    assert "assigned to maria" in shown[0]
