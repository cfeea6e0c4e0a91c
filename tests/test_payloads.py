"""bot.intake.payloads: webhook payloads → CommentEvent, None, or PayloadError (nothing else)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.intake.payloads import (
    PayloadError,
    github_comment_event,
    gitlab_comment_event,
    parse_event,
)
from bot.threads.thread import CommentEvent, ProjectRef
from tests.webhook_fixtures import (
    WEBHOOK_EVENTS,
    load_webhook,
    raw_webhook,
    webhook_event,
)

REPO = "ml-team/soccer-model"
GITLAB_PROJECT = ProjectRef(id="17", path=REPO)
GITHUB_REPOSITORY = ProjectRef(id="186853002", path=REPO)

GITLAB_MR_NOTE = CommentEvent(
    platform="gitlab",
    thread_kind="merge_request",
    thread_number="12",
    comment_id="3101",
    author="dana",
    body="@promotion-bot promote\nMetrics reviewed, calibration looks fine.",
    action="created",
    author_id="42",
    created_at="2025-03-04 10:15:00 UTC",
    project=GITLAB_PROJECT,
    delivery_id="6a3f0c1e-idempotency-key",
)
GITLAB_ISSUE_NOTE = CommentEvent(
    platform="gitlab",
    thread_kind="issue",
    thread_number="7",
    comment_id="3102",
    author="dana",
    body="/rollback v5\nv6 drifts on live data.",
    action="created",
    author_id="42",
    created_at="2025-03-05 16:40:00 UTC",
    project=GITLAB_PROJECT,
)
GITHUB_PR_COMMENT = CommentEvent(
    platform="github",
    thread_kind="merge_request",
    thread_number="31",
    comment_id="2712345601",
    author="dana",
    body="/promote\r\nChecked the metrics and the drift report.",
    action="created",
    author_id="5810042",
    created_at="2025-03-04T10:15:00Z",
    project=GITHUB_REPOSITORY,
    delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
)
GITHUB_ISSUE_COMMENT = CommentEvent(
    platform="github",
    thread_kind="issue",
    thread_number="8",
    comment_id="2712345602",
    author="dana",
    body="/rollback 5\r\nv6 drifts on live data.",
    action="created",
    author_id="5810042",
    created_at="2025-03-05T16:40:00Z",
    project=GITHUB_REPOSITORY,
)


def _replace(event: CommentEvent, **changes: object) -> CommentEvent:
    return CommentEvent(**{**event.__dict__, **changes})


# --- fixtures map to the exact event


def test_gitlab_note_on_merge_request() -> None:
    event = gitlab_comment_event(
        "Note Hook", load_webhook("gitlab_note_merge_request"), "6a3f0c1e-idempotency-key"
    )
    assert event == GITLAB_MR_NOTE


def test_gitlab_note_on_issue() -> None:
    assert gitlab_comment_event("Note Hook", load_webhook("gitlab_note_issue")) == GITLAB_ISSUE_NOTE


def test_gitlab_edited_note() -> None:
    event = gitlab_comment_event("Note Hook", load_webhook("gitlab_note_issue_edited"))
    assert event == _replace(
        GITLAB_ISSUE_NOTE, action="edited", body="/rollback v4\nv6 drifts on live data."
    )


def test_gitlab_confidential_note_is_still_a_note() -> None:
    payload = load_webhook("gitlab_note_issue_confidential")
    assert payload["event_type"] == "confidential_note"
    event = gitlab_comment_event("Confidential Note Hook", payload)
    assert event == _replace(
        GITLAB_ISSUE_NOTE,
        comment_id="3103",
        body="@promotion-bot help",
        created_at="2025-03-05 17:00:00 UTC",
        internal=True,  # no flag in this (older) payload: a confidential hook counts as internal
    )


@pytest.mark.parametrize(
    ("header", "flags", "internal"),
    [
        ("Note Hook", {}, False),
        ("Note Hook", {"internal": True}, True),
        ("Note Hook", {"confidential": True}, True),  # the flag's name before GitLab 15.0
        ("Confidential Note Hook", {}, True),  # GitLab versions that send neither flag
        ("Confidential Note Hook", {"internal": True}, True),
        # a public note on a confidential issue: the same hook, the flag says public
        ("Confidential Note Hook", {"internal": False}, False),
        ("Confidential Note Hook", {"internal": False, "confidential": False}, False),
        ("Note Hook", {"internal": None}, False),
    ],
)
def test_gitlab_internal_note_flag(header: str, flags: dict[str, Any], internal: bool) -> None:
    payload = load_webhook("gitlab_note_issue")
    payload["object_attributes"].update(flags)
    event = gitlab_comment_event(header, payload)
    assert event is not None and event.internal is internal


def test_gitlab_internal_flag_of_the_wrong_type_is_a_payload_error() -> None:
    payload = load_webhook("gitlab_note_issue")
    payload["object_attributes"]["internal"] = "yes"
    with pytest.raises(PayloadError, match="internal"):
        gitlab_comment_event("Note Hook", payload)


def test_event_type_confidential_note_counts_without_the_header() -> None:
    """An event file handed to `handle` with no name: the payload's event_type says it."""
    event = gitlab_comment_event("", load_webhook("gitlab_note_issue_confidential"))
    assert event is not None and event.internal is True


