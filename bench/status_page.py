"""The status page for three models with 500 ledger entries each: how long one build takes, how
long `serve`'s background walk of the whole chains takes, and how long a viewer of `serve`'s `/`
waits while builds and walks run.

`python -m bench.status_page` (from the repository root, with the dev extras) starts its own
`mlflow server` (sqlite, one worker), registers three versions of three models, writes 499
signed, chained changes per model straight through the ledger API (tests/ledger_history.py,
their versions mapped onto the three that exist) and leaves each model as the bot does after
its last change (the signed ledger marker, the signed champion cache with the chain's head,
`champion` at its `to`). Not counted. Measured:

- a build: `page_data` + `render_html` (what `report --html` does, and `serve`'s page thread) in
  a fresh Context each time (new clients, as one CLI process), the first run and the median of
  the next ones, and the MLflow searches one build makes (the bounded check: the newest
  entries, one search per model);
- the whole chains walked as `verify` walks them (what `serve` does in the background every ten
  minutes, and what the page did on every build before), once per model, in a fresh Context;
- `serve`'s app (in this process, no HTTP: the app's own answer time) asked for `/` every
  50 ms for WATCH_SECONDS from its start, while its page thread builds and walks: the answers'
  times, and how many were the real page.

The figures are committed in docs/benchmark.md, "The status page".
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.ledger.store import now_ms
from bot.registry.client import Registry
from bot.reports.audit import verify
from bot.reports.page import page_data, render_html
from bot.runtime.context import Context
from tests.helpers import TEST_SIGNING_KEY, log_training_run
from tests.ledger_history import (
    leave_as_the_bot_does,
    onto_versions,
    planned_changes,
    write_changes,
)
from tests.mlflow_server import start_mlflow_server

MODELS = ("bench-fraud", "bench-churn", "bench-ranker")
CHANGES = 499  # the 500th of the plan is a move seen outside the bot: end on an approved one
VERSIONS = 3
RUNS = 7
WATCH_SECONDS = 30.0
PASSWORD = "bench"  # noqa: S105 (the page of a server this run starts on 127.0.0.1)


class CountingRegistry(Registry):
    searches = 0

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        CountingRegistry.searches += 1
        return super().search_runs(*args, **kwargs)


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
        changes = onto_versions(planned_changes(model, CHANGES), VERSIONS)
        chained = write_changes(ctx.ledger, experiment_id, changes)
        leave_as_the_bot_does(ctx.ledger, experiment_id, chained)
    return settings


def _served(settings: Settings, params_models: list[Any]) -> Context:
    from bot.config.model_set import ModelSet

    served = ModelSet(tuple(params_models), declared=True)
    keys = Context(settings, params_models[0], models=served).keys  # the seals' checker
    registry = CountingRegistry(settings.tracking_uri, keys)
    return Context(settings, params_models[0], models=served, registry=registry)


def measure_builds(settings: Settings, params_models: list[Any]) -> dict[str, Any]:
    seconds, searches, size = [], [], 0
    for _ in range(RUNS):
        ctx = _served(settings, params_models)
        CountingRegistry.searches = 0
        mark = time.perf_counter()
        page = page_data(ctx, now_ms())
        html = render_html(page)
        seconds.append(time.perf_counter() - mark)
        searches.append(CountingRegistry.searches)
        size = len(html)
        if any(m.error or m.champion is None or m.drifted for m in page.models):
            shown = [(m.model, m.error, m.champion, m.drift, m.problems) for m in page.models]
            raise RuntimeError(f"a model did not read as approved: {shown}")
        if any(m.check_scope != "newest" for m in page.models):
            raise RuntimeError("the bounded check did not decide: " + page.models[0].checked)
        if len(page.models[0].changes) != 10:
            raise RuntimeError("the last ten changes are missing")
    return {
        "first_s": round(seconds[0], 3),
        "median_s": round(statistics.median(seconds[1:]), 3),
        "max_s": round(max(seconds[1:]), 3),
        "searches_per_build": sorted(set(searches)),
        "html_bytes": size,
    }


def measure_walks(settings: Settings, params_models: list[Any]) -> dict[str, Any]:
    ctx = _served(settings, params_models)
    CountingRegistry.searches = 0
    per_model = []
    for one in ctx.each_model():
        mark = time.perf_counter()
        result = verify(one, one.model)
        per_model.append(time.perf_counter() - mark)
        if result.exit_code or result.entries != CHANGES:
            raise RuntimeError(f"{one.model}: the walk did not pass: {result}")
    return {
        "all_models_s": round(sum(per_model), 3),
        "per_model_s": [round(s, 3) for s in per_model],
        "searches": CountingRegistry.searches,
    }


def measure_serve(settings: Settings, params_models: list[Any]) -> dict[str, Any]:
    """`/` asked every 50 ms from the app's start, while its page thread builds and walks."""
    from bot.intake.entry import serve_app

    ctx = _served(settings.with_overrides(status_password=Secret(PASSWORD)), params_models)
    app = serve_app(ctx)
    token = base64.b64encode(f"viewer:{PASSWORD}".encode()).decode()
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": "127.0.0.1"}
    environ["HTTP_AUTHORIZATION"] = f"Basic {token}"
    answers: list[tuple[float, bool]] = []
    first_page_s = None
    app.start()
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < WATCH_SECONDS:
            mark = time.perf_counter()
            body = b"".join(app(dict(environ), lambda *_args: None))
            answers.append((time.perf_counter() - mark, b"Models and their champions" in body))
            if answers[-1][1] and first_page_s is None:
                first_page_s = round(time.perf_counter() - started, 3)
            time.sleep(0.05)
    finally:
        app.stop(5)
    times = sorted(seconds for seconds, _page in answers)
    return {
        "requests": len(answers),
        "real_pages": sum(1 for _s, page in answers if page),
        "first_page_after_s": first_page_s,
        "answer_ms_median": round(1000 * statistics.median(times), 3),
        "answer_ms_max": round(1000 * times[-1], 3),
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="promotion-bot-status-page-") as tmp:
        workdir = Path(tmp)
        server = start_mlflow_server(workdir / "mlflow")
        try:
            settings = setup(server.url, workdir)
            params = [parse_params({"register_model": {"model_name": m}}, "bench") for m in MODELS]
            result = {
                "models": len(MODELS),
                "entries_per_model": CHANGES,
                "build": measure_builds(settings, params),
                "whole_chains": measure_walks(settings, params),
                "serve": measure_serve(settings, params),
            }
            print(json.dumps(result, indent=2))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
