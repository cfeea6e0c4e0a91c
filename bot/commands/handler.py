"""One comment in, at most one answer and one champion change out (docs/design.md, "Which
comments the bot acts on" and "Exactly once").

Binding first: the event must come from this bot's forge and project (`bot.binding`), and the
thread must be a request the bot opened for this model. What a thread is about comes from the
registry, not the description: `/promote` acts only in the thread the version's
`promotion.requested_in` tag names; other commands also accept a thread the registry history
shows a change was made from. A marker a person damaged gets an answer saying so, nothing else.

The comment itself is the forge's record, not the delivery's: under the lock the thread's
comments are listed anyway, and the event's comment must be there, by the same author id, with
the same text, not edited. A deleted command is retracted, a forged one is nobody's.

Exactly once: under the model lock the handler first looks for its own answer to the comment in
the thread, then for the comment id among the handled ones the registry keeps (people can
delete answers, not that), then in the registry history. A comment that already caused a
change but lost its answer gets the answer now, without a second change, and only while that
change is the latest. Every write under the lock is preceded by the lease's check; a lost lease
stops the pass, which then starts again under a new lock (docs/design.md, "Locking").
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field, replace

from bot.binding import Binding
from bot.commands.change import ChangeFailed, find_recorded, recover_pending
from bot.commands.evidence import promote_evidence, rollback_evidence
from bot.commands.grammar import Command, Usage, may_be_command, parse_comment
from bot.commands.locking import Lease, model_lock
from bot.commands.policy import Refusal
from bot.commands.replies import Replies, shown_command
from bot.context import Context
from bot.errors import (
    BotError,
    ForgeError,
    LockLost,
    NotFoundError,
    RegistryError,
    RegistryUnavailable,
)
from bot.markers import RequestMarker, answered_comment_ids, read_request_marker
from bot.records import Action, Approval, Change, Outcome, Status
from bot.registry import ModelState, handled_value
from bot.tags import APPROVALS_TAG, HANDLED_TAG, REQUESTED_IN_TAG
from bot.threads import Comment, CommentEvent, Thread
from bot.timestamps import utc_now_iso
from bot.versions import VersionInfo

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


class UnconfirmedComment(BotError):
    """The thread does not hold the delivered comment as delivered (yet): `serve` retries it, in
    case the forge's API lags behind its webhook, and gives up after the retries."""


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
    roles: dict[str, int] = field(default_factory=dict)  # levels looked up: the ledger's record


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
        named = _named_by_registry(ctx, thread, marker, extra) if by_bot else None
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
        problem, confirmed = _confirm(event, comments, thread)
        if confirmed is None:
            if wait_for_forge:
                raise UnconfirmedComment(problem)
            log.warning("ignored: %s", problem, extra=extra)
            return Outcome("ignored", problem)
        # The forge's flag decides too: a delivery must not turn an internal note public.
        event = replace(event, internal=event.internal or confirmed.internal)
        replies = Replies(ctx, thread, event, guard=lease.check)
        run = _Run(ctx, event, thread, marker, bot_bodies, replies, lease)
        outcome = _handle_locked(run, parsed, extra)
        if outcome.status in _ANSWERED:
            _remember_handled(run, extra)
        return outcome


def _named_by_registry(
    ctx: Context, thread: Thread, marker: RequestMarker | None, extra: dict[str, str]
) -> RequestMarker | None:
    """A thread of the bot whose marker was removed, or edited to name another model, is still
    a request when the registry names it: answered as damaged (one search, only here)."""
    if not ctx.registry.versions_requested_in(ctx.model, thread.url):
        return None
    problem = f"it names another model ({marker.model})" if marker else "it was removed"
    log.warning("the registry names this thread, but its marker: %s", problem, extra=extra)
    return RequestMarker(model=ctx.model, version=0, problem=problem)


def _confirm(
    event: CommentEvent, comments: list[Comment], thread: Thread
) -> tuple[str, Comment | None]:
    """The thread's own record of the event's comment, or why it does not vouch for it."""
    found = next((c for c in comments if c.id == event.comment_id), None)
    where = f"#{thread.number}"
    if found is None:
        return f"no such comment {event.comment_id} in {where} (deleted, or never written)", None
    if found.edited:
        return f"comment {event.comment_id} in {where} was edited after it was posted", None
    if event.author_id and found.author_id:
        same_author = event.author_id == found.author_id
    else:
        same_author = event.author.lower() == found.author.lower()
    if not same_author:
        return f"comment {event.comment_id} in {where} is another person's", None
    if _text(event.body) != _text(found.body):
        return f"comment {event.comment_id} in {where} says something else", None
    return "", found