def test_gitlab_note_recognised_by_object_kind_without_header() -> None:
    assert gitlab_comment_event("", load_webhook("gitlab_note_issue")) == GITLAB_ISSUE_NOTE


def test_gitlab_note_recognised_by_header_without_object_kind() -> None:
    payload = load_webhook("gitlab_note_issue")
    del payload["object_kind"]
    assert gitlab_comment_event("Note Hook", payload) == GITLAB_ISSUE_NOTE


@pytest.mark.parametrize("action", [None, "missing"])
def test_gitlab_note_without_action_is_created(action: str | None) -> None:
    """GitLab before 16.11 sent no action: it only fired for new notes."""
    payload = load_webhook("gitlab_note_issue")
    if action == "missing":
        del payload["object_attributes"]["action"]
    else:
        payload["object_attributes"]["action"] = action
    assert gitlab_comment_event("Note Hook", payload) == GITLAB_ISSUE_NOTE


def test_gitlab_ids_as_digit_strings_are_accepted() -> None:
    payload = load_webhook("gitlab_note_issue")
    payload["issue"]["iid"] = "7"
    payload["object_attributes"]["id"] = "3102"
    assert gitlab_comment_event("Note Hook", payload) == GITLAB_ISSUE_NOTE


def test_gitlab_project_object_is_optional() -> None:
    """The older top-level `project_id` still names the project; with neither, none is named."""
    payload = load_webhook("gitlab_note_issue")
    del payload["project"]
    event = gitlab_comment_event("Note Hook", payload)
    assert event == _replace(GITLAB_ISSUE_NOTE, project=ProjectRef(id="17"))
    del payload["project_id"]
    event = gitlab_comment_event("Note Hook", payload)
    assert event == _replace(GITLAB_ISSUE_NOTE, project=ProjectRef())


def test_github_comment_on_pull_request() -> None:
    event = github_comment_event(
        "issue_comment",
        load_webhook("github_issue_comment_pr"),
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    )
    assert event == GITHUB_PR_COMMENT


def test_github_comment_on_issue() -> None:
    event = github_comment_event("issue_comment", load_webhook("github_issue_comment_issue"))
    assert event == GITHUB_ISSUE_COMMENT


def test_github_edited_comment_keeps_the_author_not_the_editor() -> None:
    payload = load_webhook("github_issue_comment_edited")
    assert payload["sender"]["login"] == "erin"
    event = github_comment_event("issue_comment", payload)
    assert event == _replace(
        GITHUB_ISSUE_COMMENT, action="edited", body="/rollback 4\r\nv6 drifts on live data."
    )


def test_github_comment_by_a_bot_account_is_still_an_event() -> None:
    event = github_comment_event("issue_comment", load_webhook("github_issue_comment_by_bot"))
    assert event is not None
    assert (event.author, event.author_id, event.comment_id) == (
        "promotion-bot[bot]",
        "98765432",
        "2712345603",
    )
    assert event.thread_kind == "merge_request"


def test_github_pull_request_null_means_issue() -> None:
    payload = load_webhook("github_issue_comment_pr")
    payload["issue"]["pull_request"] = None
    event = github_comment_event("issue_comment", payload)
    assert event is not None and event.thread_kind == "issue"


# --- parse_event: the parser picked by the event's name (`handle --event-name`)

_CONFIDENTIAL_NOTE = _replace(
    GITLAB_ISSUE_NOTE,
    comment_id="3103",
    body="@promotion-bot help",
    created_at="2025-03-05 17:00:00 UTC",
    internal=True,
)


@pytest.mark.parametrize(
    ("event_name", "fixture", "expected"),
    [
        ("Note Hook", "gitlab_note_issue", GITLAB_ISSUE_NOTE),
        ("Confidential Note Hook", "gitlab_note_issue_confidential", _CONFIDENTIAL_NOTE),
        ("confidential note hook", "gitlab_note_issue_confidential", _CONFIDENTIAL_NOTE),
        (" Note Hook\n", "gitlab_note_issue", GITLAB_ISSUE_NOTE),
        ("", "gitlab_note_issue", GITLAB_ISSUE_NOTE),  # no name: object_kind decides
        ("issue_comment", "github_issue_comment_issue", GITHUB_ISSUE_COMMENT),
        ("ping", "github_ping", None),
        ("pull_request", "github_pull_request_opened", None),
        ("Merge Request Hook", "gitlab_merge_request_hook", None),
        # a GitLab note under another event's name is not read as a note
        ("push", "gitlab_note_issue", None),
        ("Push Hook", "gitlab_note_issue", None),
        ("", "github_issue_comment_issue", None),
    ],
)
def test_parse_event_routes_by_event_name(
    event_name: str, fixture: str, expected: CommentEvent | None
) -> None:
    assert parse_event(event_name, load_webhook(fixture)) == expected


