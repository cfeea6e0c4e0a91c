"""The audit ledger: one MLflow run per champion change, in one experiment for every model of the
registry (docs/design.md, "The ledger").

A run's params are the entry (`bot.ledger.entry`): MLflow refuses to change a logged param, so
an entry cannot be rewritten. Its start time is the change's time, so `search_runs` filters and
orders by time natively, newest first, a page at a time. Its status says whether the change
happened: a run begins RUNNING with the intent of a change, before the alias moves, and becomes
FINISHED once the alias read back as moved, or FAILED when the move never happened. Queries read
FINISHED runs only, deleted ones included (flagged): deleting a run in MLflow hides nothing from
`history`. Runs are not tied to the registered model, so the ledger outlives a deleted model.

Every write goes through `bot.registry.client.Registry`, the only module that imports MLflow.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bot.config.settings import DEFAULT_LEDGER_EXPERIMENT
from bot.errors import RegistryError
from bot.ledger.entry import EXTERNAL, LedgerEntry
from bot.registry.client import Registry
from bot.registry.model_state import ModelState
from bot.registry.tags import LEDGER_KEY_TAG
from bot.registry.versions import RunRecord

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
    """Which entries a query reads: one model or all, a time range, one `to`, approved only."""

    model: str = ""
    since_ms: int | None = None
    until_ms: int | None = None
    to_version: int | None = None
    approved: bool = False

    def filter(self) -> str:
        parts = ["attributes.status = 'FINISHED'"]
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
    def __init__(self, registry: Registry, experiment: str = DEFAULT_LEDGER_EXPERIMENT) -> None:
        self.registry = registry
        self.experiment = experiment

    # --- where it lives ----------------------------------------------------------------------
    def experiment_id(self) -> str:
        """The ledger's experiment, for reading ("": nothing was ever recorded)."""
        return self.registry.experiment_id(self.experiment, create=False)

    def ready(self, state: ModelState) -> str:
        """The experiment id the model's marker names, when it names this ledger ("" if not)."""
        name, experiment_id = state.ledger
        return experiment_id if name == self.experiment else ""

    # --- writing -----------------------------------------------------------------------------
    # Every write takes `guard`, the lease's check (bot.commands.locking), and runs it first.
    def begin(
        self, experiment_id: str, entry: LedgerEntry, key: str, guard: Guard = unguarded
    ) -> str:
        """The run of a change about to be made (RUNNING): two calls, the entry in full."""
        tags = {LEDGER_KEY_TAG: key, "mlflow.user": "promotion-bot"}
        guard()
        run_id = self.registry.create_run(experiment_id, entry.at_ms, entry.run_name(), tags)
        guard()
        self.registry.log_params(run_id, entry.to_params())
        return run_id

    def commit(self, run_id: str, guard: Guard = unguarded) -> None:
        """The change happened: the run is FINISHED, and from now on an entry of the ledger."""
        guard()
        self.registry.finish_run(run_id, "FINISHED", now_ms())

    def abandon(self, run_id: str, guard: Guard = unguarded) -> None:
        """The change never happened: the run stays, FAILED, out of every query."""
        guard()
        self.registry.finish_run(run_id, "FAILED", now_ms())

    def record(
        self, experiment_id: str, entry: LedgerEntry, key: str, guard: Guard = unguarded
    ) -> str:
        """An entry of something already done (seen from outside, imported): three calls."""
        run_id = self.begin(experiment_id, entry, key, guard)
        self.commit(run_id, guard)
        return run_id

    def complete(self, run: RunRecord, entry: LedgerEntry, guard: Guard = unguarded) -> None:
        """Finish a run a dead pass began: its params if they never landed, then FINISHED."""
        if not run.params.get("model"):
            guard()
            self.registry.log_params(run.run_id, entry.to_params())
        if run.status != "FINISHED":
            self.commit(run.run_id, guard)

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
    ) -> Iterator[LedgerEntry]:
        """Entries newest first, a page at a time, up to `limit`."""
        token: str | None = None
        given = 0
        while True:
            size = page_size if limit is None else min(page_size, limit - given)
            runs, token = self.registry.search_runs(
                [experiment_id],
                where.filter(),
                order_by=_NEWEST_FIRST,
                max_results=size,
                page_token=token,
            )
            for run in runs:
                entry = LedgerEntry.from_run(run)
                if entry is not None:
                    given += 1
                    yield entry
            if not token or (limit is not None and given >= limit):
                return

    def earliest(self, experiment_id: str, where: Where, count: int = 20) -> list[LedgerEntry]:
        """The oldest `count` entries `where` admits, oldest first: one search call."""
        runs, _ = self.registry.search_runs(
            [experiment_id], where.filter(), order_by=_OLDEST_FIRST, max_results=count
        )
        return [entry for entry in map(LedgerEntry.from_run, runs) if entry is not None]

    def latest(self, experiment_id: str, where: Where) -> LedgerEntry | None:
        """The newest entry `where` admits: one search call."""
        return next(self.entries(experiment_id, where, limit=1), None)

    def newest(self, experiment_id: str, model: str, count: int = 20) -> list[LedgerEntry]:
        """The model's newest `count` entries, newest first: one search call."""
        return list(self.entries(experiment_id, Where(model=model), limit=count))


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
