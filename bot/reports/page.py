"""The status page: every model's champion, candidate, open request, gates, drift state, last
changes and trend on one screen, for people without registry credentials (docs/operations.md,
"The status page"; docs/security.md, "The status page").

`page_data` reads, bounded: per model the model and its newest ledger entries in one search,
for the drift state and the last changes (bot.reports.drift_view; the whole chain only when
those cannot decide), the candidate and champion versions and runs, one search of versions and
one of runs for the trend, one forge listing. The page says which check its drift state comes
from and, from `serve`, what the last background walk of the whole chain found
(bot.reports.chain_walks). `render_html` writes it through the one template, autoescaped;
`page_json` is the same data for machines. Every link goes through `link`: http(s) only, and
none that carries a credential. No comment text is read: an internal note's reason is in the
ledger as its link only (bot.commands.moves)."""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from bot.ledger.drift import ChampionCheck
from bot.ledger.entry import LedgerEntry
from bot.reports.audit import Query, history_entries, who
from bot.reports.chain_walks import ChainWalks, whole_chain
from bot.reports.drift_view import DriftView, drift_view
from bot.reports.status import OpenRequest, open_requests
from bot.reports.svg_trend import Point, trend_svg
from bot.rules.gates import evaluate_gates
from bot.templating import html_environment
from bot.timestamps import iso_from_ms
from bot.urls import redact_url

if TYPE_CHECKING:
    from bot.runtime.context import Context

log = logging.getLogger(__name__)

TEMPLATE = "status_page.html.j2"
CHANGES = 10  # the last changes shown per model
TREND_VERSIONS = 10
REASON_CHARS = 200
WORKERS = 4  # models read at once


@dataclass(frozen=True)
class Change:
    at: str
    action: str
    from_version: int | None
    to_version: int | None
    by: str
    reason: str
    entry_url: str
    request_url: str
    trusted: bool


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class ModelPage:
    model: str
    champion: int | None = None
    since: str = ""
    approved_by: str = ""
    entry_url: str = ""  # the ledger entry that made it (its MLflow run)
    thread_url: str = ""
    version_url: str = ""
    drift: str = ""  # as `verify` says it, one line
    drifted: bool = False
    problems: tuple[str, ...] = ()
    check_scope: str = ""  # "newest": the bounded check decided; "chain": the whole chain walked
    checked_entries: int = 0
    checked: str = ""  # which check the drift state comes from, for people
    whole_chain: str = ""  # what is known of the whole chain, and since when
    candidate: int | None = None
    candidate_request: OpenRequest | None = None
    requests_unavailable: str = ""
    gates: tuple[Gate, ...] = ()
    metric: str = ""
    changes: tuple[Change, ...] = ()
    trend: tuple[Point, ...] = ()
    error: str = ""  # the model could not be read: the page still shows the others

    def trend_svg(self) -> Markup:
        """Drawn by the bot from numbers only (bot.reports.svg_trend): safe as markup."""
        return Markup(trend_svg(self.metric, self.trend))  # noqa: S704


@dataclass(frozen=True)
class StatusPage:
    generated_at: str
    models: tuple[ModelPage, ...] = field(default_factory=tuple)


def link(url: str) -> str:
    """`url` if it may be a link on the page: http(s), and nothing a redaction would hide."""
    if not url.startswith(("https://", "http://")) or redact_url(url) != url:
        return ""
    return url


def page_data(
    ctx: Context, now_ms: int, walks: ChainWalks | None = None, workers: int = WORKERS
) -> StatusPage:
    """The page as of `now_ms`; `walks`: `serve`'s background walks of the whole chains. The
    models are read `workers` at a time: each waits on MLflow round trips, not on the CPU."""
    models = ctx.each_model()
    _ = ctx.registry, ctx.ledger, ctx.forge  # the clients, built once, before the threads
    with ThreadPoolExecutor(max(1, min(workers, len(models)))) as pool:
        pages = tuple(pool.map(lambda one: _model_page(one, walks), models))
    return StatusPage(iso_from_ms(now_ms), pages)


def _model_page(ctx: Context, walks: ChainWalks | None) -> ModelPage:
    model = ctx.model
    try:
        return _read_model(ctx, model, walks)
    except Exception as exc:  # one model's registry trouble must not hide the others
        log.warning("status page: %s could not be read: %s", model, exc, extra={"model": model})
        return ModelPage(model, error=f"could not be read ({type(exc).__name__})")


