"""Targets, budgets and Markdown tables from a results dict (printed by run.py, pasted into
RESULTS.md)."""

from __future__ import annotations

from typing import Any

from bench.roundtrips import (
    MANY_OPEN,
    MODELS,
    OPEN_REQUESTS,
    OPERATIONS,
    PLATFORMS,
    REQUESTS_PER_MODEL,
)

BUDGET_KEYS = ("mlflow", "forge", "forge_without_username")
HELP_TARGET_S = 0.3
HISTORY_AT_TARGET_S = 2.0
WEBHOOK_P99_TARGET_MS = 20.0
PROMOTE_SLACK = 2
PROMOTE_FORGE_GOAL = 7
BARE_RATIO_GOAL = 1.5
IDLE_POLL_GOAL = 3
IDLE_OPS = ("poll_idle_1", "poll_idle", "poll_idle_500")


# --- targets -----------------------------------------------------------------------------------
def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    trips = results["roundtrips"]["platforms"]
    for platform in PLATFORMS:
        op = trips[platform]["promote"]
        minimum = op["minimum"]
        for service in ("forge", "mlflow"):
            limit = minimum[service] + PROMOTE_SLACK
            rows.append(
                _target(
                    f"/promote within {PROMOTE_SLACK} round trips of the minimum "
                    f"({platform}, {'MLflow' if service == 'mlflow' else 'forge'})",
                    f"≤ {limit} (minimum {minimum[service]})",
                    op[service],
                    op[service] <= limit,
                )
            )
        promote = trips[platform]["promote"]["forge"]
        deployment = trips[platform]["promote"].get("forge_deployment", 0)
        rows.append(
            _target(
                f"/promote in few forge calls ({platform}; the forge deployment after the "
                "answer counted apart)",
                f"≤ {PROMOTE_FORGE_GOAL} + the deployment's",
                f"{promote - deployment} + {deployment}",
                promote - deployment <= PROMOTE_FORGE_GOAL,
            )
        )
        idle = [trips[platform][op]["forge"] for op in IDLE_OPS]
        rows.append(
            _target(
                f"poll, nothing new, after a full read: the same small count with 1, "
                f"{OPEN_REQUESTS} and {MANY_OPEN} open requests ({platform})",
                f"≤ {IDLE_POLL_GOAL}, constant",
                " / ".join(map(str, idle)),
                max(idle) <= IDLE_POLL_GOAL and len(set(idle)) == 1,
            )
        )
        one_new = trips[platform]["poll_one_new"]["forge"]
        rows.append(
            _target(
                f"poll, 1 new /promote among {MANY_OPEN} open requests ({platform})",
                f"≤ {IDLE_POLL_GOAL} + /promote's own ({promote})",
                one_new,
                one_new <= IDLE_POLL_GOAL + promote,
            )
        )
        several = trips[platform]["poll_models_idle"]
        rows.append(
            _target(
                f"poll, {MODELS} models × {REQUESTS_PER_MODEL} open requests, nothing new "
                f"({platform})",
                f"≤ {IDLE_POLL_GOAL}",
                several["forge"],
                several["forge"] <= IDLE_POLL_GOAL,
            )
        )
    for config in (results.get("many_models") or {}).get("configs", []):
        if config.get("mlflow_workers", "1") != "default":
            continue  # the goal is stated against MLflow as production runs it
        rows.append(
            _target(
                f"10 /promote on 10 models at once within 2× one /promote (forge "
                f"{config['forge_latency_s'] * 1000:g} ms away, MLflow default workers)",
                "≤ 2×",
                f"{config['ratio']}× ({config['ten_median_s']} s vs {config['single_median_s']} s)",
                config["ratio"] <= 2,
            )
        )
    ledger = results.get("ledger")
    if ledger:
        rows.append(
            _target(
                f"`history --at` on a model with {ledger['changes']} changes (the whole command)",
                f"< {HISTORY_AT_TARGET_S:g} s",
                f"{ledger['cli_wall_s_median']} s",
                ledger["cli_wall_s_median"] < HISTORY_AT_TARGET_S,
            )
        )
    probes = results.get("imports", [])
    bad = [row["command"] for row in probes if not row["ok"]]
    rows.append(
        _target(
            "MLflow imported once per process, only by commands that touch the registry",
            f"{len(probes)} commands checked",
            "all as expected" if not bad else f"wrong: {', '.join(bad)}",
            not bad and bool(probes),
        )
    )
    startup = {row["command"]: row for row in results.get("startup", [])}
    help_row = startup.get("promotion-bot --help")
    rows.append(
        _target(
            "`promotion-bot --help` wall time",
            f"< {HELP_TARGET_S} s",
            f"{help_row['wall_s_median']} s" if help_row else "not measured (--quick)",
            help_row["wall_s_median"] < HELP_TARGET_S if help_row else None,
        )
    )
    levels = {row["senders"]: row for row in (results.get("webhook") or {}).get("levels", [])}
    top = levels.get(50)
    rows.append(
        _target(
            "webhook answered, p99 at 50 concurrent senders",
            f"< {WEBHOOK_P99_TARGET_MS:g} ms",
            f"{top['answer_ms']['p99']} ms" if top else "not measured (--quick)",
            top["answer_ms"]["p99"] < WEBHOOK_P99_TARGET_MS if top else None,
        )
    )
    for senders, row in sorted(levels.items()):
        ratio = row.get("ratio_to_bare")
        if not ratio:
            continue
        rows.append(
            _target(
                f"webhook answer p99 against a bare WSGI app on the same server and load "
                f"({senders} sender{'s' if senders > 1 else ''})",
                f"≤ {BARE_RATIO_GOAL}×",
                f"{ratio['p99']}× (p50 {ratio['p50']}×; bare p99 {row['bare_answer_ms']['p99']} "
                f"ms)",
                ratio["p99"] <= BARE_RATIO_GOAL,
            )
        )
    return rows


