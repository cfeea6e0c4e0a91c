"""Shared, platform-neutral data: every forge adapter and payload parser produces these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ThreadKind = Literal["issue", "merge_request"]
ThreadState = Literal["open", "closed", "merged"]
CommentAction = Literal["created", "edited"]

# Version tags the bot writes at registration and reads when a command arrives.
REGISTERED_AS_TAG = "promotion.registered_as"  # ci-smoke | smoke: a toy stays recognisable
REQUESTED_BY_TAG = "promotion.requested_by"  # who triggered training (self-approval rule)
# The thread `request` opened for the version: the registry's word on which thread is its request
# (a description can be edited to name another version; this tag cannot be, from the forge).
REQUESTED_IN_TAG = "promotion.requested_in"
TOY_ALIAS = "ci-smoke"


@dataclass(frozen=True)
class ProjectRef:
    """A GitLab project or GitHub repository, as a payload or the configuration names it."""

    id: str = ""  # the forge's numeric id (GitLab project id, GitHub repository id); "" unknown
    path: str = ""  # GitLab path_with_namespace, GitHub owner/name; "" unknown

    def __str__(self) -> str:
        return self.path or (f"id {self.id}" if self.id else "no project")


@dataclass(frozen=True)
class Thread:
    """A promotion request: a GitLab issue/MR, a GitHub issue/PR, or a local thread."""

    kind: ThreadKind
    number: str  # GitLab iid, GitHub number, local id; always a string
    title: str
    body: str
    url: str
    state: ThreadState
    author: str = ""
    labels: tuple[str, ...] = ()
    updated_at: str = ""  # ISO 8601, as the forge reports it


@dataclass(frozen=True)
class Comment:
    """One comment (GitLab note, GitHub issue comment) in a thread."""

    id: str
    author: str
    body: str
    created_at: str = ""  # ISO 8601
    author_id: str = ""  # GitLab numeric user id, GitHub user id; "" if unknown
    system: bool = False  # GitLab system notes ("changed the description") are never commands
    edited: bool = False  # changed after it was posted: edits are never commands (SPEC §5)
    internal: bool = False  # a GitLab internal note: seen by project members only


@dataclass(frozen=True)
class CommentEvent:
    """A comment as delivered by a webhook, an Actions event file, a poll or `comment`."""

    platform: str  # gitlab | github | local
    thread_kind: ThreadKind
    thread_number: str
    comment_id: str
    author: str
    body: str
    action: CommentAction = "created"
    author_id: str = ""
    created_at: str = ""
    project: ProjectRef = ProjectRef()  # the project the payload says it comes from
    delivery_id: str = ""
    internal: bool = False  # a GitLab internal note: its answer must be internal too

    @classmethod
    def from_comment(
        cls,
        platform: str,
        project: ProjectRef,
        thread: Thread,
        comment: Comment,
        action: CommentAction = "created",
    ) -> CommentEvent:
        """A comment read through the configured forge (`poll`, `comment` on the local platform).

        `project` is that forge's own project: the comment was read from it, so it is bound to
        this bot by construction.
        """
        return cls(
            platform=platform,
            thread_kind=thread.kind,
            thread_number=thread.number,
            comment_id=comment.id,
            author=comment.author,
            author_id=comment.author_id,
            body=comment.body,
            action=action,
            created_at=comment.created_at,
            project=project,
            internal=comment.internal,
        )


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version, normalised (MLflow gives str over REST, int over sqlite)."""

    model: str
    version: int
    run_id: str
    source: str = ""
    status: str = "READY"
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    created_at_ms: int = 0

    @property
    def is_toy(self) -> bool:
        return self.tags.get(REGISTERED_AS_TAG) == TOY_ALIAS

    @property
    def requested_by(self) -> str:
        return self.tags.get(REQUESTED_BY_TAG, "")

    @property
    def requested_in(self) -> str:
        return self.tags.get(REQUESTED_IN_TAG, "")


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
