"""The chain of a model's ledger entries (docs/security.md, "The registry writer"): each signed
entry names the digest of the one before it (`prev`), so an entry deleted, inserted, reordered,
replayed or extended after signing shows as a break, and only entries that follow each other are
evidence.

Pure: the entries come from `bot.ledger.store`, their seals already checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.ledger.entry import LedgerEntry
from bot.signing import NOT_SIGNED

REPLAYED = "out of the chain: it follows an earlier entry again (inserted, copied or reordered)"
IMPORT_HINT = "; `promotion-bot import-ledger` signs the runs written before keys"
MISSING = "out of the chain: the entry before it is missing (deleted, or no longer FINISHED)"


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


def walk(oldest_first: Sequence[LedgerEntry]) -> tuple[list[LedgerEntry], list[Break]]:
    """A model's whole chain from its first entry: the entries that are evidence, and a break
    for every other one. An unsigned run that a signed copy stands for (the operator's import
    signed the ledger written before keys existed, `supersedes`) is accounted for, not a break."""
    covered = {entry.supersedes for entry in oldest_first if entry.trusted and entry.supersedes}
    signed_any = any(entry.trusted for entry in oldest_first)
    kept: list[LedgerEntry] = []
    breaks: list[Break] = []
    previous = ""
    seen: set[str] = set()
    for entry in oldest_first:
        if entry.problem == NOT_SIGNED and entry.ledger_run in covered:
            continue
        if not entry.trusted:
            hint = (
                "" if signed_any else "; `promotion-bot import-ledger` signs runs from before keys"
            )
            breaks.append(Break(entry, entry.problem + hint))
            continue
        if entry.prev == previous:
            kept.append(entry)
            previous = entry.digest
        elif not entry.prev or entry.prev in seen:
            breaks.append(Break(entry, REPLAYED))  # the chain goes on from the entry it follows
        else:
            breaks.append(Break(entry, MISSING))
            previous = entry.digest  # one break for one gap: the entries after it follow it
        seen.add(entry.digest)
    return kept, breaks
