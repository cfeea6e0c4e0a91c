"""The answer a command gets when the registry or the lock service was unreachable before
anything was read for it (docs/design.md, "When a service is down"): `serve` after its last
attempt; `handle` (GitHub Actions: one run per delivery, never redelivered) and `poll` at once
(`answer_now`), since a failed Actions job is seen by whoever reads the workflow runs, not by the
approver, and a scheduled `poll` would retry silently every quarter of an hour. Those jobs still
fail, so the outage shows there too.

The answer carries the answer marker, so neither `poll` nor a redelivery takes the command up
again: it says so and asks for the command to be repeated. It is written under the model lock
after a fresh look for an answer, so a pass that got through meanwhile (`poll`, once the registry
was back) is never contradicted; when the lock service itself is down no pass can act at all, so
the answer is then written without the lock. Before it says "nothing was changed", the registry
is read: a change this comment began (its intent, or its entry in the history) means a pass got
as far as moving the alias, whatever failed after; that comment is left unanswered, for the next
pass to finish its record and answer it (docs/design.md, "When a service is down").
"""

from __future__ import annotations

import logging

from bot.commands.locking import model_lock
from bot.commands.replies import Replies
from bot.errors import LockUnavailable, RegistryError, Unavailable
from bot.ledger.store import Guard
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.threads.markers import answered_comment_ids
from bot.threads.thread import CommentEvent, Thread

log = logging.getLogger(__name__)

TOLD = " could not be reached"  # the end of the outcome when the answer was posted


def told(outcome: Outcome) -> bool:
    """The approver was answered (not: answered meanwhile, nor a change begun to finish)."""
    return outcome.status == "error" and outcome.detail.endswith(TOLD)


def answer_now(ctx: Context, event: CommentEvent, problem: Unavailable) -> Outcome:
    """`handle`'s and `poll`'s one attempt found `problem`: the approver is told, once."""
    from bot.commands.routing import context_of_thread

    return answer_unavailable(
        context_of_thread(ctx, event), event, problem, attempts=1, seconds=0.0
    )


def answer_unavailable(
    ctx: Context, event: CommentEvent, problem: Unavailable, *, attempts: int, seconds: float
) -> Outcome:
    """Tell the approver that `event`'s command was not carried out, unless it was answered."""
    thread = ctx.forge.get_thread(event.thread_kind, event.thread_number)
    try:
        with model_lock(ctx) as lease:
            return _answer_once(ctx, event, thread, problem, lease.check, attempts, seconds)
    except LockUnavailable:
        return _answer_once(ctx, event, thread, problem, lambda: None, attempts, seconds)


def _answer_once(
    ctx: Context,
    event: CommentEvent,
    thread: Thread,
    problem: Unavailable,
    guard: Guard,
    attempts: int,
    seconds: float,
) -> Outcome:
    bodies = [c.body for c in ctx.forge.list_comments(thread) if ctx.forge.is_bot(c.author)]
    if event.comment_id in answered_comment_ids(bodies):
        return Outcome("duplicate", "answered meanwhile")
    if _change_begun(ctx, event, thread):
        log.warning(
            "comment %s: its change was begun before %s went away; the next pass finishes it",
            event.comment_id,
            problem.service,
            extra={"comment_id": event.comment_id, "model": ctx.model},
        )
        return Outcome("error", "interrupted after its change began; the next pass answers it")
    log.warning(
        "comment %s: %s could not be reached after %d attempts; answering so",
        event.comment_id,
        problem.service,
        attempts,
        extra={"comment_id": event.comment_id, "model": ctx.model},
    )
    Replies(ctx, thread, event, guard).unavailable(
        problem.service,
        lock=isinstance(problem, LockUnavailable),
        attempts=attempts,
        seconds=seconds,
    )
    return Outcome("error", f"{problem.service}{TOLD}")


def _change_begun(ctx: Context, event: CommentEvent, thread: Thread) -> bool:
    """The registry holds an intent or an entry of this comment's change. An unreadable
    registry says nothing: then only the passes themselves failed on it, before any write."""
    try:
        state = ctx.registry.state(ctx.model)
    except RegistryError:
        return False
    pending = state.pending
    if pending is not None and pending.caused_by(event.comment_id, thread.url):
        return True
    return any(entry.caused_by(event.comment_id, thread.url) for entry in state.history)
