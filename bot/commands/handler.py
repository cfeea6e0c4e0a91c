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
from dataclasses import replace

from bot.commands.change import ChangeFailed, find_recorded, recover_pending
from bot.commands.confirmation import (
    UnconfirmedComment,
    bind_to_registry,
    confirm,
    named_by_registry,
)
from bot.commands.grammar import Command, Usage, may_be_command, parse_comment
from bot.commands.handling import Handling
from bot.commands.locking import model_lock
from bot.commands.moves import promote, returns_to, rollback
from bot.commands.replies import Replies, shown_command
from bot.errors import (
    BotError,
    ForgeError,
    LockLost,
    NotFoundError,
    RegistryError,
    RegistryUnavailable,
)
from bot.forges.project_binding import Binding
from bot.registry.model_state import handled_value
from bot.registry.records import Approval, Outcome, Status
from bot.registry.tags import APPROVALS_TAG, HANDLED_TAG
from bot.runtime.context import Context
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
    ctx: Context, event: CommentEvent, thread: Thread | None = None, *, wait_for_forge: bool = False
) -> Outcome:
    """Handle one comment; `thread` may be passed by a caller that already fetched it.

    A comment the thread does not hold as delivered is ignored, or with `wait_for_forge` (the
    webhook server, whose worker retries) raises UnconfirmedComment.
    """
    extra = {
        "comment_id": event.comment_id,
        "thread_number": event.thread_number,
        "model": ctx.model,
    }
    if event.action != "created":
        return Outcome("ignored", "edited comments are not commands")
    if not may_be_command(event.body):  # chatter: no forge client is even built for it
        return Outcome("ignored", "not a command")
    unbound = Binding.of(ctx.forge).refusal(event)
    if unbound is not None:
        log.warning("ignored: %s", unbound, extra=extra)
        return Outcome("ignored", unbound)
    bot = ctx.forge.bot_username()
    if event.author.lower() == bot.lower():
        return Outcome("ignored", "the bot's own comment")
    parsed = parse_comment(event.body, bot)
    if parsed is None:
        return Outcome("ignored", "not a command")
    if thread is None:
        thread = ctx.forge.get_thread(event.thread_kind, event.thread_number)
    by_bot = thread.author.lower() == bot.lower()
    marker = read_request_marker(thread.body)
    if marker is not None and not by_bot:
        # A person's own issue quoting a request marker must not act as a request. An unknown
        # author is not the bot either.
        log.warning("request marker in a thread not opened by the bot", extra=extra)
        return Outcome("ignored", "not a request opened by the bot")
    if marker is None or (marker.model and marker.model != ctx.model):
        named = named_by_registry(ctx, thread, marker, extra) if by_bot else None
        if named is None:
            if marker is None:
                return Outcome("ignored", "not a promotion request")
            log.info("command on a request of model %s: not ours", marker.model, extra=extra)
            return Outcome("ignored", f"a request of another model ({marker.model})")
        marker = named
    for attempt in (1, 2):
        try:
            return _under_lock(ctx, event, thread, marker, parsed, extra, wait_for_forge)
        except LockLost as exc:
            if attempt == 2:
                raise
            # Everything is read again under the new lock: what the lost holder left (an
            # intent, a record, an answer) is found as any later pass finds it.
            log.warning("%s; handling the comment again under a new lock", exc, extra=extra)
    raise AssertionError("unreachable")


def _under_lock(
    ctx: Context,
    event: CommentEvent,
    thread: Thread,
    marker: RequestMarker,
    parsed: Command | Usage,
    extra: dict[str, str],
    wait_for_forge: bool,
) -> Outcome:
    bot = ctx.forge.bot_username()
    with model_lock(ctx) as lease:
        comments = ctx.forge.list_comments(thread)
        bot_bodies = [c.body for c in comments if c.author.lower() == bot.lower()]
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
        run = Handling(ctx, event, thread, marker, bot_bodies, replies, lease)
        outcome = _handle_locked(run, parsed, extra)
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


def _handle_locked(run: Handling, parsed: Command | Usage, extra: dict[str, str]) -> Outcome:
    ctx, event = run.ctx, run.event
    champion_alias = ctx.params.promotion.champion_alias
    # One read of the model under the lock serves every check below (aliases, history, intent).
    try:
        state = ctx.registry.state(ctx.model)
    except RegistryError as exc:
        # Nothing read, nothing written by this pass; whether an earlier pass left a change
        # cannot be known, so only `serve`, after its last attempt, answers this (with care).
        raise RegistryUnavailable(str(exc)) from None
    run.state = recover_pending(
        ctx.registry, ctx.model, champion_alias, state, run.lease.check, ctx.ledger
    )
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
        # The hook may have been called before the answer was lost: never call it again. A
        # merge stays pinned to the commit `request` recorded.
        head = ""  # no recorded head (or no version): the merge is refused, and said so
        if recorded.action == "promote" and run.thread.kind == "merge_request":
            with contextlib.suppress(NotFoundError):
                head = ctx.registry.version(ctx.model, recorded.to_version).request_head
        back = returns_to(run.state, recorded.from_version)
        run.replies.changed(
            recorded, [recorded.actor], call_hook=False, merge_sha=head, rollback_to=back
        )
        return Outcome("recovered", f"v{recorded.to_version}", recorded)
    if run.marker.problem:
        # A person edited (or cut) the marker: one request the bot cannot read, answered so
        # that someone repairs it; every other request goes on working.
        log.warning("damaged request marker: %s", run.marker.problem, extra=extra)
        run.replies.damaged_request(run.marker.problem)
        return Outcome("damaged", run.marker.problem)
    try:
        unproven = bind_to_registry(run, promote=_ispromote(parsed), extra=extra)
    except LockLost:
        raise
    except BotError as exc:  # the registry failed: nothing was read, nothing changed
        if isinstance(parsed, Usage):
            raise
        return _error(run, parsed, exc, extra)
    if unproven is not None:
        return unproven
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
        if parsed.name == "promote":
            return promote(run, parsed)
        return rollback(run, parsed)
    except LockLost:
        raise  # handle_comment starts again under a new lock; nothing more was written
    except ChangeFailed as exc:
        if exc.alias_touched:
            raise  # the next pass finishes the record and answers (see change.recover_pending)
        return _error(run, parsed, exc, extra)
    except BotError as exc:
        if run.changed or run.replies.attempted:
            # The change stands (or an answer may already be in the thread): an "unchanged,
            # try again" answer would be false. The next pass posts the real answer.
            raise
        return _error(run, parsed, exc, extra)


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
