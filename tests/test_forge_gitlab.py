"""GitLabForge against `responses` mocks shaped like real GitLab API answers."""

from __future__ import annotations

import base64
import logging
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses

from bot.config.settings import Secret, Settings
from bot.errors import ConfigError, ForgeAuthError, ForgeError, ForgeNotFoundError
from bot.forges._gitlab_support import comment_from
from bot.forges._retry import RetryPolicy
from bot.forges.base import Forge
from bot.forges.gitlab import GitLabForge
from bot.threads.thread import ProjectRef, Thread
from tests.forge_fixtures import body_of, gitlab, query_of

TOKEN = "glpat-TOPSECRET-4f9a1c77"
BASE = "https://gitlab.example.com"
PROJECT = "ml-team/soccer"
P = f"{BASE}/api/v4/projects/ml-team%2Fsoccer"
ISSUE = Thread(kind="issue", number="14", title="t", body="b", url="", state="open")
MR = Thread(kind="merge_request", number="8", title="t", body="b", url="", state="open")


def settings(**changes: object) -> Settings:
    values: dict[str, object] = {
        "platform": "gitlab",
        "gitlab_url": BASE,
        "gitlab_project": PROJECT,
        "gitlab_token": Secret(TOKEN),
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def forge(waits: list[float]) -> GitLabForge:
    return GitLabForge.from_settings(settings(), retry=RetryPolicy(sleeper=waits.append))


# --- construction --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "variable"),
    [({"gitlab_project": ""}, "GITLAB_PROJECT"), ({"gitlab_token": Secret("")}, "GITLAB_TOKEN")],
)
def test_missing_setting_names_the_variable(changes: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable} is not set"):
        GitLabForge.from_settings(settings(**changes))


def test_construction_makes_no_request(rsps: responses.RequestsMock) -> None:
    forge = GitLabForge.from_settings(settings())
    assert isinstance(forge, Forge)
    assert forge.platform == "gitlab"
    assert len(rsps.calls) == 0


def test_self_hosted_url_with_a_path_and_numeric_project(rsps: responses.RequestsMock) -> None:
    forge = GitLabForge.from_settings(
        settings(gitlab_url="https://git.corp.example/gitlab", gitlab_project="42")
    )
    rsps.get("https://git.corp.example/gitlab/api/v4/projects/42/issues/14", json=gitlab("issue"))
    assert forge.get_thread("issue", "14").number == "14"


