"""GitLab client construction and payload → shared model conversion."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import gitlab
import requests
from gitlab.exceptions import GitlabError

from bot.forges._retry import DEFAULT_TIMEOUT, RetryingSession, RetryPolicy
from bot.threads import Comment, Thread, ThreadKind, ThreadState
from bot.timestamps import parse_iso

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
