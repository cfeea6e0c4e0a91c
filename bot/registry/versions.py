"""Model versions and runs as the registry adapter returns them, normalised."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.registry.tags import (
    REGISTERED_AS_TAG,
    REQUEST_HEAD_TAG,
    REQUESTED_BY_ID_TAG,
    REQUESTED_BY_SEAL_TAG,
    REQUESTED_BY_TAG,
    REQUESTED_IN_TAG,
)
from bot.signing import KID, SIG, Keys

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
        """The name, its seal (`|<kid>:<sig>`) left aside."""
        return _unsealed(self.tags.get(REQUESTED_BY_TAG, ""))[0]

    @property
    def requested_by_id(self) -> str:
        return self.tags.get(REQUESTED_BY_ID_TAG, "")

    def requester_problem(self, keys: Keys) -> str:
        """ "" when the bot signed the requester record as it reads now (docs/security.md): its
        seal rides in the name's tag; a record written before that has it in a tag of its own."""
        _name, kid, sig = _unsealed(self.tags.get(REQUESTED_BY_TAG, ""))
        if not kid and not sig:
            try:
                seal = json.loads(self.tags.get(REQUESTED_BY_SEAL_TAG) or "{}")
            except ValueError:
                seal = {}
            seal = seal if isinstance(seal, dict) else {}
            kid, sig = seal.get(KID, ""), seal.get(SIG, "")
        record = _requester(self.model, self.version, self.requested_by, self.requested_by_id)
        return keys.check(record, kid, sig)

    @property
    def requested_in(self) -> str:
        """The URL of the version's request thread, its seal (`|<kid>:<sig>`) left aside: a
        place to look. Only a binding without `request_binding_problem` is evidence."""
        return _unsealed(self.tags.get(REQUESTED_IN_TAG, ""))[0]

    def request_binding_problem(self, keys: Keys) -> str:
        """ "" when the bot signed the binding of this version to `requested_in` (docs/security.md):
        written by hand, copied from another version or pointed at another thread, it is not."""
        url, kid, sig = _unsealed(self.tags.get(REQUESTED_IN_TAG, ""))
        return keys.check(_binding(self.model, self.version, url), kid, sig)

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


def requester_tags(
    keys: Keys, model: str, version: int, name: str, user_id: str, sign: bool = True
) -> dict[str, str]:
    """The version tags that record who triggered training (what is known of it), signed: the
    seal follows the name in its own tag (`name|<kid>:<sig>`, `_sealed`)."""
    if not name and not user_id:
        return {}
    sealed = _sealed(keys, name, _requester(model, version, name, user_id), sign)
    tags = {REQUESTED_BY_TAG: sealed, REQUESTED_BY_ID_TAG: user_id}
    return {key: value for key, value in tags.items() if value}


def binding_value(keys: Keys, model: str, version: int, url: str, sign: bool = True) -> str:
    """The `promotion.requested_in` value that makes the thread at `url` the version's request:
    the URL, then the seal over {model, version, requested_in} (not `sign`: a dry run)."""
    return _sealed(keys, url, _binding(model, version, url), sign)


def _sealed(keys: Keys, value: str, record: dict[str, Any], sign: bool) -> str:
    """`value|<kid>:<sig>`, the seal of `record` riding in the tag that holds `value`, so it
    costs no write of its own (not `sign`: a dry run, which names the seal and makes no key)."""
    if not sign:
        return f"{value}|<the bot's signature>"
    seal = keys.seal(record)
    return f"{value}|{seal[KID]}:{seal[SIG]}"


def _unsealed(value: str) -> tuple[str, str, str]:
    """(value, kid, sig) of a tag `_sealed` wrote; a value without a seal has none. Names and
    URLs may not hold `|`: the seal is what follows the last one."""
    if "|" not in value:
        return value, "", ""
    shown, _, seal = value.rpartition("|")
    kid, _, sig = seal.partition(":")
    return shown, kid, sig


def _requester(model: str, version: int, name: str, user_id: str) -> dict[str, Any]:
    return {"model": model, "version": version, "requested_by": name, "requested_by_id": user_id}


def _binding(model: str, version: int, url: str) -> dict[str, Any]:
    return {"model": model, "version": version, "requested_in": url}