def test_parse_event_passes_the_delivery_id_and_payload_errors_on() -> None:
    event = parse_event(
        "Confidential Note Hook", load_webhook("gitlab_note_issue_confidential"), "d"
    )
    assert event is not None and event.delivery_id == "d"
    with pytest.raises(PayloadError):
        parse_event("Confidential Note Hook", {"object_kind": "note"})
    with pytest.raises(PayloadError):
        parse_event("issue_comment", {"action": "created"})


# --- deliveries with no work


@pytest.mark.parametrize(
    ("parser", "header", "name"),
    [
        pytest.param(gitlab_comment_event, "Note Hook", "gitlab_note_commit", id="gl-commit-note"),
        pytest.param(
            gitlab_comment_event, "Merge Request Hook", "gitlab_merge_request_hook", id="gl-mr-hook"
        ),
        pytest.param(gitlab_comment_event, "Push Hook", "gitlab_note_issue", id="gl-wrong-header"),
        pytest.param(gitlab_comment_event, "", "github_issue_comment_pr", id="gl-github-payload"),
        pytest.param(
            github_comment_event, "issue_comment", "github_issue_comment_deleted", id="gh-deleted"
        ),
        pytest.param(github_comment_event, "ping", "github_ping", id="gh-ping"),
        pytest.param(
            github_comment_event, "pull_request", "github_pull_request_opened", id="gh-pr-opened"
        ),
        pytest.param(
            github_comment_event,
            "pull_request_review_comment",
            "github_issue_comment_pr",
            id="gh-review-comment",
        ),
        pytest.param(github_comment_event, "", "github_issue_comment_pr", id="gh-no-header"),
    ],
)
def test_no_work(parser: Callable[..., CommentEvent | None], header: str, name: str) -> None:
    assert parser(header, load_webhook(name)) is None


def test_gitlab_ignores_system_notes_and_unknown_actions() -> None:
    system = load_webhook("gitlab_note_issue")
    system["object_attributes"]["system"] = True
    assert gitlab_comment_event("Note Hook", system) is None
    deleted = load_webhook("gitlab_note_issue")
    deleted["object_attributes"]["action"] = "delete"
    assert gitlab_comment_event("Note Hook", deleted) is None


def test_github_ignores_unknown_actions() -> None:
    payload = load_webhook("github_issue_comment_issue")
    payload["action"] = "pinned"
    assert github_comment_event("issue_comment", payload) is None


def test_other_events_are_ignored_before_the_payload_is_read() -> None:
    assert gitlab_comment_event("Push Hook", ["not", "a", "dict"]) is None
    assert github_comment_event("ping", "not json") is None


# --- malformed events we handle → PayloadError naming the field

DELETE = object()
GL_ISSUE, GL_MR = "gitlab_note_issue", "gitlab_note_merge_request"
GH_PR, GH_EDITED = "github_issue_comment_pr", "github_issue_comment_edited"

# (fixture, dotted path to change, new value or DELETE); the error must name the path.
GITLAB_MALFORMED: list[tuple[str, str, object]] = [
    (GL_ISSUE, "object_attributes", DELETE),
    (GL_ISSUE, "object_attributes", []),
    (GL_ISSUE, "object_attributes.noteable_type", DELETE),
    (GL_ISSUE, "object_attributes.noteable_type", 3),
    (GL_MR, "merge_request", DELETE),
    (GL_ISSUE, "issue", DELETE),
    (GL_ISSUE, "issue", "7"),
    (GL_MR, "merge_request.iid", [1]),
    (GL_ISSUE, "issue.iid", True),
    (GL_ISSUE, "issue.iid", 7.0),
    (GL_ISSUE, "issue.iid", "seven"),
    (GL_ISSUE, "issue.iid", "٧"),
    (GL_ISSUE, "issue.iid", 0),
    (GL_ISSUE, "issue.iid", -7),
    (GL_ISSUE, "issue.iid", 10**5000),
    (GL_ISSUE, "object_attributes.id", DELETE),
    (GL_ISSUE, "object_attributes.note", 5),
    (GL_ISSUE, "object_attributes.note", None),
    (GL_ISSUE, "object_attributes.action", 1),
    (GL_ISSUE, "object_attributes.created_at", 1),
    (GL_ISSUE, "user", DELETE),
    (GL_ISSUE, "user.username", ""),
    (GL_ISSUE, "user.id", "root"),
    (GL_ISSUE, "project", "ml-team/soccer-model"),
    (GL_ISSUE, "project.path_with_namespace", 5),
]
GITHUB_MALFORMED: list[tuple[str, str, object]] = [
    (GH_PR, "action", DELETE),
    (GH_PR, "action", 1),
    (GH_PR, "issue", DELETE),
    (GH_PR, "comment", DELETE),
    (GH_PR, "comment", "/promote"),
    (GH_PR, "comment.user", DELETE),
    (GH_PR, "comment.user.login", None),
    (GH_PR, "comment.user.id", DELETE),
    (GH_PR, "comment.body", None),
    (GH_PR, "comment.body", ["/promote"]),
    (GH_PR, "comment.id", 1.5),
    (GH_PR, "issue.number", [31]),
    (GH_PR, "issue.number", "31a"),
    (GH_PR, "repository.full_name", []),
    (GH_PR, "repository", []),
    (GH_EDITED, "comment", DELETE),
]


