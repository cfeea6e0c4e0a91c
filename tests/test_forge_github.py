"""GitHubForge against `responses` mocks shaped like real GitHub REST answers."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import pytest
import requests
import responses

from bot.config.settings import Secret, Settings
from bot.errors import ConfigError, ForgeAuthError, ForgeError, ForgeNotFoundError
from bot.forges._github_support import review_verdict
from bot.forges._retry import RetryPolicy
from bot.forges.base import Forge
from bot.forges.github import GitHubForge
from bot.threads.thread import Thread
from tests.forge_fixtures import body_of, github, github_url, query_of

TOKEN = "ghp_TOPSECRET0123456789abcdefABCDEF0000"
REPO = "/repos/octo-org/models"
ISSUE = Thread(kind="issue", number="1", title="t", body="b", url="", state="open")
PR = Thread(kind="merge_request", number="2", title="t", body="b", url="", state="open")


def settings(**changes: object) -> Settings:
    values: dict[str, object] = {
        "platform": "github",
        "github_repository": "octo-org/models",
        "github_token": Secret(TOKEN),
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def url(path: str) -> Any:
    return github_url(REPO + path)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def forge(waits: list[float]) -> GitHubForge:
    return GitHubForge.from_settings(settings(), retry=RetryPolicy(sleeper=waits.append))


# --- construction --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"github_repository": ""}, "GITHUB_REPOSITORY is not set"),
        ({"github_repository": "models"}, "GITHUB_REPOSITORY must be owner/name"),
        ({"github_token": Secret("")}, "GITHUB_TOKEN is not set"),
    ],
)
def test_bad_settings_name_the_variable(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GitHubForge.from_settings(settings(**changes))


def test_construction_makes_no_request(rsps: responses.RequestsMock) -> None:
    forge = GitHubForge.from_settings(settings())
    assert isinstance(forge, Forge)
    assert forge.platform == "github"
    assert forge.slash_promote_works() is True
    assert len(rsps.calls) == 0


def test_github_enterprise_api_url(rsps: responses.RequestsMock) -> None:
    api = "https://ghe.example.com/api/v3"
    forge = GitHubForge.from_settings(settings(github_api_url=api))
    rsps.post(github_url(f"{REPO}/issues/1/comments", api), json=github("comment"), status=201)
    rsps.get(
        github_url(f"{REPO}/collaborators/dana/permission", api),
        json=github("collaborator_permission"),
    )
    forge.post_comment(ISSUE, "hi")
    assert forge.access_level("dana") == 50
    for call in rsps.calls:
        sent = str(call.request.url)
        assert sent.startswith("https://ghe.example.com")
        assert "/api/v3/repos/octo-org/models/" in sent


# --- requests ------------------------------------------------------------------------------
def test_open_issue(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.post(url("/issues"), json=github("issue"), status=201)
    thread = forge.open_issue("Promote m v7", "the body", ["model-promotion"])
    assert body_of(rsps.calls[0]) == {
        "title": "Promote m v7",
        "body": "the body",
        "labels": ["model-promotion"],
    }
    assert TOKEN in rsps.calls[0].request.headers["Authorization"]
    assert (thread.kind, thread.number, thread.state) == ("issue", "1", "open")
    assert thread.url == "https://github.com/octo-org/models/issues/1"
    assert thread.labels == ("model-promotion",)
    assert thread.author == "promotion-bot"


def test_open_pull_request_then_labels_it(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.post(url("/pulls"), json=github("pull_request"), status=201)
    rsps.post(url("/issues/2/labels"), json=github("labels"))
    thread = forge.open_merge_request(
        "Promote m v7", "body", ["model-promotion"], "promotion/m/v7", "main"
    )
    assert body_of(rsps.calls[0]) == {
        "title": "Promote m v7",
        "body": "body",
        "head": "promotion/m/v7",
        "base": "main",
        "draft": False,
    }
    assert body_of(rsps.calls[1]) == {"labels": ["model-promotion"]}
    assert (thread.kind, thread.number, thread.state) == ("merge_request", "2", "open")
    assert thread.labels == ("model-promotion",)


def test_commit_file_creates_branch_and_file(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    sha = github("commit")["sha"]
    rsps.get(url("/branches/promotion/m/v7"), json=github("not_found_404"), status=404)
    rsps.get(url("/commits/main"), json=github("commit"))
    rsps.post(url("/git/refs"), json=github("git_ref"), status=201)
    rsps.get(url("/contents/promotions/m.json"), json=github("not_found_404"), status=404)
    rsps.put(url("/contents/promotions/m.json"), json=github("file_commit"), status=201)
    forge.commit_file("promotion/m/v7", "main", "promotions/m.json", '{"v": 7}\n', "Record v7")
    assert body_of(rsps.calls[2]) == {"ref": "refs/heads/promotion/m/v7", "sha": sha}
    assert query_of(rsps.calls[3]) == {"ref": "promotion/m/v7"}
    sent = body_of(rsps.calls[4])
    assert sent["message"] == "Record v7"
    assert sent["branch"] == "promotion/m/v7"
    assert base64.b64decode(sent["content"]).decode() == '{"v": 7}\n'
    assert "sha" not in sent


def test_commit_file_updates_with_the_existing_sha(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(url("/branches/promotion/m/v7"), json=github("branch"))
    rsps.get(url("/contents/promotions/m.json"), json=github("content_file"))
    rsps.put(url("/contents/promotions/m.json"), json=github("file_commit"))
    forge.commit_file("promotion/m/v7", "main", "promotions/m.json", '{"v": 7}\n', "Record v7")
    sent = body_of(rsps.calls[2])
    assert sent["sha"] == github("content_file")["sha"]
    assert sent["branch"] == "promotion/m/v7"


def test_commit_file_with_same_content_makes_no_commit(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    current = base64.b64decode(github("content_file")["content"]).decode()
    rsps.get(url("/branches/promotion/m/v7"), json=github("branch"))
    rsps.get(url("/contents/promotions/m.json"), json=github("content_file"))
    forge.commit_file("promotion/m/v7", "main", "promotions/m.json", current, "Record v7")
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("thread", [ISSUE, PR])
def test_update_body_is_one_patch(
    forge: GitHubForge, rsps: responses.RequestsMock, thread: Thread
) -> None:
    rsps.patch(url(f"/issues/{thread.number}"), json=github("issue"))
    forge.update_body(thread, "new body")
    assert len(rsps.calls) == 1
    assert body_of(rsps.calls[0]) == {"body": "new body"}


def test_close(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.patch(url("/issues/1"), json=github("issue", state="closed"))
    forge.close(ISSUE)
    assert body_of(rsps.calls[0]) == {"state": "closed"}


def test_update_and_close_is_one_patch(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.patch(url("/issues/1"), json=github("issue", state="closed"))
    forge.update_and_close(ISSUE, "new body")
    assert len(rsps.calls) == 1
    assert body_of(rsps.calls[0]) == {"body": "new body", "state": "closed"}


def test_merge(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.put(url("/pulls/2/merge"), json=github("merge"))
    forge.merge(PR, sha="ec26c3e5")
    assert len(rsps.calls) == 1
    assert body_of(rsps.calls[0])["sha"] == "ec26c3e5"


def test_get_thread_of_a_merged_pull(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    merged = github("pull_request", state="closed", merged=True, merged_at="2025-03-10T08:00:00Z")
    rsps.get(url("/pulls/2"), json=merged)
    thread = forge.get_thread("merge_request", "2")
    assert (thread.kind, thread.number, thread.state) == ("merge_request", "2", "merged")


def test_find_threads_one_listing_for_issues_and_pulls(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(url("/issues"), json=[github("issue_of_pull"), github("issue")])
    threads = forge.find_threads(["model-promotion", "ml"], state="all")
    assert [(t.kind, t.number, t.state) for t in threads] == [
        ("merge_request", "2", "merged"),
        ("issue", "1", "open"),
    ]
    assert len(rsps.calls) == 1  # no per-item GET to complete the objects
    assert query_of(rsps.calls[0]) == {
        "state": "all",
        "labels": "model-promotion,ml",
        "sort": "created",
        "direction": "desc",
        "per_page": "100",
    }


def test_find_threads_of_one_kind_filters_the_one_listing(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(url("/issues"), json=[github("issue_of_pull"), github("issue")])
    threads = forge.find_threads(["model-promotion"], kinds=("issue",))
    assert [(t.kind, t.number) for t in threads] == [("issue", "1")]
    assert len(rsps.calls) == 1


def test_find_threads_by_an_author_asks_github_to_filter(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(url("/issues"), json=[github("issue")])
    forge.find_threads(["model-promotion"], author="promotion-bot[bot]")
    assert query_of(rsps.calls[0])["creator"] == "promotion-bot[bot]"


def test_find_threads_since_asks_for_the_updated_ones_only(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(url("/issues"), json=[github("issue")])
    forge.find_threads(["model-promotion"], state="all", since="2026-05-04T11:58:00Z")
    assert len(rsps.calls) == 1
    assert query_of(rsps.calls[0])["since"] == "2026-05-04T11:58:00Z"


def test_find_threads_stops_after_the_newest_pages(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    def page(start: int) -> list[dict[str, Any]]:
        return [github("issue", number=n) for n in range(start, start - 100, -1)]

    listing = "https://api.github.com/repositories/1/issues"
    rsps.get(url("/issues"), json=page(300), headers={"Link": f'<{listing}?page=2>; rel="next"'})
    # Page 3 exists but is not registered: asking for it would fail the test.
    rsps.get(
        github_url("/repositories/1/issues"),
        json=page(200),
        headers={"Link": f'<{listing}?page=3>; rel="next"'},
    )
    threads = forge.find_threads(["model-promotion"])
    assert len(threads) == 200
    assert threads[0].number == "300"
    assert len(rsps.calls) == 2


# --- comments ------------------------------------------------------------------------------
def test_list_comments(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.get(url("/issues/1/comments"), json=github("comments"))
    comments = forge.list_comments(ISSUE)
    assert [c.id for c in comments] == ["396926480", "396926483", "396926490"]
    assert comments[0].author == "dana"
    assert comments[0].author_id == "327146"
    assert comments[0].body.startswith("/promote")
    assert comments[2].author == ""  # deleted account: GitHub sends "user": null
    assert not any(c.edited for c in comments)
    assert len(rsps.calls) == 1


def test_an_edited_comment_is_marked(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    edited = github("comment", created_at="2025-03-08T12:50:00Z", updated_at="2025-03-08T12:51:07Z")
    rsps.get(url("/issues/1/comments"), json=[edited])
    assert [c.edited for c in forge.list_comments(ISSUE)] == [True]


def test_list_comments_since(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.get(url("/issues/2/comments"), json=[])
    assert forge.list_comments(PR, since="2025-03-08T14:00:00+02:00") == []
    assert query_of(rsps.calls[0])["since"] == "2025-03-08T12:00:00Z"


def test_post_comment_sends_the_body(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.post(url("/issues/1/comments"), json=github("comment"), status=201)
    comment = forge.post_comment(ISSUE, "Promoted **v7**")
    assert body_of(rsps.calls[0]) == {"body": "Promoted **v7**"}
    assert comment.id == "396926483"
    assert comment.author == "promotion-bot"


@pytest.mark.parametrize(
    ("reaction", "content"), [("+1", "+1"), ("thumbsup", "+1"), ("eyes", "eyes")]
)
def test_react_on_the_issue_comment(
    forge: GitHubForge, rsps: responses.RequestsMock, reaction: str, content: str
) -> None:
    rsps.post(url("/issues/comments/396926480/reactions"), json=github("reaction"), status=201)
    forge.react(ISSUE, "396926480", reaction)
    assert body_of(rsps.calls[0]) == {"content": content}


def test_react_failure_is_only_a_warning(
    forge: GitHubForge, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.post(url("/issues/comments/5/reactions"), json=github("not_found_404"), status=404)
    with caplog.at_level(logging.WARNING):
        forge.react(ISSUE, "5", "eyes")
    assert "could not react" in caplog.text


# --- identity, people, approvals -----------------------------------------------------------
def test_bot_username_is_fetched_once(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.get(github_url("/user"), json=github("user"))
    assert forge.bot_username() == "promotion-bot"
    assert forge.bot_username() == "promotion-bot"
    assert len(rsps.calls) == 1


def test_bot_username_with_the_actions_token(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        github_url("/user"), json={"message": "Resource not accessible by integration"}, status=403
    )
    assert forge.bot_username() == "github-actions[bot]"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (github("collaborator_permission_role_name"), 40),  # role_name wins over permission
        (github("collaborator_permission"), 50),  # legacy: permission only
        ({**github("collaborator_permission_role_name"), "role_name": "triage"}, 20),
        ({**github("collaborator_permission_role_name"), "role_name": "ml-reviewer"}, 30),
        ({"permission": "none", "role_name": "none"}, 0),
    ],
)
def test_access_level(
    forge: GitHubForge, rsps: responses.RequestsMock, body: dict[str, Any], expected: int
) -> None:
    rsps.get(url("/collaborators/dana/permission"), json=body)
    assert forge.access_level("dana") == expected


def test_access_level_of_an_unknown_user_is_zero(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(url("/collaborators/ghost/permission"), json=github("not_found_404"), status=404)
    assert forge.access_level("ghost") == 0


TEAM = github_url("/orgs/octo-org/teams/churn-owners/memberships/dana")


@pytest.mark.parametrize(
    ("reply", "member"),
    [
        ({"json": github("team_membership")}, True),
        ({"json": github("team_membership", state="pending")}, False),  # invited, not yet in
        ({"json": github("not_found_404"), "status": 404}, False),
    ],
    ids=["active", "pending", "no member or no team"],
)
def test_team_membership(
    forge: GitHubForge, rsps: responses.RequestsMock, reply: dict[str, object], member: bool
) -> None:
    rsps.get(TEAM, **reply)  # type: ignore[arg-type]
    assert forge.team_member("octo-org/churn-owners", "dana") is member


def test_a_team_lookup_the_token_may_not_make_raises_instead_of_saying_no(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(TEAM, json=github("not_accessible_403"), status=403)
    with pytest.raises(ForgeError, match="HTTP 403"):
        forge.team_member("octo-org/churn-owners", "dana")
    with pytest.raises(ForgeError, match="no team"):
        forge.team_member("octo-org", "dana")


def test_access_level_without_push_access_is_an_auth_error(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        url("/collaborators/dana/permission"),
        json=github("collaborator_permission_403"),
        status=403,
    )
    with pytest.raises(ForgeAuthError, match="Must have push access"):
        forge.access_level("dana")


def test_is_approved_reads_the_reviews(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.get(url("/pulls/2/reviews"), json=github("reviews"))
    assert forge.is_approved(PR) is True
    assert len(rsps.calls) == 1


def _review(user: str, state: str) -> dict[str, Any]:
    return {"user": {"login": user}, "state": state}


@pytest.mark.parametrize(
    ("reviews", "expected"),
    [
        ([], False),
        ([_review("a", "APPROVED")], True),
        ([_review("a", "APPROVED"), _review("a", "COMMENTED")], True),
        ([_review("a", "CHANGES_REQUESTED"), _review("a", "APPROVED")], True),
        ([_review("a", "APPROVED"), _review("a", "CHANGES_REQUESTED")], False),
        ([_review("a", "APPROVED"), _review("a", "DISMISSED")], False),
        ([_review("a", "APPROVED"), _review("b", "CHANGES_REQUESTED")], False),
        ([_review("a", "COMMENTED")], False),
    ],
)
def test_review_verdict(reviews: list[dict[str, Any]], expected: bool) -> None:
    assert review_verdict(reviews) is expected


# --- errors and retries --------------------------------------------------------------------
def test_401_is_an_auth_error_without_the_token(
    forge: GitHubForge, rsps: responses.RequestsMock
) -> None:
    rsps.post(url("/issues"), json=github("bad_credentials_401"), status=401)
    with pytest.raises(ForgeAuthError) as info:
        forge.open_issue("t", "b", [])
    message = str(info.value)
    assert "open issue" in message
    assert "401" in message
    assert "Bad credentials" in message
    assert TOKEN not in message


def test_404_is_not_found_with_a_hint(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.get(url("/issues/1"), json=github("not_found_404"), status=404)
    with pytest.raises(ForgeNotFoundError) as info:
        forge.get_thread("issue", "1")
    message = str(info.value)
    assert "get issue #1" in message
    assert "GITHUB_REPOSITORY=octo-org/models" in message
    assert TOKEN not in message


def test_422_shows_the_validation_details(forge: GitHubForge, rsps: responses.RequestsMock) -> None:
    rsps.post(url("/pulls"), json=github("validation_error_422"), status=422)
    with pytest.raises(ForgeError, match="A pull request already exists"):
        forge.open_merge_request("t", "b", [], "promotion/m/v7", "main")


def test_429_waits_retry_after_then_succeeds(
    forge: GitHubForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.get(
        url("/issues/1/comments"),
        json={"message": "slow down"},
        status=429,
        headers={"Retry-After": "3"},
    )
    rsps.get(url("/issues/1/comments"), json=github("comments"))
    assert len(forge.list_comments(ISSUE)) == 3
    assert waits == [3.0]
    assert len(rsps.calls) == 2


def test_secondary_rate_limit_403_is_retried_after_retry_after(
    forge: GitHubForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.post(
        url("/issues/1/comments"),
        json=github("secondary_rate_limit_403"),
        status=403,
        headers={"Retry-After": "60"},
    )
    rsps.post(url("/issues/1/comments"), json=github("comment"), status=201)
    assert forge.post_comment(ISSUE, "hi").id == "396926483"  # a POST too: it was refused
    assert waits == [60.0]


def test_primary_rate_limit_waits_until_the_reset(
    forge: GitHubForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    reset = str(int(time.time()) + 10)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    rsps.get(
        url("/issues/1/comments"),
        json=github("primary_rate_limit_403"),
        status=403,
        headers=headers,
    )
    rsps.get(url("/issues/1/comments"), json=[])
    forge.list_comments(ISSUE)
    assert len(waits) == 1
    assert 8 <= waits[0] <= 12


def test_primary_rate_limit_far_away_fails_at_once(
    forge: GitHubForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3000)}
    rsps.get(
        url("/issues/1/comments"),
        json=github("primary_rate_limit_403"),
        status=403,
        headers=headers,
    )
    with pytest.raises(ForgeError, match="rate limited") as info:
        forge.list_comments(ISSUE)
    assert not isinstance(info.value, ForgeAuthError)
    assert waits == []


def test_5xx_is_retried_a_bounded_number_of_times(
    forge: GitHubForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.get(url("/pulls/2/reviews"), json={"message": "Server Error"}, status=502)
    with pytest.raises(ForgeError, match="502") as info:
        forge.is_approved(PR)
    assert not isinstance(info.value, (ForgeAuthError, ForgeNotFoundError))
    assert len(rsps.calls) == 3
    assert waits == [1.0, 2.0]


def test_5xx_on_a_create_is_not_retried(
    forge: GitHubForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.post(url("/issues/1/comments"), json={"message": "Server Error"}, status=500)
    with pytest.raises(ForgeError, match="500"):
        forge.post_comment(ISSUE, "hi")
    assert len(rsps.calls) == 1
    assert waits == []


def test_connection_errors_are_retried_then_reported(
    forge: GitHubForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.get(url("/issues/1"), body=requests.ConnectionError("connection refused"))
    with pytest.raises(ForgeError, match="cannot reach"):
        forge.get_thread("issue", "1")
    assert len(rsps.calls) == 3
