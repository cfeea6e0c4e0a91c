"""The status page's drift state, cheap and still honest (docs/operations.md, "The status page";
docs/security.md, "The status page").

The bounded check reads the model and its newest NEWEST ledger runs, whatever their status, one
search, and lets the entries of the chain among them (`bot.ledger.chain.members`: not the
changes the bot abandoned, nor one in flight) decide the champion when `bot.ledger.chain.vouch`
admits them: every one signed by a trusted key and FINISHED (an entry someone marked FAILED is
not evidence), each following the one before it, the newest the head of the chain the bot
signed into the champion cache. The champion must then be the newest approved `to` among them, the
question `verify` asks. Entries older than these are not read, and the page says so. When the
newest entries cannot decide (no signed head, a break or a change not yet cached among them, no
approved change among them), the whole chain is walked as `verify` walks it, and the page says
that instead. `serve` also walks every chain in the background (bot.reports.chain_walks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.ledger.chain import InFlight, members, vouch
from bot.ledger.drift import check_champion
from bot.ledger.entry import LedgerEntry
from bot.ledger.store import Where, now_ms
from bot.registry.model_state import ModelState
from bot.reports.audit import Verification, deleted_entries, record_problems, verify

if TYPE_CHECKING:
    from bot.runtime.context import Context

log = logging.getLogger(__name__)

NEWEST = 20  # entries the bounded check reads: what `poll`'s drift check reads


@dataclass(frozen=True)
class DriftView:
    """The drift state a page shows, and which check found it."""

    result: Verification
    state: ModelState  # the model as read for it
    newest: tuple[LedgerEntry, ...] = ()  # what the bounded check read, newest first
    walked: str = ""  # why the whole chain was walked instead ("": the bounded check decided)

    @property
    def bounded(self) -> bool:
        return not self.walked

    def checked(self) -> str:
        """Which check the drift state comes from, for people."""
        if self.bounded:
            return (
                f"the newest {_entries(len(self.newest))}: signed, each following the one "
                "before, up to the head the bot signed; older ones: `promotion-bot verify`"
            )
        return (
            f"the whole chain ({self.result.entries} entries), as `promotion-bot verify` walks "
            f"it; the newest entries could not decide: {self.walked}"
        )


def _entries(count: int) -> str:
    return "ledger entry" if count == 1 else f"{count} ledger entries"


def drift_view(ctx: Context, model: str, count: int = NEWEST) -> DriftView:
    """The model read, its newest `count` entries (one search), and the whole chain only when
    those cannot decide."""
    state = ctx.registry.state(model)
    newest, why = _newest(ctx, model, state, count)
    if not why:
        return DriftView(_decided(ctx, model, state, newest), state, tuple(newest))
    log.info("status page: walking the whole chain of %s: %s", model, why, extra={"model": model})
    return DriftView(verify(ctx, model, state), state, walked=why)


def _newest(
    ctx: Context, model: str, state: ModelState, count: int
) -> tuple[list[LedgerEntry], str]:
    experiment_id = ctx.ledger.ready(state, model)
    if not experiment_id:
        return [], "the model's ledger marker is missing or not signed by the bot"
    where = Where(model=model, finished=False)
    read = list(ctx.ledger.entries(experiment_id, where, limit=count))
    flight = InFlight.of(state, now_ms(), ctx.settings.lock_ttl)
    newest = members(read[::-1], flight)[::-1]
    why = vouch(newest, state.cached_head, experiment_id)
    if not why and len(read) == count and not any(entry.approved for entry in newest):
        why = f"no approved change among the newest {count} entries"
    return newest, why


def _decided(
    ctx: Context, model: str, state: ModelState, newest: list[LedgerEntry]
) -> Verification:
    alias = ctx.params.promotion.champion_alias
    approved = next((entry for entry in newest if entry.approved), None)
    check = check_champion(state, model, alias, newest[0], approved)
    problems = [*deleted_entries(newest), *record_problems(state)]
    return Verification(check, problems, [], len(newest))
