"""Where a model's audit ledger lives, set up once (docs/design.md, "The ledger"): the experiment
looked up or created, today's `promotion.history` tag imported into it, and the model's marker
(`promotion.ledger`, signed) written, so that every later change finds the experiment id in the
model read it makes anyway. The experiment is the configured one: a marker the bot did not sign
names nothing (docs/security.md).

A ledger written before keys existed is signed once, trusted on first use: while the model has
no signed entry of a change the bot made, its unsigned entries are copied, oldest first, into
signed entries marked `imported` that name the run they stand for (`supersedes`), and chained
from there. Once the bot has signed a change of its own, no unsigned run is ever imported again:
it is reported (`bot.ledger.chain`).

The import is idempotent: each tag entry's run carries a key made of the model and the entry's
content (and which copy it is, for an entry written twice), not its place in the tag, which
shifts as the tag drops its oldest entries; so an import killed halfway, or repeated after the
marker was lost, is finished without a second copy. The tag itself stays, as the recent cache
the exactly-once checks read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import replace

from bot.ledger.entry import Approver, Evidence, LedgerEntry
from bot.ledger.store import Guard, Ledger, Where, quoted, unguarded
from bot.registry.model_state import ModelState
from bot.registry.records import HistoryEntry
from bot.registry.tags import LEDGER_KEY_TAG, LEDGER_TAG
from bot.registry.versions import RunRecord
from bot.signing import NOT_SIGNED
from bot.timestamps import ms_from_iso

log = logging.getLogger(__name__)


def prepare(ledger: Ledger, model: str, state: ModelState, guard: Guard = unguarded) -> str:
    """The experiment id for writing `model`'s entries: from the model's marker, no call.

    The first time (and after PROMOTION_BOT_LEDGER_EXPERIMENT changed) the experiment is looked
    up or created, the history tag imported and the marker written. Under the model lock:
    `guard` runs before each write.
    """
    found = ledger.ready(state, model)
    if found:
        return found
    experiment_id = ledger.registry.experiment_id(ledger.experiment)
    entries = ledger.chain(experiment_id, model)
    imported = 0
    if not any(entry.trusted and not entry.imported for entry in entries):
        imported = import_history(ledger, experiment_id, model, state.unchecked_history, guard)
        imported += sign_unsigned(ledger, experiment_id, model, guard)
    guard()
    ledger.registry.set_model_tag(model, LEDGER_TAG, ledger.marker(model, experiment_id))
    log.info("the ledger of %s: experiment %s, %d entries imported", model, experiment_id, imported)
    return experiment_id


def sign_unsigned(ledger: Ledger, experiment_id: str, model: str, guard: Guard = unguarded) -> int:
    """Sign the model's entries written before keys existed (the caller made sure the bot has
    signed no change of its own yet): each unsigned one copied, oldest first, into a signed
    entry marked `imported`, unless a signed copy stands for it already. The number written."""
    entries = ledger.chain(experiment_id, model)
    covered = {entry.supersedes for entry in entries if entry.trusted and entry.supersedes}
    written = 0
    for entry in entries:
        if entry.problem != NOT_SIGNED or entry.ledger_run in covered:
            continue
        copy = replace(entry, imported=True, supersedes=entry.ledger_run, ledger_run="")
        ledger.record(
            experiment_id, replace(copy, deleted=False), f"signed:{entry.ledger_run}", guard
        )
        written += 1
    return written


def import_history(
    ledger: Ledger,
    experiment_id: str,
    model: str,
    history: Sequence[HistoryEntry],
    guard: Guard = unguarded,
) -> int:
    """Copy `history` (oldest first) into the ledger; the number of entries written now."""
    if not history:
        return 0
    prefix = f"import:{model}:"
    begun = {run.tags.get(LEDGER_KEY_TAG, ""): run for run in _begun(ledger, experiment_id, prefix)}
    # Changes the ledger has from the bot itself (the model's marker was lost, and the tag holds
    # changes made since the first import): never copied.
    made = {
        (entry.comment_id, entry.to_version)
        for entry in ledger.entries(experiment_id, Where(model=model))
        if entry.comment_id and not entry.imported
    }
    written = 0
    previous_ms = 0
    seen: dict[str, int] = {}  # the same entry twice in the tag is two entries
    for old in history:
        entry = imported_entry(model, old, previous_ms)
        previous_ms = entry.at_ms
        seen[entry.original] = seen.get(entry.original, 0) + 1
        key = prefix + _digest(model, seen[entry.original], entry.original)
        run = begun.get(key)
        if old.comment_id and (old.comment_id, old.to_version) in made:
            continue
        if run is None:
            ledger.record(experiment_id, entry, key, guard)
            written += 1
        elif run.status != "FINISHED" or not run.params.get("model"):
            ledger.complete(experiment_id, run, entry, guard)
    return written


def imported_entry(model: str, old: HistoryEntry, previous_ms: int) -> LedgerEntry:
    """A ledger entry of a tag entry; its time, when unreadable or not after the one before,
    is 1 ms after that one (the tag is in order, and the ledger orders by time)."""
    stored = dict(old.stored)
    action = stored.get("action")
    at_ms = ms_from_iso(old.at) if old.at else None
    return LedgerEntry(
        model=model,
        action=action if isinstance(action, str) else "",
        from_version=old.from_version,
        to_version=old.to_version,
        at_ms=max(at_ms or 0, previous_ms + 1),
        actor=old.actor,
        reason=old.reason,
        request_url=old.request_url,
        comment_id=old.comment_id,
        evidence=Evidence(approvers=(Approver(old.actor),) if old.actor else ()),
        imported=True,
        original=json.dumps(stored, separators=(",", ":"), ensure_ascii=False, sort_keys=True),
    )


def _begun(ledger: Ledger, experiment_id: str, prefix: str) -> list[RunRecord]:
    """Every run an earlier (perhaps interrupted) import of this model began."""
    query = f"tags.`{LEDGER_KEY_TAG}` LIKE '{quoted(prefix)}%'"
    runs: list[RunRecord] = []
    token: str | None = None
    while True:
        page, token = ledger.registry.search_runs([experiment_id], query, page_token=token)
        runs += page
        if not token:
            return runs


def _digest(model: str, copy: int, original: str) -> str:
    return hashlib.sha256(f"{model}\0{copy}\0{original}".encode()).hexdigest()[:24]