def _target(name: str, target: str, measured: object, met: bool | None) -> dict[str, Any]:
    return {"target": name, "wanted": target, "measured": measured, "met": met}


# --- budgets -----------------------------------------------------------------------------------
def budgets_from(results: dict[str, Any]) -> dict[str, Any]:
    trips = results["roundtrips"]["platforms"]
    return {
        "_comment": "Round-trip budgets checked by `python bench/run.py --quick` (CI). A count "
        "above its budget fails; lower is fine. After a deliberate change, regenerate with "
        "`python bench/run.py --quick --update-budgets` and commit.",
        "roundtrips": {
            platform: {op: {k: trips[platform][op][k] for k in BUDGET_KEYS} for op in OPERATIONS}
            for platform in PLATFORMS
        },
        "ledger": {"history_at": {"mlflow": results["ledger"]["mlflow"]}},
    }


def over_budget(results: dict[str, Any], budgets: dict[str, Any]) -> list[str]:
    problems = []
    trips = results["roundtrips"]["platforms"]
    for platform, ops in budgets.get("roundtrips", {}).items():
        for op, limits in ops.items():
            for key, limit in limits.items():
                got = trips[platform][op][key]
                if got > limit:
                    problems.append(f"{platform} {op} {key}: {got} round trips > budget {limit}")
    for op, limits in budgets.get("ledger", {}).items():
        got = results["ledger"]["mlflow"] if op == "history_at" else None
        if got is None or got > limits["mlflow"]:
            problems.append(f"ledger {op} mlflow: {got} round trips > budget {limits['mlflow']}")
    for platform, ops in trips.items():
        for op, data in ops.items():
            if data.get("other"):  # a request to neither MLflow nor the forge: a new dependency
                problems.append(f"{platform} {op}: {data['other']} request(s) to other hosts")
    for row in results.get("imports", []):
        if not row["ok"]:
            problems.append(f"import check failed: {row['command']}: {row}")
    return problems + over_many_models(results, budgets)


# --- tables ------------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def roundtrip_table(results: dict[str, Any]) -> str:
    trips = results["roundtrips"]["platforms"]
    header = ["operation", "MLflow (min)"]
    for platform in PLATFORMS:
        header += [f"{platform} (min)", f"{platform} w/o PROMOTION_BOT_USERNAME"]
    rows = []
    for op in OPERATIONS:
        first = trips[PLATFORMS[0]][op]
        mlflow = {trips[p][op]["mlflow"] for p in PLATFORMS}
        row: list[object] = [
            op,
            f"{'/'.join(str(m) for m in sorted(mlflow))} ({first['minimum']['mlflow']})",
        ]
        for platform in PLATFORMS:
            data = trips[platform][op]
            row += [f"{data['forge']} ({data['minimum']['forge']})", data["forge_without_username"]]
        rows.append(row)
    return _table(header, rows)


def ledger_table(results: dict[str, Any]) -> str:
    data = results["ledger"]
    row = [
        f"`history --at` ({data['changes']} changes)",
        f"{data['mlflow']} ({data['minimum']})",
        f"{data['query_ms_median']} / {data['query_ms_max']}",
        f"{data['cli_wall_s_median']} / {data['cli_wall_s_max']} ({data['cli_runs']} runs)",
    ]
    header = ["query", "MLflow (min)", "in-process ms median / max", "command s median / max"]
    return _table(header, [row])