def _read_model(ctx: Context, model: str, walks: ChainWalks | None) -> ModelPage:
    registry = ctx.registry
    view = drift_view(ctx, model)
    result = view.result
    check = result.check
    whole = whole_chain(view, walks, model)
    if walks is not None and not whole.reached:
        walks.not_reached(model)
    approved = check.approved
    experiment_id = ctx.ledger.ready(view.state, model) or ctx.ledger.experiment_id()
    current = approved if approved and approved.to_version == check.champion else check.last
    metric = ctx.params.promote_model.metric
    champion_run = None
    if check.champion is not None:
        champion_run = registry.run(registry.version(model, check.champion).run_id)
    candidate = view.state.aliases.get(ctx.params.promote_model.candidate_alias)
    candidate_version = registry.version(model, candidate) if candidate is not None else None
    gates: tuple[Gate, ...] = ()
    if candidate_version is not None and candidate_version.version != check.champion:
        candidate_run = registry.run(candidate_version.run_id)
        gates = tuple(
            Gate(g.name, g.passed, g.detail.replace("`", ""))  # Markdown code marks
            for g in evaluate_gates(ctx.params, candidate_run, champion_run)
        )
    requests, unavailable = open_requests(ctx, model)
    request = next((r for r in requests if r.version == candidate), None)
    entries = _changes(ctx, model, view)
    return ModelPage(
        model=model,
        champion=check.champion,
        since=current.at if current else "",
        approved_by=who(current) if current else "",
        entry_url=_entry_url(ctx, experiment_id, current),
        thread_url=link(current.request_url) if current else "",
        version_url=link(registry.version_url(model, check.champion))
        if check.champion is not None
        else "",
        drift=result.cannot_tell() or _drift_line(check, broken=bool(result.breaks)),
        drifted=check.drifted or bool(result.problems or result.breaks or whole.problems),
        problems=tuple([*result.problems, *(str(b) for b in result.breaks), *whole.problems]),
        check_scope="newest" if view.bounded else "chain",
        checked_entries=result.entries,
        checked=view.checked(),
        whole_chain=whole.line,
        candidate=candidate,
        candidate_request=request
        and OpenRequest(request.number, request.version, link(request.url)),
        requests_unavailable=unavailable,
        gates=gates,
        metric=metric,
        changes=tuple(_change(ctx, experiment_id, e) for e in entries),
        trend=_trend(ctx, model, metric, check.champion, champion_run),
    )


def _changes(ctx: Context, model: str, view: DriftView) -> list[LedgerEntry]:
    """The last changes: the entries the bounded check read, when it decided (each one evidence,
    none an unsigned run a signed copy stands for: what `history` shows), else as `history`
    reads them."""
    if view.bounded:
        return list(view.newest[:CHANGES])
    return history_entries(ctx, Query(model=model, limit=CHANGES))


def _drift_line(check: ChampionCheck, broken: bool = False) -> str:
    """`broken`: a break in the chain (named below the line): the ledger vouches for nothing."""
    shown = f"v{check.champion}" if check.champion is not None else "not set"
    if check.in_flight is not None:
        return (
            f"champion {shown}: a change to v{check.in_flight.to_version} is in flight or was "
            "interrupted; the next command or `poll` finishes its record"
        )
    if check.drifted:
        approved = check.approved_version
        said = f"v{approved}" if approved is not None else "none"
        return f"DRIFT: champion is {shown}, set outside promotion-bot (approved: {said})"
    if broken:
        return f"champion {shown}, NOT VERIFIED: the audit ledger's chain is broken"
    return f"champion {shown}, as the audit ledger records it"


def _entry_url(ctx: Context, experiment_id: str, entry: LedgerEntry | None) -> str:
    base = ctx.registry.ui_base()
    if not (entry and entry.ledger_run and base and experiment_id):
        return ""
    return link(f"{base}/#/experiments/{experiment_id}/runs/{entry.ledger_run}")


def _change(ctx: Context, experiment_id: str, entry: LedgerEntry) -> Change:
    reason = " ".join(entry.reason.split())
    if len(reason) > REASON_CHARS:
        reason = reason[: REASON_CHARS - 1] + "…"
    return Change(
        at=entry.at,
        action=entry.action,
        from_version=entry.from_version,
        to_version=entry.to_version,
        by=who(entry),
        reason=reason,
        entry_url=_entry_url(ctx, experiment_id, entry),
        request_url=link(entry.request_url),
        trusted=entry.trusted,  # a tag entry not imported yet is evidence of nothing
    )


def _trend(
    ctx: Context, model: str, metric: str, champion: int | None, champion_run: Any
) -> tuple[Point, ...]:
    """The metric of the newest real versions: one search of versions, one of their runs (in
    the champion's experiment, as `request`'s chart reads them)."""
    registry = ctx.registry
    newest = [
        v
        for v in registry.newest_versions(model, 3 * TREND_VERSIONS)
        if not v.is_toy and v.status != "FAILED_REGISTRATION"
    ][:TREND_VERSIONS]
    experiments = [champion_run.experiment_id] if champion_run is not None else []
    if not newest or not experiments:
        return ()
    runs = {r.run_id: r for r in registry.runs_in(experiments, [v.run_id for v in newest])}
    points = []
    for version in newest:
        run = runs.get(version.run_id)
        value = run.metrics.get(metric) if run is not None else None
        if value is not None and math.isfinite(value):
            points.append(Point(version.version, value, version.version == champion))
    return tuple(sorted(points, key=lambda p: p.version))


def render_html(page: StatusPage) -> str:
    return html_environment().get_template(TEMPLATE).render(page=page)


def page_json(page: StatusPage) -> str:
    def plain(one: ModelPage) -> dict[str, Any]:
        data = asdict(one)
        data["trend"] = [asdict(p) for p in one.trend]
        return data

    return json.dumps(
        {"generated_at": page.generated_at, "models": [plain(m) for m in page.models]}, indent=2
    )
