"""One entry of the audit ledger: a champion change with its full approval snapshot, and how it is
written into an MLflow run's params and read back (docs/design.md, "The ledger").

Params, because MLflow keeps a param's first value for good: logging another value is refused,
so an entry the bot wrote cannot be rewritten through MLflow's API. MLflow keeps at most 6,000
characters in a param and would cut a longer one silently, so a long value is split into
`key`, `key.2`, `key.3`, ... of 6,000 characters each, and joined back in that order. An empty
value is no param at all (a missing param reads as empty).

Each entry is signed whole and chained (docs/security.md): its params carry `prev`, the digest
of the previous entry of its model, and `kid` and `sig`, the bot's signature over every other
param. A param logged later (`to.2` on a finished run, which MLflow accepts) changes what is
signed; a deleted, inserted or reordered entry breaks the chain (`bot.ledger.chain`).

A run's status is not signed (MLflow lets anyone set it), so a run that is not FINISHED is out of
the chain only when the bot says so: its abandonment, a seal over the run's id and its entry's
digest in a run tag (`abandonment`), written when the bot gave up a change whose alias never
moved. A signed entry whose run is FAILED, KILLED or RUNNING without one reads as not evidence,
and the chain decides whether it is a break (an entry hidden) or a change in flight.

Pure: no I/O. `bot.ledger.store` does the reading and writing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot import signing
from bot.registry.records import Change, read_text, read_version
from bot.registry.tags import ABANDONED_TAG, LEDGER_KEY_TAG
from bot.registry.versions import RunRecord
from bot.timestamps import iso_from_ms, ms_from_iso

# "2": written by a bot that signs every abandonment; a run of schema "1" that is not FINISHED
# may be an attempt abandoned before abandonments were signed (bot.ledger.chain).
SCHEMA = "2"
LEGACY_SCHEMAS = ("", "1")
FINISHED = "FINISHED"
PARAM_CHUNK = 6000  # MLflow's MAX_PARAM_VAL_LENGTH
APPROVED_ACTIONS = ("promote", "rollback")  # changes people approved through the bot
EXTERNAL = "external"  # a champion set outside the bot, recorded when the bot saw it

# The order of the columns of `history --format csv|json`.
FIELDS = (
    "at",
    "model",
    "action",
    "from",
    "to",
    "actor",
    "approvers",
    "reason",
    "request_url",
    "comment_url",
    "comment_id",
    "run_id",
    "metrics",
    "gates",
    "checklist",
    "imported",
    "seen_by",
    "original",
    "ledger_run",
    "deleted",
)
_STRUCTURED = ("approvers", "metrics", "gates", "checklist")
_FLAGS = ("imported", "deleted")
_VERSIONS = ("from", "to")
# Params of the chain, beside the entry's fields: not columns of `history` (they say nothing
# about the change), but signed like them.
PREV, SUPERSEDES = "prev", "supersedes"
NOT_READ = "not read back from the ledger"
ABANDONED = "abandoned by the bot: its change never happened"
ABANDONED_YET_FINISHED = "marked FINISHED, but the bot abandoned it: its change never happened"


def not_abandoned(status: str) -> str:
    """Why a signed entry whose run is not FINISHED, and that the bot never abandoned, is not
    evidence: its status was set by someone else (or its change is still in flight)."""
    return f"marked {status or 'without a status'} but the bot did not abandon it (hidden?)"


def abandonment(run_id: str, entry_digest: str) -> dict[str, str]:
    """The record the bot signs when it abandons a change: this run, this entry, abandoned.
    Bound to both, so it cannot be copied onto another run or another entry."""
    return {"run": run_id, "entry": entry_digest, "status": "abandoned"}


@dataclass(frozen=True)
class Approver:
    """One approval a change rests on, and the approver's standing when it was carried out."""

    user: str
    user_id: str = ""
    role: str = ""  # the role on the project then (`maintainer`, `write`, ...); "" unknown
    listed: bool = False  # named in promotion.approvers.users
    comment_id: str = ""
    at: str = ""

    def stored(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "user_id": self.user_id,
            "role": self.role,
            "listed": self.listed,
            "comment_id": self.comment_id,
            "at": self.at,
        }

    @classmethod
    def parse(cls, item: Mapping[str, Any]) -> Approver:
        return cls(
            user=read_text(item.get("user")),
            user_id=read_text(item.get("user_id")),
            role=read_text(item.get("role")),
            listed=item.get("listed") is True,
            comment_id=read_text(item.get("comment_id")),
            at=read_text(item.get("at")),
        )


