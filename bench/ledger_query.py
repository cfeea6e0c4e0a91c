"""`history --at` on a model with 500 changes: its registry calls, and how long it takes.

The model is set up as the bot leaves one (registered, a first change made by the bot, so its
ledger marker names the experiment), then 500 changes are written straight through the ledger
API (tests/ledger_history.py: the same entries as in tests/test_ledger.py). Not counted.

Measured: the MLflow calls of one `--at` query in a fresh Context, as one CLI process makes
them; the in-process time of 20 queries at random instants, each answer checked against the
sequence that was written; and the wall time of the whole command (`promotion-bot history
--model M --at T`, a new process each run: interpreter, imports, the two calls).
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.counting import HttpLog, count, summary
from bench.roundtrips import Bench
from bench.startup import clean_env
from bot.config.settings import Secret, Settings
from bot.reports.audit import champion_at
from bot.runtime.context import Context
from bot.timestamps import iso_from_ms
from tests.helpers import TEST_SIGNING_KEY
from tests.ledger_history import planned_changes, write_changes

CHANGES = 500
INSTANTS = 20
MODEL = "bench-ledger"
HISTORY_AT_MINIMUM = 2
HISTORY_AT_WHY = (
    "1 registered model (the ledger's experiment id, from the marker the first change wrote), "
    "1 search: the newest FINISHED run of the model with start_time <= TIME (max_results=1)"
)


def measure(log: HttpLog, bench: Bench, workdir: Path, cli_runs: int) -> dict[str, Any]:
    bench.setup_model(MODEL)  # v1 champion through the bot: the ledger and its marker exist
    settings = Settings(
        tracking_uri=bench.tracking_uri,
        local_dir=workdir / "local",
        signing_key=Secret(TEST_SIGNING_KEY),
    )
    ctx = Context(settings=settings, params=bench.params(MODEL))
    changes = planned_changes(MODEL, CHANGES)
    started = time.monotonic()
    write_changes(ctx.ledger, ctx.ledger.experiment_id(), changes)
    setup_s = time.monotonic() - started

    rng = random.Random(500)
    instants = [rng.randint(changes[0].at_ms, changes[-1].at_ms) for _ in range(INSTANTS)]
    seconds, calls = [], []
    for at_ms in instants:
        fresh = Context(settings=settings, params=bench.params(MODEL))  # one CLI process
        mark = time.perf_counter()
        with log.measure() as made:
            found = champion_at(fresh, MODEL, at_ms)
        seconds.append(time.perf_counter() - mark)
        calls.append(made)
        expected = [entry for entry in changes if entry.at_ms <= at_ms][-1]
        wanted = (expected.at_ms, expected.to_version)
        if found is None or (found.at_ms, found.to_version) != wanted:
            raise RuntimeError(f"history --at {iso_from_ms(at_ms)}: got {found}, wanted {expected}")
    counts = {count(made).get("mlflow", 0) for made in calls}
    if len(counts) != 1:
        raise RuntimeError(f"history --at made different numbers of calls: {sorted(counts)}")
    wall = _cli_wall(bench.tracking_uri, workdir, iso_from_ms(instants[0]), cli_runs)
    return {
        "changes": CHANGES,
        "setup_s": round(setup_s, 1),
        "mlflow": counts.pop(),
        "minimum": HISTORY_AT_MINIMUM,
        "why": HISTORY_AT_WHY,
        "calls": summary(calls[0]),
        "query_ms_median": round(statistics.median(seconds) * 1000, 1),
        "query_ms_max": round(max(seconds) * 1000, 1),
        "cli_runs": cli_runs,
        "cli_wall_s_median": round(statistics.median(wall), 3),
        "cli_wall_s_max": round(max(wall), 3),
    }


def _cli_wall(tracking_uri: str, workdir: Path, at: str, runs: int) -> list[float]:
    """`promotion-bot history --at` as a new process; the first run warms the page cache."""
    folder = workdir / "history-at"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(f"register_model:\n  model_name: {MODEL}\n")
    script = Path(sys.executable).with_name("promotion-bot")
    bot = [str(script)] if script.exists() else [sys.executable, "-m", "bot"]
    cmd = [*bot, "history", "--model", MODEL, "--at", at, "--platform", "local"]
    env = clean_env(MLFLOW_TRACKING_URI=tracking_uri)
    walls = []
    for run in range(runs + 1):
        mark = time.perf_counter()
        done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0 or "was champion, since" not in done.stdout:
            raise RuntimeError(f"history --at failed: {done.stdout}{done.stderr[-800:]}")
        if run:
            walls.append(time.perf_counter() - mark)
    return walls
