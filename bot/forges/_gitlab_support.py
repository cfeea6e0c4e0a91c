"""GitLab client construction and payload → shared model conversion."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import gitlab
import requests
from gitlab.exceptions import GitlabError

from bot.errors import ForgeError
from bot.forges._retry import DEFAULT_TIMEOUT, RetryingSession, RetryPolicy
from bot.threads.thread import Comment, Thread, ThreadKind, ThreadState
from bot.timestamps import parse_iso

log = logging.getLogger(__name__)

STATES: dict[str, ThreadState] = {
    "opened": "open",
    "locked": "open",  # transient, while a merge is in progress
    "closed": "closed",
    "merged": "merged",
}
# The bot's reaction names → GitLab emoji names.
EMOJI = {"+1": "thumbsup", "-1": "thumbsdown"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
PER_PAGE = 100


class _Gitlab(gitlab.Gitlab):
    """python-gitlab without its own 429 loop: it would sleep Retry-After uncapped, 10 times."""

    def http_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        return super().http_request(*args, **kwargs)


def build_client(
    url: str, token: str, retry: RetryPolicy | None = None, timeout: float = DEFAULT_TIMEOUT
) -> gitlab.Gitlab:
    """A python-gitlab client whose session does our bounded retries."""
    return _Gitlab(
        url,
        private_token=token,
        timeout=timeout,
        per_page=PER_PAGE,
        retry_transient_errors=False,
        session=RetryingSession(retry, label="GitLab"),
    )


def error_message(exc: GitlabError) -> str:
    message: Any = exc.error_message
    if isinstance(message, dict):
        return "; ".join(f"{key}: {value}" for key, value in message.items())
    return str(message)


def thread_ref(kind: ThreadKind, number: str) -> str:
    return f"#{number}" if kind == "issue" else f"!{number}"


def when(value: Any) -> datetime:
    """Parse an ISO 8601 timestamp (naive means UTC); unparsable sorts oldest."""
    return parse_iso(value) or _EPOCH


def thread_from(kind: ThreadKind, data: dict[str, Any]) -> Thread:
    labels = data.get("labels") or []
    return Thread(
        kind=kind,
        number=str(data["iid"]),
        title=data.get("title") or "",
        body=data.get("description") or "",
        url=data.get("web_url") or "",
        state=STATES.get(str(data.get("state")), "open"),
        author=(data.get("author") or {}).get("username", ""),
        labels=tuple(label["name"] if isinstance(label, dict) else str(label) for label in labels),
        updated_at=data.get("updated_at") or "",
        head_sha=str(data.get("sha") or (data.get("diff_refs") or {}).get("head_sha") or ""),
        assignees=usernames(data.get("assignees")),
        reviewers=usernames(data.get("reviewers")),
    )


def usernames(users: Any) -> tuple[str, ...]:
    """The usernames of a list of GitLab user objects (`assignees`, `reviewers`)."""
    return tuple(
        str(user["username"])
        for user in users or ()
        if isinstance(user, dict) and user.get("username")
    )


def comment_from(data: dict[str, Any]) -> Comment:
    author = data.get("author") or {}
    return Comment(
        id=str(data["id"]),
        author=author.get("username", ""),
        body=data.get("body") or "",
        created_at=data.get("created_at") or "",
        author_id=str(author.get("id", "")),
        system=bool(data.get("system")),
        # `confidential` is the name GitLab gave the flag before 15.0.
        internal=data.get("internal") is True or data.get("confidential") is True,
        edited=_edited(data),
    )


EDIT_SLACK = timedelta(seconds=1)  # a new note's updated_at is a few ms after its created_at


def _edited(data: dict[str, Any]) -> bool:
    """Changed after it was posted: `updated_at` moved past `created_at`, and not because its
    discussion was resolved (which moves `updated_at` to `resolved_at`).

    Maintainers may edit anyone's note: an edited note is no command, or one person could put
    `/promote` into a colleague's chatter. What cannot be told apart (no timestamps, an
    unparsable one) counts as edited: such a note is skipped, never taken.
    """
    created, updated = parse_iso(data.get("created_at")), parse_iso(data.get("updated_at"))
    if created is None or updated is None:
        return bool(data.get("updated_at")) and data.get("updated_at") != data.get("created_at")
    if updated - created <= EDIT_SLACK:
        return False
    resolved = parse_iso(data.get("resolved_at"))
    return resolved is None or abs(updated - resolved) > EDIT_SLACK


def membership_counts(member: Any) -> bool:
    """A member object of `members/all` (project or group) grants its access level only while
    the account is active and the membership has not expired: GitLab keeps blocked and deactivated
    users, and expired memberships until its daily cleanup, in these listings (docs/design.md,
    "Rules for a champion change"). An invitation not yet accepted is no membership."""
    if not isinstance(member, dict):
        return False
    if member.get("state", "active") != "active":  # blocked, deactivated, banned, ...
        return False
    if member.get("membership_state", "active") != "active":  # awaiting, invited
        return False
    expires = member.get("expires_at")
    if expires:
        ends = parse_iso(expires)
        # An unreadable date is no proof of access; GitLab expires a membership on its date.
        if ends is None or ends.date() <= datetime.now(timezone.utc).date():
            return False
    return True


class UserIds:
    """Usernames -> GitLab user ids for assignees and reviewers: one lookup per name and run.

    GitLab itself drops ids that cannot be assigned (no access to the project, or more
    assignees than the plan allows), so membership is not asked here; an unknown name or a
    failed lookup only leaves that person out.
    """

    def __init__(self, client: gitlab.Gitlab, call: Callable[[str, Callable[[], Any]], Any]):
        self._gl = client
        self._call = call
        self._known: dict[str, int | None] = {}

    def of(self, usernames: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for name in usernames:
            if name.lower() not in self._known:
                self._known[name.lower()] = self._lookup(name)
            found = self._known[name.lower()]
            if found is not None and found not in ids:
                ids.append(found)
        return ids

    def _lookup(self, name: str) -> int | None:
        if "/" in name:  # a GitHub team: GitLab has no team reviewers
            return None
        try:
            users = self._call(
                f"look up user {name}", lambda: self._gl.users.list(username=name, get_all=False)
            )
        except ForgeError as exc:
            log.warning("cannot notify %s: %s", name, exc)
            return None
        return int(users[0].attributes["id"]) if users else None