@dataclass(frozen=True)
class Evidence:
    """What a change was approved on, as the handler found it at execution."""

    approvers: tuple[Approver, ...] = ()
    run_id: str = ""  # the new champion's run
    metrics: Mapping[str, float | None] = field(default_factory=dict)  # the values gated
    gates: tuple[Mapping[str, Any], ...] = ()  # {name, passed, detail}, as evaluated
    checklist: tuple[Mapping[str, Any], ...] = ()  # {id, text, ticked}
    comment_url: str = ""


@dataclass(frozen=True)
class LedgerEntry:
    """One record of the audit ledger: a change the bot made, with its evidence (`of_change`),
    a champion seen set outside the bot, or an entry imported from the history tag (the three
    record types of a change: bot.registry.records). `ledger_run` and `deleted` describe the
    run it was read from."""

    model: str
    action: str  # promote | rollback | external (an imported entry keeps the action it had)
    from_version: int | None
    to_version: int | None  # None: the alias was deleted (external)
    at_ms: int  # when the change began (its intent), in ms since the epoch: the run's start
    actor: str = ""
    reason: str = ""
    request_url: str = ""
    comment_id: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    imported: bool = False  # copied from the promotion.history tag of earlier versions
    seen_by: str = ""  # external: which path noticed it (poll, webhook)
    original: str = ""  # imported: the tag's entry as it was stored (JSON)
    ledger_run: str = ""
    deleted: bool = False  # its run was deleted in MLflow (restorable until `mlflow gc`)
    # The chain (signed): the digest of the previous entry of the model ("" for the first), and
    # for an entry the bot signed on its first start, the unsigned run it stands for.
    prev: str = ""
    supersedes: str = ""
    # As read back: the entry's own digest (what the next one names as `prev`), its key id,
    # and what is wrong with its signature ("" when a trusted key signed it as it reads now).
    digest: str = ""
    kid: str = ""
    problem: str = NOT_READ
    # The run as read back: its status (not signed), whether the entry's seal holds (`signed`,
    # whatever the status), whether the bot signed its abandonment, its key (the intent's
    # token, `promotion.key`) and the entry's schema (LEGACY_SCHEMAS: before abandonments).
    status: str = FINISHED
    signed: bool = False
    abandoned: bool = False
    key: str = ""
    schema: str = SCHEMA

    @classmethod
    def of_change(cls, change: Change, evidence: Evidence, at_ms: int) -> LedgerEntry:
        """The entry of a change the bot makes (its `reason` as the history keeps it: an
        internal note's is its link)."""
        return cls(
            model=change.model,
            action=change.action,
            from_version=change.from_version,
            to_version=change.to_version,
            at_ms=at_ms,
            actor=change.actor,
            reason=change.reason,
            request_url=change.request_url,
            comment_id=change.comment_id,
            evidence=evidence,
        )

    @property
    def at(self) -> str:
        return iso_from_ms(self.at_ms)

    @property
    def trusted(self) -> bool:
        """Signed by a trusted key, unchanged since: evidence (docs/security.md)."""
        return not self.problem

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    @property
    def hidden(self) -> bool:
        """Signed by the bot, not FINISHED, and never abandoned by it: an entry taken out of the
        queries by someone else, or a change still in flight (`bot.ledger.chain.InFlight`)."""
        return self.signed and not self.finished and not self.abandoned

    @property
    def legacy(self) -> bool:
        """Written before the bot signed its abandonments."""
        return self.schema in LEGACY_SCHEMAS

    @property
    def approved(self) -> bool:
        """A change people approved through the bot (not one seen from outside)."""
        return self.action in APPROVED_ACTIONS

    def run_name(self) -> str:
        """What the MLflow UI lists: `model v3 → v5`."""
        before = f"v{self.from_version}" if self.from_version is not None else "none"
        after = f"v{self.to_version}" if self.to_version is not None else "none"
        suffix = " (outside the bot)" if self.action == EXTERNAL else ""
        return f"{self.model} {before} → {after}{suffix}"

    # --- as MLflow params ------------------------------------------------------------------
    def to_params(self) -> dict[str, str]:
        values = {
            "schema": SCHEMA,
            **{key: _cell(value) for key, value in self._fields().items()},
        }
        for key in ("ledger_run", "deleted"):  # the run's own facts, not the entry's
            values.pop(key)
        values[PREV], values[SUPERSEDES] = self.prev, self.supersedes
        return split_params(values)

    def sealed(self, keys: signing.Keys) -> tuple[LedgerEntry, dict[str, str]]:
        """The entry as signed, and its params: every other param under `kid` and `sig`."""
        params = self.to_params()
        params.update(keys.seal(params))
        digest, kid = signing.digest(params), params[signing.KID]
        return replace(self, digest=digest, kid=kid, problem="", signed=True, schema=SCHEMA), params

    @classmethod
    def from_run(cls, run: RunRecord, keys: signing.Keys | None = None) -> LedgerEntry | None:
        """The entry a ledger run records; None for a run that records none (no model). With
        `keys`, its seal is checked over the params exactly as MLflow holds them."""
        values = join_params(run.params)
        if not values.get("model"):
            return None
        entry = cls.from_fields(
            {
                **{key: _uncell(key, values.get(key, "")) for key in FIELDS},
                "ledger_run": run.run_id,
                "deleted": run.deleted,
            },
            start_ms=run.start_ms,
        )
        if keys is None:
            return entry
        fields, problem = keys.opened(run.params)
        problem = problem or _time_problem(fields, run.start_ms)
        entry_digest = signing.digest(run.params)
        abandoned = not problem and _abandoned(keys, run, entry_digest)
        return replace(
            entry,
            prev=values.get(PREV, ""),
            supersedes=values.get(SUPERSEDES, ""),
            digest=entry_digest,
            kid=run.params.get(signing.KID, ""),
            problem=problem or _status_problem(run.status, abandoned),
            status=run.status,
            signed=not problem,
            abandoned=abandoned,
            key=run.tags.get(LEDGER_KEY_TAG, ""),
            schema=values.get("schema", ""),
        )

    # --- as rows (json, csv) -----------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """The JSON shape: `history --format json` and, flattened, the CSV row."""
        return self._fields()

    def csv_row(self) -> dict[str, str]:
        """The CSV row, every cell safe to open in a spreadsheet (`inert`)."""
        return {key: inert(_cell(value)) for key, value in self._fields().items()}

    @classmethod
    def from_csv_row(cls, row: Mapping[str, str]) -> LedgerEntry:
        return cls.from_fields({key: _uncell(key, revived(row.get(key, ""))) for key in FIELDS})

    @classmethod
    def from_fields(cls, data: Mapping[str, Any], start_ms: int | None = None) -> LedgerEntry:
        at_ms = ms_from_iso(data.get("at")) or 0
        # Anyone who may write to the ledger experiment can plant a run: a field of the wrong
        # shape reads as empty, never as an error that would stop every reader of the ledger.
        approvers = _mappings(data.get("approvers"))
        gates, checklist = _mappings(data.get("gates")), _mappings(data.get("checklist"))
        return cls(
            model=read_text(data.get("model")),
            action=read_text(data.get("action")),
            from_version=read_version(data.get("from")),
            to_version=read_version(data.get("to")),
            at_ms=at_ms if start_ms is None else start_ms,
            actor=read_text(data.get("actor")),
            reason=read_text(data.get("reason")),
            request_url=read_text(data.get("request_url")),
            comment_id=read_text(data.get("comment_id")),
            evidence=Evidence(
                approvers=tuple(Approver.parse(item) for item in approvers),
                run_id=read_text(data.get("run_id")),
                metrics=_metrics(data.get("metrics")),
                gates=tuple(dict(item) for item in gates),
                checklist=tuple(dict(item) for item in checklist),
                comment_url=read_text(data.get("comment_url")),
            ),
            imported=data.get("imported") is True,
            seen_by=read_text(data.get("seen_by")),
            original=read_text(data.get("original")),
            ledger_run=read_text(data.get("ledger_run")),
            deleted=data.get("deleted") is True,
        )

    def _fields(self) -> dict[str, Any]:
        ev = self.evidence
        values: dict[str, Any] = {
            "at": self.at,
            "model": self.model,
            "action": self.action,
            "from": self.from_version,
            "to": self.to_version,
            "actor": self.actor,
            "approvers": [approver.stored() for approver in ev.approvers],
            "reason": self.reason,
            "request_url": self.request_url,
            "comment_url": ev.comment_url,
            "comment_id": self.comment_id,
            "run_id": ev.run_id,
            "metrics": {key: _number(value) for key, value in sorted(ev.metrics.items())},
            "gates": [dict(item) for item in ev.gates],
            "checklist": [dict(item) for item in ev.checklist],
            "imported": self.imported,
            "seen_by": self.seen_by,
            "original": self.original,
            "ledger_run": self.ledger_run,
            "deleted": self.deleted,
        }
        return {key: values[key] for key in FIELDS}


