"""bot.rules.approvers: who may approve, and the one description of it that the request body and
the refusal both show (docs/design.md, "Rules for a champion change")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.ci.request_body import RequestData, Side, render_request_body
from bot.commands.policy import actor_refusal
from bot.config.params import Approvers, parse_params
from bot.config.settings import Settings
from bot.errors import ForgeError
from bot.registry.versions import RunInfo, VersionInfo
from bot.rules.approvers import NOBODY, Eligibility, describe, eligibility, is_listed
from bot.runtime.context import Context

MAINTAINERS = "anyone with the maintainer role or higher"
CHURN = {"min_role": None, "teams": ["ml-org/churn-owners"]}  # the README's teams-only model


@pytest.mark.parametrize(
    ("approvers", "expected"),
    [
        ({}, MAINTAINERS),
        ({"users": ["alice", "bob"]}, "`alice`, `bob`"),  # the default role no longer applies
        ({"users": ["alice"], "min_role": "maintainer"}, f"`alice` or {MAINTAINERS}"),
        ({"users": ["maria"], "min_role": None}, "`maria`"),
        (CHURN, "the members of `ml-org/churn-owners`"),
        (
            {"users": ["maria"], "teams": ["a/b", "c"], "min_role": "owner"},
            "`maria` or anyone with the owner role or higher or the members of `a/b`, `c`",
        ),
    ],
)  # fmt: skip
def test_describe(approvers: dict[str, Any], expected: str) -> None:
    assert describe(Approvers(**approvers)) == expected


def test_describe_nobody_only_for_a_section_the_checks_would_refuse() -> None:
    nobody = Approvers.model_construct(users=(), teams=(), min_role=None)
    assert describe(nobody) == NOBODY


def test_is_listed_compares_names_without_letter_case() -> None:
    approvers = Approvers(users=("Maria",))
    assert is_listed(approvers, "maria") and is_listed(approvers, "MARIA")
    assert not is_listed(approvers, "mari") and not is_listed(approvers, "")


class People:
    platform = "gitlab"
    """A forge's people: roles by name, team members by team; a team in `broken` fails."""

    def __init__(self, roles: dict[str, int], teams: dict[str, set[str]], broken: set[str]):
        self.roles, self.teams, self.broken = roles, teams, broken
        self.asked: list[str] = []

    def access_level(self, username: str, user_id: str = "") -> int:
        self.asked.append("role")
        return self.roles.get(username, 0)

    def team_member(self, team: str, username: str, user_id: str = "") -> bool:
        self.asked.append(team)
        if team in self.broken:
            raise ForgeError("500")
        return username in self.teams.get(team, set())


ROLES = {"maria": 40, "dana": 30, "zoe": 0}
TEAMS = {"org/a": {"devon"}, "org/b": {"erin"}}
AB = {"min_role": None, "teams": ["org/a", "org/b"]}
XA = {"min_role": None, "teams": ["org/x", "org/a"]}  # org/x cannot be read


@pytest.mark.parametrize(
    ("approvers", "author", "expected", "asked"),
    [
        ({}, "maria", Eligibility(True, 40), ["role"]),
        ({}, "dana", Eligibility(False, 30), ["role"]),
        ({"users": ["Dana"]}, "dana", Eligibility(True, 30), ["role"]),  # any letter case
        ({"users": ["dana"]}, "maria", Eligibility(False), []),  # a list alone: no role rule
        ({"users": ["zoe"], "min_role": None}, "zoe", Eligibility(False, 0), ["role"]),
        # teams only when the list and the role do not admit, one lookup until one does
        ({"teams": ["org/a"], "min_role": "maintainer"}, "maria", Eligibility(True, 40), ["role"]),
        (AB, "erin", Eligibility(True), ["org/a", "org/b"]),
        (XA, "devon", Eligibility(True), ["org/x", "org/a"]),  # a later team may admit
        (XA, "erin", Eligibility(False, None, ("org/x",)), ["org/x", "org/a"]),
        ({"min_role": None, "teams": ["org/a"]}, "erin", Eligibility(False), ["org/a"]),
    ],
)  # fmt: skip
def test_eligibility(
    approvers: dict[str, Any], author: str, expected: Eligibility, asked: list[str]
) -> None:
    people = People(ROLES, TEAMS, broken={"org/x"})
    assert eligibility(people, Approvers(**approvers), author, "") == expected  # type: ignore[arg-type]
    assert people.asked == asked