# --- requests ------------------------------------------------------------------------------
def test_open_issue(forge: GitLabForge, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{P}/issues", json=gitlab("issue"), status=201)
    thread = forge.open_issue("Promote m v7", "the body", ["model-promotion", "ml"])
    request = rsps.calls[0].request
    assert body_of(rsps.calls[0]) == {
        "title": "Promote m v7",
        "description": "the body",
        "labels": "model-promotion,ml",
    }
    assert request.headers["PRIVATE-TOKEN"] == TOKEN
    assert thread.kind == "issue"
    assert thread.number == "14"
    assert thread.state == "open"
    assert thread.url == "https://gitlab.example.com/ml-team/soccer/-/issues/14"
    assert thread.labels == ("model-promotion",)
    assert thread.author == "project_42_bot_5e1f"
    assert "promotion-bot:request" in thread.body


def test_open_merge_request(forge: GitLabForge, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{P}/merge_requests", json=gitlab("merge_request"), status=201)
    thread = forge.open_merge_request(
        "Promote m v7", "body", ["model-promotion"], "promotion/m/v7", "main"
    )
    assert body_of(rsps.calls[0]) == {
        "source_branch": "promotion/m/v7",
        "target_branch": "main",
        "title": "Promote m v7",
        "description": "body",
        "labels": "model-promotion",
        "remove_source_branch": True,
    }
    assert (thread.kind, thread.number, thread.state) == ("merge_request", "8", "open")


def test_commit_file_creates_branch_and_file(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    branch_url = f"{P}/repository/branches/promotion%2Fm%2Fv7"
    rsps.get(branch_url, json={"message": "404 Branch Not Found"}, status=404)
    rsps.post(f"{P}/repository/branches", json=gitlab("branch"), status=201)
    rsps.get(
        f"{P}/repository/files/promotions%2Fm.json",
        json={"message": "404 File Not Found"},
        status=404,
    )
    rsps.post(f"{P}/repository/commits", json=gitlab("commit"), status=201)
    forge.commit_file("promotion/m/v7", "main", "promotions/m.json", '{"v": 7}\n', "Record v7")
    assert body_of(rsps.calls[1]) == {"branch": "promotion/m/v7", "ref": "main"}
    assert query_of(rsps.calls[2]) == {"ref": "promotion/m/v7"}
    assert body_of(rsps.calls[3]) == {
        "branch": "promotion/m/v7",
        "commit_message": "Record v7",
        "actions": [
            {"action": "create", "file_path": "promotions/m.json", "content": '{"v": 7}\n'}
        ],
    }


def test_commit_file_updates_an_existing_file(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{P}/repository/branches/promotion%2Fm%2Fv7", json=gitlab("branch"))
    rsps.get(f"{P}/repository/files/promotions%2Fm.json", json=gitlab("file"))
    rsps.post(f"{P}/repository/commits", json=gitlab("commit"), status=201)
    forge.commit_file("promotion/m/v7", "main", "promotions/m.json", '{"v": 7}\n', "Record v7")
    assert [c.request.method for c in rsps.calls] == ["GET", "GET", "POST"]
    assert body_of(rsps.calls[2])["actions"][0]["action"] == "update"


def test_commit_file_with_same_content_makes_no_commit(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    current = base64.b64decode(gitlab("file")["content"]).decode()
    rsps.get(f"{P}/repository/branches/promotion%2Fm%2Fv7", json=gitlab("branch"))
    rsps.get(f"{P}/repository/files/promotions%2Fm.json", json=gitlab("file"))
    forge.commit_file("promotion/m/v7", "main", "promotions/m.json", current, "Record v7")
    assert len(rsps.calls) == 2


@pytest.mark.parametrize(("thread", "path"), [(ISSUE, "issues/14"), (MR, "merge_requests/8")])
def test_update_body_is_one_put(
    forge: GitLabForge, rsps: responses.RequestsMock, thread: Thread, path: str
) -> None:
    rsps.put(f"{P}/{path}", json=gitlab("issue"))
    forge.update_body(thread, "new body")
    assert len(rsps.calls) == 1
    assert body_of(rsps.calls[0]) == {"description": "new body"}


def test_close(forge: GitLabForge, rsps: responses.RequestsMock) -> None:
    rsps.put(f"{P}/issues/14", json=gitlab("issue", state="closed"))
    forge.close(ISSUE)
    assert body_of(rsps.calls[0]) == {"state_event": "close"}


def test_update_and_close_is_one_put(forge: GitLabForge, rsps: responses.RequestsMock) -> None:
    rsps.put(f"{P}/issues/14", json=gitlab("issue", state="closed"))
    forge.update_and_close(ISSUE, "new body")
    assert len(rsps.calls) == 1
    assert body_of(rsps.calls[0]) == {"description": "new body", "state_event": "close"}


def test_merge(forge: GitLabForge, rsps: responses.RequestsMock) -> None:
    rsps.put(f"{P}/merge_requests/8/merge", json=gitlab("merge_request", state="merged"))
    forge.merge(MR, sha="a7e1c0cc")
    assert len(rsps.calls) == 1
    assert body_of(rsps.calls[0]) == {"sha": "a7e1c0cc", "should_remove_source_branch": True}


def test_merge_refuses_an_issue(forge: GitLabForge) -> None:
    with pytest.raises(ForgeError, match="cannot merge issue"):
        forge.merge(ISSUE, sha="a7e1c0cc")


@pytest.mark.parametrize(
    ("state", "expected"), [("opened", "open"), ("closed", "closed"), ("merged", "merged")]
)
def test_get_thread_normalises_state(
    forge: GitLabForge, rsps: responses.RequestsMock, state: str, expected: str
) -> None:
    rsps.get(f"{P}/merge_requests/8", json=gitlab("merge_request", state=state))
    thread = forge.get_thread("merge_request", "8")
    assert (thread.kind, thread.number, thread.state) == ("merge_request", "8", expected)


def test_find_threads_lists_issues_and_mrs_newest_first(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    old_issue = gitlab("issue", iid=3, created_at="2025-01-01T00:00:00.000Z")
    rsps.get(f"{P}/issues", json=[gitlab("issue"), old_issue])
    rsps.get(f"{P}/merge_requests", json=[gitlab("merge_request")])
    threads = forge.find_threads(["model-promotion"])
    assert [(t.kind, t.number) for t in threads] == [
        ("merge_request", "8"),
        ("issue", "14"),
        ("issue", "3"),
    ]
    for call in rsps.calls:
        assert query_of(call) == {
            "labels": "model-promotion",
            "state": "opened",
            "order_by": "created_at",
            "sort": "desc",
            "per_page": "100",
        }


def test_find_threads_of_one_kind_is_one_call(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{P}/merge_requests", json=[gitlab("merge_request")])
    threads = forge.find_threads(["model-promotion"], kinds=("merge_request",))
    assert [(t.kind, t.number) for t in threads] == [("merge_request", "8")]
    assert len(rsps.calls) == 1  # the issues endpoint is not asked


def test_find_threads_since_asks_each_kind_for_the_updated_ones_only(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{P}/issues", json=[gitlab("issue")])
    rsps.get(f"{P}/merge_requests", json=[])
    forge.find_threads(["model-promotion"], state="all", since="2026-05-04T11:58:00Z")
    assert [query_of(call)["updated_after"] for call in rsps.calls] == [
        "2026-05-04T11:58:00Z",
        "2026-05-04T11:58:00Z",
    ]


def test_find_threads_by_an_author_asks_gitlab_to_filter(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{P}/issues", json=[gitlab("issue")])
    forge.find_threads(["model-promotion"], kinds=("issue",), author="promotion-bot")
    assert query_of(rsps.calls[0])["author_username"] == "promotion-bot"


def test_find_threads_closed_includes_merged_and_drops_open(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{P}/issues", json=[gitlab("issue"), gitlab("issue", iid=2, state="closed")])
    rsps.get(f"{P}/merge_requests", json=[gitlab("merge_request", state="merged")])
    threads = forge.find_threads(["model-promotion"], state="closed")
    assert {(t.number, t.state) for t in threads} == {("2", "closed"), ("8", "merged")}
    assert query_of(rsps.calls[0])["state"] == "all"


# --- comments ------------------------------------------------------------------------------
def test_list_comments_oldest_first_with_system_flag(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{P}/issues/14/notes", json=gitlab("notes"))
    comments = forge.list_comments(ISSUE)
    assert query_of(rsps.calls[0]) == {"order_by": "created_at", "sort": "asc", "per_page": "100"}
    assert [c.id for c in comments] == ["302", "305", "306"]
    assert [c.system for c in comments] == [True, False, False]
    assert comments[1].author == "dana"
    assert comments[1].author_id == "18"
    assert comments[1].body.startswith("@promotion-bot promote")


def test_list_comments_since_stops_paging_at_older_notes(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    newest_first = list(reversed(gitlab("notes")))
    # A next page exists but is never requested: its notes are all older than `since`.
    rsps.get(
        f"{P}/merge_requests/8/notes",
        json=newest_first,
        headers={"Link": f'<{P}/merge_requests/8/notes?page=2&per_page=100>; rel="next"'},
    )
    comments = forge.list_comments(MR, since="2025-03-08T09:56:00Z")
    assert query_of(rsps.calls[0])["sort"] == "desc"
    assert [c.id for c in comments] == ["305", "306"]
    assert len(rsps.calls) == 1


def test_post_comment_sends_the_body(forge: GitLabForge, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{P}/merge_requests/8/notes", json=gitlab("note"), status=201)
    comment = forge.post_comment(MR, "Promoted **v7**")
    assert body_of(rsps.calls[0]) == {"body": "Promoted **v7**"}
    assert comment.id == "301"
    assert comment.author == "dana"


def test_internal_post_comment_is_an_internal_note(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{P}/issues/14/notes", json=gitlab("note", internal=True), status=201)
    comment = forge.post_comment(ISSUE, "Promoted, because of the incident", internal=True)
    assert body_of(rsps.calls[0]) == {"body": "Promoted, because of the incident", "internal": True}
    assert comment.internal is True


@pytest.mark.parametrize(
    ("flags", "internal"),
    [({"internal": True}, True), ({"confidential": True}, True), ({"internal": False}, False)],
)
def test_list_comments_reads_the_internal_flag(
    forge: GitLabForge, rsps: responses.RequestsMock, flags: dict[str, bool], internal: bool
) -> None:
    notes = gitlab("notes")
    notes[1].pop("internal", None)
    notes[1].update(flags)
    rsps.get(f"{P}/issues/14/notes", json=notes)
    assert [c.internal for c in forge.list_comments(ISSUE)] == [False, internal, False]


@pytest.mark.parametrize(
    ("project", "ref"),
    [
        ("ml-team/soccer", ProjectRef(path="ml-team/soccer")),
        ("42", ProjectRef(id="42")),  # CI_PROJECT_ID
        (" 042 ", ProjectRef(id="42")),
        ("/ml-team/soccer/", ProjectRef(path="ml-team/soccer")),
    ],
)
def test_project_ref_is_what_gitlab_project_names_without_a_call(
    rsps: responses.RequestsMock, project: str, ref: ProjectRef
) -> None:
    assert GitLabForge.from_settings(settings(gitlab_project=project)).project_ref() == ref
    assert len(rsps.calls) == 0


def test_post_comment_of_only_quick_actions(rsps: responses.RequestsMock) -> None:
    """GitLab answers 202 and saves no note when a note is nothing but quick actions."""
    forge = GitLabForge.from_settings(settings(bot_username="bot"))
    rsps.post(f"{P}/issues/14/notes", json=gitlab("note_commands_202"), status=202)
    comment = forge.post_comment(ISSUE, "/label ~x")
    assert comment.id == ""
    assert comment.author == "bot"


@pytest.mark.parametrize(
    ("reaction", "emoji"), [("+1", "thumbsup"), ("-1", "thumbsdown"), ("eyes", "eyes")]
)
def test_react_awards_an_emoji_on_the_note(
    forge: GitLabForge, rsps: responses.RequestsMock, reaction: str, emoji: str
) -> None:
    rsps.post(f"{P}/issues/14/notes/305/award_emoji", json=gitlab("award_emoji"), status=201)
    forge.react(ISSUE, "305", reaction)
    assert body_of(rsps.calls[0]) == {"name": emoji}


def test_react_failure_is_only_a_warning(
    forge: GitLabForge, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.post(
        f"{P}/merge_requests/8/notes/301/award_emoji",
        json={"message": "404 Award Emoji Name has already been taken"},
        status=404,
    )
    with caplog.at_level(logging.WARNING):
        forge.react(MR, "301", "rocket")
    assert "could not react" in caplog.text
    assert TOKEN not in caplog.text


# --- identity, people, capabilities --------------------------------------------------------
def test_bot_username_is_fetched_once(forge: GitLabForge, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/api/v4/user", json=gitlab("user"))
    assert forge.bot_username() == "project_42_bot_5e1f"
    assert forge.bot_username() == "project_42_bot_5e1f"
    assert len(rsps.calls) == 1


def test_bot_username_setting_needs_no_call(rsps: responses.RequestsMock) -> None:
    forge = GitLabForge.from_settings(settings(bot_username="promo-bot"))
    assert forge.bot_username() == "promo-bot"
    assert len(rsps.calls) == 0


def test_access_level_of_a_member_by_id(forge: GitLabForge, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{P}/members/all/18", json=gitlab("member"))
    assert forge.access_level("dana", "18") == 40


def test_access_level_looks_the_user_up_by_name(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v4/users", json=gitlab("users"))
    rsps.get(f"{P}/members/all/18", json=gitlab("member", access_level=30))
    assert forge.access_level("dana") == 30
    assert query_of(rsps.calls[0])["username"] == "dana"


def test_access_level_of_a_non_member_is_zero(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{P}/members/all/18", json={"message": "404 Not found"}, status=404)
    assert forge.access_level("dana", "18") == 0


_TODAY = datetime.now(timezone.utc).date()
# Member objects as GitLab returns them for accounts and memberships that no longer grant access.
LAPSED = {
    "blocked": {"state": "blocked"},
    "deactivated": {"state": "deactivated"},
    "expired": {"expires_at": "2024-06-30"},
    "expires today": {"expires_at": _TODAY.isoformat()},
    "unreadable expiry": {"expires_at": "soon"},
}
STILL = {
    "expires tomorrow": {"expires_at": (_TODAY + timedelta(days=1)).isoformat()},
    "no expiry": {"expires_at": None},
}


@pytest.mark.parametrize("changes", [*LAPSED.values(), *STILL.values()], ids=[*LAPSED, *STILL])
def test_blocked_deactivated_and_expired_members_have_no_role(
    forge: GitLabForge, rsps: responses.RequestsMock, changes: dict[str, object]
) -> None:
    rsps.get(f"{P}/members/all/18", json=gitlab("member", **changes))
    assert forge.access_level("dana", "18") == (40 if changes in STILL.values() else 0)


@pytest.mark.parametrize("changes", [*LAPSED.values(), *STILL.values()], ids=[*LAPSED, *STILL])
def test_blocked_deactivated_and_expired_members_are_in_no_team(
    forge: GitLabForge, rsps: responses.RequestsMock, changes: dict[str, object]
) -> None:
    rsps.get(f"{GROUP}/18", json=gitlab("member", **changes))
    assert forge.team_member("ml-team/churn-owners", "dana", "18") is (changes in STILL.values())


def test_access_level_of_an_unknown_user_is_zero(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v4/users", json=[])
    assert forge.access_level("nobody") == 0


GROUP = f"{BASE}/api/v4/groups/ml-team%2Fchurn-owners/members/all"


@pytest.mark.parametrize(
    ("reply", "member"),
    [
        ({"json": gitlab("member", access_level=10)}, True),  # a guest of the group is in it
        ({"json": gitlab("member", access_level=5)}, False),  # minimal access is not
        ({"json": gitlab("member", membership_state="awaiting")}, False),  # not accepted yet
        ({"json": {"message": "404 Not found"}, "status": 404}, False),
    ],
    ids=["guest", "minimal access", "awaiting", "no member"],
)
def test_group_membership_reads_members_all_of_the_group_path(
    forge: GitLabForge, rsps: responses.RequestsMock, reply: dict[str, object], member: bool
) -> None:
    rsps.get(f"{GROUP}/18", **reply)  # type: ignore[arg-type]
    assert forge.team_member("ml-team/churn-owners", "dana", "18") is member


def test_group_membership_looks_the_user_up_by_name_without_an_id(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/api/v4/users", json=gitlab("users"))
    rsps.get(f"{GROUP}/18", json=gitlab("member"))
    assert forge.team_member("ml-team/churn-owners", "dana")


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ({"json": gitlab("group_not_found_404"), "status": 404}, "no group ml-team/churn-owners"),
        ({"json": {"message": "403 Forbidden"}, "status": 403}, "HTTP 403"),
    ],
    ids=["no such group", "forbidden"],
)
def test_a_group_lookup_that_fails_raises_instead_of_saying_no(
    forge: GitLabForge, rsps: responses.RequestsMock, reply: dict[str, object], problem: str
) -> None:
    rsps.get(f"{GROUP}/18", **reply)  # type: ignore[arg-type]
    with pytest.raises(ForgeError, match=problem) as failed:
        forge.team_member("ml-team/churn-owners", "dana", "18")
    assert TOKEN not in str(failed.value)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"json": gitlab("metadata", enterprise=False)}, True),
        ({"json": gitlab("metadata")}, False),
        ({"json": {"version": "16.0.0", "revision": "abc"}}, False),
        ({"json": {"message": "403 Forbidden"}, "status": 403}, False),
    ],
)
def test_slash_promote_works_only_on_non_ee(
    forge: GitLabForge, rsps: responses.RequestsMock, response: dict[str, object], expected: bool
) -> None:
    rsps.get(f"{BASE}/api/v4/metadata", **response)  # type: ignore[arg-type]
    assert forge.slash_promote_works() is expected
    assert forge.slash_promote_works() is expected
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, True),
        ({"approved_by": []}, False),  # Free tier: approved with zero approvals required
        ({"approved": False, "approvals_left": 1}, False),
    ],
)
def test_is_approved(
    forge: GitLabForge, rsps: responses.RequestsMock, changes: dict[str, object], expected: bool
) -> None:
    rsps.get(f"{P}/merge_requests/8/approvals", json=gitlab("approvals", **changes))
    assert forge.is_approved(MR) is expected


def test_an_issue_is_never_platform_approved(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    assert forge.is_approved(ISSUE) is False
    assert len(rsps.calls) == 0


# --- errors and retries --------------------------------------------------------------------
def test_401_is_an_auth_error_without_the_token(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{P}/issues", json={"message": "401 Unauthorized"}, status=401)
    with pytest.raises(ForgeAuthError) as info:
        forge.open_issue("t", "b", [])
    message = str(info.value)
    assert "open issue" in message
    assert "401" in message
    assert "GITLAB_TOKEN" in message
    assert TOKEN not in message
    assert "\n" not in message


def test_404_project_is_not_found_with_a_hint(
    forge: GitLabForge, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{P}/issues/14", json={"message": "404 Project Not Found"}, status=404)
    with pytest.raises(ForgeNotFoundError) as info:
        forge.get_thread("issue", "14")
    message = str(info.value)
    assert "get issue #14" in message
    assert "404 Project Not Found" in message
    assert f"GITLAB_PROJECT={PROJECT}" in message
    assert TOKEN not in message


def test_429_waits_retry_after_then_succeeds(
    forge: GitLabForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    url = f"{P}/issues/14"
    throttled = {"RateLimit-Limit": "600", "RateLimit-Remaining": "0", "Retry-After": "7"}
    rsps.get(url, body="Retry later", status=429, headers=throttled)
    rsps.get(url, json=gitlab("issue"))
    assert forge.get_thread("issue", "14").number == "14"
    assert waits == [7.0]
    assert len(rsps.calls) == 2


def test_5xx_is_retried_a_bounded_number_of_times(
    forge: GitLabForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.get(f"{P}/issues/14/notes", json={"message": "502 Bad Gateway"}, status=502)
    with pytest.raises(ForgeError) as info:
        forge.list_comments(ISSUE)
    assert not isinstance(info.value, (ForgeAuthError, ForgeNotFoundError))
    assert "502" in str(info.value)
    assert len(rsps.calls) == 3
    assert waits == [1.0, 2.0]


def test_5xx_on_a_post_is_not_retried(
    forge: GitLabForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.post(f"{P}/issues/14/notes", json={"message": "500 Internal Server Error"}, status=500)
    with pytest.raises(ForgeError, match="500"):
        forge.post_comment(ISSUE, "hello")
    assert len(rsps.calls) == 1
    assert waits == []


def test_a_wait_longer_than_the_cap_fails_at_once(
    forge: GitLabForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.get(f"{P}/issues/14", body="Retry later", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(ForgeError, match="rate limited") as info:
        forge.get_thread("issue", "14")
    assert not isinstance(info.value, ForgeAuthError)
    assert len(rsps.calls) == 1
    assert waits == []


def test_connection_errors_are_retried_then_reported(
    forge: GitLabForge, rsps: responses.RequestsMock, waits: list[float]
) -> None:
    rsps.get(f"{P}/issues/14", body=requests.ConnectionError("connection refused"))
    with pytest.raises(ForgeError, match="cannot reach") as info:
        forge.get_thread("issue", "14")
    assert len(rsps.calls) == 3
    assert TOKEN not in str(info.value)


# --- edited notes --------------------------------------------------------------------------------

CREATED = "2025-03-08T09:00:00.000Z"


@pytest.mark.parametrize(
    ("changes", "edited"),
    [
        ({"updated_at": CREATED}, False),
        ({"updated_at": "2025-03-08T09:00:00.870Z"}, False),  # saved a few ms later
        ({"updated_at": "2025-03-08T09:00:05.000Z"}, True),  # edited
        (
            {"updated_at": "2025-03-08T10:00:00.100Z", "resolved_at": "2025-03-08T10:00:00.000Z"},
            False,  # its discussion was resolved
        ),
        (
            {"updated_at": "2025-03-08T11:00:00.000Z", "resolved_at": "2025-03-08T10:00:00.000Z"},
            True,  # edited after it was resolved
        ),
        ({"updated_at": "yesterday"}, True),  # cannot be told apart: skipped, never taken
        ({"updated_at": None}, False),
    ],
)
def test_a_note_changed_after_it_was_posted_is_edited(changes: dict[str, object], edited: bool):
    note = gitlab("notes")[0] | {"created_at": CREATED, **changes}
    assert comment_from(note).edited is edited
