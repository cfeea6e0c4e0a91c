"""The status page for three models with 500 ledger entries each: how long one build takes.

`python -m bench.status_page` (from the repository root, with the dev extras) starts its own
`mlflow server` (sqlite, one worker), registers three versions of three models, writes 500
signed, chained changes per model straight through the ledger API (tests/ledger_history.py,
their versions mapped onto the three that exist) and points `champion` at the last one. Not
counted. Measured: `page_data` + `render_html` (what `report --html` and `serve`'s `/` do) in a
fresh Context each time (new clients, as one CLI process or one cache miss of `serve`), the
first run and the median of the next ones; and the MLflow searches one build makes. The figure
is committed in docs/benchmark.md, "The status page".
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.ledger.entry import LedgerEntry
from bot.ledger.store import now_ms
from bot.registry.client import Registry
from bot.reports.page import page_data, render_html
from bot.runtime.context import Context
from tests.helpers import TEST_SIGNING_KEY, log_training_run
from tests.ledger_history import planned_changes, write_changes
from tests.mlflow_server import start_mlflow_server

MODELS = ("bench-fraud", "bench-churn", "bench-ranker")
CHANGES = 499  # the 500th of the plan is a move seen outside the bot: end on an approved one
VERSIONS = 3
RUNS = 7


class CountingRegistry(Registry):
    searches = 0

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        CountingRegistry.searches += 1
        return super().search_runs(*args, **kwargs)


def _onto(entries: list[LedgerEntry], versions: int) -> list[LedgerEntry]:
    """The planned changes between the versions that exist, each `from` the previous `to`."""
    out, champion = [], None
    for entry in entries:
        to = 1 + (entry.to_version or 0) % versions
        if to == champion:
            to = 1 + to % versions
        out.append(replace(entry, from_version=champion, to_version=to))
        champion = to
    return out


def setup(tracking_uri: str, workdir: Path) -> Settings:
    settings = Settings(
        tracking_uri=tracking_uri,
        local_dir=workdir / "forge",
        signing_key=Secret(TEST_SIGNING_KEY),
    )
    ctx = Context(settings=settings)
    experiment_id = ctx.registry.experiment_id(settings.ledger_experiment)
    for model in MODELS:
        ctx.registry.ensure_model(model)
        for step in range(VERSIONS):
            run_id = log_training_run(tracking_uri, {"final.logloss": 0.6 - 0.02 * step})
            ctx.registry.create_version(model, f"runs:/{run_id}/model", run_id)
        ctx.registry.set_alias(model, "candidate", VERSIONS)
        changes = _onto(planned_changes(model, CHANGES), VERSIONS)
        write_changes(ctx.ledger, experiment_id, changes)
        ctx.registry.set_alias(model, "champion", changes[-1].to_version or 1)
    return settings


def measure(settings: Settings, params_models: list[Any]) -> dict[str, Any]:
    from bot.config.model_set import ModelSet

    served = ModelSet(tuple(params_models), declared=True)
    seconds, searches, size = [], [], 0
    for _ in range(RUNS):
        registry = CountingRegistry(settings.tracking_uri)
        ctx = Context(settings, params_models[0], models=served, registry=registry)
        CountingRegistry.searches = 0
        mark = time.perf_counter()
        page = page_data(ctx, now_ms())
        html = render_html(page)
        seconds.append(time.perf_counter() - mark)
        searches.append(CountingRegistry.searches)
        size = len(html)
        if any(m.error or m.champion is None for m in page.models):
            raise RuntimeError(f"a model did not read: {page.models}")
        if len(page.models[0].changes) != 10:
            raise RuntimeError("the last ten changes are missing")
    return {
        "models": len(MODELS),
        "entries_per_model": CHANGES,
        "first_s": round(seconds[0], 3),
        "median_s": round(statistics.median(seconds[1:]), 3),
        "max_s": round(max(seconds[1:]), 3),
        "searches_per_build": sorted(set(searches)),
        "html_bytes": size,
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="promotion-bot-status-page-") as tmp:
        workdir = Path(tmp)
        server = start_mlflow_server(workdir / "mlflow")
        try:
            settings = setup(server.url, workdir)
            params = [parse_params({"register_model": {"model_name": m}}, "bench") for m in MODELS]
            print(json.dumps(measure(settings, params), indent=2))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
