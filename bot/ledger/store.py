"""The audit ledger: one MLflow run per champion change, in one experiment for every model of the
registry (docs/design.md, "The ledger").

A run's params are the entry (`bot.ledger.entry`): MLflow refuses to change a logged param, so
an entry cannot be rewritten. Its start time is the change's time, so `search_runs` filters and
orders by time natively, newest first, a page at a time. Its status says whether the change
happened: a run begins RUNNING with the intent of a change, before the alias moves, and becomes
FINISHED once the alias read back as moved, or FAILED when the move never happened, with the
bot's signed abandonment in a tag. The evidence readers (`latest`, `newest`, `history`) read
FINISHED runs only; the chain's readers (`verify`'s walk, the status page's bounded check) read
every run whatever its status, since anyone can set a status: a signed entry FAILED without the
bot's abandonment is a break (bot.ledger.chain). Deleted runs are read too (flagged): deleting
a run in MLflow hides nothing from `history`. Runs are not tied to the registered model, so the
ledger outlives a deleted model.

Every entry is signed and chained (docs/security.md): a new one names the digest of the model's
newest trusted entry as `prev`. A change takes that head from the signed champion cache it read
anyway (`bot.registry.model_state.Head`), and searches for it only when the cache cannot vouch
for it: missing, not signed, or written before something happened since. Reads check every
seal; only a trusted entry is evidence (`newest`, `latest`), while `entries` lists them all for
people. The ledger's place is configuration (PROMOTION_BOT_LEDGER_EXPERIMENT): the model's
`promotion.ledger` marker only saves the lookup of its id, and only when the bot signed it.

Every write goes through `bot.registry.client.Registry`, the only module that imports MLflow.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from bot.config.settings import DEFAULT_LEDGER_EXPERIMENT
from bot.errors import RegistryError
from bot.ledger.chain import linked
from bot.ledger.entry import EXTERNAL, LedgerEntry, abandonment
from bot.registry.client import Registry
from bot.registry.model_state import Head, ModelState, compact_json
from bot.registry.tags import ABANDONED_TAG, LEDGER_KEY_TAG, LEDGER_TAG
from bot.registry.versions import RunRecord
from bot.signing import Keys, digest

log = logging.getLogger(__name__)

PAGE = 1000  # runs per search call (MLflow's default page)
_NEWEST_FIRST = ("attributes.start_time DESC",)
_OLDEST_FIRST = ("attributes.start_time ASC",)

# Runs before each write made under the model lock: the lease's check (bot.commands.locking),
# which raises LockLost once the lease is gone. Every writer under the lock takes one.
Guard = Callable[[], None]


def unguarded() -> None:
    """The Guard of a writer that holds no lock (tests, the CLI's one-off repairs)."""
    return None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_key() -> str:
    """The token of one intent: the key of the ledger run it begins."""
    return f"intent:{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Where:
    """Which entries a query reads: one model or all, a time range, one `to`, approved only;
    FINISHED runs only (the evidence readers), or every run whatever its status (`finished`
    False: the chain's readers, which must see an entry someone marked FAILED)."""

    model: str = ""
    since_ms: int | None = None
    until_ms: int | None = None
    to_version: int | None = None
    approved: bool = False
    finished: bool = True

    def filter(self) -> str:
        parts = ["attributes.status = 'FINISHED'"] if self.finished else []
        if self.model:
            parts.append(f"params.model = '{quoted(self.model)}'")
        if self.since_ms is not None:
            parts.append(f"attributes.start_time >= {int(self.since_ms)}")
        if self.until_ms is not None:
            parts.append(f"attributes.start_time <= {int(self.until_ms)}")
        if self.to_version is not None:
            parts.append(f"params.to = '{int(self.to_version)}'")
        if self.approved:
            parts.append(f"params.action != '{EXTERNAL}'")
        return " and ".join(parts)


class Ledger:
    def __init__(
        self, registry: Registry, keys: Keys, experiment: str = DEFAULT_LEDGER_EXPERIMENT
    ) -> None:
        self.registry = registry
        self.keys = keys
        self.experiment = experiment

    # --- where it lives ----------------------------------------------------------------------
    def experiment_id(self) -> str:
        """The ledger's experiment, for reading ("": nothing was ever recorded)."""
        return self.registry.experiment_id(self.experiment, create=False)

    def ready(self, state: ModelState, model: str) -> str:
        """The experiment id of the model's marker, when the bot signed it for this model and
        the configured experiment ("" if not: a marker anyone else wrote names nothing)."""
        try:
            value = json.loads(state.tags.get(LEDGER_TAG) or "{}")
        except ValueError:
            return ""
        if not isinstance(value, dict):
            return ""
        fields, problem = self.keys.opened(value)
        if problem or fields.get("experiment") != self.experiment or fields.get("model") != model:
            return ""
        experiment_id = fields.get("experiment_id")
        return experiment_id if isinstance(experiment_id, str) else ""

    def marker(self, model: str, experiment_id: str) -> str:
        """The `promotion.ledger` tag: where the model's entries are, signed."""
        fields = {"experiment": self.experiment, "experiment_id": experiment_id, "model": model}
        return compact_json(self.keys.signed(fields))

    # --- writing -----------------------------------------------------------------------------
    # Every write takes `guard`, the lease's check (bot.commands.locking), and runs it first.
    def begin(
        self,
        experiment_id: str,
        entry: LedgerEntry,
        key: str,
        guard: Guard = unguarded,
        head: Head | LedgerEntry | bool | None = True,
    ) -> str:
        """The run of a change about to be made (RUNNING): the entry in full, signed and chained
        to `head` (True: the model's newest trusted entry, looked up: one search). Two calls."""
        return self.begin_chained(experiment_id, entry, key, guard, head)[0]

    def begin_chained(
        self,
        experiment_id: str,
        entry: LedgerEntry,
        key: str,
        guard: Guard = unguarded,
        head: Head | LedgerEntry | bool | None = True,
    ) -> tuple[str, Head]:
        """`begin`, and the chain's head once the run is committed: what the champion cache
        keeps for the next change."""
        sealed, params = self.sealed(experiment_id, entry, head)
        tags = {LEDGER_KEY_TAG: key, "mlflow.user": "promotion-bot"}
        guard()
        run_id = self.registry.create_run(experiment_id, sealed.at_ms, sealed.run_name(), tags)
        guard()
        self.registry.log_params(run_id, params)
        return run_id, Head(sealed.digest, sealed.at_ms, experiment_id)

    def sealed(
        self,
        experiment_id: str,
        entry: LedgerEntry,
        head: Head | LedgerEntry | bool | None = True,
    ) -> tuple[LedgerEntry, dict[str, str]]:
        """`entry` chained after `head` and signed, and its params. Its time is after the
        head's: the ledger orders by time, and the chain must read in that order."""
        if head is True:
            head = self.head(experiment_id, entry.model)
        if isinstance(head, (LedgerEntry, Head)):
            entry = replace(entry, prev=head.digest, at_ms=max(entry.at_ms, head.at_ms + 1))
        else:
            entry = replace(entry, prev="")
        return entry.sealed(self.keys)

    def head(self, experiment_id: str, model: str) -> LedgerEntry | None:
        """The model's newest trusted entry in the chain, what the next one follows."""
        return self.latest(experiment_id, Where(model=model))

    def commit(self, run_id: str, guard: Guard = unguarded) -> None:
        """The change happened: the run is FINISHED, and from now on an entry of the ledger."""
        guard()
        self.registry.finish_run(run_id, "FINISHED", now_ms())

    def abandon(self, run: RunRecord, guard: Guard = unguarded) -> None:
        """The change never happened: the run stays, FAILED, out of the chain, with the bot's
        signed abandonment (its seal over the run's id and its entry) in a tag, written first:
        a pass killed between the two leaves the run RUNNING under its intent, and the next pass
        abandons it again. Two calls. A FAILED run without that seal is a break."""
        seal = self.keys.seal(abandonment(run.run_id, digest(run.params)))
        guard()
        self.registry.set_run_tag(run.run_id, ABANDONED_TAG, compact_json(seal))
        guard()
        self.registry.finish_run(run.run_id, "FAILED", now_ms())

    def record(
        self,
        experiment_id: str,
        entry: LedgerEntry,
        key: str,
        guard: Guard = unguarded,
        head: Head | LedgerEntry | bool | None = True,
    ) -> str:
        """An entry of something already done (seen from outside, imported): four calls (three
        when `head` is given)."""
        return self.record_chained(experiment_id, entry, key, guard, head)[0]

    def record_chained(
        self,
        experiment_id: str,
        entry: LedgerEntry,
        key: str,
        guard: Guard = unguarded,
        head: Head | LedgerEntry | bool | None = True,
    ) -> tuple[str, Head]:
        """`record`, and the chain's head it made."""
        run_id, made = self.begin_chained(experiment_id, entry, key, guard, head)
        self.commit(run_id, guard)
        return run_id, made

    def complete(
        self, experiment_id: str, run: RunRecord, entry: LedgerEntry, guard: Guard = unguarded
    ) -> Head | None:
        """Finish a run a dead pass began: its params if they never landed (signed and chained
        now, at the time the run began), then FINISHED. The chain's head it is, when it is
        evidence (None: a run someone else keyed; the next writer searches)."""
        if not run.params.get("model"):
            sealed, params = self.sealed(experiment_id, replace(entry, at_ms=run.start_ms))
            guard()
            self.registry.log_params(run.run_id, params)
            made: Head | None = Head(sealed.digest, sealed.at_ms, experiment_id)
        else:
            found = LedgerEntry.from_run(run, self.keys)
            trusted = found is not None and found.trusted
            made = Head(digest(run.params), run.start_ms, experiment_id) if trusted else None
        if run.status != "FINISHED":
            self.commit(run.run_id, guard)
        return made

    def runs_keyed(self, experiment_id: str, key: str) -> list[RunRecord]:
        """The runs a key began, whatever their state (recovery only: one search)."""
        query = f"tags.`{LEDGER_KEY_TAG}` = '{quoted(key)}'"
        runs, _ = self.registry.search_runs([experiment_id], query, max_results=10)
        return runs

    # --- reading -----------------------------------------------------------------------------
    def entries(
        self,
        experiment_id: str,
        where: Where,
        limit: int | None = None,
        page_size: int = PAGE,
        *,
        trusted: bool = False,
        oldest_first: bool = False,
    ) -> Iterator[LedgerEntry]:
        """Entries newest first (or oldest first), a page at a time, up to `limit`, each with its
        seal checked; `trusted`: only the ones a trusted key signed (evidence)."""
        token: str | None = None
        given = skipped = 0
        while True:
            # Pages as small as the limit, until an entry that is not evidence was skipped.
            size = page_size if limit is None or skipped else min(page_size, limit - given)
            runs, token = self.registry.search_runs(
                [experiment_id],
                where.filter(),
                order_by=_OLDEST_FIRST if oldest_first else _NEWEST_FIRST,
                max_results=size,
                page_token=token,
            )
            for run in runs:
                entry = LedgerEntry.from_run(run, self.keys)
                if entry is not None and (entry.trusted or not trusted):
                    given += 1
                    yield entry
                    if limit is not None and given >= limit:
                        return
                elif entry is not None:
                    skipped += 1
            if not token:
                return

    def earliest(self, experiment_id: str, where: Where, count: int = 20) -> list[LedgerEntry]:
        """The oldest `count` entries `where` admits, oldest first: one search call."""
        runs, _ = self.registry.search_runs(
            [experiment_id], where.filter(), order_by=_OLDEST_FIRST, max_results=count
        )
        return [entry for entry in map(LedgerEntry.from_run, runs) if entry is not None]

    def latest(self, experiment_id: str, where: Where) -> LedgerEntry | None:
        """The newest trusted entry `where` admits: one search call, unless newer ones are not
        evidence."""
        return next(self.entries(experiment_id, where, limit=1, trusted=True), None)

    def newest(self, experiment_id: str, model: str, count: int = 20) -> list[LedgerEntry]:
        """The model's newest `count` trusted entries that follow each other in its chain,
        newest first: one search call."""
        found = list(self.entries(experiment_id, Where(model=model), limit=count, trusted=True))
        return linked(found[::-1])[::-1]

    def chain(self, experiment_id: str, model: str, *, finished: bool = True) -> list[LedgerEntry]:
        """Every entry of the model, trusted or not, oldest first; with `finished` False every
        run whatever its status: what `verify` walks."""
        where = Where(model=model, finished=finished)
        return list(self.entries(experiment_id, where, oldest_first=True))


def last_and_approved(
    ledger: Ledger, experiment_id: str, model: str
) -> tuple[LedgerEntry | None, LedgerEntry | None]:
    """The model's newest entry, and its newest approved one: one search, a second only when
    the newest 20 are all changes seen from outside."""
    newest = ledger.newest(experiment_id, model)
    approved = next((entry for entry in newest if entry.approved), None)
    if approved is None and len(newest) == 20:
        approved = ledger.latest(experiment_id, Where(model=model, approved=True))
    return (newest[0] if newest else None), approved


def quoted(value: str) -> str:
    """A value inside a search filter's quotes: MLflow's filter syntax has no escape."""
    if "'" in value or "\\" in value:
        raise RegistryError(f"{value!r} cannot be searched for (a quote or backslash)")
    return value
