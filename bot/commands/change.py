"""The champion change itself (docs/design.md, "The change"), made crash-safe with an intent.

Sequence: re-read champion ("from") -> write `promotion.pending` (intent, with the key of its
ledger run) -> begin the ledger run (RUNNING, the full approval snapshot) -> set alias -> read
back -> commit the ledger run (FINISHED) -> version tags -> append the history cache, which marks
the intent done. A process killed anywhere leaves either no alias change (the next pass drops
the intent and marks its run FAILED) or an alias change whose intent lets the next pass finish
the record from the run it began: never a change without a record, never two.

`guard` runs before every write: the lease's check (bot.commands.locking). A holder whose lease
was lost stops there with LockLost and writes nothing more; whoever holds the lock next finds
its intent and settles it, so a paused holder can neither finish a stale change nor record one
twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from bot.errors import RegistryError
from bot.ledger.entry import Evidence, LedgerEntry
from bot.ledger.setup import prepare
from bot.ledger.store import Guard, Ledger, new_key, now_ms, unguarded
from bot.registry.client import Registry
from bot.registry.model_state import Head, ModelState
from bot.registry.records import Change, HistoryEntry
from bot.registry.tags import CHAMPION_SINCE_TAG, PROMOTED_BY_TAG, REQUEST_URL_TAG
from bot.timestamps import ms_from_iso

log = logging.getLogger(__name__)


class ChangeFailed(RegistryError):
    """The registry failed mid-change; `alias_touched`: the alias may have moved."""

    def __init__(self, message: str, alias_touched: bool) -> None:
        super().__init__(message)
        self.alias_touched = alias_touched


def move_champion(
    registry: Registry,
    alias: str,
    change: Change,
    state: ModelState | None = None,
    guard: Guard = unguarded,
    *,
    ledger: Ledger,
    evidence: Evidence | None = None,
) -> Change:
    """Move `alias` to change.to_version and record it; the caller holds the model lock.

    `state` is the model as the caller read it under that lock; its history saves a re-read.
    The champion itself is re-read here: someone may have moved it in the MLflow UI
    while the command was being checked, and "from" must be what it really was. `evidence`
    is what the change was approved on: the ledger entry keeps it.
    """
    try:
        state = registry.state(change.model) if state is None else state
        now = registry.state(change.model)  # the champion, and the champion cache, as they are
        current = now.aliases.get(alias)
        change = replace(change, from_version=current)
        set_up = bool(ledger.ready(now, change.model))
        experiment_id = prepare(ledger, change.model, now, guard)  # no call once set up
        # The chain's head from the cache this read vouches for; else one search (store.py).
        head = now.chain_head(experiment_id, alias) if set_up else None
        key = new_key()
        entry = LedgerEntry.of_change(change, evidence or Evidence(), now_ms())
        guard()
        registry.set_pending(change.model, change.entry(), key)
        # The run begins under the intent: a later pass finds it by the key.
        run_id, made = ledger.begin_chained(experiment_id, entry, key, guard, head or True)
    except RegistryError as exc:
        raise ChangeFailed(str(exc), alias_touched=False) from None
    guard()  # the last moment a lost lease can still stop the change itself
    try:
        registry.set_alias(change.model, alias, change.to_version)
    except RegistryError as exc:
        # A refused or lost write usually left the alias where it was: if a read-back proves
        # that, the command can be answered as failed (and repeated). The intent stays, so a
        # write that still lands late is recorded by the next pass instead of going unrecorded.
        touched = _alias_may_have_moved(registry, change.model, alias, current)
        raise ChangeFailed(str(exc), alias_touched=touched) from None
    guard()  # a read-back made after losing the lease would describe another holder's change
    try:
        if registry.aliases(change.model).get(alias) != change.to_version:
            raise RegistryError(f"{change.model}@{alias} did not read back as v{change.to_version}")
        ledger.commit(run_id, guard)  # the change happened: from now on an entry of the ledger
        _record(registry, change, state.history, guard, made)
    except RegistryError as exc:
        raise ChangeFailed(str(exc), alias_touched=True) from None
    return replace(change, ledger_run=run_id)


def _alias_may_have_moved(registry: Registry, model: str, alias: str, before: int | None) -> bool:
    try:
        return registry.aliases(model).get(alias) != before
    except RegistryError:
        return True  # cannot tell: leave it to the next pass, which reads the intent


def _record(
    registry: Registry,
    change: Change,
    history: Sequence[HistoryEntry] | None = None,
    guard: Guard = unguarded,
    head: Head | None = None,
) -> None:
    version = change.to_version
    guard()
    registry.set_version_tag(change.model, version, CHAMPION_SINCE_TAG, change.at)
    registry.set_version_tag(change.model, version, PROMOTED_BY_TAG, change.actor)
    if change.request_url:
        registry.set_version_tag(change.model, version, REQUEST_URL_TAG, change.request_url)
    # `history` was read under this lease: appended to after losing it, it would drop the
    # entries another holder wrote since (or add this one twice). Holding the entry marks the
    # intent done (ModelState.pending), so the intent is not deleted: one call less.
    guard()
    registry.append_history(change.model, change.entry(), known=history, head=head)


def recover_pending(
    registry: Registry,
    model: str,
    alias: str,
    state: ModelState,
    guard: Guard,
    ledger: Ledger,
) -> ModelState:
    """Finish or drop an intent left by a process that died mid-change.

    `state` is the model as read under the lock. A change that happened is recorded now; an
    intent whose alias never moved is dropped. Returns the model state after that (the same
    object when nothing was pending).
    """
    pending = state.pending
    if pending is None:
        return state
    _settle(registry, ledger, model, alias, state, pending, guard)
    return registry.state(model)


def _settle(
    registry: Registry,
    ledger: Ledger,
    model: str,
    alias: str,
    state: ModelState,
    pending: HistoryEntry,
    guard: Guard,
) -> None:
    change = pending.change(model)
    if change is None:
        log.warning("dropping an unreadable pending change of %s", model)
        guard()
        registry.clear_pending(model)
        return
    # The only search of the ledger a change needs, and only here: the run the dead pass began.
    experiment_id = prepare(ledger, model, state, guard)
    key = str(pending.stored.get("ledger") or "")
    runs = ledger.runs_keyed(experiment_id, key) if key else []
    committed = any(run.status == "FINISHED" and run.params.get("model") for run in runs)
    if state.aliases.get(alias) == change.to_version or committed:
        # Committed means the alias read back as moved; a hand move since does not undo that.
        log.warning(
            "finishing the record of an interrupted change: %s v%s", model, change.to_version
        )
        entry = LedgerEntry.of_change(change, Evidence(), ms_from_iso(change.at) or 0)
        head: Head | None
        if runs:  # the snapshot the dead pass logged, if it landed
            head = ledger.complete(experiment_id, runs[0], entry, guard)
        else:  # an intent of a version before the ledger, or a run someone purged
            _run, head = ledger.record_chained(experiment_id, entry, key or new_key(), guard)
        _record(registry, change, state.history, guard, head)
        return
    for run in runs:  # the alias never moved: the change never happened
        if run.status == "RUNNING":
            ledger.abandon(run, guard)
    guard()
    registry.clear_pending(model)


def find_recorded(
    state: ModelState, model: str, comment_id: str, request_url: str
) -> Change | None:
    """The change a comment already caused, if the history has it (exactly-once across passes)."""
    for entry in reversed(state.history):
        if entry.caused_by(comment_id, request_url):
            return entry.change(model)
    return None
