"""Webhook payloads -> the shared events, once, at the edge (no I/O): a forge's comment becomes a
`CommentEvent`, MLflow's alias event an `AliasChange`.

`parse_event` picks the comment parser by the event's name (the `handle` command's event files);
`serve` picks it by route (`bot.intake.sources`). Each parser answers None for deliveries the bot
has no work for (pings, other events, deleted comments, notes on commits or snippets, system
notes, other registry entities) and raises PayloadError, a ValueError `serve` turns into 400, when
an event it does handle lacks a field or has one of the wrong type. Nothing else escapes,
whatever JSON arrives.

MLflow 3 (`mlflow/webhooks/delivery.py`) POSTs an envelope
`{"entity": "model_version_alias", "action": "created" | "deleted", "timestamp": <ISO 8601>,
"data": {"name": ..., "alias": ..., "version": "7"}}` (no `version` on `deleted`; the version is a
string) whenever an alias is set or removed through the tracking server.
"""

from __future__ import annotations

from typing import Any

from bot.commands.external_change import AliasChange
from bot.threads.thread import CommentAction, CommentEvent, ProjectRef, ThreadKind

# GitLab sends notes on confidential issues and internal notes as "Confidential Note Hook".
CONFIDENTIAL_NOTE_HEADER = "Confidential Note Hook"
GITLAB_NOTE_HEADERS = frozenset({"Note Hook", CONFIDENTIAL_NOTE_HEADER})
_GITLAB_NOTE_NAMES = {name.lower(): name for name in GITLAB_NOTE_HEADERS}
_GITLAB_THREADS: dict[str, tuple[ThreadKind, str]] = {
    "Issue": ("issue", "issue"),
    "MergeRequest": ("merge_request", "merge_request"),
}
# A missing action is an old GitLab (before 16.11), which only sent hooks for new notes.
_GITLAB_ACTIONS: dict[str | None, CommentAction] = {
    None: "created",
    "create": "created",
    "update": "edited",
}
_GITHUB_ACTIONS: dict[str, CommentAction] = {"created": "created", "edited": "edited"}
_MAX_ID = 2**63 - 1
ALIAS_ENTITY = "model_version_alias"


class PayloadError(ValueError):
    """Malformed payload / missing fields → the server answers 400."""


def parse_event(event_name: str, payload: object, delivery_id: str = "") -> CommentEvent | None:
    """A forge payload as the shared event, by the event's name; None for events needing no work.

    GitLab's note events (any case) and a nameless payload (GitLab's `object_kind` decides) go to
    the GitLab parser, every other name to the GitHub one, which only takes `issue_comment`.
    """
    name = event_name.strip() if isinstance(event_name, str) else ""
    if not name or name.lower() in _GITLAB_NOTE_NAMES:
        return gitlab_comment_event(_GITLAB_NOTE_NAMES.get(name.lower(), ""), payload, delivery_id)
    return github_comment_event(name, payload, delivery_id)


def gitlab_comment_event(
    event_header: str, payload: object, delivery_id: str = ""
) -> CommentEvent | None:
    """A GitLab Note Hook on an issue or merge request, else None.

    The header decides; without one (an event file, a replay), `object_kind: note` does.
    """
    header = event_header.strip() if isinstance(event_header, str) else ""
    kind = payload.get("object_kind") if isinstance(payload, dict) else None
    if header not in GITLAB_NOTE_HEADERS and (header or kind != "note"):
        return None
    root = _mapping(payload, "payload")
    note = _mapping(root.get("object_attributes"), "object_attributes")
    noteable = _string(note, "noteable_type", "object_attributes")
    if noteable not in _GITLAB_THREADS:
        return None  # Commit, Snippet, ...
    action_value = note.get("action")
    if action_value is not None and not isinstance(action_value, str):
        raise PayloadError("object_attributes.action must be a string")
    action = _GITLAB_ACTIONS.get(action_value)
    if action is None or note.get("system") is True:
        return None  # a future action we do not know, or "changed the description"
    thread_kind, thread_key = _GITLAB_THREADS[noteable]
    thread = _mapping(root.get(thread_key), thread_key)
    user = _mapping(root.get("user"), "user")
    return CommentEvent(
        platform="gitlab",
        thread_kind=thread_kind,
        thread_number=_identifier(thread, "iid", thread_key),
        comment_id=_identifier(note, "id", "object_attributes"),
        author=_string(user, "username", "user", non_empty=True),
        body=_string(note, "note", "object_attributes"),
        action=action,
        author_id=_identifier(user, "id", "user"),
        created_at=_optional_string(note, "created_at", "object_attributes"),
        project=_gitlab_project(root),
        delivery_id=_delivery(delivery_id),
        internal=_gitlab_internal(note, confidential=_confidential(header, root)),
    )


