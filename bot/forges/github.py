"""GitHub adapter (PyGithub): issues and pull requests as promotion threads.

PyGithub runs lazy (`Github(lazy=True)`): getting the repository, an issue or a PR by number
costs no request, so each verb makes only the calls it needs. PyGithub's own retry and request
throttling are off; each step goes through `_github_support.call` (bounded retry, BotErrors).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from github import Github

from bot.errors import ConfigError, ForgeAuthError, ForgeError, ForgeNotFoundError
from bot.forges._github_app import GitHubApp, app_client
from bot.forges._github_people import People
from bot.forges._github_support import (
    REACTIONS,
    build_client,
    call,
    comment_from,
    payload,
    review_verdict,
    since_datetime,
    thread_from,
)
from bot.forges._retry import RetryPolicy
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

MAX_THREADS = 200  # find_threads looks at the newest ones only (two pages)
ACTIONS_BOT = "github-actions[bot]"


class GitHubForge(Forge):
    platform = "github"

    def __init__(
        self,
        client: Github,
        repository: str,
        *,
        bot_username: str = "",
        secrets: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        app: GitHubApp | None = None,
    ) -> None:
        self._gh = client
        self._full_name = repository
        self._repo_obj: Any = None
        self._default_branch_name = ""  # read once, when a deployment needs it
        self._bot_username = bot_username
        self._secrets = [s for s in secrets if s]
        self._retry = retry or RetryPolicy()
        self._warned_shared = False
        self._app = app  # the bot is a GitHub App: its login is `<slug>[bot]`
        self._people = People(self._call, self._request)  # assignees and reviewers

    @classmethod
    def from_settings(cls, settings: Settings, *, retry: RetryPolicy | None = None) -> GitHubForge:
        repository = settings.github_repository.strip()
        if not repository:
            raise ConfigError("GITHUB_REPOSITORY is not set: owner/name of the repository")
        if repository.count("/") != 1 or repository.startswith("/") or repository.endswith("/"):
            raise ConfigError(f"GITHUB_REPOSITORY must be owner/name, got {repository!r}")
        if settings.github_app_id:
            client, app = app_client(settings, repository, retry)
            key = settings.github_app_private_key.value
            return cls(
                client,
                repository,
                bot_username=settings.bot_username,
                secrets=[key],
                retry=retry,
                app=app,
            )
        token = settings.github_token.value
        if not token:
            raise ConfigError(
                "GITHUB_TOKEN is not set (nor GITHUB_APP_ID): a token with issues and "
                "pull-requests write"
            )
        return cls(
            build_client(settings.github_api_url, token),
            repository,
            bot_username=settings.bot_username,
            secrets=[token],
            retry=retry,
        )

    # --- plumbing ------------------------------------------------------------------------
    def _call(self, operation: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        hints = {
            401: "check GITHUB_APP_ID and its private key" if self._app else "check GITHUB_TOKEN",
            404: f"check GITHUB_REPOSITORY={self._full_name} and the token's access",
        }
        return call(
            self._retry, operation, fn, idempotent=idempotent, secrets=self._secrets, hints=hints
        )

    def _repo(self) -> Any:
        if self._repo_obj is None:
            self._repo_obj = self._gh.get_repo(self._full_name)  # lazy: no request
        return self._repo_obj

    def _request(self, verb: str, path: str, body: Any = None) -> Any:
        """An endpoint PyGithub has no one-call method for, through its own requester."""
        return self._api(verb, f"{self._repo().url}{path}", body)

    def _api(self, verb: str, path: str, body: Any = None) -> Any:
        _, data = self._gh.requester.requestJsonAndCheck(verb, path, input=body)
        return data

    # --- identity and capabilities -------------------------------------------------------
    def bot_username(self) -> str:
        if not self._bot_username and self._app is not None:
            self._bot_username = self._app.bot_login()  # an installation token cannot read /user
        if not self._bot_username:
            try:
                self._bot_username = self._call(
                    "look up the bot's own user (GET /user)", lambda: str(self._gh.get_user().login)
                )
            except ForgeAuthError as exc:
                # The Actions GITHUB_TOKEN may not read /user; it posts as github-actions[bot].
                log.warning(
                    "%s; assuming %s (set PROMOTION_BOT_USERNAME to override)", exc, ACTIONS_BOT
                )
                self._bot_username = ACTIONS_BOT
        if self._bot_username.lower() == ACTIONS_BOT and not self._warned_shared:
            self._warned_shared = True
            log.warning(
                "the bot posts as %s, the account every workflow of the repository posts as: "
                "any workflow can write comments that look like the bot's (approvals are kept "
                "in the registry, but answers can still be faked); use a GitHub App or a bot "
                "account's token, above all with required_approvals > 1",
                ACTIONS_BOT,
            )
        return self._bot_username

    def slash_promote_works(self) -> bool:
        return True

    def ping(self) -> None:
        self._call(f"read the repository {self._full_name}", lambda: self._request("GET", ""))

    def project_ref(self) -> ProjectRef:
        return ProjectRef(path=self._full_name)

    # --- requests --------------------------------------------------------------------------
    def find_threads(
        self,
        labels: Sequence[str],
        state: str = "open",
        kinds: Sequence[ThreadKind] = ALL_KINDS,
        author: str = "",
        since: str = "",
    ) -> list[Thread]:
        """One listing whatever `kinds`: GitHub's issues endpoint returns pull requests too."""

        def fetch() -> list[Thread]:
            query: dict[str, Any] = {"state": state, "sort": "created", "direction": "desc"}
            if labels:  # an empty `labels=` is not "any labels" everywhere
                query["labels"] = list(labels)
            if author:
                query["creator"] = author
            after = since_datetime(since) if since else None
            if after is not None:  # a new comment moves an issue's (a PR's) updated_at
                query["since"] = after
            items = self._repo().get_issues(**query)
            return [thread_from(payload(item)) for item in islice(items, MAX_THREADS)]

        return [t for t in self._call("list issues and pull requests", fetch) if t.kind in kinds]

    def get_thread(self, kind: ThreadKind, number: str) -> Thread:
        if kind == "merge_request":
            obj = self._repo().get_pull(int(number))
        else:
            obj = self._repo().get_issue(int(number))
        return thread_from(
            self._call(f"get {thread_noun(kind, self.platform)} #{number}", lambda: obj.raw_data)
        )

    def open_issue(
        self, title: str, body: str, labels: Sequence[str], recipients: Recipients = NOBODY
    ) -> Thread:
        def create(assignees: list[str]) -> Any:
            people = {"assignees": assignees} if assignees else {}  # PyGithub would send []
            return self._repo().create_issue(title=title, body=body, labels=list(labels), **people)

        return thread_from(self._people.open_assigned(create, recipients.assignees))

    def open_merge_request(
        self,
        title: str,
        body: str,
        labels: Sequence[str],
        source_branch: str,
        target_branch: str,
        recipients: Recipients = NOBODY,
    ) -> Thread:
        pull = self._call(
            "open pull request",
            lambda: self._repo().create_pull(
                base=target_branch, head=source_branch, title=title, body=body, draft=False
            ),
            idempotent=False,
        )
        data = dict(payload(pull))
        if labels:  # the pulls endpoint takes no labels; they go through the issue
            data["labels"] = self._call(
                f"label pull request #{data['number']}",
                lambda: self._request(
                    "POST", f"/issues/{data['number']}/labels", {"labels": list(labels)}
                ),
            )
        if recipients.assignees:  # nor assignees
            data["assignees"] = self._people.assign(data["number"], recipients.assignees)
        if recipients.reviewers:
            data.update(self._people.request_reviews(data["number"], recipients.reviewers))
        return thread_from(data)

    def update_body(self, thread: Thread, body: str) -> None:
        # The issues endpoint edits a PR's body too: one PATCH, no GET.
        issue = self._repo().get_issue(int(thread.number))
        self._call(
            f"update body of {thread_noun(thread.kind, self.platform)} #{thread.number}",
            lambda: issue.edit(body=body),
        )

    def close(self, thread: Thread) -> None:
        issue = self._repo().get_issue(int(thread.number))
        self._call(
            f"close {thread_noun(thread.kind, self.platform)} #{thread.number}",
            lambda: issue.edit(state="closed"),
        )

    def update_and_close(self, thread: Thread, body: str) -> None:
        # One PATCH carries both fields (PRs too: the issues endpoint edits them).
        issue = self._repo().get_issue(int(thread.number))
        self._call(
            f"update and close {thread_noun(thread.kind, self.platform)} #{thread.number}",
            lambda: issue.edit(body=body, state="closed"),
        )

    def merge(self, thread: Thread, *, sha: str) -> None:
        if thread.kind != "merge_request":
            raise ForgeError(f"GitHub: cannot merge issue #{thread.number}")
        if not sha:
            raise ForgeError(f"GitHub: no commit to pin the merge of #{thread.number} to")
        pull = self._repo().get_pull(int(thread.number))
        # GitHub answers 409 when the head is no longer `sha`.
        self._call(
            f"merge pull request #{thread.number} at {sha[:12]}", lambda: pull.merge(sha=sha)
        )

    def is_approved(self, thread: Thread) -> bool:
        if thread.kind != "merge_request":
            return False
        pull = self._repo().get_pull(int(thread.number))
        reviews = self._call(
            f"list reviews of pull request #{thread.number}",
            lambda: [payload(review) for review in pull.get_reviews()],
        )
        return review_verdict(reviews)

    def commit_file(
        self, branch: str, from_ref: str, path: str, content: str, message: str
    ) -> None:
        repo = self._repo()
        try:
            self._call(f"get branch {branch}", lambda: repo.get_branch(branch))
        except ForgeNotFoundError:
            log.info("creating branch %s from %s", branch, from_ref)
            # complete(): a lazy Commit would take its "sha" from the URL, i.e. the ref name.
            commit = repo.get_commit(from_ref)
            sha = self._call(f"resolve {from_ref}", lambda: payload(commit.complete())["sha"])
            self._call(
                f"create branch {branch}",
                lambda: repo.create_git_ref(ref=f"refs/heads/{branch}", sha=sha),
                idempotent=False,
            )
        try:
            current = self._call(
                f"read {path} on {branch}", lambda: repo.get_contents(path, ref=branch)
            )
        except ForgeNotFoundError:
            current = None
        if current is None:
            self._call(
                f"create {path} on {branch}",
                lambda: repo.create_file(path, message, content, branch=branch),
                idempotent=False,
            )
            return
        if isinstance(current, list):
            raise ForgeError(f"GitHub: cannot write {path} on {branch}: it is a directory")
        if _decoded(payload(current)) == content:
            log.info("%s on %s is already up to date; no commit", path, branch)
            return
        self._call(
            f"update {path} on {branch}",
            lambda: repo.update_file(path, message, content, sha=current.sha, branch=branch),
        )

    # --- deployments -------------------------------------------------------------------------
    def record_deployment(self, deployment: Deployment) -> str:
        """A deployment (POST /deployments) and its status (POST .../statuses): two calls on a
        lazy repository. GitHub resolves `ref` itself (a branch, or the commit when one is
        given); only when neither is known is the default branch read, once per process."""
        ref = deployment.sha or deployment.ref or self._default_branch()
        made = self._call(
            f"create a deployment of {deployment.environment}",
            lambda: self._repo().create_deployment(
                ref=ref,
                task="deploy:model",
                auto_merge=False,  # never merge anything to record a model
                required_contexts=[],  # a record of what happened: no check decides it
                payload=deployment.payload(),
                environment=deployment.environment,
                description=deployment.description[:140],
                transient_environment=False,
                production_environment=True,
            ),
            idempotent=False,
        )
        status: dict[str, Any] = {
            "state": deployment.state,
            "description": deployment.description[:140],
            "auto_inactive": deployment.state == "success",
        }
        if deployment.environment_url:
            status["environment_url"] = deployment.environment_url
        if deployment.log_url:
            status["log_url"] = deployment.log_url  # GitHub sets target_url from it too
        # PyGithub's create_status has no `log_url`: the same POST through its requester.
        self._call(
            f"set the status of deployment {made.id}",
            lambda: self._request("POST", f"/deployments/{int(made.id)}/statuses", status),
            idempotent=False,
        )
        return str(made.id)

    def _default_branch(self) -> str:
        if not self._default_branch_name:
            # Read apart: completing the shared lazy Repository would take the URLs of its
            # answer (a proxy's or the canonical host) for every later call.
            self._default_branch_name = self._call(
                "read the default branch", lambda: str(self._request("GET", "")["default_branch"])
            )
        return self._default_branch_name

    # --- comments --------------------------------------------------------------------------
    def list_comments(self, thread: Thread, since: str = "") -> list[Comment]:
        issue = self._repo().get_issue(int(thread.number))
        after = since_datetime(since) if since else None

        def fetch() -> list[Comment]:
            pages = issue.get_comments(since=after) if after else issue.get_comments()
            return [comment_from(payload(comment)) for comment in pages]

        return self._call(f"list comments of #{thread.number}", fetch)

    def post_comment(self, thread: Thread, body: str, *, internal: bool = False) -> Comment:
        """GitHub has no internal comments, and no GitHub event asks for one (`internal`)."""
        issue = self._repo().get_issue(int(thread.number))
        comment = self._call(
            f"comment on #{thread.number}", lambda: issue.create_comment(body), idempotent=False
        )
        return comment_from(payload(comment))

    def comment_url(self, thread: Thread, comment_id: str) -> str:
        return f"{thread.url}#issuecomment-{comment_id}"

    def react(self, thread: Thread, comment_id: str, reaction: str) -> None:
        content = REACTIONS.get(reaction, reaction)
        try:
            # Re-adding an existing reaction answers 200, so a retry cannot duplicate it.
            self._call(
                f"react {content} to comment {comment_id}",
                lambda: self._request(
                    "POST", f"/issues/comments/{int(comment_id)}/reactions", {"content": content}
                ),
            )
        except (ForgeError, ValueError) as exc:
            log.warning("could not react to a comment (best effort): %s", exc)

    # --- people ----------------------------------------------------------------------------
    def access_level(self, username: str, user_id: str = "") -> int:
        """`role_name` (admin/maintain/write/triage/read) when known, else legacy `permission`.

        `read` counts as none: GitHub reports it for anyone on a public repository, so it
        proves no membership (no approver rule admits read anyway).
        """
        path = f"/collaborators/{quote(username, safe='')}/permission"
        try:
            data = self._call(
                f"read the repository role of {username}", lambda: self._request("GET", path)
            )
        except ForgeNotFoundError:
            return 0
        role = str(data.get("role_name") or "").lower()
        level = role_level(role) or role_level(str(data.get("permission") or "none"))
        return 0 if level <= role_level("read") else level

    def team_member(self, team: str, username: str, user_id: str = "") -> bool:
        """An active member of the team `org/team-slug` (GitHub's membership record; a pending
        invitation is none). GitHub answers 404 for a non-member and for a team the token cannot
        see alike: both are no membership."""
        org, _, slug = team.partition("/")
        if not org or not slug or "/" in slug:
            raise ForgeError(f"GitHub: {team!r} is no team (org/team-slug)")
        path = "/orgs/{}/teams/{}/memberships/{}".format(
            *(quote(part, safe="") for part in (org, slug, username))
        )
        try:
            data = self._call(
                f"read the membership of {username} in the team {team}",
                lambda: self._api("GET", path),
            )
        except ForgeNotFoundError:
            return False
        return isinstance(data, dict) and data.get("state") == "active"


def _decoded(data: dict[str, Any]) -> str | None:
    try:
        return base64.b64decode(data.get("content") or "").decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