def _text(body: str) -> str:
    return "\n".join(line.rstrip() for line in body.replace("\r\n", "\n").strip().splitlines())


def _remember_handled(run: _Run, extra: dict[str, str]) -> None:
    """Record the comment as handled where people cannot delete it (after its answer: a pass
    that dies in between leaves the answer, which says the same)."""
    ctx, comment_id = run.ctx, run.event.comment_id
    try:
        run.lease.check()  # another holder may be writing the tag: skip rather than race it
        value = handled_value(run.state.handled, comment_id)
        ctx.registry.set_model_tag(ctx.model, HANDLED_TAG, value)
    except (RegistryError, LockLost) as exc:  # the answer and its marker stand
        log.warning("could not record comment %s as handled: %s", comment_id, exc, extra=extra)


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
        back = _returns_to(run.state, recorded.from_version)
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
        unproven = _bind_to_registry(run, promote=_is_promote(parsed), extra=extra)
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
            return _promote(run, parsed)
        return _rollback(run, parsed)
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


def _approvals_so_far(run: _Run) -> int:
    """How many approvals the registry records for the request's version (0 when one is
    enough: nobody needs the number then)."""
    ctx = run.ctx
    if ctx.params.promotion.approvers.required_approvals < 2:
        return 0
    try:
        version = run.version or ctx.registry.version(ctx.model, run.marker.version)
    except NotFoundError:  # a version deleted since: /help still answers
        return 0
    return len(Approval.parse_all(version.tags.get(APPROVALS_TAG)))


def _error(run: _Run, command: Command, exc: BotError, extra: dict[str, str]) -> Outcome:
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


def _returns_to(state: ModelState, version: int | None) -> int | None:
    """`version`, when `/rollback` would take it: a version the bot made champion (the history
    names it as a `to`). A champion set by hand before the bot's first change is none."""
    if version is None or not any(entry.to_version == version for entry in state.history):
        return None
    return version


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

    ctx, event = run.ctx, run.event
    version = run.version
    assert version is not None  # _bind_to_registry read it for every /promote
    # Only the registry knows who trained it: the marker's requested_by is display, and anyone
    # who may edit the request description could change it.
    refusal = self_approval_refusal(ctx, event.author, event.author_id, version)
    if refusal is None:
        merges = ctx.params.promotion.request.merge_on_promote
        if run.thread.kind == "merge_request" and merges and not run.thread.head_sha:
            # A listing (GitHub's issues endpoint) has no head: the rule needs the MR/PR's own.
            run.thread = ctx.forge.get_thread(run.thread.kind, run.thread.number)
        candidate = _aliased(run, ctx.params.promote_model.candidate_alias, version)
        champion = _aliased(run, ctx.params.promotion.champion_alias, version)
        refusal, gates = promote_refusal(ctx, run.thread, version, candidate, champion)
    if refusal is not None:
        run.replies.refused(command, refusal)
        return Outcome("refused", refusal.code)
    required = ctx.params.promotion.approvers.required_approvals
    approvals = [Approval(event.author, event.author_id, event.comment_id, utc_now_iso())]
    if required > 1:
        # Approvals are evidence: the registry's record, never markers in comments (any
        # workflow posts as github-actions[bot], and people delete the bot's answers).
        recorded = Approval.parse_all(version.tags.get(APPROVALS_TAG))
        mine = next((a for a in recorded if a.is_by(event.author, event.author_id)), None)
        earlier = _still_eligible(ctx, [a for a in recorded if a is not mine], run.roles)
        approvals = [*earlier, mine or approvals[0]]
        approvers = [a.user for a in approvals]
        if len(approvers) < required:
            if mine is None:  # one person, one approval: a second /promote records nothing
                mine = Approval(event.author, event.author_id, event.comment_id, utc_now_iso())
                value = json.dumps([a.stored() for a in [*recorded, mine]], separators=(",", ":"))
                run.lease.check()
                ctx.registry.set_version_tag(ctx.model, version.version, APPROVALS_TAG, value)
            run.replies.approval_recorded(version.version, approvers, required)
            return Outcome("approval", f"{len(approvers)} of {required}")
    approvers = [a.user for a in approvals]
    evidence = promote_evidence(ctx, run.thread, event, version, approvals, run.roles, gates)
    change = move_champion(
        ctx.registry,
        ctx.params.promotion.champion_alias,
        _change(run, command, "promote", version.version),
        run.state,
        run.lease.check,
        ledger=ctx.ledger,
        evidence=evidence,
    )
    run.changed = True
    # The merge is pinned to the commit the rule checked: a push since fails it.
    run.replies.changed(
        change,
        approvers,
        reason=command.reason,
        merge_sha=version.request_head,
        rollback_to=_returns_to(run.state, change.from_version),
    )
    return Outcome("changed", _arrow(change), change)


