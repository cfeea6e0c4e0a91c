"""`/promote` and `/rollback` once the comment, the thread and the actor passed: the rules of
the move, the approvals the registry records, the ledger's evidence, the change, then its answer
and follow-ups (docs/design.md, "Rules for a champion change" and "The change").

A move is two steps for the handler: `promote`/`rollback` judge and make the change, returning
what it came to; `announce` answers a change made and runs its follow-ups. Once the first step
returned a `Moved`, the alias has moved: a failure after that must never be answered as
"nothing changed".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from bot.commands.evidence import promote_evidence, rollback_evidence
from bot.commands.follow_ups import follow_up
from bot.commands.forged_records import forged_approvals, report_forged_in
from bot.commands.grammar import Command
from bot.commands.handling import Handling
from bot.commands.policy import Refusal
from bot.errors import NotFoundError
from bot.registry.model_state import ModelState
from bot.registry.records import Action, Approval, Change, Outcome
from bot.registry.tags import APPROVALS_TAG
from bot.registry.versions import VersionInfo
from bot.runtime.context import Context
from bot.threads.thread import Thread
from bot.timestamps import utc_now_iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moved:
    """A champion change made and recorded, not yet answered: what its answer and follow-ups
    need."""

    change: Change
    approvers: tuple[str, ...]
    reason: str | None = None  # the comment's own, when the record keeps another (internal note)
    merge_sha: str = ""  # the only commit the request's MR/PR is merged at
    rollback_to: int | None = None  # the version the answer offers `/rollback` to
    call_hook: bool = True  # False: an earlier pass made the change and may have called it


def announce(run: Handling, moved: Moved) -> None:
    """Answer a change, then its follow-ups (bot.commands.follow_ups), in this order."""
    change = moved.change
    run.replies.changed(
        change, list(moved.approvers), reason=moved.reason, rollback_to=moved.rollback_to
    )
    follow_up(
        run.ctx,
        run.thread,
        change,
        run.replies,
        run.lease.check,
        merge_sha=moved.merge_sha,
        call_hook=moved.call_hook,
    )


def promote(run: Handling, command: Command) -> Outcome | Moved:
    """Judge `/promote` by the model's rules; record an approval, or move the champion."""
    from bot.commands.change import move_champion
    from bot.commands.policy import promote_refusal, self_approval_refusal

    ctx, event, thread = run.ctx, run.event, run.thread
    version = run.version
    assert version is not None  # bind_to_registry read it for every /promote
    # Only the registry knows who trained it: the marker's requested_by is display, and anyone
    # who may edit the request description could change it.
    refusal = self_approval_refusal(ctx, event.author, event.author_id, version)
    if refusal is None:
        merges = ctx.params.promotion.request.merge_on_promote
        if thread.kind == "merge_request" and merges and not thread.head_sha:
            # A listing (GitHub's issues endpoint) has no head: the rule needs the MR/PR's own.
            thread = ctx.forge.get_thread(thread.kind, thread.number)
        candidate = aliased(run, ctx.params.promote_model.candidate_alias, version)
        champion = aliased(run, ctx.params.promotion.champion_alias, version)
        refusal, gates = promote_refusal(ctx, thread, version, candidate, champion)
    if refusal is not None:
        run.replies.refused(command, refusal)
        return Outcome("refused", refusal.code)
    required = ctx.params.promotion.approvers.required_approvals
    approvals = [Approval(event.author, event.author_id, event.comment_id, utc_now_iso())]
    if required > 1:
        # Approvals are evidence: the registry's record, never markers in comments (any
        # workflow posts as github-actions[bot], and people delete the bot's answers).
        raw = version.tags.get(APPROVALS_TAG)
        recorded, problems = Approval.parse_signed(raw, ctx.keys, ctx.model, version.version)
        # docs/security.md: an approval the bot did not sign counts for nothing, and is reported
        report_forged_in(run, [forged_approvals(ctx.model, version.version, raw or "", problems)])
        mine = next((a for a in recorded if a.is_by(event.author, event.author_id)), None)
        earlier = still_eligible(ctx, [a for a in recorded if a is not mine], run.roles)
        approvals = [*earlier, mine or approvals[0]]
        approvers = [a.user for a in approvals]
        if len(approvers) < required:
            if mine is None:  # one person, one approval: a second /promote records nothing
                mine = Approval(event.author, event.author_id, event.comment_id, utc_now_iso())
                sealed = [a.sealed(ctx.keys, ctx.model, version.version) for a in [*recorded, mine]]
                value = json.dumps(sealed, separators=(",", ":"))
                run.lease.check()
                ctx.registry.set_version_tag(ctx.model, version.version, APPROVALS_TAG, value)
            run.replies.approval_recorded(version.version, approvers, required)
            return Outcome("approval", f"{len(approvers)} of {required}")
    evidence = promote_evidence(ctx, thread, event, version, approvals, run.roles, gates)
    change = move_champion(
        ctx.registry,
        ctx.params.promotion.champion_alias,
        new_change(run, thread, command, "promote", version.version),
        run.state,
        run.lease.check,
        ledger=ctx.ledger,
        evidence=evidence,
    )
    # The merge is pinned to the commit the rule checked: a push since fails it.
    return Moved(
        change,
        tuple(a.user for a in approvals),
        reason=command.reason,
        merge_sha=version.request_head,
        rollback_to=returns_to(ctx, run.state, change.from_version),
    )


