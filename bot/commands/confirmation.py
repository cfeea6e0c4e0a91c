"""Is the comment what the forge keeps, and is the thread a request the registry names?

The comment itself is the forge's record, not the delivery's: the thread's comments are listed
anyway, and the event's comment must be there, by the same author id, with the same text, not
edited. What a thread is about comes from the registry, not the description: `/promote` acts only
in the thread the version's `promotion.requested_in` tag names; other commands also accept a
thread the registry history shows a change was made from (docs/design.md, "Which comments the
bot acts on").
"""

from __future__ import annotations

import logging

from bot.commands.handling import Handling
from bot.errors import BotError, NotFoundError
from bot.registry.records import Outcome
from bot.registry.tags import REQUESTED_IN_TAG
from bot.registry.versions import VersionInfo
from bot.runtime.context import Context
from bot.threads.markers import RequestMarker
from bot.threads.thread import Comment, CommentEvent, Thread, same_person

log = logging.getLogger(__name__)


class UnconfirmedComment(BotError):
    """The thread does not hold the delivered comment as delivered (yet): `serve` retries it, in
    case the forge's API lags behind its webhook, and gives up after the retries."""


def confirm(
    event: CommentEvent, comments: list[Comment], thread: Thread
) -> tuple[str, Comment | None]:
    """The thread's own record of the event's comment, or why it does not vouch for it."""
    found = next((c for c in comments if c.id == event.comment_id), None)
    where = f"#{thread.number}"
    if found is None:
        return f"no such comment {event.comment_id} in {where} (deleted, or never written)", None
    if found.edited:
        return f"comment {event.comment_id} in {where} was edited after it was posted", None
    if not same_person(event.author, event.author_id, found.author, found.author_id):
        return f"comment {event.comment_id} in {where} is another person's", None
    if _text(event.body) != _text(found.body):
        return f"comment {event.comment_id} in {where} says something else", None
    return "", found


def _text(body: str) -> str:
    return "\n".join(line.rstrip() for line in body.replace("\r\n", "\n").strip().splitlines())


def named_by_registry(
    ctx: Context, thread: Thread, marker: RequestMarker | None, extra: dict[str, str]
) -> RequestMarker | None:
    """A thread of the bot whose marker was removed, or edited to name another model, is still
    a request when the registry names it: answered as damaged (one search, only here)."""
    if not ctx.registry.versions_requested_in(ctx.model, thread.url):
        return None
    problem = f"it names another model ({marker.model})" if marker else "it was removed"
    log.warning("the registry names this thread, but its marker: %s", problem, extra=extra)
    return RequestMarker(model=ctx.model, version=0, problem=problem)


def bind_to_registry(
    run: Handling, *, promote: bool, extra: dict[str, str]
) -> tuple[Outcome | None, VersionInfo | None]:
    """(None, the request's version if read) when the registry vouches for the thread as this
    model's request, else (the outcome, ...).

    `/promote` needs the marker's version to name this thread in its `promotion.requested_in`
    tag (a marker edited to another version names a thread the registry does not), sealed by
    the bot (a binding written by hand is refused: `request` binds the thread again). The
    other commands only need the thread to be a request of this model: a change recorded from
    it in the history (no extra read) proves that too.
    """
    ctx, thread = run.ctx, run.thread
    if not promote and thread.url and any(e.request_url == thread.url for e in run.state.history):
        return None, None
    number = run.marker.version
    try:
        version = ctx.registry.version(ctx.model, number)
    except NotFoundError:
        log.warning("the request's v%s is not in the registry", number, extra=extra)
        return Outcome("ignored", f"v{number} of {ctx.model} is not in the registry"), None
    tagged = version.requested_in
    if tagged == thread.url:
        problem = version.request_binding_problem(ctx.keys)
        if not problem:
            return None, version
        log.warning("v%s's binding to this thread is no evidence: %s", number, problem, extra=extra)
        run.replies.unsigned_request(number, problem)
        return Outcome("refused", "request_unsigned"), version
    if tagged:
        log.warning("not the request of v%s: the registry names %s", number, tagged, extra=extra)
        why = f"the registry names another thread as v{number}'s request"
        return Outcome("ignored", why), version
    # Requested before the registry kept the thread: `request` records it when run again.
    log.warning("v%s has no %s tag", number, REQUESTED_IN_TAG, extra=extra)
    run.replies.unrecorded_request(number)
    return Outcome("unrecorded", f"v{number} has no recorded request"), version
