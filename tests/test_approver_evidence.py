"""Who approves is decided from forge ids and the registry, never from text (docs/security.md,
"Comment text").

- Approvals are recorded on the version in the registry (`promotion.approvals`): a comment by
  the bot's account that the bot did not write (on Actions, any workflow posts as
  `github-actions[bot]`) adds none, and deleting the bot's answers removes none.
- The self-approval rule compares the forge's user ids when both sides have one, so a renamed
  requester is still the requester; with no requester recorded at all it refuses.
- A listed approver must still be a member of the project: a name is whoever holds it now.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config.settings import Secret, Settings
from bot.forges.github import ACTIONS_BOT, GitHubForge
from bot.registry.records import Approval
from bot.registry.tags import APPROVALS_TAG, REQUESTED_BY_ID_TAG, REQUESTED_BY_TAG
from bot.registry.versions import requester_tags
from bot.threads.markers import approval_marker
from tests.fakes.forges import BOT
from tests.fakes.github import GITHUB_ROLES
from tests.forge_world import World, make_world
from tests.promotion_env import MakePlayground


@pytest.fixture(params=["github", "gitlab"])
def two_person(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path
) -> Iterator[World]:
    promotion = {"approvers": {"required_approvals": 2}}
    with make_world(request.param, tracking_uri, model_name, tmp_path, promotion) as world:
        yield world


def _approvals(world: World) -> list[dict[str, str]]:
    tags = world.ctx.registry.version(world.model, 1).tags
    return list(json.loads(tags.get(APPROVALS_TAG, "[]")))


# --- approvals are evidence, so they live in the registry ----------------------------------------


def test_a_comment_by_the_bots_account_that_the_bot_did_not_write_adds_no_approval(
    two_person: World,
) -> None:
    """Another workflow (same token identity) posts a "build report" whose hidden part is an
    approval marker naming an eligible approver who never approved."""
    world = two_person
    world.fake.add_comment(world.number, BOT, "CI: all green.\n\n" + approval_marker(1, "olga"))

    outcome = world.handle(world.post(world.number, "/promote", author="maria"))

    assert (outcome.status, outcome.detail) == ("approval", "1 of 2")
    assert world.champion() is None


def test_approvals_are_recorded_on_the_version_and_survive_deleted_answers(
    two_person: World,
) -> None:
    world = two_person
    payload = world.post(world.number, "/promote", author="olga")
    assert world.handle(payload).status == "approval"
    [recorded] = _approvals(world)
    key = "object_attributes" if world.platform == "gitlab" else "comment"
    assert recorded["user"] == "olga" and recorded["user_id"] == "31"
    assert recorded["comment_id"] == str(payload[key]["id"]) and recorded["at"]
    # Somebody deletes the bot's "approval 1 of 2" answer: the registry still has olga's.
    world.fake.comments[world.number][:] = [
        c
        for c in world.fake.comments[world.number]
        if (c.get("author") or c.get("user"))["id"] != 99
    ]

    outcome = world.handle(world.post(world.number, "/promote", author="maria"))

    assert outcome.status == "changed", outcome
    assert world.champion() == 1
    assert "@olga" in world.answers()[-1] and "@maria" in world.answers()[-1]


def test_one_person_cannot_approve_twice_under_two_names(two_person: World) -> None:
    """A rename between two approvals: the same user id counts once."""
    world = two_person
    assert world.handle(world.post(world.number, "/promote", author="olga")).status == "approval"
    renamed = world.post(world.number, "/promote", author="olga")
    if world.platform == "gitlab":
        renamed["user"]["username"] = "olga-k"
        world.fake.comments[world.number][-1]["author"]["username"] = "olga-k"
    else:
        renamed["comment"]["user"]["login"] = "olga-k"
        world.fake.comments[world.number][-1]["user"]["login"] = "olga-k"
        GITHUB_ROLES["olga-k"] = "maintain"
    outcome = world.handle(renamed)
    assert (outcome.status, outcome.detail) == ("approval", "1 of 2")
    assert world.champion() is None


def test_the_shared_actions_account_is_warned_about(
    rsps: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Every workflow of a repository posts as github-actions[bot]: the bot says so."""
    settings = Settings(
        platform="github",
        github_repository="octo-org/models",
        github_token=Secret("ghp-x"),
        bot_username=ACTIONS_BOT,
    )
    with caplog.at_level(logging.WARNING):
        assert GitHubForge.from_settings(settings).bot_username() == ACTIONS_BOT
    [warning] = [r.getMessage() for r in caplog.records if ACTIONS_BOT in r.getMessage()]
    assert "every workflow" in warning and "GitHub App" in warning


# --- the requester is a user id when the forge gives one -----------------------------------------


