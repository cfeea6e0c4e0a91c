"""The forge interface: domain verbs every adapter (GitLab, GitHub, local) implements.

Core code never asks which platform it is on; what differs lives behind these methods.
Errors: adapters raise `ForgeAuthError` (401/403), `ForgeNotFoundError` (404) or `ForgeError`
(anything else, after a bounded number of retries on 429/5xx honouring Retry-After). Messages
never contain a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from bot.threads.thread import (
    NOBODY,
    Comment,
    ProjectRef,
    Recipients,
    Thread,
    ThreadKind,
    same_person,
)

# One access scale for both platforms' roles, so `approvers.min_role` compares across forges.
# GitLab access levels are used as the scale; GitHub roles are placed on it.
ROLE_LEVELS: dict[str, int] = {
    "none": 0,
    "guest": 10,
    "read": 10,
    "planner": 15,
    "reporter": 20,
    "triage": 20,
    "developer": 30,
    "write": 30,
    "maintainer": 40,
    "maintain": 40,
    "owner": 50,
    "admin": 50,
}


ALL_KINDS: tuple[ThreadKind, ...] = ("issue", "merge_request")


def role_level(role: str) -> int:
    """Level of a role name (either platform's vocabulary); unknown names count as none."""
    return ROLE_LEVELS.get(role.strip().lower(), 0)


# A level back to the platform's word for it (the audit ledger records roles by name).
_ROLE_NAMES = {
    "github": {0: "none", 10: "read", 20: "triage", 30: "write", 40: "maintain", 50: "admin"},
    "gitlab": {
        0: "none",
        10: "guest",
        15: "planner",
        20: "reporter",
        30: "developer",
        40: "maintainer",
        50: "owner",
    },
}


def role_name(platform: str, level: int) -> str:
    """The role `level` stands for on `platform` (GitLab's words for the local forge)."""
    names = _ROLE_NAMES["github" if platform == "github" else "gitlab"]
    return names.get(level, str(level))


DeploymentState = Literal["success", "failure", "inactive"]


@dataclass(frozen=True)
class Deployment:
    """A champion change as the forge's deployment history shows it (display only: no rule
    reads a deployment back, docs/security.md, "The status page")."""

    model: str
    environment: str  # `model/<name>`, the prefix from promotion.deployments
    version: int | None  # None: the alias was deleted
    state: DeploymentState
    description: str  # one line, at most 140 characters (GitHub's limit)
    environment_url: str = ""  # the version's page in the MLflow UI
    log_url: str = ""  # the request thread
    ref: str = ""  # the branch named; "" = the default branch
    sha: str = ""  # the commit, when one is known (a merged request); "" = the ref's head

    def payload(self) -> dict[str, object]:
        return {"model": self.model, "version": self.version, "source": "promotion-bot"}


@runtime_checkable
class Forge(Protocol):
    """What promotion-bot needs from a code forge. The adapters subclass it, so a verb written
    here once (`is_bot`) is theirs unless their platform differs."""

    platform: str  # "gitlab" | "github" | "local"

    # --- identity and capabilities -------------------------------------------------------
    def bot_username(self) -> str:
        """The account the bot posts as (cached after the first call)."""

    def is_bot(self, author: str) -> bool:
        """Whether `author` is the account the bot posts as: the one test of "is this the bot?"
        for comments, threads and commands (a GitHub App's comments are by `<slug>[bot]`, which
        is its `bot_username`). Names only: the bot's own user id is never looked up."""
        return same_person(author, "", self.bot_username(), "")

    def slash_promote_works(self) -> bool:
        """False where `/promote` is eaten by the forge (GitLab EE quick action)."""

    def project_ref(self) -> ProjectRef:
        """The configured project as the configuration names it (no API call): see
        bot.forges.project_binding."""

    def ping(self) -> None:
        """One cheap authenticated read of the project, for readiness; a ForgeError if it fails."""

    # --- requests --------------------------------------------------------------------------
    def find_threads(
        self,
        labels: Sequence[str],
        state: str = "open",
        kinds: Sequence[ThreadKind] = ALL_KINDS,
        author: str = "",
        since: str = "",
    ) -> list[Thread]:
        """Threads of `kinds` carrying all `labels`; state "open", "closed" or "all"; with
        `since` (ISO 8601), only those updated at or after it (a new comment updates a thread).

        Ordered newest first. Core code filters them by the hidden request marker. Asking for
        one kind lets an adapter whose kinds live behind separate endpoints make one call.
        `author` ("" for anyone) is filtered by the forge, in the same call: a listing returns
        the newest threads only, and other people's labelled threads must not push ours out.
        """

    def get_thread(self, kind: ThreadKind, number: str) -> Thread: ...

    def open_issue(
        self, title: str, body: str, labels: Sequence[str], recipients: Recipients = NOBODY
    ) -> Thread:
        """Open an issue assigned to `recipients.assignees` (those the forge can assign)."""

    def open_merge_request(
        self,
        title: str,
        body: str,
        labels: Sequence[str],
        source_branch: str,
        target_branch: str,
        recipients: Recipients = NOBODY,
    ) -> Thread:
        """Open an MR/PR, assigned and with reviews requested; a name the forge refuses is
        skipped (the returned thread says who was recorded), never a failure."""

    def update_body(self, thread: Thread, body: str) -> None: ...

    def close(self, thread: Thread) -> None:
        """Close an issue or MR/PR without merging."""

    def update_and_close(self, thread: Thread, body: str) -> None:
        """Set the body and close, in one write where the forge takes both at once (a GitHub
        issue PATCH, a GitLab issue PUT): a promoted request's last write."""

    def merge(self, thread: Thread, *, sha: str) -> None:
        """Merge an MR/PR (merge_request kind only), only while its head is the commit `sha`:
        the forge refuses the merge when someone pushed since."""

    def is_approved(self, thread: Thread) -> bool:
        """Whether the MR/PR carries a platform approval (GitLab approvals, GitHub reviews)."""

    def commit_file(
        self, branch: str, from_ref: str, path: str, content: str, message: str
    ) -> None:
        """Create `branch` from `from_ref` if missing, then create or update `path` on it."""

    # --- comments --------------------------------------------------------------------------
    def list_comments(self, thread: Thread, since: str = "") -> list[Comment]:
        """Comments oldest first; `since` (ISO 8601) lets an adapter ask for less."""

    def post_comment(self, thread: Thread, body: str, *, internal: bool = False) -> Comment:
        """Post `body`; `internal`: seen by project members only (GitLab internal notes)."""

    def react(self, thread: Thread, comment_id: str, reaction: str) -> None:
        """Acknowledge a comment ("eyes", "+1", "-1", "rocket"). Best effort."""

    def comment_url(self, thread: Thread, comment_id: str) -> str:
        """A link to one comment of `thread` (no API call)."""

    # --- deployments -------------------------------------------------------------------------
    def record_deployment(self, deployment: Deployment) -> str:
        """Create a deployment of `deployment.environment` with its state; its id on the forge.
        Raises ForgeError (ForgeAuthError / ForgeNotFoundError when the token may not)."""

    # --- people ----------------------------------------------------------------------------
    def access_level(self, username: str, user_id: str = "") -> int:
        """The user's role on the project on the `ROLE_LEVELS` scale; 0 for non-members."""

    def team_member(self, team: str, username: str, user_id: str = "") -> bool:
        """Whether the user is a member of `team` (a GitHub team `org/team-slug`, a GitLab group
        path, members of ancestor groups included), as the forge's membership records say now.
        A lookup that fails (no access, the forge down) raises ForgeError: never "not a member"
        by accident, never a crash."""
