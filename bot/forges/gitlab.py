"""GitLab adapter (python-gitlab): issues and merge requests as promotion threads.

No HTTP call happens in the constructor. The project is a lazy python-gitlab object (its id or
URL-encoded path is all the API needs), so a wrong GITLAB_PROJECT shows up as a 404 naming the
operation. Retries live in the client's session (see `_gitlab_support.build_client`).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import gitlab
import requests
from gitlab.exceptions import GitlabError

from bot.errors import ConfigError, ForgeError, ForgeNotFoundError
from bot.forges._gitlab_support import (
    EMOJI,
    PER_PAGE,
    UserIds,
    build_client,
    comment_from,
    error_message,
    membership_counts,
    thread_from,
    thread_ref,
    when,
)
from bot.forges._retry import RetryPolicy, http_error, network_error
from bot.forges.base import ALL_KINDS, Deployment, Forge, role_level
from bot.threads.thread import (
    NOBODY,
    Comment,
    ProjectRef,
    Recipients,
    Thread,
    ThreadKind,
    thread_noun,
)

if TYPE_CHECKING:
    from bot.config.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_THREADS = 200  # find_threads looks at the newest ones only (two pages of each kind)
_QUERY_STATES = {"open": "opened", "closed": "all", "all": "all"}
_HINTS = {
    401: "check GITLAB_TOKEN: a project or group access token with the api scope",
    403: "the token lacks the api scope or a role high enough for this",
}


# GitLab's deployment statuses: no `inactive`; a cancelled deployment reads as "not live".
_DEPLOYMENT_STATUS = {"success": "success", "failure": "failed", "inactive": "canceled"}


class GitLabForge(Forge):
    platform = "gitlab"

    def __init__(
        self,
        client: gitlab.Gitlab,
        project: str | int,
        *,
        bot_username: str = "",
        secrets: Sequence[str] = (),
    ) -> None:
        self._gl = client
        self._project_id = project
        self._project_obj: Any = None
        self._default_branch_name = ""  # read once, when a deployment needs it
        self._bot_username = bot_username
        self._enterprise: bool | None = None
        self._secrets = [s for s in secrets if s]
        self._user_ids = UserIds(client, self._call)  # for assignees and reviewers

    @classmethod
    def from_settings(cls, settings: Settings, *, retry: RetryPolicy | None = None) -> GitLabForge:
        if not settings.gitlab_project:
            raise ConfigError(
                "GITLAB_PROJECT is not set (nor CI_PROJECT_ID): the project id or path"
            )
        token = settings.gitlab_token.value
        if not token:
            raise ConfigError("GITLAB_TOKEN is not set: a project access token with the api scope")
        client = build_client(settings.gitlab_url, token, retry)
        return cls(
            client, settings.gitlab_project, bot_username=settings.bot_username, secrets=[token]
        )

    # --- plumbing ------------------------------------------------------------------------
    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except GitlabError as exc:
            message = error_message(exc)
            hints = dict(_HINTS)
            if "project" in message.lower():
                hints[404] = f"check GITLAB_PROJECT={self._project_id} and the token's access"
            raise http_error(
                "GitLab", operation, exc.response_code, message, secrets=self._secrets, hints=hints
            ) from None
        except requests.RequestException as exc:
            raise network_error("GitLab", operation, exc, self._secrets) from None

    def _project(self) -> Any:
        if self._project_obj is None:
            self._project_obj = self._gl.projects.get(self._project_id, lazy=True)
        return self._project_obj

    def _manager(self, kind: ThreadKind) -> Any:
        project = self._project()
        return project.issues if kind == "issue" else project.mergerequests

    def _lazy(self, thread: Thread) -> Any:
        return self._manager(thread.kind).get(int(thread.number), lazy=True)

    # --- identity and capabilities -------------------------------------------------------
    def bot_username(self) -> str:
        if not self._bot_username:

            def fetch() -> str:
                self._gl.auth()
                return str(self._gl.user.username)  # type: ignore[union-attr]

            self._bot_username = self._call("look up the bot's own user (GET /user)", fetch)
        return self._bot_username

    def ping(self) -> None:
        self._call("read the project", lambda: self._gl.projects.get(self._project_id))

    def project_ref(self) -> ProjectRef:
        """GITLAB_PROJECT is a numeric id (CI_PROJECT_ID) or a path (`group/project`)."""
        configured = str(self._project_id).strip()
        if configured.isascii() and configured.isdigit():
            return ProjectRef(id=str(int(configured)))
        return ProjectRef(path=configured.strip("/"))

    def slash_promote_works(self) -> bool:
        """`/promote` reaches the bot only where GitLab reports itself as not EE."""
        if self._enterprise is None:
            try:
                data = self._call("read /metadata", lambda: self._gl.http_get("/metadata"))
            except ForgeError as exc:
                log.info("assuming GitLab EE (/promote is a quick action there): %s", exc)
                data = {}
            self._enterprise = not (isinstance(data, dict) and data.get("enterprise") is False)
        return not self._enterprise

    # --- requests --------------------------------------------------------------------------
    def find_threads(
        self,
        labels: Sequence[str],
        state: str = "open",
        kinds: Sequence[ThreadKind] = ALL_KINDS,
        author: str = "",
        since: str = "",
    ) -> list[Thread]:
        query: dict[str, Any] = {
            "state": _QUERY_STATES.get(state, "opened"),
            "order_by": "created_at",
            "sort": "desc",
            "per_page": PER_PAGE,
            "iterator": True,
        }
        if labels:
            query["labels"] = ",".join(labels)
        if author:
            query["author_username"] = author
        if since:  # a new note moves an issue's (an MR's) updated_at
            query["updated_after"] = since
        found: list[tuple[datetime, Thread]] = []
        for kind in kinds:  # issues and merge requests are separate endpoints on GitLab

            def fetch(kind: ThreadKind = kind) -> list[dict[str, Any]]:
                items = self._manager(kind).list(**query)
                return [item.attributes for item in islice(items, MAX_THREADS)]

            for data in self._call(f"list {thread_noun(kind, self.platform)}s", fetch):
                thread = thread_from(kind, data)
                if state == "closed" and thread.state == "open":
                    continue
                found.append((when(data.get("created_at")), thread))
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [thread for _, thread in found[:MAX_THREADS]]

    def get_thread(self, kind: ThreadKind, number: str) -> Thread:
        obj = self._call(
            f"get {thread_noun(kind, self.platform)} {thread_ref(kind, number)}",
            lambda: self._manager(kind).get(int(number)),
        )
        return thread_from(kind, obj.attributes)

    def open_issue(
        self, title: str, body: str, labels: Sequence[str], recipients: Recipients = NOBODY
    ) -> Thread:
        data: dict[str, Any] = {"title": title, "description": body, "labels": ",".join(labels)}
        if recipients.assignees:
            data["assignee_ids"] = self._user_ids.of(recipients.assignees)
        obj = self._call("open issue", lambda: self._project().issues.create(data))
        return thread_from("issue", obj.attributes)

    def open_merge_request(
        self,
        title: str,
        body: str,
        labels: Sequence[str],
        source_branch: str,
        target_branch: str,
        recipients: Recipients = NOBODY,
    ) -> Thread:
        data: dict[str, Any] = {
            "source_branch": source_branch,
            "target_branch": target_branch,
            "title": title,
            "description": body,
            "labels": ",".join(labels),
            "remove_source_branch": True,
        }
        if recipients.assignees:
            data["assignee_ids"] = self._user_ids.of(recipients.assignees)
        if recipients.reviewers:
            data["reviewer_ids"] = self._user_ids.of(recipients.reviewers)
        obj = self._call("open merge request", lambda: self._project().mergerequests.create(data))
        return thread_from("merge_request", obj.attributes)

    def update_body(self, thread: Thread, body: str) -> None:
        self._update(thread, {"description": body}, "update description of")

    def close(self, thread: Thread) -> None:
        self._update(thread, {"state_event": "close"}, "close")

    def update_and_close(self, thread: Thread, body: str) -> None:
        # One PUT takes the description and the state event together.
        data = {"description": body, "state_event": "close"}
        self._update(thread, data, "update and close")

    def _update(self, thread: Thread, data: dict[str, Any], verb: str) -> None:
        manager = self._manager(thread.kind)
        what = f"{thread_noun(thread.kind, self.platform)} {thread_ref(thread.kind, thread.number)}"
        self._call(
            f"{verb} {what}",
            lambda: manager.update(int(thread.number), data),
        )

    def merge(self, thread: Thread, *, sha: str) -> None:
        if thread.kind != "merge_request":
            raise ForgeError(f"GitLab: cannot merge issue #{thread.number}")
        if not sha:
            raise ForgeError(f"GitLab: no commit to pin the merge of !{thread.number} to")
        mr = self._lazy(thread)
        # python-gitlab's merge() has no `sha`: GitLab answers 409 when the head moved.
        data = {"sha": sha, "should_remove_source_branch": True}
        self._call(
            f"merge merge request !{thread.number} at {sha[:12]}",
            lambda: self._gl.http_put(f"{mr.manager.path}/{mr.encoded_id}/merge", post_data=data),
        )

    def is_approved(self, thread: Thread) -> bool:
        """Someone approved, and the approval rules (Premium) do not say otherwise.

        On GitLab Free `approved` is true with nobody's approval (zero required), so
        `approved_by` must be non-empty too.
        """
        if thread.kind != "merge_request":
            return False
        mr = self._lazy(thread)
        data = self._call(
            f"read approvals of merge request !{thread.number}",
            lambda: mr.approvals.get().attributes,
        )
        return bool(data.get("approved_by")) and data.get("approved") is not False

    def commit_file(
        self, branch: str, from_ref: str, path: str, content: str, message: str
    ) -> None:
        project = self._project()
        try:
            self._call(f"get branch {branch}", lambda: project.branches.get(branch))
        except ForgeNotFoundError:
            log.info("creating branch %s from %s", branch, from_ref)
            self._call(
                f"create branch {branch} from {from_ref}",
                lambda: project.branches.create({"branch": branch, "ref": from_ref}),
            )
        current = self._file_text(path, branch)
        if current == content:
            log.info("%s on %s is already up to date; no commit", path, branch)
            return
        verb = "create" if current is None else "update"
        action = {"action": verb, "file_path": path, "content": content}
        data = {"branch": branch, "commit_message": message, "actions": [action]}
        self._call(f"commit {path} to {branch}", lambda: project.commits.create(data))

    def _file_text(self, path: str, branch: str) -> str | None:
        try:
            obj = self._call(
                f"read {path} on {branch}",
                lambda: self._project().files.get(file_path=path, ref=branch),
            )
        except ForgeNotFoundError:
            return None
        try:
            return base64.b64decode(obj.attributes.get("content") or "").decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""  # unreadable: differs from any content we write, so it gets updated

    # --- deployments -------------------------------------------------------------------------
    def record_deployment(self, deployment: Deployment) -> str:
        """A deployment (POST /deployments: GitLab finds or creates the environment by name),
        then the environment's external URL (PUT /environments/:id, the id from the answer)
        when it differs: two calls. GitLab needs a branch and a commit that exist: the default
        branch is read once per process when no branch is given, its head when no commit is."""
        project = self._project()
        ref = deployment.ref or self._default_branch()
        sha = deployment.sha or self._call(
            f"read the head of {ref}", lambda: project.branches.get(ref).commit["id"]
        )
        data = {
            "environment": deployment.environment,
            "sha": sha,
            "ref": ref,
            "tag": False,
            "status": _DEPLOYMENT_STATUS[deployment.state],
        }
        made = self._call(
            f"create a deployment of {deployment.environment}",
            lambda: project.deployments.create(data),
        )
        environment = made.attributes.get("environment") or {}
        url = deployment.environment_url
        if url and environment.get("id") and environment.get("external_url") != url:
            try:
                self._call(
                    f"set the URL of environment {deployment.environment}",
                    lambda: project.environments.update(environment["id"], {"external_url": url}),
                )
            except ForgeError as exc:  # the deployment stands; its link back is what is missing
                log.warning("deployment %s made, its environment's URL not set: %s", made.id, exc)
        return str(made.id)

    def _default_branch(self) -> str:
        if not self._default_branch_name:
            self._default_branch_name = self._call(
                "read the default branch",
                lambda: str(self._gl.projects.get(self._project_id).default_branch),
            )
        return self._default_branch_name

    # --- comments --------------------------------------------------------------------------
    def list_comments(self, thread: Thread, since: str = "") -> list[Comment]:
        """Notes oldest first. With `since`, read newest first and stop at older ones."""
        parent = self._lazy(thread)
        limit = when(since) if since else None

        def fetch() -> list[dict[str, Any]]:
            notes = parent.notes.list(
                order_by="created_at",
                sort="desc" if limit else "asc",
                per_page=PER_PAGE,
                iterator=True,
            )
            out = []
            for note in notes:
                if limit and when(note.attributes.get("created_at")) < limit:
                    break
                out.append(note.attributes)
            return out[::-1] if limit else out

        notes = self._call(f"list notes of {thread_ref(thread.kind, thread.number)}", fetch)
        return [comment_from(data) for data in notes]

    def post_comment(self, thread: Thread, body: str, *, internal: bool = False) -> Comment:
        parent = self._lazy(thread)
        data: dict[str, Any] = {"body": body}
        if internal:
            data["internal"] = True
        note = self._call(
            f"post {'an internal' if internal else 'a'} note on "
            f"{thread_ref(thread.kind, thread.number)}",
            lambda: parent.notes.create(data),
        )
        data = note.attributes
        if "id" not in data:  # 202: the note held only quick actions, GitLab saved nothing
            log.warning("GitLab ran the note as quick actions and did not save it")
            return Comment(id="", author=self.bot_username(), body=body, internal=internal)
        return comment_from(data)

    def comment_url(self, thread: Thread, comment_id: str) -> str:
        return f"{thread.url}#note_{comment_id}"

    def react(self, thread: Thread, comment_id: str, reaction: str) -> None:
        name = EMOJI.get(reaction, reaction)
        try:
            note = self._lazy(thread).notes.get(int(comment_id), lazy=True)
            self._call(
                f"react :{name}: to note {comment_id}",
                lambda: note.awardemojis.create({"name": name}),
            )
        except (ForgeError, ValueError) as exc:
            log.warning("could not react to a note (best effort): %s", exc)

    # --- people ----------------------------------------------------------------------------
    def _user_id(self, username: str, user_id: str) -> str:
        """The webhook's or note's user id, else the id the name belongs to now ("" if none)."""
        if user_id:
            return user_id
        users = self._call(
            f"look up user {username}",
            lambda: self._gl.users.list(username=username, get_all=False),
        )
        return str(users[0].attributes["id"]) if users else ""

    def access_level(self, username: str, user_id: str = "") -> int:
        user_id = self._user_id(username, user_id)
        if not user_id:
            return 0
        try:
            member = self._call(
                f"read the project role of {username}",
                lambda: self._project().members_all.get(int(user_id)),
            )
        except ForgeNotFoundError:
            return 0
        if not membership_counts(member.attributes):
            return 0
        return int(member.attributes.get("access_level") or 0)

    def team_member(self, team: str, username: str, user_id: str = "") -> bool:
        """A member of the group at path `team`, directly or inherited from an ancestor group
        (`members/all`: a parent group's member belongs to its subgroups), at guest or above,
        while the membership counts (`membership_counts`)."""
        user_id = self._user_id(username, user_id)
        if not user_id:
            return False
        path = f"/groups/{quote(team, safe='')}/members/all/{int(user_id)}"

        def fetch() -> Any:
            try:
                return self._gl.http_get(path)
            except GitlabError as exc:
                # "404 Not found" is no member; "404 Group Not Found" is no group: an error.
                if exc.response_code == 404 and "group" not in error_message(exc).lower():
                    return None
                raise

        try:
            data = self._call(f"read the membership of {username} in the group {team}", fetch)
        except ForgeNotFoundError:
            raise ForgeError(
                f"GitLab: no group {team} that the bot's token can see (promotion.approvers.teams)"
            ) from None
        if not membership_counts(data):
            return False
        return int(data.get("access_level") or 0) >= role_level("guest")