def _abandoned(keys: signing.Keys, run: RunRecord, entry_digest: str) -> bool:
    """Whether the run carries the bot's signed abandonment of this very run and entry."""
    try:
        seal = json.loads(run.tags.get(ABANDONED_TAG) or "{}")
    except ValueError:
        return False
    if not isinstance(seal, dict):
        return False
    record = abandonment(run.run_id, entry_digest)
    return not keys.check(record, seal.get(signing.KID), seal.get(signing.SIG))


def _status_problem(status: str, abandoned: bool) -> str:
    """What the run's status says of a signed entry ("" for a change that happened)."""
    if status == FINISHED:
        return ABANDONED_YET_FINISHED if abandoned else ""
    return ABANDONED if abandoned else not_abandoned(status)


def _time_problem(fields: dict[str, Any], start_ms: int) -> str:
    """The signed time against the run's start, by which the ledger orders its entries."""
    if ms_from_iso(join_params(fields).get("at")) != start_ms:
        return "its run's start time is not the time it was signed with"
    return ""


def split_params(values: Mapping[str, str]) -> dict[str, str]:
    """`values` as params: empty ones left out, long ones cut into 6,000-character pieces."""
    params: dict[str, str] = {}
    for key, value in values.items():
        for index, start in enumerate(range(0, len(value), PARAM_CHUNK), start=1):
            params[key if index == 1 else f"{key}.{index}"] = value[start : start + PARAM_CHUNK]
    return params


