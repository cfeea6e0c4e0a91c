"""An in-memory registry with the read interface of `bot.registry.client.Registry`, for fast
tests of the rules: no MLflow server, no MLflow import. Model tags are kept as the real registry
keeps them (the history a JSON string), so `ModelState` parses them exactly as it parses MLflow's.

tests/test_policy.py checks that every public method here has the signature of the real one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from bot.errors import NotFoundError
from bot.registry.model_state import ModelState, history_value
from bot.registry.records import HistoryEntry
from bot.registry.tags import HISTORY_TAG
from bot.registry.versions import RunInfo, VersionInfo
from bot.signing import Keys
from tests.helpers import TEST_SIGNING_KEY


@dataclass
class MemoryRegistry:
    tracking_uri: str = "memory://"
    _aliases: dict[str, dict[str, int]] = field(default_factory=dict)
    _tags: dict[str, dict[str, str]] = field(default_factory=dict)
    _versions: dict[tuple[str, int], VersionInfo] = field(default_factory=dict)
    _runs: dict[str, RunInfo] = field(default_factory=dict)
    _run_ids: Any = field(default_factory=lambda: itertools.count(1))
    # The champion cache is signed (docs/security.md): the tests' key signs what a test adds.
    keys: Keys = field(default_factory=lambda: Keys.load(TEST_SIGNING_KEY))

    # --- setting up a test (not part of the Registry interface) ---------------------------------
    def add_version(
        self,
        model: str,
        metrics: dict[str, float] | None = None,
        *,
        tags: dict[str, str] | None = None,
        run_tags: dict[str, str] | None = None,
        status: str = "READY",
    ) -> VersionInfo:
        """A new version of `model` from a new run with `metrics`."""
        run_id = f"run{next(self._run_ids)}"
        self._runs[run_id] = RunInfo(run_id, "1", dict(metrics or {}), dict(run_tags or {}))
        number = 1 + max((n for m, n in self._versions if m == model), default=0)
        info = VersionInfo(model, number, run_id, status=status, tags=dict(tags or {}))
        self._versions[(model, number)] = info
        self._tags.setdefault(model, {})
        return info

    def add_history(self, model: str, *entries: dict[str, Any]) -> None:
        """History entries as the bot's signed cache stores them (any JSON objects)."""
        stored = [dict(entry.stored) for entry in self.history(model)] + list(entries)
        self.set_model_tag(model, HISTORY_TAG, history_value(self.keys, model, stored, None))

    def delete_run(self, run_id: str) -> None:
        del self._runs[run_id]

    # --- the Registry interface -----------------------------------------------------------------
    def model_exists(self, name: str) -> bool:
        return name in self._tags

    def state(self, name: str) -> ModelState:
        aliases, tags = dict(self._aliases.get(name, {})), dict(self._tags.get(name, {}))
        return ModelState(aliases, tags, self.keys, name)

    def aliases(self, name: str) -> dict[str, int]:
        return self.state(name).aliases

    def version(self, name: str, version: int | str) -> VersionInfo:
        found = self._versions.get((name, int(version)))
        if found is None:
            raise NotFoundError(f"{name} version {version}: not found in the registry")
        return found

    def version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        number = self.aliases(name).get(alias)
        return None if number is None else self.version(name, number)

    def run(self, run_id: str) -> RunInfo:
        found = self._runs.get(run_id)
        if found is None:
            raise NotFoundError(f"run {run_id}: not found in the registry")
        return found

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._aliases.setdefault(name, {})[alias] = version

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        info = self.version(name, version)
        self._versions[(name, version)] = replace(info, tags={**info.tags, key: value})

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self._tags.setdefault(name, {})[key] = value

    def history(self, name: str) -> tuple[HistoryEntry, ...]:
        return self.state(name).history

    def pending(self, name: str) -> HistoryEntry | None:
        return self.state(name).pending

    def ui_base(self) -> str:
        return ""

    def run_url(self, run: RunInfo) -> str:
        return ""

    def version_url(self, name: str, version: int) -> str:
        return ""
