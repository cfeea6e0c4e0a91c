"""One comment in, at most one answer and one champion change out (docs/design.md, "Which
comments the bot acts on" and "Exactly once").

Binding first: the event must come from this bot's forge and project (`bot.forges.project_binding`),
and the thread must be a request the bot opened for this model; then, under the model lock, the
comment must be the forge's own record and the thread one the registry names
(`bot.commands.confirmation`). A marker a person damaged gets an answer saying so, nothing else. The
moves themselves, with their rules and evidence, are `bot.commands.moves`.

Exactly once: under the model lock the handler first looks for its own answer to the comment in
the thread, then for the comment id among the handled ones the registry keeps (people can
delete answers, not that), then in the registry history. A comment that already caused a
change but lost its answer gets the answer now, without a second change, and only while that
change is the latest. Every write under the lock is preceded by the lease's check; a lost lease
stops the pass, which then starts again under a new lock (docs/design.md, "Locking").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace

from bot.commands.admission import Admitted, Ignored, for_this_bot
from bot.commands.change import ChangeFailed, find_recorded, recover_pending
from bot.commands.confirmation import (
    UnconfirmedComment,
    bind_to_registry,
    confirm,
    named_by_registry,
)
from bot.commands.forged_records import forged_intent, report_forged_in
from bot.commands.grammar import Command, Usage
from bot.commands.handling import Handling
from bot.commands.locking import model_lock
from bot.commands.moves import Moved, announce, arrow, promote, returns_to, rollback
from bot.commands.replies import Replies, shown_command
from bot.errors import (
    BotError,
    ForgeError,
    LockLost,
    NotFoundError,
    RegistryError,
    RegistryUnavailable,
    Unavailable,
)
from bot.registry.model_state import ModelState, handled_value
from bot.registry.records import Approval, Outcome, Status
from bot.registry.tags import APPROVALS_TAG, HANDLED_TAG
from bot.runtime.context import Context
from bot.runtime.request_threads import of_another_bot
from bot.threads.markers import RequestMarker, answered_comment_ids, read_request_marker
from bot.threads.thread import CommentEvent, Thread

log = logging.getLogger(__name__)

# Outcomes that answered the comment: its id is remembered in the registry.
_ANSWERED: frozenset[Status] = frozenset(
    (
        "usage",
        "help",
        "refused",
        "approval",
        "changed",
        "recovered",
        "error",
        "damaged",
        "unrecorded",
    )
)


def handle_comment(
    ctx: Context,
    event: CommentEvent,
    thread: Thread | None = None,
    *,
    wait_for_forge: bool = False,
    admitted: Admitted | None = None,
) -> Outcome:
    """Handle one comment; `thread` may be passed by a caller that already fetched it, and
    `admitted` by one that already admitted the comment (`bot.commands.admission`).

    A comment the thread does not hold as delivered is ignored, or with `wait_for_forge` (the
    webhook server, whose worker retries) raises UnconfirmedComment.
    """
    extra = {
        "comment_id": event.comment_id,
        "thread_number": event.thread_number,
        "model": ctx.model,
    }
    parsed = for_this_bot(ctx, event, admitted)
    if isinstance(parsed, Ignored):
        return Outcome("ignored", parsed.reason)
    if thread is None:
        thread = ctx.forge.get_thread(event.thread_kind, event.thread_number)
    by_bot = ctx.forge.is_bot(thread.author)
    marker = read_request_marker(thread.body)
    if marker is not None and not by_bot:
        # A person's own issue quoting a request marker must not act as a request. An unknown
        # author is not the bot either.
        log.warning("request marker in a thread not opened by the bot", extra=extra)
        return Outcome("ignored", "not a request opened by the bot")
    if marker is not None and not _ours(ctx, marker, thread):
        log.info("command on a request of bot %s: not ours", marker.bot, extra=extra)
        return Outcome("ignored", "a request of another bot")
    if marker is None or (marker.model and marker.model != ctx.model):
        named = named_by_registry(ctx, thread, marker, extra) if by_bot else None
        if named is None:
            if marker is None:
                return Outcome("ignored", "not a promotion request")
            log.info("command on a request of model %s: not ours", marker.model, extra=extra)
            return Outcome("ignored", f"a request of another model ({marker.model})")
        marker = named
    lost: LockLost | None = None
    for attempt in (1, 2):
        try:
            return _under_lock(ctx, event, thread, marker, parsed, extra, wait_for_forge)
        except LockLost as exc:
            if attempt == 2:
                raise
            # Everything is read again under the new lock: what the lost holder left (an
            # intent, a record, an answer) is found as any later pass finds it.
            log.warning("%s; handling the comment again under a new lock", exc, extra=extra)
            lost = exc
        except Unavailable:
            # The first pass may have moved the alias before its lease was lost: this is no
            # "nothing was read or written", which `serve` would answer as "nothing changed".
            if lost is not None:
                raise lost from None
            raise
    raise AssertionError("unreachable")


def _ours(ctx: Context, marker: RequestMarker, thread: Thread) -> bool:
    """A marker naming another bot (another registry on this project, or this registry under
    another URL), or none (written before ids), is ours only when our registry names the thread
    (docs/design.md, "Markers"), by a binding the bot sealed.

    A marker written before ids whose version our registry binds to the thread without a seal
    (written before bindings were signed) is ours too, to be answered that `request` must bind
    it again (`bind_to_registry`); nothing is decided from that binding.
    """
    if marker.bot and not of_another_bot(ctx, marker.bot):
        return True
    try:
        if ctx.registry.versions_requested_in(ctx.model, thread.url):
            return True
        if marker.bot or marker.problem or marker.model != ctx.model:
            return False
        return ctx.registry.version(ctx.model, marker.version).requested_in == thread.url
    except NotFoundError:
        return False
    except RegistryError as exc:  # the first registry reads: nothing written yet
        raise RegistryUnavailable(str(exc)) from None


def _under_lock(
    ctx: Context,
    event: CommentEvent,
    thread: Thread,
    marker: RequestMarker,
    parsed: Command | Usage,
    extra: dict[str, str],
    wait_for_forge: bool,
) -> Outcome:
    with model_lock(ctx) as lease:
        comments = ctx.forge.list_comments(thread)
        bot_bodies = [c.body for c in comments if ctx.forge.is_bot(c.author)]
        if event.comment_id in answered_comment_ids(bot_bodies):
            return Outcome("duplicate", "already answered")
        problem, confirmed = confirm(event, comments, thread)
        if confirmed is None:
            if wait_for_forge:
                raise UnconfirmedComment(problem)
            log.warning("ignored: %s", problem, extra=extra)
            return Outcome("ignored", problem)
        # The forge's flag decides too: a delivery must not turn an internal note public.
        event = replace(event, internal=event.internal or confirmed.internal)
        replies = Replies(ctx, thread, event, guard=lease.check)
        state, finished_here = _read_state(ctx, event, thread, lease.check)
        run = Handling(ctx, event, thread, marker, replies, lease, state)
        report_forged_in(run, [forged_intent(state)])  # an intent the bot did not sign
        outcome = _handle_locked(run, parsed, extra, finished_here)
        if outcome.status in _ANSWERED:
            _remember_handled(run, extra)
        return outcome


def _remember_handled(run: Handling, extra: dict[str, str]) -> None:
    """Record the comment as handled where people cannot delete it (after its answer: a pass
    that dies in between leaves the answer, which says the same)."""
    ctx, comment_id = run.ctx, run.event.comment_id
    try:
        run.lease.check()  # another holder may be writing the tag: skip rather than race it
        value = handled_value(run.state.handled, comment_id, ctx.keys)
        ctx.registry.set_model_tag(ctx.model, HANDLED_TAG, value)
    except (RegistryError, LockLost) as exc:  # the answer and its marker stand
        log.warning("could not record comment %s as handled: %s", comment_id, exc, extra=extra)


def _read_state(
    ctx: Context, event: CommentEvent, thread: Thread, guard: Callable[[], None]
) -> tuple[ModelState, bool]:
    """One read of the model under the lock, for every check after it (aliases, history,
    intent), once an interrupted change is settled."""
    try:
        state = ctx.registry.state(ctx.model)
    except RegistryError as exc:
        # Nothing read, nothing written by this pass; whether an earlier pass left a change
        # cannot be known, so only `serve`, after its last attempt, answers this (with care).
        raise RegistryUnavailable(str(exc)) from None
    alias = ctx.params.promotion.champion_alias
    settled = recover_pending(ctx.registry, ctx.model, alias, state, guard, ctx.ledger)
    # This comment's own change, left in flight and finished just now: the pass that began it
    # never got to its answer, so never to the hook either (it comes after the answer).
    finished_here = state.pending is not None and state.pending.caused_by(
        event.comment_id, thread.url
    )
    return settled, finished_here


def _handle_locked(
    run: Handling, parsed: Command | Usage, extra: dict[str, str], finished_here: bool
) -> Outcome:
    ctx, event = run.ctx, run.event
    champion_alias = ctx.params.promotion.champion_alias
    if event.comment_id in run.state.handled:
        return Outcome("duplicate", "handled before (the registry keeps its id)")
    recorded = find_recorded(run.state, ctx.model, event.comment_id, run.thread.url)
    if recorded is not None:
        latest = run.state.history[-1]
        champion = run.state.aliases.get(champion_alias)
        if not latest.caused_by(event.comment_id, run.thread.url) or champion != latest.to_version:
            # Its answer never went out (a deleted one left the id among the handled ones, read
            # above): say what it did and that it was overtaken, never "is now champion", and
            # leave the follow-ups to the change that is current.
            log.warning("answering a change that was overtaken before its answer", extra=extra)
            run.replies.change_superseded(recorded, champion)
            return Outcome("recovered", f"v{recorded.to_version}, overtaken since", recorded)
        log.warning("answering a change whose answer was lost", extra=extra)
        # The hook may have been called before the answer was lost: never call it again,
        # unless the change was still in flight until now. A merge stays pinned to the commit
        # `request` recorded.
        head = ""  # no recorded head (or no version): the merge is refused, and said so
        if recorded.action == "promote" and run.thread.kind == "merge_request":
            with contextlib.suppress(NotFoundError):
                head = ctx.registry.version(ctx.model, recorded.to_version).request_head
        back = returns_to(ctx, run.state, recorded.from_version)
        announce(
            run,
            Moved(
                recorded,
                (recorded.actor,),
                merge_sha=head,
                rollback_to=back,
                call_hook=finished_here,
            ),
        )
        return Outcome("recovered", f"v{recorded.to_version}", recorded)
    if run.marker.problem:
        # A person edited (or cut) the marker: one request the bot cannot read, answered so
        # that someone repairs it; every other request goes on working.
        log.warning("damaged request marker: %s", run.marker.problem, extra=extra)
        run.replies.damaged_request(run.marker.problem)
        return Outcome("damaged", run.marker.problem)
    try:
        unproven, version = bind_to_registry(run, promote=_ispromote(parsed), extra=extra)
    except LockLost:
        raise
    except BotError as exc:  # the registry failed: nothing was read, nothing changed
        if isinstance(parsed, Usage):
            raise
        return _error(run, parsed, exc, extra)
    if unproven is not None:
        return unproven
    run = replace(run, version=version)
    if isinstance(parsed, Usage):
        run.replies.usage(parsed)
        return Outcome("usage", parsed.problem)
    if parsed.name == "help":
        run.replies.help(run.marker.version, _approvals_so_far(run), run.state.aliases)
        return Outcome("help")
    from bot.commands.policy import actor_refusal

    # The bot's own comments were ignored above, so the "bot" refusal cannot come back here.
    refusal = actor_refusal(ctx, event.author, event.author_id, run.roles)
    if refusal is not None:
        run.replies.refused(parsed, refusal)
        return Outcome("refused", refusal.code)
    try:
        moved = promote(run, parsed) if parsed.name == "promote" else rollback(run, parsed)
    except LockLost:
        raise  # handle_comment starts again under a new lock; nothing more was written
    except ChangeFailed as exc:
        if exc.alias_touched:
            raise  # the next pass finishes the record and answers (see change.recover_pending)
        return _error(run, parsed, exc, extra)
    except BotError as exc:
        if run.replies.attempted:
            # An answer may already be in the thread: an "unchanged, try again" answer would
            # contradict it. The next pass posts the real answer.
            raise
        return _error(run, parsed, exc, extra)
    if isinstance(moved, Outcome):
        return moved
    # The change stands: a failure from here on is never answered "unchanged"; it goes up, and
    # the next pass finds the change recorded and posts its answer.
    announce(run, moved)
    return Outcome("changed", arrow(moved.change), moved.change)


def _approvals_so_far(run: Handling) -> int:
    """How many approvals the registry records for the request's version (0 when one is
    enough: nobody needs the number then)."""
    ctx = run.ctx
    if ctx.params.promotion.approvers.required_approvals < 2:
        return 0
    try:
        version = run.version or ctx.registry.version(ctx.model, run.marker.version)
    except NotFoundError:  # a version deleted since: /help still answers
        return 0
    raw = version.tags.get(APPROVALS_TAG)
    return len(Approval.parse_signed(raw, ctx.keys, ctx.model, version.version)[0])


def _error(run: Handling, command: Command, exc: BotError, extra: dict[str, str]) -> Outcome:
    """Answer that nothing changed. The thread is told what failed, never where it is or what
    a server said (hosts, paths, messages): the log keeps that, redacted."""
    log.warning("%s failed, nothing changed: %s", shown_command(command), exc, extra=extra)
    if isinstance(exc, RegistryError):
        what = "the model registry failed"
    elif isinstance(exc, ForgeError):
        what = f"the call to {run.ctx.forge.platform} failed"
    else:
        what = f"promotion-bot failed ({type(exc).__name__})"
    run.replies.error(command, f"{what}; the bot's log has the details.")
    return Outcome("error", str(exc))


def _ispromote(parsed: Command | Usage) -> bool:
    return isinstance(parsed, Command) and parsed.name == "promote"
