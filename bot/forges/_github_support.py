"""GitHub client construction, bounded retry, and payload → shared model conversion."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException

from bot.forges._retry import DEFAULT_TIMEOUT, RetryPolicy, http_error, network_error
from bot.threads.thread import Comment, Thread, ThreadState
from bot.timestamps import parse_iso

log = logging.getLogger(__name__)
T = TypeVar("T")
PER_PAGE = 100

# The bot's reaction names → GitHub reaction contents (GitLab-style names accepted too).
REACTIONS = {"thumbsup": "+1", "thumbsdown": "-1", "tada": "hooray"}
_DECISIVE = {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}


def build_client(api_url: str, token: str | Auth.Auth, timeout: float = DEFAULT_TIMEOUT) -> Github:
    """A PyGithub client without its own retries or throttling (we retry, bounded); `token`
    is a personal or Actions token, or a GitHub App installation's auth."""
    return Github(
        base_url=api_url.rstrip("/"),
        auth=Auth.Token(token) if isinstance(token, str) else token,
        timeout=int(timeout),
        per_page=PER_PAGE,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=True,
    )


def call(
    policy: RetryPolicy,
    operation: str,
    fn: Callable[[], T],
    *,
    idempotent: bool = True,
    secrets: Iterable[str] = (),
    hints: Mapping[int, str] | None = None,
) -> T:
    """Run one PyGithub step, retrying rate limits (and 5xx when `idempotent`) per `policy`."""
    attempt = 1
    while True:
        try:
            return fn()
        except GithubException as exc:
            message = error_message(exc)
            wait = policy.delay(attempt, exc.status, exc.headers, message, idempotent=idempotent)
            if wait is None:
                raise http_error(
                    "GitHub",
                    operation,
                    exc.status,
                    message,
                    headers=exc.headers,
                    secrets=secrets,
                    hints=hints,
                ) from None
            reason = f"HTTP {exc.status}"
        except requests.RequestException as exc:
            wait = policy.network_delay(attempt, idempotent=idempotent)
            if wait is None:
                raise network_error("GitHub", operation, exc, secrets) from None
            reason = type(exc).__name__
        log.warning(
            "GitHub: %s got %s; retry %d of %d in %.1f s",
            operation,
            reason,
            attempt,
            policy.attempts - 1,
            wait,
        )
        policy.pause(wait)
        attempt += 1


def payload(obj: Any) -> dict[str, Any]:
    """The JSON a PyGithub object was built from, without completing it.

    `raw_data` would first GET the object when it came from a list (PyGithub marks list items
    incomplete), costing one request per item for data the list already holds.
    """
    data = getattr(obj, "_rawData", None)
    return data if isinstance(data, dict) else {}


def thread_from(data: dict[str, Any]) -> Thread:
    """An issue or PR, from the issues endpoint (`pull_request` key) or the pulls endpoint."""
    is_pull = "pull_request" in data or "head" in data
    return Thread(
        kind="merge_request" if is_pull else "issue",
        number=str(data["number"]),
        title=data.get("title") or "",
        body=data.get("body") or "",
        url=data.get("html_url") or "",
        state=_state(data),
        author=(data.get("user") or {}).get("login", ""),
        labels=tuple(_label_names(data.get("labels") or [])),
        updated_at=data.get("updated_at") or "",
        # The pulls endpoint has the head; the issues endpoint (listings) does not.
        head_sha=str((data.get("head") or {}).get("sha") or ""),
        assignees=_logins(data.get("assignees")),
        reviewers=_logins(data.get("requested_reviewers")) + _teams(data),
    )


def _logins(users: Any) -> tuple[str, ...]:
    return tuple(str(u["login"]) for u in users or () if isinstance(u, dict) and u.get("login"))


def _teams(data: dict[str, Any]) -> tuple[str, ...]:
    """Requested teams as `org/slug`, the way the configuration names them."""
    base = data.get("base") or {}
    owner = base.get("user") or ((base.get("repo") or {}).get("owner")) or {}  # the repo's owner
    org = owner.get("login", "")
    teams = data.get("requested_teams") or ()
    return tuple(f"{org}/{t['slug']}" for t in teams if isinstance(t, dict) and t.get("slug"))


def _state(data: dict[str, Any]) -> ThreadState:
    if data.get("state") == "open":
        return "open"
    pull = data.get("pull_request") or {}
    if data.get("merged") or data.get("merged_at") or pull.get("merged_at"):
        return "merged"
    return "closed"


def _label_names(labels: Iterable[Any]) -> list[str]:
    return [label["name"] if isinstance(label, dict) else str(label) for label in labels]


def comment_from(data: dict[str, Any]) -> Comment:
    user = data.get("user") or {}  # null for deleted ("ghost") accounts
    return Comment(
        id=str(data["id"]),
        author=user.get("login", ""),
        body=data.get("body") or "",
        created_at=data.get("created_at") or "",
        author_id=str(user.get("id", "")),
        # GitHub moves a comment's updated_at only when its body is edited.
        edited=bool(data.get("updated_at") and data.get("updated_at") != data.get("created_at")),
    )


def review_verdict(reviews: Iterable[dict[str, Any]]) -> bool:
    """Approved: someone's latest decisive review approves and nobody's requests changes.

    Reviews come oldest first. A plain comment review does not change a reviewer's verdict;
    a dismissal withdraws it. This is how GitHub itself counts reviews for branch protection.
    """
    latest: dict[str, str] = {}
    for review in reviews:
        state = str(review.get("state") or "").upper()
        user = (review.get("user") or {}).get("login", "")
        if state in _DECISIVE and user:
            latest[user] = state
    verdicts = set(latest.values())
    return "APPROVED" in verdicts and "CHANGES_REQUESTED" not in verdicts


def since_datetime(since: str) -> datetime | None:
    """ISO 8601 (Z, an offset, or naive meaning UTC) → UTC datetime; None if unreadable.

    PyGithub formats it with a literal "Z", so it must already be in UTC.
    """
    parsed = parse_iso(since)
    if parsed is None:
        log.warning("ignoring unreadable 'since' timestamp %r", since)
        return None
    return parsed.astimezone(timezone.utc)


def error_message(exc: GithubException) -> str:
    """GitHub's message plus any validation details (422: "A pull request already exists")."""
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "")
    details = []
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            details.append(
                str(
                    error.get("message")
                    or " ".join(
                        str(error.get(key, "")) for key in ("resource", "field", "code")
                    ).strip()
                )
            )
        else:
            details.append(str(error))
    return "; ".join([message, *[d for d in details if d]]) if details else message
