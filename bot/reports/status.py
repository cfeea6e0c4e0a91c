"""`status`: what the registry and the forge say about a model, for people (`history` is
bot.reports.audit)."""

from __future__ import annotations

import logging
from typing import Any

from bot.errors import NotFoundError
from bot.registry.tags import REGISTERED_AS_TAG
from bot.registry.versions import TOY_ALIAS
from bot.runtime.context import Context
from bot.threads.markers import parse_request_marker

log = logging.getLogger(__name__)


def status_data(ctx: Context, model: str) -> dict[str, Any]:
    registry = ctx.registry
    aliases = registry.aliases(model)
    rows = []
    metric = ctx.params.promote_model.metric
    for alias, number in sorted(aliases.items(), key=lambda item: (item[1], item[0])):
        version = registry.version(model, number)
        value = _metric_value(ctx, version.run_id, metric)
        rows.append(
            {
                "alias": alias,
                "version": number,
                "run_id": version.run_id,
                "metric": metric,
                "value": value,
                "registered_as": version.tags.get(REGISTERED_AS_TAG, ""),
            }
        )
    return {"model": model, "aliases": rows, "open_requests": _open_requests(ctx, model)}


def _metric_value(ctx: Context, run_id: str, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        return ctx.registry.run(run_id).metrics.get(metric)
    except NotFoundError:  # the run was purged: status still shows the alias
        log.warning("run %s of an aliased version no longer exists", run_id)
        return None


def _open_requests(ctx: Context, model: str) -> list[dict[str, Any]] | str:
    from bot.runtime.request_threads import find_requests

    try:
        threads = find_requests(ctx, model, state="open")
    except Exception as exc:  # status still shows the registry when the forge fails
        log.warning("could not list open requests: %s", exc)
        return f"unavailable ({type(exc).__name__})"
    return [
        {
            "number": t.number,
            "version": (parse_request_marker(t.body) or {}).get("version"),
            "url": t.url,
        }
        for t in threads
    ]


def render_status(data: dict[str, Any]) -> str:
    lines = [f"model {data['model']}"]
    if not data["aliases"]:
        lines.append("  no aliases yet (run `promotion-bot register`)")
    for row in data["aliases"]:
        value = "n/a" if row["value"] is None else f"{row['value']:.6g}"
        toy = " (toy)" if row["registered_as"] == TOY_ALIAS else ""
        lines.append(
            f"  @{row['alias']:<10} v{row['version']:<4} {row['metric']}={value}  "
            f"run {row['run_id']}{toy}"
        )
    requests = data["open_requests"]
    if isinstance(requests, str):
        lines.append(f"open requests: {requests}")
    elif not requests:
        lines.append("open requests: none")
    else:
        lines.append("open requests:")
        lines.extend(f"  #{r['number']} v{r['version']}  {r['url']}" for r in requests)
    return "\n".join(lines)


def champion_line(found: dict[str, Any]) -> str:
    """`status`'s last line for a model: what its drift check found (`drift_summary`)."""
    if found.get("drifted"):
        approved = f"v{found['approved']}" if found.get("approved") is not None else "none"
        champion = f"v{found['champion']}" if found.get("champion") is not None else "not set"
        where = f"; reported in {found['detail']}" if found["outcome"] == "reported" else ""
        return (
            f"champion: DRIFT: {champion} was set outside promotion-bot (approved: {approved})"
            f"{where}"
        )
    if found["outcome"] == "unavailable":
        return f"champion: not checked against the audit ledger ({found['detail']})"
    return "champion: as the audit ledger records it"
