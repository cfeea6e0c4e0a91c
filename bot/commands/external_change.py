"""A champion moved outside the bot (someone used the MLflow UI): reported in the request thread.

MLflow's alias webhook (parsed by `bot.intake.payloads`) only says that something moved; the
bot's own `/promote` and `/rollback` trigger it too. Whether something is amiss is read from the
registry once the event arrives: the champion agrees with the bot's record when it is the last
recorded history `to` (or the `to` of the intent of a change in flight); anything else was moved
by hand, and is reported once, with the `/rollback` that restores the recorded champion. No time
window: a hand move back to a version the bot set a minute ago is still a hand move. See
docs/design.md, "Webhooks".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.command_forms import format_command
from bot.records import HistoryEntry, Outcome
from bot.threads import Thread

if TYPE_CHECKING:
    from bot.context import Context

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
    """Warn in the model's latest request thread when the champion disagrees with the record."""
    extra = {"delivery_id": change.delivery_id, "platform": "mlflow", "model": change.model}
    alias = ctx.params.promotion.champion_alias
    if change.model != ctx.model or change.alias != alias:
        return Outcome("ignored", "not this bot's model or alias")
    state = ctx.registry.state(change.model)  # as it is now, not as the event says
    current = state.aliases.get(alias)
    last = _last_recorded(state.history)
    if _accounted_for(current, last, state.pending):
        log.info("%s is v%s, as the bot recorded", alias, current, extra=extra)
        return Outcome("ignored", "the champion is the one the bot recorded")
    thread = _latest_request(ctx, change.model)
    if thread is None:
        log.warning("external %s change has no request thread to report to", alias, extra=extra)
        return Outcome("ignored", "no request thread")
    # One report per disagreement, whatever number of deliveries (retries, the late event of
    # an earlier move) arrive for it; a later move to another version is reported again.
    key = "state=" + _SAFE.sub("_", f"{current or 'none'}/{last.at if last else 'none'}")
    if _latest_report(ctx, thread) == key:
        return Outcome("duplicate", "already reported")
    body = ctx.render(
        TEMPLATE,
        model=change.model,
        alias=alias,
        version=current,
        last={"to": last.to_version, "actor": last.actor, "at": last.at} if last else None,
        rollback_command=format_command("rollback", version=last.to_version) if last else "",
    )
    ctx.forge.post_comment(thread, f"{body.rstrip()}\n\n<!-- promotion-bot:external {key} -->\n")
    log.warning("reported an external %s change in %s", alias, thread.url, extra=extra)
    return Outcome("reported", thread.url)


def _accounted_for(
    current: int | None, last: HistoryEntry | None, pending: HistoryEntry | None
) -> bool:
    """The champion is where the bot's record (or its change in flight) says it is."""
    if pending is not None and current is not None and pending.to_version == current:
        return True  # MLflow fires between the bot's intent record and its history entry
    if last is None:
        return current is None  # nothing recorded and nothing set: nothing to restore
    return current == last.to_version


def _latest_report(ctx: Context, thread: Thread) -> str:
    """The state key of the bot's newest external-change report in the thread, if any."""
    bot = ctx.forge.bot_username().lower()
    for comment in reversed(ctx.forge.list_comments(thread)):
        if comment.author.lower() == bot:
            found = _REPORT_RE.search(comment.body)
            if found:
                return found.group(1)
    return ""


def _last_recorded(history: Sequence[HistoryEntry]) -> HistoryEntry | None:
    """The newest history entry that names a version."""
    return next((entry for entry in reversed(history) if entry.to_version is not None), None)


def _latest_request(ctx: Context, model: str) -> Thread | None:
    """The newest request the bot opened: a person's issue quoting a marker gets no report."""
    from bot.request_threads import find_requests

    found = find_requests(ctx, model, state="all")  # newest first
    return found[0] if found else None
