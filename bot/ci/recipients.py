"""Who a new request notifies (docs/design.md, "The promotion request").

A request nobody is told about waits until someone happens to look. Both forges notify on
assignment and on a review request, so a new request (a first one, or one that supersedes an
older candidate's) is assigned to `promotion.request.assignees` and, as a merge request, asks
`promotion.request.reviewers` for a review; both default to the users of `approvers.users`.
The requester (who triggered the training, who may not approve it) and the bot are never among
them. Someone the forge cannot assign is left out with a warning: never a failure of `request`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.config.params import Params
from bot.threads.thread import Recipients, Thread, ThreadKind

log = logging.getLogger(__name__)


def recipients(params: Params, kind: ThreadKind, requester: str, bot: str) -> Recipients:
    request = params.promotion.request
    approvers = params.promotion.approvers.users
    assignees = approvers if request.assignees is None else request.assignees
    reviewers = approvers if request.reviewers is None else request.reviewers
    never = {name.lower() for name in (requester, bot) if name}
    return Recipients(
        assignees=_distinct(assignees, never),
        reviewers=_distinct(reviewers, never) if kind == "merge_request" else (),
    )


def _distinct(names: Iterable[str], never: set[str]) -> tuple[str, ...]:
    """Usernames compare without letter case on both forges."""
    kept: dict[str, str] = {}
    for name in names:
        if name.lower() not in never:
            kept.setdefault(name.lower(), name)
    return tuple(kept.values())


def describe(people: Recipients) -> str:
    """For the list of planned calls: " assigned to a, b, review requested from c"."""
    parts = []
    if people.assignees:
        parts.append(f"assigned to {', '.join(people.assignees)}")
    if people.reviewers:
        parts.append(f"review requested from {', '.join(people.reviewers)}")
    return (" " + ", ".join(parts)) if parts else ""


def report_unreached(people: Recipients, thread: Thread) -> list[str]:
    """Warn about, and return, the people the forge did not record on the new thread."""
    assigned = {name.lower() for name in thread.assignees}
    asked = {name.lower() for name in thread.reviewers}
    missing = [f"{name} (assignee)" for name in people.assignees if name.lower() not in assigned]
    missing += [f"{name} (reviewer)" for name in people.reviewers if name.lower() not in asked]
    if missing:
        log.warning(
            "#%s was opened, but the forge did not record %s: not a member of the project, "
            "an unknown user, or more people than the plan allows",
            thread.number,
            ", ".join(missing),
        )
    return missing