@pytest.mark.parametrize("platform", ["gitlab", "github"])
def test_the_requester_cannot_approve_after_renaming_her_account(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """maria triggered training (GITLAB_USER_LOGIN/ID, GITHUB_ACTOR/_ID); she renames herself
    to maria-s: same user id, same role, another name."""
    with make_world(platform, tracking_uri, model_name, tmp_path, requested_by="maria") as world:
        # What `register` records from GITLAB_USER_ID / GITHUB_ACTOR_ID (see the next test).
        for key, value in requester_tags(world.ctx.keys, world.model, 1, "maria", "18").items():
            world.ctx.registry.set_version_tag(world.model, 1, key, value)
        refused = world.handle(world.post(world.number, "/promote", author="maria"))
        assert refused.detail == "self_approval"  # the control: her old name

        payload = world.post(world.number, "/promote", author="maria")
        comment = world.fake.comments[world.number][-1]
        if platform == "gitlab":
            payload["user"]["username"] = comment["author"]["username"] = "maria-s"
        else:
            payload["comment"]["user"]["login"] = comment["user"]["login"] = "maria-s"
            GITHUB_ROLES["maria-s"] = "maintain"
        outcome = world.handle(payload)

        assert (outcome.status, outcome.detail) == ("refused", "self_approval")
        assert world.champion() is None


def test_register_records_the_requesters_id(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    with make_world(
        "gitlab", tracking_uri, model_name, tmp_path, requested_by="maria", requested_by_id="18"
    ) as world:
        version = world.ctx.registry.version(world.model, 1)
        assert (version.requested_by, version.tags[REQUESTED_BY_ID_TAG]) == ("maria", "18")
        assert version.tags[REQUESTED_BY_TAG].startswith("maria|")  # sealed in the same tag


def test_a_new_holder_of_the_requesters_old_name_is_not_the_requester(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """Ids on both sides decide: another user id under the recorded name may approve."""
    with make_world("gitlab", tracking_uri, model_name, tmp_path, requested_by="olga") as world:
        for key, value in requester_tags(world.ctx.keys, world.model, 1, "olga", "7").items():
            world.ctx.registry.set_version_tag(world.model, 1, key, value)
        outcome = world.handle(world.post(world.number, "/promote", author="olga"))  # id 31
        assert outcome.status == "changed", outcome


def test_with_no_requester_recorded_promote_is_refused_unless_self_approval_is_allowed(
    make_pg: MakePlayground,
) -> None:
    pg = make_pg()
    version = pg.train(0.6)
    thread = pg.open_request(version, requested_by="")  # nobody set PROMOTION_BOT_REQUESTED_BY
    assert pg.ctx.registry.version(pg.model, version).requested_by == ""

    outcome, _ = pg.comment(thread, "maria", "/promote")

    assert (outcome.status, outcome.detail) == ("refused", "no_requester")
    [answer] = [c.body for c in pg.answers(thread)]
    assert "PROMOTION_BOT_REQUESTED_BY" in answer and "allow_self_approval" in answer
    assert pg.champion() is None
    allowed = make_pg(approvers={"allow_self_approval": True})
    assert allowed.comment(thread, "maria", "/promote")[0].status == "changed"


def test_the_environment_pairs_the_requesters_name_and_id() -> None:
    gitlab = {"GITLAB_USER_LOGIN": "maria", "GITLAB_USER_ID": "18"}
    assert _requester(gitlab) == ("maria", "18")
    github = {"GITHUB_ACTOR": "maria", "GITHUB_ACTOR_ID": "4711"}
    assert _requester(github) == ("maria", "4711")
    # Someone else named explicitly: the CI user's id is not theirs.
    assert _requester({**gitlab, "PROMOTION_BOT_REQUESTED_BY": "dana"}) == ("dana", "")
    explicit = {"PROMOTION_BOT_REQUESTED_BY": "dana", "PROMOTION_BOT_REQUESTED_BY_ID": "27"}
    assert _requester({**gitlab, **explicit}) == ("dana", "27")


def _requester(env: dict[str, str]) -> tuple[str, str]:
    settings = Settings.from_env(env)
    return settings.requested_by, settings.requested_by_id


# --- a listed name must still be a member --------------------------------------------------------


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_a_listed_name_without_access_to_the_project_cannot_promote(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """ "zoe" was listed; her account is gone and the name now belongs to a stranger (neither
    fake knows her: the member / collaborator endpoints answer 404)."""
    promotion = {"approvers": {"users": ["zoe"], "min_role": "maintainer"}}
    with make_world(platform, tracking_uri, model_name, tmp_path, promotion) as world:
        outcome = world.handle(world.post(world.number, "/promote", author="zoe"))
        assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
        assert world.champion() is None


def test_github_read_is_no_membership(tracking_uri: str, model_name: str, tmp_path: Path) -> None:
    """GitHub answers `read` for anyone on a public repository: a listed name needs more."""
    promotion = {"approvers": {"users": ["zoe"], "min_role": None}}
    with make_world("github", tracking_uri, model_name, tmp_path, promotion) as world:
        GITHUB_ROLES["zoe"] = "read"
        outcome = world.handle(world.post(world.number, "/promote", author="zoe"))
        assert (outcome.status, outcome.detail) == ("refused", "not_eligible")
        GITHUB_ROLES["zoe"] = "triage"  # a member with a role below min_role: listed, so fine
        assert world.handle(world.post(world.number, "/promote", author="zoe")).status == "changed"


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_a_listed_member_costs_one_role_lookup(
    platform: str, tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    promotion = {"approvers": {"users": ["devon"], "min_role": "maintainer"}}
    with make_world(platform, tracking_uri, model_name, tmp_path, promotion) as world:
        outcome = world.handle(world.post(world.number, "/promote", author="devon"))
        assert outcome.status == "changed", outcome
        lookups = [
            c.request.url
            for c in world.rsps.calls
            if "/members/" in c.request.url or "/permission" in c.request.url
        ]
        assert len(lookups) == 1, lookups


# --- the record itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "users"),
    [
        ('[{"user": "olga", "user_id": "31", "comment_id": "7", "at": "t"}]', ["olga"]),
        ('[{"user": "olga"}, {"user_id": "5"}, "x", {"user": 3}]', ["olga"]),  # edited by hand
        ("not json", []),
        ('{"user": "olga"}', []),
        (None, []),
    ],
)
def test_recorded_approvals_are_read_defensively(raw: str | None, users: list[str]) -> None:
    assert [a.user for a in Approval.parse_all(raw)] == users


def test_one_person_is_one_approval_by_id_else_by_name() -> None:
    olga = Approval("olga", "31")
    assert olga.is_by("olga-k", "31") and not olga.is_by("olga", "32")
    assert Approval("olga").is_by("OLGA", "31") and not Approval("olga").is_by("dana", "")
