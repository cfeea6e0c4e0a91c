"""One comment in, at most one answer and one champion change out (docs/design.md, "Which
comments the bot acts on" and "Exactly once").

Binding first: the event must come from this bot's forge and project (`bot.binding`), and the
thread must be a request the bot opened for this model. What a thread is about comes from the
registry, not the description: `/promote` acts only in the thread the version's
`promotion.requested_in` tag names; other commands also accept a thread the registry history
shows a change was made from. A marker a person damaged gets an answer saying so, nothing else.

Exactly once: under the model lock the handler first looks for its own answer to the comment in
the thread, then for the comment id in the registry history. A comment that already caused a
change but lost its answer gets the answer now, without a second change. Every write under the
lock is preceded by the lease's check; a lost lease stops the pass, which then starts again
under a new lock (docs/design.md, "Locking").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot.binding import Binding
from bot.commands.change import ChangeFailed, find_recorded, recover_pending
from bot.commands.grammar import Command, Usage, may_be_command, parse_comment
from bot.commands.locking import Lease, model_lock
from bot.commands.replies import Replies
from bot.context import Context
from bot.errors import (
    BotError,
    LockLost,
    NotFoundError,
    RegistryError,
    RegistryUnavailable,
)
from bot.markers import RequestMarker, answered_comment_ids, read_request_marker
from bot.records import Action, Change, Outcome
from bot.registry import ModelState
from bot.tags import REQUESTED_IN_TAG
from bot.threads import CommentEvent, Thread
from bot.timestamps import utc_now_iso
from bot.versions import VersionInfo

log = logging.getLogger(__name__)


@dataclass
class _Run:
    """What one handling knows: the event, its thread and the bot's earlier answers there."""

    ctx: Context
    event: CommentEvent
    thread: Thread
    marker: RequestMarker
    bot_bodies: list[str]
    replies: Replies
    lease: Lease  # checked before every write: a lost lock stops the change
    changed: bool = False  # the alias moved: from here on a failure must never read "unchanged"
    state: ModelState = field(default_factory=lambda: ModelState({}, {}))  # read under the lock
    version: VersionInfo | None = None  # the request's version, once the registry vouched for it


def handle_comment(ctx: Context, event: CommentEvent, thread: Thread | None = None) -> Outcome:
    """Handle one comment; `thread` may be passed by a caller that already fetched it."""
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
    marker = read_request_marker(thread.body)
    if marker is None:
        return Outcome("ignored", "not a promotion request")
    if thread.author.lower() != bot.lower():
        # A person's own issue quoting a request marker must not act as a request. An unknown
        # author is not the bot either.
        log.warning("request marker in a thread not opened by the bot", extra=extra)
        return Outcome("ignored", "not a request opened by the bot")
    if marker.model and marker.model != ctx.model:
        log.info("command on a request of model %s: not ours", marker.model, extra=extra)
        return Outcome("ignored", f"a request of another model ({marker.model})")
    for attempt in (1, 2):
        try:
            return _under_lock(ctx, event, thread, marker, parsed, extra)
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
) -> Outcome:
    bot = ctx.forge.bot_username()
    with model_lock(ctx) as lease:
        comments = ctx.forge.list_comments(thread)
        bot_bodies = [c.body for c in comments if c.author.lower() == bot.lower()]
        if event.comment_id in answered_comment_ids(bot_bodies):
            return Outcome("duplicate", "already answered")
        replies = Replies(ctx, thread, event, guard=lease.check)
        run = _Run(ctx, event, thread, marker, bot_bodies, replies, lease)
        return _handle_locked(run, parsed, extra)


