"""promotion-bot benchmark. See bench/RESULTS.md for what is measured and the committed figures.

    python bench/run.py                       # everything; writes bench/results.json
    python bench/run.py --quick               # round-trip counts + import checks (CI, < 1 min)
    python bench/run.py --quick --update-budgets
    python bench/run.py --quick --many-models # counts, imports and ten /promote at once,
                                              # merged into bench/results.json

Everything runs on this machine: a real `mlflow server` on 127.0.0.1, the forges mocked at HTTP
level (`responses`), the webhook server on 127.0.0.1. Exit code 1 when a round-trip count is over
its budget in bench/budgets.json or an import check fails; times are reported, never gated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the checkout, on the path
    sys.path.insert(0, str(ROOT))

BUDGETS = ROOT / "bench" / "budgets.json"
RESULTS = ROOT / "bench" / "results.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="counts and import checks only")
    parser.add_argument(
        "--output", type=Path, help="results JSON [default: bench/results.json; --quick: none]"
    )
    parser.add_argument("--budgets", type=Path, default=BUDGETS, help="round-trip budgets")
    parser.add_argument("--update-budgets", action="store_true", help="write measured counts")
    parser.add_argument("--runs", type=int, default=7, help="runs per start-up timing")
    parser.add_argument("--deliveries", type=int, default=5000, help="webhooks per level")
    parser.add_argument(
        "--many-models",
        action="store_true",
        help="with --quick: also ten /promote on ten models at once, merged into the results",
    )
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench import ledger_query, machine, many_models, startup, webhook_load
    from bench.counting import HttpLog
    from bench.roundtrips import Bench, run_all
    from tests.fakes.github import FakeGitHub
    from tests.fakes.gitlab import FakeGitLab
    from tests.mlflow_server import start_mlflow_server

    results: dict[str, Any] = {"mode": "quick" if args.quick else "full"}
    results["machine"] = machine.describe()
    phases: dict[str, float] = {}
    started = time.monotonic()
    server = start_mlflow_server(workdir / "mlflow")
    phases["mlflow_server_start"] = server.started_in
    try:
        log = HttpLog(
            services={server.url: "mlflow", FakeGitLab.base: "gitlab", FakeGitHub.api: "github"}
        )
        log.install()
        bench = Bench(log, server.url, workdir)
        mark = time.monotonic()
        results["roundtrips"] = run_all(bench)
        phases["roundtrips"] = time.monotonic() - mark
        mark = time.monotonic()
        results["ledger"] = ledger_query.measure(log, bench, workdir, 3 if args.quick else 7)
        phases["history_at"] = time.monotonic() - mark
        log.uninstall()
        model = "bench-cli"
        bench.setup_model(model)
        mark = time.monotonic()
        results["imports"] = startup.import_checks(workdir / "probes", server.url, model)
        phases["import_checks"] = time.monotonic() - mark
        if not args.quick:
            mark = time.monotonic()
            results["startup"] = startup.timings(workdir / "probes", server.url, model, args.runs)
            phases["startup"] = time.monotonic() - mark
            mark = time.monotonic()
            results["webhook"] = webhook_load.run(workdir / "webhook", args.deliveries)
            phases["webhook"] = time.monotonic() - mark
        if not args.quick or args.many_models:
            mark = time.monotonic()
            # MLflow as production runs it (its default workers) and as the tests do (one).
            default = start_mlflow_server(workdir / "mlflow-default", workers=None)
            try:
                servers = {
                    "default": (default.url, default.process.pid),
                    "1": (server.url, server.process.pid),
                }
                results["many_models"] = many_models.run(workdir / "many-models", servers)
            finally:
                default.stop()
            phases["many_models"] = time.monotonic() - mark
    finally:
        server.stop()
    phases["total"] = time.monotonic() - started
    results["phases_s"] = {key: round(value, 1) for key, value in phases.items()}
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.report import budgets_from, markdown, over_budget, targets

    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="promotion-bot-bench-") as tmp:
        workdir = Path(tmp)
        # `gate` writes its output file and the handler its lock files: keep both out of the
        # checkout and away from other runs.
        os.environ["PROMOTION_BOT_LOCK_DIR"] = str(workdir / "locks")
        os.chdir(workdir)
        try:
            results = measure(args, workdir)
        finally:
            os.chdir(here)
    output = args.output or (None if args.quick and not args.many_models else RESULTS)
    if args.quick and args.many_models and output is not None and output.exists():
        # The timings of the last full run stay; counts, imports and this part are new.
        fresh = {key: results[key] for key in ("roundtrips", "imports", "many_models")}
        fresh["many_models"]["machine"] = results["machine"]
        fresh["many_models"]["phases_s"] = results["phases_s"]
        results = {**json.loads(output.read_text()), **fresh}
    results["targets"] = targets(results)
    print(markdown(results))
    print(f"phases (s): {results['phases_s']}")
    if output is not None:
        output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {output}")
    if args.update_budgets:
        args.budgets.write_text(json.dumps(budgets_from(results), indent=2) + "\n")
        print(f"wrote {args.budgets}")
        return 0
    budgets = json.loads(args.budgets.read_text()) if args.budgets.exists() else {}
    if not budgets:
        print(f"error: no budgets in {args.budgets} (run with --update-budgets)", file=sys.stderr)
        return 1
    problems = over_budget(results, budgets)
    for problem in problems:
        print(f"REGRESSION: {problem}", file=sys.stderr)
    if not problems:
        print("round trips within budget; import checks pass")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