def _body_and_refusal(tmp_path: Path, approvers: dict[str, Any]) -> tuple[str, str]:
    params = parse_params(
        {"register_model": {"model_name": "churn"}, "promotion": {"approvers": approvers}}
    )
    ctx = Context(Settings(platform="local", local_dir=tmp_path / "forge"), params)
    version = VersionInfo("churn", 2, "r2", tags={"promotion.registered_as": "smoke"})
    candidate = Side(version=version, run=RunInfo("r2", "1", metrics={"final.logloss": 0.6}))
    body = render_request_body(ctx, version, data=RequestData(candidate, None))
    refusal = actor_refusal(ctx, "stranger", "")
    assert refusal is not None and refusal.code == "not_eligible"
    return body, refusal.todo


@pytest.mark.parametrize("approvers", [CHURN, {}, {"users": ["maria"], "teams": ["org/a"]}])
def test_the_request_body_and_the_refusal_name_the_same_approvers(
    tmp_path: Path, approvers: dict[str, Any]
) -> None:
    body, todo = _body_and_refusal(tmp_path, approvers)
    words = describe(Approvers(**approvers))
    assert f"**Who may approve:** {words}." in body
    assert todo == f"Approvers are {words}."


def test_a_teams_only_request_names_the_team(tmp_path: Path) -> None:
    body, _ = _body_and_refusal(tmp_path, CHURN)
    assert "**Who may approve:** the members of `ml-org/churn-owners`." in body
    assert NOBODY not in body


@pytest.mark.parametrize(
    ("approvers", "author", "why"),
    [
        ({"users": ["zoe"]}, "zoe",
         "listed in `promotion.approvers.users`, but no member of the project"),
        ({"users": ["dana"]}, "maria", "not listed in `promotion.approvers.users`"),
        ({}, "dana", "the developer role, below the maintainer role that is required"),
        ({}, "nemo", "no member of the project (the maintainer role or higher is required)"),
        (AB, "dana", "no member of `org/a` or `org/b`"),
        ({"users": ["zoe"], "teams": ["org/a"], "min_role": "owner"}, "maria",
         "not listed in `promotion.approvers.users`; the maintainer role, below the owner role "
         "that is required; no member of `org/a`"),
        ({"users": ["zoe"], "teams": ["org/a"]}, "devon", ""),  # admitted by the team
    ],
)  # fmt: skip
def test_a_refusal_names_the_rules_that_did_not_admit(
    approvers: dict[str, Any], author: str, why: str
) -> None:
    people = People(ROLES, TEAMS, broken=set())
    found = eligibility(people, Approvers(**approvers), author, "")  # type: ignore[arg-type]
    assert (found.eligible, found.why) == (not why, why)


def test_a_listed_user_who_is_no_member_is_told_so(tmp_path: Path) -> None:
    """`users: [maria]`: maria left the project. The refusal says that, not who the
    approvers are (which names maria herself)."""
    approvers = {"users": ["maria"]}
    params = parse_params(
        {"register_model": {"model_name": "churn"}, "promotion": {"approvers": approvers}}
    )
    ctx = Context(Settings(platform="local", local_dir=tmp_path / "forge"), params)
    refusal = actor_refusal(ctx, "maria", "")
    assert refusal is not None and refusal.code == "not_eligible"
    assert refusal.why == (
        "@maria is not an eligible approver: listed in `promotion.approvers.users`, but no "
        "member of the project"
    )
    assert refusal.todo == "Approvers are `maria`."