def _handle_locked(run: _Run, parsed: Command | Usage, extra: dict[str, str]) -> Outcome:
    ctx, event = run.ctx, run.event
    champion_alias = ctx.params.promotion.champion_alias
    # One read of the model under the lock serves every check below (aliases, history, intent).
    try:
        state = ctx.registry.state(ctx.model)
    except RegistryError as exc:
        # Nothing read, nothing written by this pass; whether an earlier pass left a change
        # cannot be known, so only `serve`, after its last attempt, answers this (with care).
        raise RegistryUnavailable(str(exc)) from None
    run.state = recover_pending(ctx.registry, ctx.model, champion_alias, state, run.lease.check)
    recorded = find_recorded(run.state, ctx.model, event.comment_id, run.thread.url)
    if recorded is not None:
        log.warning("answering a change whose answer was lost", extra=extra)
        run.replies.changed(recorded, [recorded.actor])
        return Outcome("recovered", f"v{recorded.to_version}", recorded)
    if run.marker.problem:
        # A person edited (or cut) the marker: one request the bot cannot read, answered so
        # that someone repairs it; every other request goes on working.
        log.warning("damaged request marker: %s", run.marker.problem, extra=extra)
        run.replies.damaged_request(run.marker.problem)
        return Outcome("damaged", run.marker.problem)
    try:
        unproven = _bind_to_registry(run, promote=_is_promote(parsed), extra=extra)
    except LockLost:
        raise
    except BotError as exc:  # the registry failed: nothing was read, nothing changed
        if isinstance(parsed, Usage):
            raise
        run.replies.error(parsed, str(exc))
        return Outcome("error", str(exc))
    if unproven is not None:
        return unproven
    if isinstance(parsed, Usage):
        run.replies.usage(parsed)
        return Outcome("usage", parsed.problem)
    if parsed.name == "help":
        run.replies.help(run.marker.version, run.bot_bodies, run.state.aliases)
        return Outcome("help")
    from bot.commands.policy import actor_refusal

    # The bot's own comments were ignored above, so the "bot" refusal cannot come back here.
    refusal = actor_refusal(ctx, event.author, event.author_id)
    if refusal is not None:
        run.replies.refused(parsed, refusal)
        return Outcome("refused", refusal.code)
    try:
        if parsed.name == "promote":
            return _promote(run, parsed)
        return _rollback(run, parsed)
    except LockLost:
        raise  # handle_comment starts again under a new lock; nothing more was written
    except ChangeFailed as exc:
        if exc.alias_touched:
            raise  # the next pass finishes the record and answers (see change.recover_pending)
        run.replies.error(parsed, str(exc))
        return Outcome("error", str(exc))
    except BotError as exc:
        if run.changed or run.replies.attempted:
            # The change stands (or an answer may already be in the thread): an "unchanged,
            # try again" answer would be false. The next pass posts the real answer.
            raise
        run.replies.error(parsed, str(exc))
        return Outcome("error", str(exc))


def _is_promote(parsed: Command | Usage) -> bool:
    return isinstance(parsed, Command) and parsed.name == "promote"


def _bind_to_registry(run: _Run, *, promote: bool, extra: dict[str, str]) -> Outcome | None:
    """None when the registry vouches for the thread as this model's request, else the outcome.

    `/promote` needs the marker's version to name this thread in its `promotion.requested_in`
    tag (a marker edited to another version names a thread the registry does not). The other
    commands only need the thread to be a request of this model: a change recorded from it in
    the history (no extra read) proves that too.
    """
    ctx, thread = run.ctx, run.thread
    if not promote and thread.url and any(e.request_url == thread.url for e in run.state.history):
        return None
    number = run.marker.version
    try:
        run.version = ctx.registry.version(ctx.model, number)
    except NotFoundError:
        log.warning("the request's v%s is not in the registry", number, extra=extra)
        return Outcome("ignored", f"v{number} of {ctx.model} is not in the registry")
    tagged = run.version.requested_in
    if tagged == thread.url:
        return None
    if tagged:
        log.warning("not the request of v%s: the registry names %s", number, tagged, extra=extra)
        return Outcome("ignored", f"the registry names another thread as v{number}'s request")
    # Requested before the registry kept the thread: `request` records it when run again.
    log.warning("v%s has no %s tag", number, REQUESTED_IN_TAG, extra=extra)
    run.replies.unrecorded_request(number)
    return Outcome("unrecorded", f"v{number} has no recorded request")


