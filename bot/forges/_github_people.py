"""GitHub: who a new request notifies, best effort (docs/design.md, "The promotion request").

GitHub refuses a whole call with 422 when one name in it cannot be assigned or asked for a
review (not a collaborator, the pull request's author), so the adapter never lets one bad name
cost the others, nor the request: it retries without the name list, or one name at a time, and
a refused name is left out with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from github import GithubException

from bot.errors import ForgeError
from bot.forges._github_support import payload

log = logging.getLogger(__name__)

Call = Callable[..., Any]  # GitHubForge._call: (operation, fn, idempotent=...) -> fn()
Request = Callable[[str, str, Any], Any]  # GitHubForge._request: (verb, path, body) -> JSON


class People:
    def __init__(self, call: Call, request: Request) -> None:
        self._call = call
        self._request = request

    def open_assigned(
        self, create: Callable[[list[str]], Any], assignees: Sequence[str]
    ) -> dict[str, Any]:
        """The payload of `create(assignees)` (an issue opened with them: no extra call). If
        GitHub refuses an assignee, the issue is opened without and they are added after."""
        users = [name for name in assignees if "/" not in name]  # teams cannot be assigned

        def attempt(names: list[str]) -> Any:
            try:
                return create(names)
            except GithubException as exc:
                if names and _invalid(exc, "assignees"):
                    return None
                raise

        made = self._call("open issue", lambda: attempt(users), idempotent=False)
        if made is not None:
            return _payload(made)
        log.warning("GitHub refused an assignee among %s; adding them after", ", ".join(users))
        data = _payload(self._call("open issue", lambda: attempt([]), idempotent=False))
        return {**data, "assignees": self.assign(data["number"], users)}

    def assign(self, number: int, assignees: Sequence[str]) -> list[Any]:
        """Add assignees; GitHub leaves out, silently, those it cannot assign."""
        users = [name for name in assignees if "/" not in name]
        if not users:
            return []
        try:
            data = self._call(
                f"assign #{number}",
                lambda: self._request("POST", f"/issues/{number}/assignees", {"assignees": users}),
            )
        except ForgeError as exc:  # never a failure of the request
            log.warning("could not assign %s on #%s: %s", ", ".join(users), number, exc)
            return []
        return list(data.get("assignees") or [])

    def request_reviews(self, number: int, reviewers: Sequence[str]) -> dict[str, Any]:
        """`requested_reviewers` and `requested_teams` after asking everyone in one call, or,
        when GitHub refuses that, each name alone."""
        asked = self._ask(number, list(reviewers))
        if asked is None:
            for name in reviewers if len(reviewers) > 1 else ():
                asked = self._ask(number, [name]) or asked
        asked = asked or {}
        return {key: asked.get(key) or [] for key in ("requested_reviewers", "requested_teams")}

    def _ask(self, number: int, names: list[str]) -> dict[str, Any] | None:
        body = {
            "reviewers": [n for n in names if "/" not in n],
            "team_reviewers": [n.split("/", 1)[1] for n in names if "/" in n],  # org/slug
        }

        def post() -> dict[str, Any] | None:
            try:
                return dict(self._request("POST", f"/pulls/{number}/requested_reviewers", body))
            except GithubException as exc:
                if exc.status == 422:
                    return None
                raise

        try:
            answer = self._call(f"request reviews on pull request #{number}", post)
        except ForgeError as exc:  # never a failure of the request
            log.warning("could not request reviews on #%s: %s", number, exc)
            return None
        if answer is None:
            log.warning("GitHub refused a review request for %s on #%s", ", ".join(names), number)
        return answer


def _invalid(exc: GithubException, field: str) -> bool:
    """A 422 naming `field` among the values GitHub refused."""
    data = exc.data if isinstance(exc.data, dict) else {}
    return exc.status == 422 and any(
        isinstance(error, dict) and error.get("field") == field
        for error in data.get("errors") or ()
    )


def _payload(obj: Any) -> dict[str, Any]:
    return dict(payload(obj))
