"""What the promotion request shows: the data behind `templates/request.md.j2` (docs/design.md,
"The promotion request").

Reading the registry (`load_request_data`) is kept apart from shaping the template variables
(`template_context`), so the body can be rendered from fixed values (golden tests, previews).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.ci.trend import Trend, load_trend, mermaid_chart
from bot.errors import NotFoundError
from bot.registry.tags import REGISTERED_AS_TAG
from bot.registry.versions import RunInfo, VersionInfo
from bot.rules.approvers import describe as describe_approvers
from bot.rules.gates import evaluate_gates
from bot.threads.command_forms import request_commands
from bot.threads.markers import check_marker, request_marker, section
from bot.threads.thread import ThreadKind, thread_noun

if TYPE_CHECKING:
    from bot.registry.client import Registry
    from bot.runtime.context import Context

METRICS_COLLAPSE_AT = 8  # more rows than this go inside <details> (renders on GitHub and GitLab)
WAITING = "⏳ Waiting for approval."


@dataclass(frozen=True)
class Side:
    """One version shown on the request (the candidate or the champion) with its run."""

    version: VersionInfo
    run: RunInfo
    run_url: str = ""
    version_url: str = ""


@dataclass(frozen=True)
class RequestData:
    """Everything the body needs from the registry and the CI environment."""

    candidate: Side
    champion: Side | None
    requested_by: str = ""
    pipeline_url: str = ""
    trend: Trend | None = None  # None: no chart (`promotion.request.chart: false`)


def request_title(model: str, version: int) -> str:
    return f"Promote {model} v{version} to champion"


def load_side(registry: Registry, version: VersionInfo, must_exist: bool = True) -> Side:
    try:
        run = registry.run(version.run_id)
    except NotFoundError:
        if must_exist:
            raise
        # A champion whose run was deleted still deserves a row, just without metrics.
        run = RunInfo(run_id=version.run_id, experiment_id="")
    return Side(
        version=version,
        run=run,
        run_url=registry.run_url(run) if run.experiment_id else "",
        version_url=registry.version_url(version.model, version.version),
    )


def load_request_data(
    ctx: Context,
    version: VersionInfo,
    requested_by: str | None = None,
    aliases: dict[str, int] | None = None,
) -> RequestData:
    """Both sides of the request from the registry; `aliases` if the caller just read them."""
    registry = ctx.registry
    if aliases is None:
        aliases = registry.aliases(version.model)
    number = aliases.get(ctx.params.promotion.champion_alias)
    champion = registry.version(version.model, number) if number is not None else None
    candidate_side = load_side(registry, version)
    champion_side = load_side(registry, champion, must_exist=False) if champion else None
    return RequestData(
        candidate=candidate_side,
        champion=champion_side,
        # The registry's record of who trained it, else who runs this (`request` records it).
        requested_by=(version.requested_by or ctx.settings.requested_by)
        if requested_by is None
        else requested_by,
        pipeline_url=ctx.settings.pipeline_url,
        trend=_trend(ctx, candidate_side, champion_side),
    )


def _trend(ctx: Context, candidate: Side, champion: Side | None) -> Trend | None:
    if not ctx.params.promotion.request.chart:
        return None
    named = {candidate.version.version: ("candidate", candidate.run)}
    if champion is not None:
        named = {champion.version.version: ("champion", champion.run), **named}
    gate = ctx.params.promote_model
    return load_trend(
        ctx.registry, candidate.version.model, gate.metric, gate.greater_is_better, named
    )


def template_context(
    ctx: Context,
    data: RequestData,
    *,
    kind: ThreadKind,
    ticks: Mapping[str, bool] | None = None,
    status: str = WAITING,
) -> dict[str, Any]:
    """The variables of request.md.j2 (every one always defined: the template is strict)."""
    params = ctx.params
    forge = ctx.forge
    cand, champ = data.candidate, data.champion
    bot = forge.bot_username()
    slash_ok = forge.slash_promote_works()
    metrics = metric_rows(cand.run, champ.run if champ else None, params.promote_model.metric)
    gates = evaluate_gates(params, cand.run, champ.run if champ else None)
    ticks = ticks or {}
    request = params.promotion.request
    return {
        "marker": request_marker(
            model=cand.version.model,
            version=cand.version.version,
            run=cand.version.run_id,
            requested_by=data.requested_by,
            kind=kind,
            bot=ctx.settings.instance_id,
        ),
        "model": cand.version.model,
        "version": cand.version.version,
        "run_id": cand.version.run_id,
        "run_url": cand.run_url,
        "version_url": cand.version_url,
        "registered_as": cand.version.tags.get(REGISTERED_AS_TAG, ""),
        "champion": _side_vars(champ),
        "champion_alias": params.promotion.champion_alias,
        "candidate_alias": params.promote_model.candidate_alias,
        "requested_by": data.requested_by,
        "requester_missing": requester_missing(ctx, cand.version, data.requested_by),
        "pipeline_url": data.pipeline_url,
        "kind": kind,
        "thread_noun": thread_noun(kind, forge.platform),
        "metric": params.promote_model.metric,
        "greater_is_better": params.promote_model.greater_is_better,
        "metrics": metrics,
        "collapse_metrics": len(metrics) > METRICS_COLLAPSE_AT,
        "trend_chart": mermaid_chart(data.trend) if request.chart else "",
        "gates": gates,
        "failed_gates": sum(1 for gate in gates if not gate.passed),
        "checklist": [
            {
                "id": item.id,
                "text": " ".join(item.text.split()),  # one line, or the tick is not found again
                "ticked": bool(ticks.get(item.id, False)),
                "marker": check_marker(item.id),
            }
            for item in params.promotion.checklist
        ],
        "require_checklist": params.promotion.require_checklist,
        "slash_promote": slash_ok,
        "commands": request_commands(bot, slash_ok, champ.version.version if champ else None),
        "who_may_approve": describe_approvers(params.promotion.approvers),
        "required_approvals": params.promotion.approvers.required_approvals,
        "self_approval": params.promotion.approvers.allow_self_approval,
        "platform_approval": params.promotion.approvers.require_platform_approval,
        "merge_on_promote": request.merge_on_promote,
        "close_on_promote": request.close_on_promote,
        "record_path": record_path(ctx),
        "status_section": section("status", status),
    }


def requester_missing(ctx: Context, version: VersionInfo, requested_by: str) -> bool:
    """Nobody recorded (or about to be) as who triggered training, while the self-approval
    rule needs one: every `/promote` of the version will be refused (bot.commands.policy)."""
    if ctx.params.promotion.approvers.allow_self_approval:
        return False
    known = requested_by or version.requested_by_id or ctx.settings.requested_by_id
    return not known


def render_request_body(
    ctx: Context,
    version: VersionInfo,
    *,
    kind: ThreadKind | None = None,
    ticks: Mapping[str, bool] | None = None,
    status: str | None = None,
    requested_by: str | None = None,
    data: RequestData | None = None,
) -> str:
    """The request body for `version`, gates evaluated against the current champion.

    `data` (else read from the registry) lets callers render from fixed values.
    """
    if data is None:
        data = load_request_data(ctx, version, requested_by)
    variables = template_context(
        ctx,
        data,
        kind=kind or ctx.params.promotion.request.thread_kind,
        ticks=ticks,
        status=status or WAITING,
    )
    return ctx.render("request.md.j2", **variables)


def _side_vars(side: Side | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "version": side.version.version,
        "run_id": side.version.run_id,
        "run_url": side.run_url,
        "version_url": side.version_url,
    }


def record_path(ctx: Context) -> str:
    return ctx.params.promotion.request.record_path.format(model_name=ctx.model)


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    return f"{value:.6g}"


def metric_rows(candidate: RunInfo, champion: RunInfo | None, primary: str) -> list[dict[str, Any]]:
    """Every metric of both runs, sorted by name; Δ = candidate − champion."""
    names = sorted(set(candidate.metrics) | set(champion.metrics if champion else ()))
    rows = []
    for name in names:
        new = candidate.metrics.get(name)
        old = champion.metrics.get(name) if champion else None
        delta = None if new is None or old is None else new - old
        rows.append(
            {
                "name": name,
                "primary": name == primary,
                "candidate": fmt(new),
                "champion": fmt(old),
                "delta": "—" if delta is None or math.isnan(delta) else f"{delta:+.4g}",
            }
        )
    return rows
