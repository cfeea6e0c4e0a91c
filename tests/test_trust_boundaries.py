"""Events are bound to this bot before anything else (docs/design.md, "Trust boundaries"): only the
configured forge's, only the configured project's, on every delivery path.

One webhook secret commonly signs a whole group's or organisation's deliveries, and a thread
number only means something inside one project: a comment in another project on an issue whose
number matches one of ours must never be read against our thread.
"""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.commands.handler import handle_comment
from bot.config.params import Params
from bot.config.settings import Secret, Settings
from bot.errors import BotError
from bot.forges.github import GitHubForge
from bot.forges.gitlab import GitLabForge
from bot.forges.project_binding import Binding
from bot.intake.entry import handle_event_file
from bot.intake.payloads import parse_event
from bot.intake.poll import poll
from bot.intake.wsgi import WebhookApp
from bot.runtime.context import Context
from bot.threads.thread import CommentEvent, ProjectRef
from tests.forge_world import (
    FOREIGN_GITHUB,
    FOREIGN_GITLAB,
    WEBHOOK_SECRET,
    World,
    deliver,
    make_world,
)
from tests.helpers import TEST_SIGNING_KEY
from tests.webhook_fixtures import load_webhook


def _foreign(world: World) -> dict[str, Any]:
    return FOREIGN_GITLAB if world.platform == "gitlab" else FOREIGN_GITHUB


def _untouched(world: World) -> None:
    assert world.champion() is None
    assert world.answers() == []
    assert world.writes() == []


# --- another project's comment on an issue whose number is one of ours -------------------------


def test_handle_ignores_another_projects_comment(world: World) -> None:
    outcome = world.handle(world.payload("/promote", project=_foreign(world)))
    assert outcome.status == "ignored"
    assert "ml-team/other-model" in outcome.detail
    _untouched(world)


def test_serve_answers_another_projects_comment_200_ignored(world: World) -> None:
    status, answer = world.serve(world.payload("/promote", project=_foreign(world)))
    assert status == 200
    assert answer["status"] == "ignored" and "ml-team/other-model" in answer["reason"]
    _untouched(world)


@pytest.mark.parametrize("delivery", ["handle", "serve"])
def test_the_same_comment_in_our_project_moves_the_champion(world: World, delivery: str) -> None:
    """The control: nothing but the project differs from the ignored deliveries above."""
    payload = world.post(world.number, "/promote")
    if delivery == "handle":
        assert world.handle(payload).status == "changed"
    else:
        assert world.serve(payload)[0] == 202
    assert world.champion() == 1
    assert len(world.answers()) == 1


def test_a_payload_naming_no_project_is_ignored(world: World) -> None:
    payload = world.payload("/promote")
    payload.pop("project" if world.platform == "gitlab" else "repository")
    payload.pop("project_id", None)
    assert world.handle(payload).status == "ignored"
    assert world.serve(world.payload("/promote") | {"repository": None, "project": None})[0] == 200
    _untouched(world)


def test_project_paths_compare_without_letter_case(world: World) -> None:
    """GitLab and GitHub keep paths unique whatever the case: `ML-Team/Soccer` is ours."""
    ours = world.our_project()
    key = "path_with_namespace" if world.platform == "gitlab" else "full_name"
    shouted = ours | {key: ours[key].upper()}
    assert world.handle(world.post(world.number, "/promote", project=shouted)).status == "changed"