def _promote(run: _Run, command: Command) -> Outcome:
    from bot.commands.change import move_champion
    from bot.commands.policy import promote_refusal, self_approval_refusal
    from bot.markers import read_approvals

    ctx, event = run.ctx, run.event
    version = run.version
    assert version is not None  # _bind_to_registry read it for every /promote
    # Only the registry knows who trained it: the marker's requested_by is display, and anyone
    # who may edit the request description could change it.
    refusal = self_approval_refusal(ctx, event.author, version.requested_by)
    if refusal is None:
        candidate = _aliased(run, ctx.params.promote_model.candidate_alias, version)
        champion = _aliased(run, ctx.params.promotion.champion_alias, version)
        refusal, _gates = promote_refusal(ctx, run.thread, version, candidate, champion)
    if refusal is not None:
        run.replies.refused(command, refusal)
        return Outcome("refused", refusal.code)
    required = ctx.params.promotion.approvers.required_approvals
    approvers = _still_eligible(ctx, read_approvals(run.bot_bodies, version.version), event.author)
    if event.author.lower() not in {name.lower() for name in approvers}:
        approvers.append(event.author)
    if len(approvers) < required:
        run.replies.approval_recorded(version.version, approvers, required)
        return Outcome("approval", f"{len(approvers)} of {required}")
    change = move_champion(
        ctx.registry,
        ctx.params.promotion.champion_alias,
        _change(run, command, "promote", version.version),
        run.state,
        run.lease.check,
    )
    run.changed = True
    run.replies.changed(change, approvers)
    return Outcome("changed", _arrow(change), change)


def _rollback(run: _Run, command: Command) -> Outcome:
    from bot.commands.change import move_champion
    from bot.commands.policy import rollback_refusal

    ctx = run.ctx
    number = int(command.version or 0)
    try:
        target = ctx.registry.version(ctx.model, number)
    except NotFoundError:
        target = None
    champion = run.state.aliases.get(ctx.params.promotion.champion_alias)
    refusal = rollback_refusal(ctx, target, number, champion, run.state.history)
    if refusal is not None:
        run.replies.refused(command, refusal)
        return Outcome("refused", refusal.code)
    change = move_champion(
        ctx.registry,
        ctx.params.promotion.champion_alias,
        _change(run, command, "rollback", number),
        run.state,
        run.lease.check,
    )
    run.changed = True
    run.replies.changed(change, [run.event.author])
    return Outcome("changed", _arrow(change), change)


def _still_eligible(ctx: Context, recorded: list[str], author: str) -> list[str]:
    """Earlier approvals count only while their authors are still eligible (roles change)."""
    from bot.commands.policy import actor_refusal

    return [
        name
        for name in recorded
        if name.lower() == author.lower() or actor_refusal(ctx, name, "") is None
    ]


def _aliased(run: _Run, alias: str, known: VersionInfo) -> VersionInfo | None:
    """The version `alias` points at (from the state read under the lock); `known` if it is that."""
    number = run.state.aliases.get(alias)
    if number is None:
        return None
    return known if number == known.version else run.ctx.registry.version(run.ctx.model, number)


def _change(run: _Run, command: Command, action: Action, to_version: int) -> Change:
    return Change(
        model=run.ctx.model,
        from_version=None,
        to_version=to_version,
        actor=run.event.author,
        action=action,
        reason=command.reason,
        request_url=run.thread.url,
        comment_id=run.event.comment_id,
        at=utc_now_iso(),
    )


def _arrow(change: Change) -> str:
    before = f"v{change.from_version}" if change.from_version is not None else "no champion"
    return f"{before} -> v{change.to_version}"
