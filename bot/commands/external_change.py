"""A champion moved outside the bot (someone used the MLflow UI): recorded in the audit ledger and
reported in the request thread, once, whichever path sees it first (docs/design.md, "Drift").

Every path that records asks the same question: MLflow's alias webhook (which only says that
something moved; the bot's own changes fire it too) and `poll` before it handles commands (`status`
and `verify` ask it read-only, bot.reports). The model is read;
when the champion is what the records say (bot.ledger.drift.agrees_with_records) nothing more is
read. Otherwise the ledger decides (bot.ledger.drift.check_champion), and under the model lock a
champion no ledger entry accounts for is recorded as an `external` entry, reported in the model's
latest request thread with the `/rollback` that restores the approved champion when it drifted from
it (a hand move back to the approved version is recorded, not reported). Recorded once, it is
reported once: the next look finds the ledger agreeing. No time window: a hand move back to a
version the bot set a minute ago is still a hand move. While the ledger holds nothing signed of
the model and history from before keys waits for the operator's import, nothing is recorded or
reported: the outcome names the command (bot.ledger.importing).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.ledger.drift import ChampionCheck, agrees_with_records, check_champion
from bot.ledger.entry import EXTERNAL, LedgerEntry
from bot.ledger.importing import Waiting, waiting
from bot.ledger.store import last_and_approved, now_ms
from bot.registry.model_state import Head, ModelState, external_value
from bot.registry.records import Outcome
from bot.registry.tags import EXTERNAL_TAG
from bot.runtime.request_threads import latest_request
from bot.threads.command_forms import format_command
from bot.threads.thread import Thread

if TYPE_CHECKING:
    from bot.commands.locking import Lease
    from bot.runtime.context import Context

log = logging.getLogger(__name__)

TEMPLATE = "answer_external_change.md.j2"
_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_REPORT_RE = re.compile(r"<!-- promotion-bot:external (state=\S+) -->")


@dataclass(frozen=True)
class AliasChange:
    """A model alias set or deleted in the registry, as MLflow's webhook reports it."""

    model: str
    alias: str
    version: int | None  # None: the alias was deleted
    delivery_id: str = ""
    action: Literal["created", "deleted"] = "created"
    at: str = ""  # the envelope's timestamp (ISO 8601), "" if absent


def report_external_change(ctx: Context, change: AliasChange) -> Outcome:
    """The MLflow webhook's path: the event names the model and alias; the registry decides."""
    alias = ctx.params.promotion.champion_alias
    if change.model != ctx.model or change.alias != alias:
        return Outcome("ignored", "not this bot's model or alias")
    from bot.commands.forged_records import report_forged

    state = ctx.registry.state(ctx.model)  # as it is now, not as an event says
    outcome, _check = report_drift(ctx, "webhook", delivery_id=change.delivery_id, state=state)
    report_forged(ctx, state)  # a forged intent, in the same read (bot.commands.forged_records)
    return outcome


def report_drift(
    ctx: Context, seen_by: str, delivery_id: str = "", state: ModelState | None = None
) -> tuple[Outcome, ChampionCheck | None]:
    """Record (and report) a champion the ledger does not account for; the check made, or None
    when the model read alone showed the champion is the recorded one. `state`: the model as
    the caller just read it, else it is read here."""
    extra = {"delivery_id": delivery_id, "platform": "mlflow", "model": ctx.model}
    alias = ctx.params.promotion.champion_alias
    if state is None:
        state = ctx.registry.state(ctx.model)  # as it is now, not as an event says
    if agrees_with_records(state, alias):
        return Outcome("ignored", "the champion is the one the bot recorded"), None
    check = _look(ctx, state, alias)
    if check is not None and not check.unrecorded:
        return Outcome("ignored", "the ledger accounts for the champion"), check
    if not ctx.keys.can_sign:  # `status` by a reader without the key: it records nothing
        return Outcome("ignored", "not recorded: no signing key (docs/security.md)"), check
    from bot.commands.change import recover_pending
    from bot.commands.locking import model_lock

    with model_lock(ctx) as lease:
        state = ctx.registry.state(ctx.model)
        state = recover_pending(ctx.registry, ctx.model, alias, state, lease.check, ctx.ledger)
        from bot.ledger.setup import prepare

        experiment_id = prepare(ctx.ledger, ctx.model, state, lease.check)
        last, approved = last_and_approved(ctx.ledger, experiment_id, ctx.model)
        check = check_champion(state, ctx.model, alias, last, approved)
        if not check.unrecorded:
            return Outcome("duplicate", "recorded before"), check
        if last is None and (pending := _waiting(ctx, experiment_id, state)):
            # History from before keys accounts for the champion, or does not: the operator's
            # import decides what it is worth, and until then nothing is recorded against it.
            return Outcome("ignored", f"not recorded: {pending.notice()}"), check
        thread = latest_request(ctx, ctx.model) if check.drifted else None
        if thread is not None:
            _post_report(ctx, thread, check, alias, lease)
        ledger_run = _record(ctx, experiment_id, state, check, seen_by, thread, lease)
    if check.drifted:
        log.warning("%s of %s moved outside the bot: recorded", alias, ctx.model, extra=extra)
        from bot.commands.deployments import record_drift

        record_drift(ctx, check, thread, ledger_run)  # recorded once, so deployed once
        if thread is None:
            log.warning("no request thread to report it in", extra=extra)
            return Outcome("ignored", "no request thread"), check
        return Outcome("reported", thread.url), check
    return Outcome("ignored", "a move back to the approved champion: recorded"), check


