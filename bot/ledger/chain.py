"""The chain of a model's ledger entries (docs/security.md, "The registry writer"): each signed
entry names the digest of the one before it (`prev`), so an entry deleted, inserted, reordered,
replayed or extended after signing shows as a break, and only entries that follow each other are
evidence. `walk` reads the whole chain; `vouch` says whether its newest entries alone, tied to
the head the bot signed, may decide the champion (the status page's bounded check): they say
nothing of the entries before them.

Both read every run of the model, whatever its status: a status is not signed, so marking the
newest entry FAILED must not shorten the chain unseen. A run that is not FINISHED is out of the
chain when the bot abandoned it (its signed abandonment), when it is a change in flight
(`InFlight`), or when the bot never signed its entry (it never was part of a chain). Any other
is a break (`hidden`), with one allowance for runs written before abandonments were signed.

Pure: the entries come from `bot.ledger.store`, their seals already checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from bot.ledger.entry import LedgerEntry
from bot.registry.model_state import Head, ModelState
from bot.signing import NOT_SIGNED

REPLAYED = "out of the chain: it follows an earlier entry again (inserted, copied or reordered)"
IMPORT_HINT = "`promotion-bot import-ledger` signs runs from before keys"
MISSING = "out of the chain: the entry before it is missing (purged from MLflow, or replaced)"


@dataclass(frozen=True)
class InFlight:
    """Which RUNNING run is a change in flight, not a hidden entry: the run the bot's signed
    intent (`promotion.pending`) names by its key, for the version the intent names; or, with
    no intent naming it, a run begun less than `window_ms` ago (one lease of the model lock:
    the writer of an entry that needs no intent, a change seen outside the bot or an import,
    finishes it under that lease or loses the lock)."""

    key: str = ""
    to_version: int | None = None
    now_ms: int = 0
    window_ms: int = 0

    @classmethod
    def of(cls, state: ModelState, now_ms: int, window_s: float) -> InFlight:
        """The change in flight as the model read (`state`) says, at `now_ms`."""
        pending = state.pending
        key = str(pending.stored.get("ledger") or "") if pending is not None else ""
        to = pending.to_version if pending is not None else None
        return cls(key, to, now_ms, int(window_s * 1000))

    def holds(self, entry: LedgerEntry) -> bool:
        if entry.status != "RUNNING":
            return False
        if self.key and entry.key == self.key and entry.to_version == self.to_version:
            return True
        return abs(self.now_ms - entry.at_ms) < self.window_ms  # clocks of two hosts may differ


def members(oldest_first: Sequence[LedgerEntry], flight: InFlight) -> list[LedgerEntry]:
    """The runs that take part in the chain, oldest first: every FINISHED one, and every one the
    bot signed that is not FINISHED yet was not abandoned by the bot nor is a change in flight
    (a hidden entry: a break). Left out: abandoned runs, changes in flight, runs not FINISHED
    that the bot never signed, and a run written before abandonments were signed (`legacy`)
    that an entry after it chains past (names the entry it followed): the bot then wrote
    the next change without it, as it did for an attempt it marked FAILED."""
    passed = {entry.prev: index for index, entry in enumerate(oldest_first) if entry.trusted}
    return [
        entry
        for index, entry in enumerate(oldest_first)
        if entry.finished
        or (
            entry.hidden
            and not flight.holds(entry)
            and not (entry.legacy and passed.get(entry.prev, -1) > index)
        )
    ]


@dataclass(frozen=True)
class Break:
    """An entry that is not evidence, and why."""

    entry: LedgerEntry
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "ledger_run": self.entry.ledger_run,
            "at": self.entry.at,
            "action": self.entry.action,
            "from": self.entry.from_version,
            "to": self.entry.to_version,
            "kid": self.entry.kid,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        to = f"v{self.entry.to_version}" if self.entry.to_version is not None else "none"
        return (
            f"ledger run {self.entry.ledger_run} ({self.entry.at}, {self.entry.action or '?'} "
            f"to {to}) is not evidence: {self.reason}"
        )


def linked(oldest_first: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """The trusted entries that follow each other, oldest first. The first is taken as it is
    (the one before it may lie outside what was read); a later one that does not name the one
    before it is left out, and the chain goes on from the last one kept."""
    kept: list[LedgerEntry] = []
    for entry in oldest_first:
        if entry.trusted and (not kept or entry.prev == kept[-1].digest):
            kept.append(entry)
    return kept


def walk(
    oldest_first: Sequence[LedgerEntry], flight: InFlight | None = None
) -> tuple[list[LedgerEntry], list[Break]]:
    """A model's whole chain from its first entry, every run whatever its status: the entries
    that are evidence, and a break for every other member (`members`). An unsigned run that a
    signed copy stands for (the bot signed the ledger written before keys existed,
    `supersedes`) is accounted for, not a break. A hidden entry is a break of its own; the
    entry after it may name it or the one before it (one break for one hidden entry)."""
    oldest_first = members(oldest_first, flight or InFlight())
    covered = {entry.supersedes for entry in oldest_first if entry.trusted and entry.supersedes}
    signed_any = any(entry.trusted for entry in oldest_first)
    kept: list[LedgerEntry] = []
    breaks: list[Break] = []
    previous = ""
    hidden: set[str] = set()  # hidden entries since the last one kept: a next entry may name one
    seen: set[str] = set()
    for entry in oldest_first:
        if entry.problem == NOT_SIGNED and entry.ledger_run in covered:
            continue
        if entry.hidden:
            breaks.append(Break(entry, entry.problem))
            hidden.add(entry.digest)
            seen.add(entry.digest)
            continue
        if not entry.trusted:
            before_keys = entry.problem == NOT_SIGNED and not signed_any
            hint = f"; {IMPORT_HINT}" if before_keys else ""
            breaks.append(Break(entry, entry.problem + hint))
            continue
        if entry.prev == previous or entry.prev in hidden:
            kept.append(entry)
            previous = entry.digest
            hidden = set()
        elif not entry.prev or entry.prev in seen:
            breaks.append(Break(entry, REPLAYED))  # the chain goes on from the entry it follows
        else:
            breaks.append(Break(entry, MISSING))
            previous = entry.digest  # one break for one gap: the entries after it follow it
        seen.add(entry.digest)
    return kept, breaks


def vouch(newest_first: Sequence[LedgerEntry], head: Head | None, experiment_id: str) -> str:
    """Why a model's newest entries, read in one search, may not decide its champion ("" when
    they may): each must be a trusted entry that follows the one read after it, and the newest
    must be the head the bot signed into the champion cache (`head`), so nothing was appended,
    dropped or replayed at the top. `newest_first` are the chain's `members` among the runs
    read, whatever their status: an entry hidden by its status is one that is not evidence.
    Entries older than these are not looked at: the whole chain is `walk`'s (what `verify`
    does)."""
    if head is None or head.experiment_id != experiment_id:
        return "the champion cache names no head of the chain the bot signed"
    if not newest_first:
        return "no ledger entry of the model"
    for entry in newest_first:
        if not entry.trusted:
            return f"ledger run {entry.ledger_run} is not evidence: {entry.problem}"
    at = [(entry.digest, entry.at_ms) for entry in newest_first].index
    try:
        place = at((head.digest, head.at_ms))
    except ValueError:
        return (
            f"the head of the chain the bot signed is not among the newest {len(newest_first)} "
            "entries (one was hidden, or an older champion cache written back)"
        )
    if place:
        return (
            f"the newest entry (ledger run {newest_first[0].ledger_run}) is not the head of the "
            "chain the bot signed (a change not in the champion cache yet, or an older cache "
            "written back)"
        )
    for newer, older in pairwise(newest_first):
        if newer.prev != older.digest:
            return f"ledger run {newer.ledger_run} does not follow the entry before it"
    return ""