def imports_table(results: dict[str, Any]) -> str:
    rows = [
        [
            f"`{r['command']}`",
            "yes" if r["touches_registry"] else "no",
            "yes" if r["mlflow_loaded"] else "no",
            r["mlflow_loads"],
            r["registry_clients"],
            "ok" if r["ok"] else "**WRONG**",
        ]
        for r in results.get("imports", [])
    ]
    header = ["command", "needs registry", "mlflow imported", "loads", "registry clients", ""]
    return _table(header, rows)


def startup_table(results: dict[str, Any]) -> str:
    rows = [
        [
            f"`{r['command']}`",
            r["wall_s_median"],
            f"{r['wall_s_min']}–{r['wall_s_max']}",
            r["peak_rss_mib_median"],
            r["runs"],
        ]
        for r in results.get("startup", [])
    ]
    return _table(["command", "wall s (median)", "min–max", "peak RSS MiB", "runs"], rows)


def _bare(row: dict[str, Any]) -> str:
    bare, ratio = row.get("bare_answer_ms"), row.get("ratio_to_bare")
    if not bare or not ratio:
        return "—"
    return f"{bare['p50']} / {bare['p99']} ({ratio['p50']}× / {ratio['p99']}×)"


def webhook_table(results: dict[str, Any]) -> str:
    rows = []
    for r in (results.get("webhook") or {}).get("levels", []):
        a, app = r["answer_ms"], r["app_ms"]
        rows.append(
            [
                r["senders"],
                r["deliveries"],
                r["throughput_per_s"],
                a["p50"],
                a["p90"],
                a["p99"],
                a["max"],
                f"{app['p50']} / {app['p99']}",
                _bare(r),
                r.get("server_cpu_ms_per_delivery"),
                r.get("client_cpu_ms_per_delivery"),
                ", ".join(f"{k}: {v}" for k, v in r["statuses"].items()),
            ]
        )
    header = [
        "senders",
        "deliveries",
        "per s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "in-app p50 / p99 ms",
        "bare app p50 / p99 ms (ratio)",
        "server CPU ms/delivery",
        "client CPU ms/delivery",
        "statuses",
    ]
    return _table(header, rows)


def many_models_table(results: dict[str, Any]) -> str:
    rows = [
        [
            f"{c['forge_latency_s'] * 1000:g} ms",
            c.get("mlflow_workers", "1"),
            c["workers"],
            f"{c['single_median_s']} ({', '.join(str(t) for t in c['single_promote_s'])})",
            f"{c['ten_median_s']} ({', '.join(str(t) for t in c['ten_at_once_s'])})",
            f"{c['ratio']}×",
            ", ".join(f"{k} {v}" for k, v in c["ten_cpu_s"].items()),
            "/".join(f"{n:g}" for n in c["forge_calls_per_promote"]),
        ]
        for c in (results.get("many_models") or {}).get("configs", [])
    ]
    header = [
        "forge latency",
        "MLflow workers",
        "serve workers",
        "one /promote, s (median; runs)",
        "ten at once, s (median; rounds)",
        "ratio",
        "CPU s of the ten",
        "forge calls per /promote",
    ]
    return _table(header, rows)


def over_many_models(results: dict[str, Any], budgets: dict[str, Any]) -> list[str]:
    """Each /promote of the ten made the forge calls of one /promote (no retries, no extra)."""
    limit = budgets.get("roundtrips", {}).get("github", {}).get("promote", {}).get("forge")
    problems = []
    for config in (results.get("many_models") or {}).get("configs", []):
        for calls in config["forge_calls_per_promote"]:
            if limit is not None and calls > limit:
                problems.append(f"10 /promote at once: {calls} forge calls each > budget {limit}")
    return problems


def targets_table(results: dict[str, Any]) -> str:
    marks = {True: "met", False: "**not met**", None: "—"}
    rows = [[t["target"], t["wanted"], t["measured"], marks[t["met"]]] for t in results["targets"]]
    return _table(["target", "wanted", "measured", ""], rows)


def markdown(results: dict[str, Any]) -> str:
    parts = [
        "### Round trips per operation (measured, with PROMOTION_BOT_USERNAME set)",
        roundtrip_table(results),
        "### The audit ledger",
        ledger_table(results),
        "### MLflow imports",
        imports_table(results),
    ]
    if results.get("startup"):
        parts += ["### Start-up", startup_table(results)]
    if results.get("webhook"):
        parts += ["### Webhook answer time", webhook_table(results)]
    if results.get("many_models"):
        parts += ["### Ten /promote on ten models at once", many_models_table(results)]
    parts += ["### Targets", targets_table(results)]
    return "\n\n".join(parts) + "\n"
