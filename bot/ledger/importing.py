"""The import of a model's history written before keys, an operator's step
(`promotion-bot import-ledger`; docs/security.md, "The registry writer and the signing key").

What it imports is found in MLflow, where anyone who may write to the registry could have put
it, so the bot never imports on its own: it names what waits (`waiting`: `prepare` logs it,
`verify` and `status` say it) and the operator, having checked each entry against the request
threads, imports it. Two sources: the `promotion.history` tag (each entry copied into a signed
entry marked `imported`, keyed by its content: `import_history`) and the ledger's unsigned runs
(each copied into a signed entry marked `imported` that names the run it stands for,
`supersedes`: `sign_unsigned`). Both only while the model has no signed entry of a change the bot
made: once it has, nothing is imported again, and an unsigned run is reported
(`bot.ledger.chain`).

The import is idempotent: each tag entry's run carries a key made of the model and the entry's
content (and which copy it is, for an entry written twice), not its place in the tag, which
shifts as the tag drops its oldest entries; so an import killed halfway, or repeated, is
finished without a second copy. The tag itself stays, as the recent cache the exactly-once
checks read.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.errors import BotError, NotFoundError
from bot.ledger.drift import recorded
from bot.ledger.entry import Approver, Evidence, LedgerEntry
from bot.ledger.store import Guard, Ledger, quoted, unguarded
from bot.registry.model_state import ModelState
from bot.registry.records import HistoryEntry
from bot.registry.tags import HISTORY_TAG, LEDGER_KEY_TAG, LEDGER_TAG, PENDING_TAG
from bot.registry.versions import RunRecord
from bot.signing import NOT_SIGNED
from bot.timestamps import ms_from_iso

COMMAND = "promotion-bot import-ledger"


class ImportRefused(BotError):
    """The model's ledger holds a signed entry of the bot's own: nothing is imported."""


@dataclass(frozen=True)
class Waiting:
    """What an import of a model would write, found in MLflow and not evidence until then."""

    model: str
    history: tuple[LedgerEntry, ...] = ()  # the tag's entries, as the import writes them
    unsigned: tuple[LedgerEntry, ...] = ()  # unsigned ledger runs no signed entry stands for

    @property
    def entries(self) -> list[LedgerEntry]:
        """Everything, oldest first."""
        return sorted([*self.history, *self.unsigned], key=lambda entry: entry.at_ms)

    def __bool__(self) -> bool:
        return bool(self.history or self.unsigned)

    def notice(self) -> str:
        """The one line that names it and the command (`prepare`'s warning, `verify`, `status`)."""
        found = [
            f"{len(self.history)} in the {HISTORY_TAG} tag" if self.history else "",
            f"{len(self.unsigned)} unsigned ledger run(s)" if self.unsigned else "",
        ]
        return (
            f"{len(self.history) + len(self.unsigned)} change(s) from before signing keys "
            f"({' and '.join(part for part in found if part)}) are not in the signed ledger: "
            f"check them against the request threads, then run `{COMMAND} --model {self.model}`"
        )


def made_by_the_bot(chain: Sequence[LedgerEntry]) -> bool:
    """The model has a signed entry of the bot's own (a change it made, or one it saw made
    outside it, or one it abandoned): nothing is imported any more. Read over every run
    whatever its status: an entry someone marked FAILED is still the bot's (`signed`)."""
    return any((entry.trusted or entry.signed) and not entry.imported for entry in chain)


def waiting(model: str, state: ModelState, chain: Sequence[LedgerEntry]) -> Waiting:
    """What `import_ledger` would write now, from the model read and its chain (oldest first):
    no call. Nothing once the bot has signed a change of its own, which is asked of every run
    in `chain` whatever its status; what waits, only of the FINISHED ones (an unsigned run
    marked FAILED is kept out of the import)."""
    if made_by_the_bot(chain):
        return Waiting(model)
    chain = [entry for entry in chain if entry.finished]
    covered = {entry.supersedes for entry in chain if entry.trusted and entry.supersedes}
    unsigned = tuple(
        entry for entry in chain if entry.problem == NOT_SIGNED and entry.ledger_run not in covered
    )
    done = Counter(entry.original for entry in chain if entry.trusted and entry.imported)
    made = _made(chain)
    history: list[LedgerEntry] = []
    for old, entry, copy in _as_imported(model, state.unchecked_history):
        if old.comment_id and (old.comment_id, old.to_version) in made:
            continue
        if done[entry.original] < copy:
            history.append(entry)
    return Waiting(model, tuple(history), unsigned)


def import_ledger(
    ledger: Ledger, model: str, state: ModelState, guard: Guard = unguarded, dry_run: bool = False
) -> Waiting:
    """The operator's import of `model`'s history from before keys, under the model lock
    (`guard`): what it wrote (with `dry_run`, would write, writing nothing). Then the model's
    marker, as `prepare` writes it. Raises ImportRefused once the bot has signed a change of its
    own."""
    if not state.aliases and not state.tags and not ledger.registry.model_exists(model):
        raise NotFoundError(f"no registered model {model!r} in the registry")
    experiment_id = ledger.registry.experiment_id(ledger.experiment, create=not dry_run)
    chain = ledger.chain(experiment_id, model, finished=False) if experiment_id else []
    if made_by_the_bot(chain):
        raise ImportRefused(
            f"{model}: nothing imported: the ledger ({ledger.experiment}) already holds an entry "
            "the bot signed of its own (a change it made, or saw made outside it), and history "
            "from before keys is imported only before the first; `verify` names what stays "
            "unsigned"
        )
    found = waiting(model, state, chain)
    if dry_run:
        return found
    import_history(ledger, experiment_id, model, state.unchecked_history, guard)
    sign_unsigned(ledger, experiment_id, model, guard)
    if _done_intent_before_keys(state, found):
        guard()  # the intent a version before keys left: its change is imported, not in flight
        ledger.registry.delete_model_tag(model, PENDING_TAG)
    if not ledger.ready(state, model):
        guard()
        ledger.registry.set_model_tag(model, LEDGER_TAG, ledger.marker(model, experiment_id))
    return found


def _done_intent_before_keys(state: ModelState, found: Waiting) -> bool:
    """The model's intent tag is unsigned (a version before keys wrote it, and left it, as the
    bot does once a change is done) and names a change among those imported: then it is no
    change in flight, only a tag every later pass would report as a record the bot did not
    write. An intent of a change that is not imported stays, for the operator to look at."""
    intent = state.unchecked_intent
    if intent is None or state.intent_problem != NOT_SIGNED:
        return False
    return any(recorded(entry, intent) for entry in found.entries)


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
    # Changes the ledger has already, from the bot itself (a version before keys recorded them
    # in both places): never copied twice.
    made = _made(ledger.chain(experiment_id, model))
    written = 0
    for old, entry, copy in _as_imported(model, history):
        key = prefix + _digest(model, copy, entry.original)
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


def _as_imported(
    model: str, history: Sequence[HistoryEntry]
) -> list[tuple[HistoryEntry, LedgerEntry, int]]:
    """Each tag entry, its ledger entry and which copy of that content it is (1, 2, ...: the
    same entry twice in the tag is two entries)."""
    found = []
    previous_ms = 0
    seen: Counter[str] = Counter()
    for old in history:
        entry = imported_entry(model, old, previous_ms)
        previous_ms = entry.at_ms
        seen[entry.original] += 1
        found.append((old, entry, seen[entry.original]))
    return found


def _made(chain: Sequence[LedgerEntry]) -> set[tuple[str, int | None]]:
    return {
        (entry.comment_id, entry.to_version)
        for entry in chain
        if entry.comment_id and not entry.imported
    }


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
