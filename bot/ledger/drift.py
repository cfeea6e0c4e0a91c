"""Is the champion the one the audit ledger says? One decision for every path that looks: the
MLflow webhook, `poll`, `status` and `verify` (docs/design.md, "Drift").

Two questions, both read from the registry alone:
- *drifted*: the champion is not the `to` of the newest change people approved through the bot
  (`/promote`, `/rollback`): it was set outside the bot and nobody restored it. `verify` exits 1.
- *unrecorded*: the champion is not the `to` of the ledger's newest entry of any kind: a move
  outside the bot that no `external` entry records yet. Whoever sees it first records it (and
  reports it, when it drifted), so it is reported once, whichever path saw it.
While the intent of a change of the bot is still unrecorded (a pass in flight, or one that died),
neither is decided: the next pass settles that change first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.ledger.entry import EXTERNAL, LedgerEntry
from bot.registry.model_state import ModelState
from bot.registry.records import HistoryEntry
from bot.timestamps import ms_from_iso


@dataclass(frozen=True)
class ChampionCheck:
    model: str
    champion: int | None  # what the alias points at now
    last: LedgerEntry | None  # the ledger's newest entry
    approved: LedgerEntry | None  # its newest approved change
    in_flight: HistoryEntry | None = None  # an intent not recorded yet

    @property
    def approved_version(self) -> int | None:
        return self.approved.to_version if self.approved else None

    @property
    def drifted(self) -> bool:
        return self.in_flight is None and self.champion != self.approved_version

    @property
    def unrecorded(self) -> bool:
        last = self.last.to_version if self.last else None
        return self.in_flight is None and self.champion != last

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "champion": self.champion,
            "approved": self.approved_version,
            "approved_at": self.approved.at if self.approved else None,
            "approved_by": self.approved.actor if self.approved else None,
            "drifted": self.drifted,
            "recorded": not self.unrecorded,
            "in_flight": self.in_flight.to_version if self.in_flight else None,
        }


def check_champion(
    state: ModelState,
    model: str,
    alias: str,
    last: LedgerEntry | None,
    approved: LedgerEntry | None,
) -> ChampionCheck:
    """The one decision: the model as read (`state`) against the ledger's newest entries.

    The intent (`promotion.pending`) stays on the model after its change is done, and the
    history cache says it is done; the cache is a tag anyone can delete. So the ledger decides
    too: an intent whose change is the ledger's newest signed entry is done, not in flight,
    however the cache reads (else deleting the cache would make every hand move "in flight");
    and an intent explains only the champion it moves from or to."""
    champion = state.aliases.get(alias)
    intent = state.pending
    if intent is not None and last is not None and recorded(last, intent):
        intent = None
    if intent is not None and champion not in (intent.from_version, intent.to_version):
        intent = None  # a change from A to B explains a champion A or B, never a third version
    return ChampionCheck(model, champion, last, approved, intent)


def recorded(entry: LedgerEntry, intent: HistoryEntry) -> bool:
    """`entry` is the change `intent` announced: same command (its comment in its thread), same
    `to`, and dated in the intent's second (an entry is dated when its intent was written; the
    intent keeps whole seconds)."""
    intent_ms = ms_from_iso(intent.at)
    return (
        entry.to_version == intent.to_version
        and entry.comment_id == intent.comment_id
        and entry.request_url == intent.request_url
        and intent_ms is not None
        and entry.at_ms // 1000 == intent_ms // 1000
    )


def agrees_with_records(state: ModelState, alias: str) -> bool:
    """Nothing to look up in the ledger: the champion is what the history cache (and the newest
    change seen outside the bot after it) says. A cheap filter for every path, no call beyond
    the model read; the decision is `check_champion`'s, and `verify` reads the ledger itself."""
    known, expected = state.expected_champion
    return known and state.aliases.get(alias) == expected


def adopted_champion(oldest_first: Sequence[LedgerEntry]) -> int | None:
    """The champion the bot found serving when it was adopted and replaced with its first
    change: that change's `from` (docs/design.md, "Rules for a champion change").

    It served before the bot came, as the team had it: `/rollback` may return to it. A version
    someone set by hand after the bot first saw the model (an `external` entry that is not the
    model's first entry) is no such version, until a change of the bot approves it.
    `oldest_first`: the model's oldest entries; None when its first change is not among them."""
    for index, entry in enumerate(oldest_first):
        if not entry.approved:
            continue
        found = entry.from_version
        set_by_hand = any(
            earlier.action == EXTERNAL and earlier.to_version == found
            for earlier in oldest_first[1:index]
        )
        return None if set_by_hand else found
    return None