def join_params(params: Mapping[str, str]) -> dict[str, str]:
    """The values `split_params` cut, joined back (a piece without its predecessor ends it)."""
    values: dict[str, str] = {}
    for key, value in params.items():
        if "." in key and key.rsplit(".", 1)[1].isdigit():
            continue
        pieces = [value]
        index = 2
        while f"{key}.{index}" in params:
            pieces.append(params[f"{key}.{index}"])
            index += 1
        values[key] = "".join(pieces)
    return values


def _cell(value: Any) -> str:
    """A field as one string (a param value, a CSV cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return str(value)


def _uncell(key: str, text: str) -> Any:
    if key in _FLAGS:
        return text == "true"
    if key in _VERSIONS:
        return read_version(text)
    if key in _STRUCTURED:
        try:
            return json.loads(text) if text else ({} if key == "metrics" else [])
        except ValueError:
            return {} if key == "metrics" else []
    return text


def _mappings(value: object) -> list[Mapping[str, Any]]:
    """The objects of a JSON list; anything else (a number, a string, an object) holds none."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(cell: str) -> str:
    """A CSV cell no spreadsheet evaluates: a leading `'` before a formula's first character
    (and before a leading `'`, so that `revived` gives back exactly what was written)."""
    return f"'{cell}" if cell.startswith((*_FORMULA_STARTS, "'")) else cell


def revived(cell: str) -> str:
    """The text `inert` was given."""
    return cell[1:] if cell.startswith("'") else cell


def _metrics(value: object) -> dict[str, float | None]:
    if not isinstance(value, Mapping):
        return {}
    found: dict[str, float | None] = {}
    for key, number in value.items():
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            found[str(key)] = float(number)
        elif isinstance(number, str):  # inf, -inf, nan: JSON has no words for them
            try:
                found[str(key)] = float(number)
            except ValueError:
                found[str(key)] = None
        else:
            found[str(key)] = None
    return found


def _number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return str(value)
