"""`status`: what the registry and the forge say about a model, for people (`history` is
bot.reports.audit).

One frozen record per thing shown: `ModelStatus` (a model's aliases and open requests, and what
the drift check found), read by `status_data`; `render_status` writes it for people and
`status_json` as `status --json` prints it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.errors import NotFoundError
from bot.ledger.drift import ChampionCheck
from bot.registry.tags import REGISTERED_AS_TAG
from bot.registry.versions import TOY_ALIAS
from bot.runtime.context import Context
from bot.threads.markers import read_request_marker

log = logging.getLogger(__name__)

NOT_IMPORTED = "not_imported"
UNTRUSTED_LEDGER = "untrusted_ledger"  # every entry signed by a key the bot does not trust


@dataclass(frozen=True)
class AliasStatus:
    """One alias of the model, the version it points at and that version's gate metric."""

    alias: str
    version: int
    run_id: str
    metric: str
    value: float | None  # None: the run has no such metric, or was purged
    registered_as: str  # the alias `register` gave the version ("" before the tag existed)

    def as_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "version": self.version,
            "run_id": self.run_id,
            "metric": self.metric,
            "value": self.value,
            "registered_as": self.registered_as,
        }


@dataclass(frozen=True)
class OpenRequest:
    """An open request thread of the model."""

    number: str  # the forge's thread id, as `comment THREAD` and the forge's URLs write it
    version: int | None  # as its marker says it; None when a person's edit left no version
    url: str

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number, "version": self.version, "url": self.url}


@dataclass(frozen=True)
class ChampionStatus:
    """What `status`'s drift check found (`champion_status`): it reads, never records."""

    # "checked"; "unavailable" when the check could not be made; "not_imported" when history
    # from before keys waits for the operator's import (the detail says what and the command);
    # "untrusted_ledger" when every ledger entry is signed by a key the bot does not trust
    outcome: str
    detail: str
    check: ChampionCheck | None = None  # None: not needed (the records agree), or it failed

    @property
    def drifted(self) -> bool:
        return self.check is not None and self.check.drifted

    @property
    def champion(self) -> int | None:
        return self.check.champion if self.check else None

    @property
    def approved(self) -> int | None:
        return self.check.approved_version if self.check else None

    def as_json(self) -> dict[str, Any]:
        found = self.check.as_dict() if self.check else {}
        return {"outcome": self.outcome, "detail": self.detail, **found}


@dataclass(frozen=True)
class ModelStatus:
    """A model as `status` shows it."""

    model: str
    aliases: tuple[AliasStatus, ...]
    open_requests: tuple[OpenRequest, ...]
    requests_unavailable: str = ""  # why the forge could not list them ("": it did)
    champion_check: ChampionStatus | None = None  # once `status` asked the drift question

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "model": self.model,
            "aliases": [row.as_json() for row in self.aliases],
            "open_requests": [request.as_json() for request in self.open_requests],
            "open_requests_unavailable": self.requests_unavailable or None,
        }
        if self.champion_check is not None:
            shown["champion_check"] = self.champion_check.as_json()
        return shown


def status_data(ctx: Context, model: str) -> ModelStatus:
    registry = ctx.registry
    aliases = registry.aliases(model)
    rows = []
    metric = ctx.params.promote_model.metric
    for alias, number in sorted(aliases.items(), key=lambda item: (item[1], item[0])):
        version = registry.version(model, number)
        value = _metric_value(ctx, version.run_id, metric)
        registered_as = version.tags.get(REGISTERED_AS_TAG, "")
        rows.append(AliasStatus(alias, number, version.run_id, metric, value, registered_as))
    requests, unavailable = open_requests(ctx, model)
    return ModelStatus(model, tuple(rows), requests, unavailable)


