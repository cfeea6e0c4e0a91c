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
TOY_ALIAS = "ci-smoke"


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
    repository: str = ""  # GitLab path_with_namespace / GitHub owner/name, for logs
    delivery_id: str = ""

    @classmethod
    def from_comment(
        cls, platform: str, thread: Thread, comment: Comment, action: CommentAction = "created"
    ) -> CommentEvent:
        """A comment read from the forge (by `poll`, or `comment` on the local platform)."""
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


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