def github_comment_event(
    event_name: str, payload: object, delivery_id: str = ""
) -> CommentEvent | None:
    """A GitHub issue_comment created or edited on an issue or pull request, else None."""
    if not isinstance(event_name, str) or event_name.strip() != "issue_comment":
        return None  # ping, pull_request, pull_request_review_comment, ...
    root = _mapping(payload, "payload")
    action_value = _string(root, "action", "payload")
    action = _GITHUB_ACTIONS.get(action_value)
    if action is None:
        return None  # deleted: nothing to answer
    issue = _mapping(root.get("issue"), "issue")
    comment = _mapping(root.get("comment"), "comment")
    # The comment's author, not `sender`: on an edit, sender is whoever edited it.
    user = _mapping(comment.get("user"), "comment.user")
    # A pull request comment is an issue comment whose issue carries a `pull_request` object.
    thread_kind: ThreadKind = "merge_request" if issue.get("pull_request") else "issue"
    return CommentEvent(
        platform="github",
        thread_kind=thread_kind,
        thread_number=_identifier(issue, "number", "issue"),
        comment_id=_identifier(comment, "id", "comment"),
        author=_string(user, "login", "comment.user", non_empty=True),
        body=_string(comment, "body", "comment"),
        action=action,
        author_id=_identifier(user, "id", "comment.user"),
        created_at=_optional_string(comment, "created_at", "comment"),
        project=_project_ref(root.get("repository"), "full_name", "repository"),
        delivery_id=_delivery(delivery_id),
    )


def _gitlab_project(root: dict[Any, Any]) -> ProjectRef:
    """`project.id` (else the top-level `project_id`) and `project.path_with_namespace`."""
    ref = _project_ref(root.get("project"), "path_with_namespace", "project")
    if not ref.id and root.get("project_id") is not None:
        return ProjectRef(id=_identifier(root, "project_id", "payload"), path=ref.path)
    return ref


def _project_ref(obj: object, path_key: str, where: str) -> ProjectRef:
    """Absent or null fields are "" (such an event is then not for any bot, see
    bot.forges.project_binding)."""
    path = _optional_string(obj, path_key, where)
    if isinstance(obj, dict) and obj.get("id") is not None:
        return ProjectRef(id=_identifier(obj, "id", where), path=path)
    return ProjectRef(path=path)


def _confidential(header: str, root: dict[Any, Any]) -> bool:
    return header == CONFIDENTIAL_NOTE_HEADER or root.get("event_type") == "confidential_note"


def _gitlab_internal(note: dict[Any, Any], *, confidential: bool) -> bool:
    """An internal note: `internal` (GitLab 15+), `confidential` (before), else the hook's kind.

    Some GitLab versions send neither flag; then a confidential hook (an internal note, or any
    note on a confidential issue) counts as internal, so its answer never ends up public.
    """
    flags = [note.get(key) for key in ("internal", "confidential") if key in note]
    for flag in flags:
        if flag is not None and not isinstance(flag, bool):
            raise PayloadError("object_attributes.internal must be a boolean")
    if any(flag is True for flag in flags):
        return True
    if any(flag is False for flag in flags):
        return False
    return confidential


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"missing or malformed {where} (expected an object)")
    return value


def _string(obj: dict[Any, Any], key: str, where: str, *, non_empty: bool = False) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or (non_empty and not value):
        raise PayloadError(f"missing or malformed {where}.{key} (expected a string)")
    return value


def _optional_string(obj: object, key: str, where: str) -> str:
    """Informational fields: absent or null is fine, another type is not."""
    if obj is None:
        return ""
    value = _mapping(obj, where).get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"malformed {where}.{key} (expected a string)")
    return value


def _identifier(obj: dict[Any, Any], key: str, where: str) -> str:
    """A positive integer id (a JSON number, or a string of digits) as a string."""
    value = obj.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    # bool is an int subclass: `true` is not an id.
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_ID:
        return str(value)
    raise PayloadError(f"missing or malformed {where}.{key} (expected a positive integer)")


def _delivery(delivery_id: object) -> str:
    return delivery_id if isinstance(delivery_id, str) else ""


def parse_alias_change(payload: object, delivery_id: str = "") -> AliasChange | None:
    """A model alias set or deleted, else None (other entities, prompts are `prompt_alias`)."""
    if not isinstance(payload, dict):
        raise PayloadError("missing or malformed payload (expected an object)")
    entity, action = payload.get("entity"), payload.get("action")
    if not isinstance(entity, str) or not isinstance(action, str):
        raise PayloadError("missing or malformed entity/action (expected strings)")
    if entity != ALIAS_ENTITY or action not in ("created", "deleted"):
        return None
    data = payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("missing or malformed data (expected an object)")
    name, alias = data.get("name"), data.get("alias")
    if not isinstance(name, str) or not name or not isinstance(alias, str) or not alias:
        raise PayloadError("missing or malformed data.name/data.alias (expected strings)")
    version = _version(data.get("version")) if action == "created" else None
    at = payload.get("timestamp")
    return AliasChange(
        model=name,
        alias=alias,
        version=version,
        delivery_id=delivery_id,
        action="created" if action == "created" else "deleted",
        at=at if isinstance(at, str) else "",
    )


def _version(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise PayloadError("missing or malformed data.version (expected a positive integer)")