def test_an_actions_event_file_from_a_fork_is_ignored(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """A fork's workflow hands `handle` its own repository's event: not the configured one."""
    with make_world("github", tracking_uri, model_name, tmp_path) as world:
        fork = {"id": 66602, "full_name": "mallory/models", "fork": True}
        outcome = world.handle(world.payload("/promote", project=fork))
        assert outcome.status == "ignored" and "mallory/models" in outcome.detail
        _untouched(world)


def test_poll_events_carry_the_configured_project_and_pass(world: World) -> None:
    """`poll` reads comments through the configured project only: bound by construction."""
    number = world.number
    world.fake.add_comment(number, "maria", "/promote")
    result = poll(world.ctx)
    assert [o.status for _cid, o in result.outcomes] == ["changed"]
    assert world.champion() == 1


def test_the_handler_itself_refuses_an_event_of_another_project(world: World) -> None:
    """Every path (serve's workers, handle, poll, comment) ends in handle_comment, which binds
    the event again: an event built for another project is ignored there too."""
    event = parse_event(world.event_name, world.payload("/promote", project=_foreign(world)))
    assert event is not None
    assert handle_comment(world.ctx, event).status == "ignored"
    _untouched(world)


def test_numeric_gitlab_project_compares_ids(tmp_path: Path) -> None:
    """GITLAB_PROJECT=<id> (CI_PROJECT_ID): the id decides; a renamed project stays bound."""
    forge = GitLabForge.from_settings(
        Settings(platform="gitlab", gitlab_project="4242", gitlab_token=Secret("t"))
    )
    binding = Binding.of(forge)
    payload = load_webhook("gitlab_note_issue")
    payload["project"].update(id=4242, path_with_namespace="ml-team/renamed")
    payload["project_id"] = 4242
    event = parse_event("Note Hook", payload)
    assert event is not None and binding.refusal(event) is None
    other = replace(event, project=ProjectRef(id="4243", path="ml-team/renamed"))
    assert binding.refusal(other) == "a comment in ml-team/renamed; this bot serves id 4242"


# --- properties: random project fields never get past the binding unless they name ours -------

_OUR_GITLAB_ID = 4242
_OUR_PATH = "ml-team/soccer-model"
_paths = st.one_of(
    st.none(),
    st.sampled_from([_OUR_PATH, _OUR_PATH.upper(), "ml-team/soccer-model2", "ml-team", ""]),
    st.text(max_size=30),
)
_ids = st.one_of(st.none(), st.sampled_from([_OUR_GITLAB_ID, 4243]), st.integers(1, 2**40))


@st.composite
def _gitlab_projects(draw: st.DrawFn) -> tuple[Any, Any]:
    """(project, project_id) of a Note Hook: either may be missing, null or anything."""
    fields = st.fixed_dictionaries({"id": _ids, "path_with_namespace": _paths})
    project = draw(st.one_of(st.just("missing"), st.none(), fields))
    return project, draw(st.one_of(st.just("missing"), _ids))


@st.composite
def _github_repositories(draw: st.DrawFn) -> Any:
    fields = st.fixed_dictionaries({"id": _ids, "full_name": _paths})
    return draw(st.one_of(st.just("missing"), st.none(), fields))


def _oracle_gitlab(configured: str, project: Any, project_id: Any) -> bool:
    """The binding rule, written independently: is this Note Hook about the configured one?"""
    if configured.isdigit():
        named = project.get("id") if isinstance(project, dict) else None
        if named is None:
            named = project_id if project_id != "missing" else None
        return named == int(configured)
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    return isinstance(path, str) and path.lower() == configured.lower()


def _settings_for(platform: str, configured: str) -> Settings:
    if platform == "gitlab":
        return Settings(
            platform="gitlab",
            gitlab_project=configured,
            gitlab_token=Secret("glpat-x"),
            bot_username="promotion-bot",
            gitlab_webhook_secret=Secret(WEBHOOK_SECRET),
            signing_key=Secret(TEST_SIGNING_KEY),
        )
    return Settings(
        platform="github",
        github_repository=configured,
        github_token=Secret("ghp-x"),
        bot_username="promotion-bot",
        github_webhook_secret=Secret(WEBHOOK_SECRET),
        signing_key=Secret(TEST_SIGNING_KEY),
    )


class _Reached(Exception):
    """Raised by the forge the first time the handler reads a thread: it got past the binding."""


def _handle_reaches_the_handler(ctx: Context, tmp_path: Path, event: str, payload: Any) -> bool:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    try:
        handle_event_file(ctx, event, str(path))
    except _Reached:
        return True
    except BotError:
        return False  # a malformed field: refused as a bad payload, never handled
    return False


def _trap_threads(forge: Any) -> None:
    def get_thread(*_args: Any) -> Any:
        raise _Reached

    forge.get_thread = get_thread


@pytest.mark.parametrize("configured", [str(_OUR_GITLAB_ID), _OUR_PATH])
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(project=_gitlab_projects())
def test_gitlab_note_hooks_reach_the_handler_only_for_the_configured_project(
    tmp_path: Path, configured: str, project: tuple[Any, Any]
) -> None:
    ctx = Context(_settings_for("gitlab", configured), Params())
    _trap_threads(ctx.forge)
    payload = load_webhook("gitlab_note_issue")  # `/rollback v5`: a command
    fields, project_id = project
    payload.pop("project")
    payload.pop("project_id")
    if fields != "missing":
        payload["project"] = fields
    if project_id != "missing":
        payload["project_id"] = project_id
    reached = _handle_reaches_the_handler(ctx, tmp_path, "Note Hook", payload)
    event(f"reached the handler: {reached}")
    assert reached == _oracle_gitlab(configured, fields, project_id)
    app = WebhookApp(ctx.settings, lambda _e, _c: None, binding=Binding.of(ctx.forge))
    status, _answer = deliver(app, "gitlab", payload, "Note Hook")
    # Not started, the app cannot queue: 503 means it tried, i.e. the event got past the binding.
    assert (status == 503) == reached


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(repository=_github_repositories())
def test_github_comments_reach_the_handler_only_for_the_configured_repository(
    tmp_path: Path, repository: Any
) -> None:
    ctx = Context(_settings_for("github", _OUR_PATH), Params())
    assert isinstance(ctx.forge, GitHubForge)
    _trap_threads(ctx.forge)
    payload = load_webhook("github_issue_comment_issue")
    payload.pop("repository")
    if repository != "missing":
        payload["repository"] = repository
    name = repository.get("full_name") if isinstance(repository, dict) else None
    ours = isinstance(name, str) and name.lower() == _OUR_PATH.lower()
    event(f"reached the handler: {ours}")
    assert _handle_reaches_the_handler(ctx, tmp_path, "issue_comment", payload) == ours
    app = WebhookApp(ctx.settings, lambda _e, _c: None, binding=Binding.of(ctx.forge))
    status, _answer = deliver(app, "github", payload, "issue_comment")
    assert (status == 503) == ours


_ids_seen = count(1)


@settings(max_examples=200, deadline=None)
@given(
    platform=st.sampled_from(["gitlab", "github", "local"]),
    project=st.builds(ProjectRef, id=st.sampled_from(["", "4242", "1"]), path=_paths.map(str)),
)
def test_a_binding_admits_only_its_own_platform_and_project(
    platform: str, project: ProjectRef
) -> None:
    binding = Binding("gitlab", ProjectRef(path=_OUR_PATH))
    event = CommentEvent(
        platform=platform,
        thread_kind="issue",
        thread_number="1",
        comment_id=str(next(_ids_seen)),
        author="maria",
        body="/promote",
        project=project,
    )
    admitted = binding.refusal(event) is None
    assert admitted == (platform == "gitlab" and project.path.lower() == _OUR_PATH.lower())


# --- project paths compare as ASCII --------------------------------------------------------------


@pytest.mark.parametrize("look_alike", ["octo-org/\u212aube-models", "octo-org/kube-model\u017f"])
def test_project_paths_compare_ascii_only(look_alike: str) -> None:
    """casefold() makes the Kelvin sign a k and the long s an s; forges allow ASCII paths only."""
    binding = Binding("github", ProjectRef(path="octo-org/kube-models"))
    comment = CommentEvent("github", "issue", "1", "1", "maria", "/promote")
    assert binding.refusal(replace(comment, project=ProjectRef(path=look_alike)))
    same = ProjectRef(path="Octo-Org/Kube-Models")
    assert binding.refusal(replace(comment, project=same)) is None