def _metric_value(ctx: Context, run_id: str, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        return ctx.registry.run(run_id).metrics.get(metric)
    except NotFoundError:  # the run was purged: status still shows the alias
        log.warning("run %s of an aliased version no longer exists", run_id)
        return None


def open_requests(ctx: Context, model: str) -> tuple[tuple[OpenRequest, ...], str]:
    from bot.runtime.request_threads import find_requests

    try:
        threads = find_requests(ctx, model, state="open")
    except Exception as exc:  # status still shows the registry when the forge fails
        log.warning("could not list open requests: %s", exc)
        return (), f"unavailable ({type(exc).__name__})"
    return tuple(OpenRequest(t.number, _marked_version(t.body), t.url) for t in threads), ""


def _marked_version(body: str) -> int | None:
    marker = read_request_marker(body)
    if marker is None or marker.problem:
        return None
    return marker.version


def status_json(shown: Sequence[ModelStatus]) -> str:
    """`status --json`: {"models": [...]}, one object a model, however many there are
    (docs/cli.md, "JSON output")."""
    return json.dumps({"models": [one.as_json() for one in shown]}, indent=2)


def render_status(status: ModelStatus) -> str:
    """For people; the drift check's line last, when it was asked."""
    lines = [f"model {status.model}"]
    if not status.aliases:
        lines.append("  no aliases yet (run `promotion-bot register`)")
    for row in status.aliases:
        value = "n/a" if row.value is None else f"{row.value:.6g}"
        toy = " (toy)" if row.registered_as == TOY_ALIAS else ""
        lines.append(
            f"  @{row.alias:<10} v{row.version:<4} {row.metric}={value}  run {row.run_id}{toy}"
        )
    if status.requests_unavailable:
        lines.append(f"open requests: {status.requests_unavailable}")
    elif not status.open_requests:
        lines.append("open requests: none")
    else:
        lines.append("open requests:")
        lines.extend(
            f"  #{r.number} v{r.version if r.version is not None else '?'}  {r.url}"
            for r in status.open_requests
        )
    if status.champion_check is not None:
        lines.append(champion_line(status.champion_check))
    return "\n".join(lines)


def champion_line(found: ChampionStatus) -> str:
    """`status`'s last line for a model: what its drift check found."""
    if found.outcome == UNTRUSTED_LEDGER:
        return f"champion: v{found.champion}: {found.detail}"
    if found.outcome == NOT_IMPORTED:
        return f"champion: not checked: {found.detail}"
    if found.drifted:
        approved = f"v{found.approved}" if found.approved is not None else "none"
        champion = f"v{found.champion}" if found.champion is not None else "not set"
        return (
            f"champion: DRIFT: {champion} was set outside promotion-bot (approved: {approved});"
            " `poll` and `serve` record it and report it in the request"
        )
    if found.outcome == "unavailable":
        return f"champion: not checked against the audit ledger ({found.detail})"
    return "champion: as the audit ledger records it"


def champion_status(ctx: Context) -> ChampionStatus:
    """The drift question asked as `verify` asks it, read-only: `status` is something to run
    anywhere, so recording and reporting a hand move is left to `poll`, `serve` and the MLflow
    webhook (docs/design.md, "Drift"). The model read alone answers when the champion is the
    `to` of the bot's last change; otherwise the ledger is read (a drift recorded before agrees
    with the records, but is still a drift until the approved champion is back)."""
    from bot.ledger.drift import agrees_with_records
    from bot.reports.audit import verify

    alias = ctx.params.promotion.champion_alias
    state = ctx.registry.state(ctx.model)
    last_change = state.history[-1].to_version if state.history else None
    if agrees_with_records(state, alias) and state.aliases.get(alias) == last_change:
        return ChampionStatus("checked", "the champion is the one the bot recorded")
    verified = verify(ctx, ctx.model)
    if verified.cannot_tell():  # nothing it trusts approves the champion, and it says why
        return ChampionStatus(UNTRUSTED_LEDGER, verified.cannot_tell(), verified.check)
    if verified.waiting:
        return ChampionStatus(NOT_IMPORTED, verified.waiting.notice(), verified.check)
    return ChampionStatus("checked", "the audit ledger was read", verified.check)
