"""Model versions and runs as the registry adapter returns them, normalised."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.registry.tags import (
    REGISTERED_AS_TAG,
    REQUEST_HEAD_TAG,
    REQUESTED_BY_ID_TAG,
    REQUESTED_BY_TAG,
    REQUESTED_IN_TAG,
)

TOY_ALIAS = "ci-smoke"  # the initial alias of a toy model: never served, never promotable


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version, normalised (MLflow gives str over REST, int over sqlite)."""

    model: str
    version: int
    run_id: str
    source: str = ""
    status: str = "READY"
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    created_at_ms: int = 0

    @property
    def is_toy(self) -> bool:
        return self.tags.get(REGISTERED_AS_TAG) == TOY_ALIAS

    @property
    def requested_by(self) -> str:
        return self.tags.get(REQUESTED_BY_TAG, "")

    @property
    def requested_by_id(self) -> str:
        return self.tags.get(REQUESTED_BY_ID_TAG, "")

    @property
    def requested_in(self) -> str:
        return self.tags.get(REQUESTED_IN_TAG, "")

    @property
    def request_head(self) -> str:
        return self.tags.get(REQUEST_HEAD_TAG, "")


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """A run read for what it records (the audit ledger's runs): times, state, params, tags."""

    run_id: str
    start_ms: int
    status: str = "FINISHED"  # RUNNING, FINISHED, FAILED, KILLED, SCHEDULED
    deleted: bool = False  # MLflow's lifecycle stage: deleted (restorable until `mlflow gc`)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