def _mutated(name: str, path: str, value: object) -> dict[str, Any]:
    payload = load_webhook(name)
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return payload


def _case_id(name: str, path: str, value: object) -> str:
    if value is DELETE:
        shown = "DELETE"
    elif isinstance(value, int) and value > 10**20:
        shown = "huge"  # repr() of 10**5000 is itself a ValueError
    else:
        shown = repr(value)[:20]
    return f"{name.split('_')[-1]}-{path}={shown}"


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [pytest.param(*case, id=_case_id(*case)) for case in GITLAB_MALFORMED],
)
def test_gitlab_malformed(name: str, path: str, value: object) -> None:
    with pytest.raises(PayloadError, match=re.escape(path)):
        gitlab_comment_event("Note Hook", _mutated(name, path, value))


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [pytest.param(*case, id=_case_id(*case)) for case in GITHUB_MALFORMED],
)
def test_github_malformed(name: str, path: str, value: object) -> None:
    with pytest.raises(PayloadError, match=re.escape(path)):
        github_comment_event("issue_comment", _mutated(name, path, value))


@pytest.mark.parametrize("payload", [None, [], "{}", 3, ["object_kind", "note"]])
def test_payload_not_an_object(payload: object) -> None:
    with pytest.raises(PayloadError, match="payload"):
        gitlab_comment_event("Note Hook", payload)
    with pytest.raises(PayloadError, match="payload"):
        github_comment_event("issue_comment", payload)


def test_payload_error_is_a_value_error() -> None:
    assert issubclass(PayloadError, ValueError)


# --- the loader other tests use


def test_loader_round_trip_and_fresh_copies() -> None:
    for name in WEBHOOK_EVENTS:
        assert json.loads(raw_webhook(name)) == load_webhook(name)
        assert webhook_event(f"{name}.json") == WEBHOOK_EVENTS[name]
    first = load_webhook("github_ping")
    first["zen"] = "changed"
    assert load_webhook("github_ping")["zen"] != "changed"
    with pytest.raises(KeyError):
        load_webhook("nope")


def test_every_fixture_file_is_listed() -> None:
    from tests.webhook_fixtures import WEBHOOK_DIR

    assert {path.stem for path in WEBHOOK_DIR.glob("*.json")} == set(WEBHOOK_EVENTS)


# --- properties: whatever arrives, only CommentEvent, None or PayloadError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
HEADERS = st.one_of(
    st.sampled_from(
        ["Note Hook", "Confidential Note Hook", "issue_comment", "ping", "Push Hook", ""]
    ),
    st.text(max_size=20),
)
COMMENT_FIXTURES = [name for name in WEBHOOK_EVENTS if "note" in name or "issue_comment" in name]


def _parse_both(header: str, payload: object) -> None:
    for parser in (gitlab_comment_event, github_comment_event):
        try:
            result = parser(header, payload, "delivery")
        except PayloadError as error:
            assert str(error)
        else:
            assert result is None or isinstance(result, CommentEvent)


@settings(max_examples=400, deadline=None)
@given(HEADERS, json_values)
def test_arbitrary_json_only_payload_error(header: str, payload: object) -> None:
    _parse_both(header, payload)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(COMMENT_FIXTURES), st.data())
def test_mutated_fixtures_only_payload_error(name: str, data: st.DataObject) -> None:
    """Swap one value deep inside a real-shaped payload: the parsers' own paths get exercised."""
    payload = load_webhook(name)
    node: Any = payload
    while True:
        key = data.draw(st.sampled_from(sorted(node)))
        if isinstance(node[key], dict) and node[key] and data.draw(st.booleans()):
            node = node[key]
            continue
        node[key] = data.draw(json_values)
        break
    _parse_both(WEBHOOK_EVENTS[name], payload)