def _waiting(ctx: Context, experiment_id: str, state: ModelState) -> Waiting:
    """What waits for the operator's import, for a model the ledger holds no signed entry of:
    one search (a bot that made or saw a change of the model never asks)."""
    return waiting(ctx.model, state, ctx.ledger.chain(experiment_id, ctx.model, finished=False))


def _look(ctx: Context, state: ModelState, alias: str) -> ChampionCheck | None:
    """The check without the lock, on a ledger already set up (None: it is not, yet)."""
    experiment_id = ctx.ledger.ready(state, ctx.model)
    if not experiment_id:
        return None
    last, approved = last_and_approved(ctx.ledger, experiment_id, ctx.model)
    return check_champion(state, ctx.model, alias, last, approved)


def _post_report(
    ctx: Context, thread: Thread, check: ChampionCheck, alias: str, lease: Lease
) -> None:
    """One report per disagreement: a pass that died after posting and before recording finds
    its report by the state key and does not post it again."""
    last = check.last
    key = "state=" + _SAFE.sub("_", f"{check.champion or 'none'}/{last.ledger_run if last else ''}")
    if _latest_report(ctx, thread) == key:
        return
    approved = check.approved
    body = ctx.render(
        TEMPLATE,
        model=ctx.model,
        alias=alias,
        version=check.champion,
        last={"to": approved.to_version, "actor": approved.actor, "at": approved.at}
        if approved
        else None,
        rollback_command=format_command("rollback", version=approved.to_version)
        if approved and approved.to_version is not None
        else "",
    )
    lease.check()
    ctx.forge.post_comment(thread, f"{body.rstrip()}\n\n<!-- promotion-bot:external {key} -->\n")


def _record(
    ctx: Context,
    experiment_id: str,
    state: ModelState,
    check: ChampionCheck,
    seen_by: str,
    thread: Thread | None,
    lease: Lease,
) -> str:
    """The `external` entry, keyed by what it follows (a pass that died halfway is finished, not
    repeated), then the model's note of it, which lets the next look stop at the model read.
    Its ledger run's id."""
    last = check.last
    entry = LedgerEntry(
        model=ctx.model,
        action=EXTERNAL,
        from_version=last.to_version if last else None,
        to_version=check.champion,
        at_ms=now_ms(),
        reason="the champion was set outside promotion-bot",
        request_url=thread.url if thread is not None else "",
        seen_by=seen_by,
    )
    key = f"external:{ctx.model}:{last.ledger_run if last else ''}:{check.champion}"
    begun = ctx.ledger.runs_keyed(experiment_id, key)
    head: Head | None
    if begun:
        run_id = begun[0].run_id
        head = ctx.ledger.complete(experiment_id, begun[0], entry, lease.check)
    else:
        run_id, head = ctx.ledger.record_chained(experiment_id, entry, key, lease.check)
    newest = state.history[-1] if state.history else None
    value = external_value(ctx.keys, ctx.model, newest, check.champion, head)
    lease.check()
    ctx.registry.set_model_tag(ctx.model, EXTERNAL_TAG, value)
    return run_id


def _latest_report(ctx: Context, thread: Thread) -> str:
    """The state key of the bot's newest external-change report in the thread, if any."""
    for comment in reversed(ctx.forge.list_comments(thread)):
        if ctx.forge.is_bot(comment.author):
            found = _REPORT_RE.search(comment.body)
            if found:
                return found.group(1)
    return ""
