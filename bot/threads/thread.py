"""Forge threads, comments and comment events, platform-neutral: every forge adapter and payload
parser produces these, and nothing above them asks which platform a thread came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ThreadKind = Literal["issue", "merge_request"]
ThreadState = Literal["open", "closed", "merged"]
CommentAction = Literal["created", "edited"]


def thread_noun(kind: ThreadKind, platform: str) -> str:
    """What people call a thread of `kind` on `platform`: an issue, a merge or pull request."""
    if kind == "issue":
        return "issue"
    return "pull request" if platform == "github" else "merge request"


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
    head_sha: str = ""  # an MR/PR's head commit ("" for issues, or when the listing omits it)
    assignees: tuple[str, ...] = ()  # as the forge recorded them
    reviewers: tuple[str, ...] = ()  # people asked for a review; GitHub teams as `org/team`


@dataclass(frozen=True)
class Recipients:
    """Who a new request notifies: assignees, and on a merge request reviewers.

    A name the forge cannot assign (not a member, or a plan that allows one assignee) is left
    out by the forge, not refused: the thread it returns says who was recorded.
    """

    assignees: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()  # usernames, or GitHub teams as `org/team`

    def __bool__(self) -> bool:
        return bool(self.assignees or self.reviewers)


NOBODY = Recipients()


def same_person(name: str, user_id: str, other_name: str, other_id: str) -> bool:
    """One rule for "the same person": the forge's user ids when both sides have one (a renamed
    account keeps its id, a new holder of a name gets another), else the usernames, in any
    letter case as both forges compare them; an empty name is nobody."""
    if user_id and other_id:
        return user_id == other_id
    return bool(name) and name.lower() == other_name.lower()


@dataclass(frozen=True)
class Comment:
    """One comment (GitLab note, GitHub issue comment) in a thread."""

    id: str
    author: str
    body: str
    created_at: str = ""  # ISO 8601
    author_id: str = ""  # GitLab numeric user id, GitHub user id; "" if unknown
    system: bool = False  # GitLab system notes ("changed the description") are never commands
    edited: bool = False  # changed after it was posted: edits are never commands
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
