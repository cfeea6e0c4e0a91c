"""Teams and groups as approvers (`promotion.approvers.teams`), read from the forges' own
membership records through python-gitlab and PyGithub over `responses` fakes, against the real
registry: a member promotes, a non-member is refused, a member of a parent GitLab group belongs
to its subgroups (`members/all`), a pending GitHub invitation is no membership, and a lookup
that fails is a clear refusal that changes nothing (docs/security.md, "Comment text")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.forge_world import World, make_world

GITLAB_TEAM = "ml-team/churn-owners"
GITHUB_TEAM = "octo-org/churn-owners"


@pytest.fixture(params=["gitlab", "github"])
def teams_world(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path
) -> Iterator[World]:
    """Only team members may approve (min_role null): devon is in the team (on GitLab through
    the parent group ml-team), olga has a pending invitation (GitHub) or guest access (GitLab's
    lowest role still counts), maria is a maintainer of the project but in no team."""
    team = GITLAB_TEAM if request.param == "gitlab" else GITHUB_TEAM
    promotion = {"approvers": {"min_role": None, "teams": [team]}}
    with make_world(request.param, tracking_uri, model_name, tmp_path, promotion) as world:
        if isinstance(world.fake, FakeGitLab):
            world.fake.groups = {"ml-team": {"devon": 30}, GITLAB_TEAM: {"olga": 40}}
        else:
            assert isinstance(world.fake, FakeGitHub)
            world.fake.teams = {GITHUB_TEAM: {"devon": "active", "olga": "pending"}}
        yield world


def _membership_calls(world: World) -> list[str]:
    return [
        str(call.request.url)
        for call in world.rsps.calls
        if ("/members/all/" in str(call.request.url) and "/groups/" in str(call.request.url))
        or "/memberships/" in str(call.request.url)
    ]


def test_a_team_member_promotes(teams_world: World) -> None:
    world = teams_world
    outcome = world.handle(world.post(world.number, "/promote", author="devon"))
    assert outcome.status == "changed", outcome
    assert world.champion() == 1
    [call] = _membership_calls(world)
    if world.platform == "gitlab":  # the subgroup's members/all, with the user id of the note
        assert call.endswith("/groups/ml-team%2Fchurn-owners/members/all/41")
    else:
        assert call.endswith("/orgs/octo-org/teams/churn-owners/memberships/devon")


def test_a_project_maintainer_outside_the_team_is_refused(teams_world: World) -> None:
    world = teams_world
    outcome = world.handle(world.post(world.number, "/promote", author="maria"))
    assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
    assert world.champion() is None
    [answer] = world.answers()
    team = GITLAB_TEAM if world.platform == "gitlab" else GITHUB_TEAM
    assert "@maria is not an eligible approver" in answer
    assert f"Approvers are the members of `{team}`." in answer


def test_membership_as_each_forge_records_it(teams_world: World) -> None:
    """GitLab: olga is a direct member of the subgroup (any role counts). GitHub: her
    invitation is pending, which is no membership yet."""
    world = teams_world
    outcome = world.handle(world.post(world.number, "/promote", author="olga"))
    if world.platform == "gitlab":
        assert outcome.status == "changed", outcome
    else:
        assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
        assert world.champion() is None


def test_a_member_of_a_parent_group_belongs_to_the_subgroup_only_downwards(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """GitLab's members/all: a member of ml-team is a member of ml-team/churn-owners; a member
    of a subgroup below the configured group is not a member of it."""
    promotion = {"approvers": {"min_role": None, "teams": ["ml-team"]}}
    with make_world("gitlab", tracking_uri, model_name, tmp_path, promotion) as world:
        assert isinstance(world.fake, FakeGitLab)
        world.fake.groups = {"ml-team": {}, "ml-team/churn-owners": {"devon": 30}}
        outcome = world.handle(world.post(world.number, "/promote", author="devon"))
        assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
        world.fake.groups["ml-team"]["olga"] = 10  # guest of the parent group
        outcome = world.handle(world.post(world.number, "/promote", author="olga"))
        assert outcome.status == "changed", outcome


def test_a_lookup_that_fails_is_a_clear_refusal_and_changes_nothing(teams_world: World) -> None:
    world = teams_world
    if isinstance(world.fake, FakeGitLab):
        world.fake.failing_groups.add(GITLAB_TEAM)
    else:
        assert isinstance(world.fake, FakeGitHub)
        world.fake.failing_teams.add(GITHUB_TEAM)
    outcome = world.handle(world.post(world.number, "/promote", author="devon"))
    assert (outcome.status, outcome.detail) == ("refused", "team_lookup_failed")
    assert world.champion() is None
    [answer] = world.answers()
    team = GITLAB_TEAM if world.platform == "gitlab" else GITHUB_TEAM
    assert f"could not read whether @devon is a member of {team}" in answer
    assert "read:org" in answer and "Traceback" not in answer


def test_a_gitlab_group_that_does_not_exist_is_a_failed_lookup_not_a_stranger(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    promotion = {"approvers": {"min_role": None, "teams": ["ml-team/typo"]}}
    with make_world("gitlab", tracking_uri, model_name, tmp_path, promotion) as world:
        outcome = world.handle(world.post(world.number, "/promote", author="devon"))
        assert (outcome.status, outcome.detail) == ("refused", "team_lookup_failed")


def test_teams_are_asked_only_when_users_and_roles_do_not_admit(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """maria is a maintainer (min_role admits her): no membership lookup. devon, a developer,
    is admitted by the team after the role lookup."""
    team = GITHUB_TEAM
    promotion = {"approvers": {"min_role": "maintain", "teams": [team]}}
    with make_world("github", tracking_uri, model_name, tmp_path, promotion) as world:
        assert isinstance(world.fake, FakeGitHub)
        world.fake.teams = {team: {"devon": "active"}}
        outcome = world.handle(world.post(world.number, "/help", author="maria"))
        assert outcome.status == "help"
        assert world.handle(world.post(world.number, "/promote", author="maria")).status == (
            "changed"
        )
        assert _membership_calls(world) == []
        outcome = world.handle(world.post(world.number, "/rollback 1", author="devon"))
        assert (outcome.status, outcome.detail) == ("refused", "already_champion")
        assert len(_membership_calls(world)) == 1