def _rollback(run: _Run, command: Command) -> Outcome:
    from bot.commands.change import move_champion
    from bot.commands.policy import rollback_refusal

    ctx = run.ctx
    champion = run.state.aliases.get(ctx.params.promotion.champion_alias)
    number, refusal = _rollback_target(run, command, champion)
    target = None
    if refusal is None:
        try:
            target = ctx.registry.version(ctx.model, number)
        except NotFoundError:
            target = None
        refusal = rollback_refusal(ctx, target, number, champion, run.state.history)
    if refusal is not None:
        run.replies.refused(command, refusal)
        return Outcome("refused", refusal.code)
    assert target is not None  # rollback_refusal refuses a version that does not exist
    change = _change(run, command, "rollback", number)
    change = move_champion(
        ctx.registry,
        ctx.params.promotion.champion_alias,
        change,
        run.state,
        run.lease.check,
        ledger=ctx.ledger,
        evidence=rollback_evidence(ctx, run.thread, run.event, target, run.roles, change.at),
    )
    run.changed = True
    back = _returns_to(run.state, change.from_version)
    run.replies.changed(change, [run.event.author], reason=command.reason, rollback_to=back)
    return Outcome("changed", _arrow(change), change)


def _still_eligible(
    ctx: Context, recorded: list[Approval], roles: dict[str, int]
) -> list[Approval]:
    """Earlier approvals count only while their authors are still eligible (roles change)."""
    from bot.commands.policy import actor_refusal

    return [a for a in recorded if actor_refusal(ctx, a.user, a.user_id, roles) is None]


def _rollback_target(
    run: _Run, command: Command, champion: int | None
) -> tuple[int, Refusal | None]:
    """The version a `/rollback` names; for `/rollback previous`, the champion before the
    current one: the `from` of the ledger's newest entry whose `to` is the champion."""
    if not command.previous:
        return int(command.version or 0), None
    from bot.commands.policy import no_previous_refusal
    from bot.ledger import Where
    from bot.ledger_setup import prepare

    ctx = run.ctx
    entry = None
    if champion is not None:
        experiment_id = prepare(ctx.ledger, ctx.model, run.state, run.lease.check)
        entry = ctx.ledger.latest(experiment_id, Where(model=ctx.model, to_version=champion))
    if entry is None or entry.from_version is None:
        return 0, no_previous_refusal(champion)
    return entry.from_version, None


def _aliased(run: _Run, alias: str, known: VersionInfo) -> VersionInfo | None:
    """The version `alias` points at (from the state read under the lock); `known` if it is that."""
    number = run.state.aliases.get(alias)
    if number is None:
        return None
    return known if number == known.version else run.ctx.registry.version(run.ctx.model, number)


def _change(run: _Run, command: Command, action: Action, to_version: int) -> Change:
    reason = command.reason
    if run.event.internal:
        # The registry is read by a wider audience than the project's members (serving teams,
        # a company-wide MLflow): it keeps where the reason is, not the reason.
        where = run.ctx.forge.comment_url(run.thread, run.event.comment_id)
        reason = f"(internal note) {where}"
    return Change(
        model=run.ctx.model,
        from_version=None,
        to_version=to_version,
        actor=run.event.author,
        action=action,
        reason=reason,
        request_url=run.thread.url,
        comment_id=run.event.comment_id,
        at=utc_now_iso(),
    )


def _arrow(change: Change) -> str:
    before = f"v{change.from_version}" if change.from_version is not None else "no champion"
    return f"{before} -> v{change.to_version}"