def rollback(run: Handling, command: Command) -> Outcome | Moved:
    """Judge `/rollback <version>` (or `previous`); move the champion back and answer."""
    from bot.commands.change import move_champion
    from bot.commands.policy import rollback_refusal

    ctx = run.ctx
    champion = run.state.aliases.get(ctx.params.promotion.champion_alias)
    number, refusal = rollback_target(run, command, champion)
    target = None
    if refusal is None:
        try:
            target = ctx.registry.version(ctx.model, number)
        except NotFoundError:
            target = None
        refusal = rollback_refusal(
            ctx,
            target,
            number,
            champion,
            run.state.history,
            adopted=lambda: adopted_champion_of(ctx, run.state),
        )
    if refusal is not None:
        run.replies.refused(command, refusal)
        return Outcome("refused", refusal.code)
    assert target is not None  # rollback_refusal refuses a version that does not exist
    change = new_change(run, run.thread, command, "rollback", number)
    change = move_champion(
        ctx.registry,
        ctx.params.promotion.champion_alias,
        change,
        run.state,
        run.lease.check,
        ledger=ctx.ledger,
        evidence=rollback_evidence(ctx, run.thread, run.event, target, run.roles, change.at),
    )
    back = returns_to(ctx, run.state, change.from_version)
    return Moved(change, (run.event.author,), reason=command.reason, rollback_to=back)


def returns_to(ctx: Context, state: ModelState, version: int | None) -> int | None:
    """`version`, when `/rollback` would take it (`is_rollback_target`), else None: the
    version an answer offers to go back to."""
    if version is None or not is_rollback_target(ctx, state, version):
        return None
    return version


def is_rollback_target(ctx: Context, state: ModelState, version: int) -> bool:
    """A version the bot made champion (the history names it as a `to`), or the champion it
    found serving and replaced with its first change (bot.ledger.drift.adopted_champion). A
    champion set by hand after that is none until approved. The ledger is read only when the
    history cache does not decide."""
    if any(entry.to_version == version for entry in state.history):
        return True
    return adopted_champion_of(ctx, state) == version


def adopted_champion_of(ctx: Context, state: ModelState) -> int | None:
    """The champion the bot replaced with its first change, as its ledger records it."""
    from bot.ledger.drift import adopted_champion
    from bot.ledger.store import Where

    experiment_id = ctx.ledger.ready(state, ctx.model) or ctx.ledger.experiment_id()
    if not experiment_id:
        return None
    return adopted_champion(ctx.ledger.earliest(experiment_id, Where(model=ctx.model)))


def still_eligible(ctx: Context, recorded: list[Approval], roles: dict[str, int]) -> list[Approval]:
    """Earlier approvals count only while their authors are still eligible (roles change)."""
    from bot.commands.policy import actor_refusal

    return [a for a in recorded if actor_refusal(ctx, a.user, a.user_id, roles) is None]


def rollback_target(
    run: Handling, command: Command, champion: int | None
) -> tuple[int, Refusal | None]:
    """The version a `/rollback` names; for `/rollback previous`, the champion before the
    current one: the `from` of the ledger's newest entry whose `to` is the champion."""
    if not command.previous:
        return int(command.version or 0), None
    from bot.commands.policy import no_previous_refusal
    from bot.ledger.setup import prepare
    from bot.ledger.store import Where

    ctx = run.ctx
    entry = None
    if champion is not None:
        experiment_id = prepare(ctx.ledger, ctx.model, run.state, run.lease.check)
        entry = ctx.ledger.latest(experiment_id, Where(model=ctx.model, to_version=champion))
    if entry is None or entry.from_version is None:
        return 0, no_previous_refusal(champion)
    return entry.from_version, None


def aliased(run: Handling, alias: str, known: VersionInfo) -> VersionInfo | None:
    """The version `alias` points at (from the state read under the lock); `known` if it is that."""
    number = run.state.aliases.get(alias)
    if number is None:
        return None
    return known if number == known.version else run.ctx.registry.version(run.ctx.model, number)


def new_change(
    run: Handling, thread: Thread, command: Command, action: Action, to_version: int
) -> Change:
    reason = command.reason
    if run.event.internal:
        # The registry is read by a wider audience than the project's members (serving teams,
        # a company-wide MLflow): it keeps where the reason is, not the reason.
        where = run.ctx.forge.comment_url(thread, run.event.comment_id)
        reason = f"(internal note) {where}"
    return Change(
        model=run.ctx.model,
        from_version=None,
        to_version=to_version,
        actor=run.event.author,
        action=action,
        reason=reason,
        request_url=thread.url,
        comment_id=run.event.comment_id,
        at=utc_now_iso(),
    )


def arrow(change: Change) -> str:
    before = f"v{change.from_version}" if change.from_version is not None else "no champion"
    return f"{before} -> v{change.to_version}"
