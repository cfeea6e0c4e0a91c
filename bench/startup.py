"""Start-up cost of the CLI, and which commands import MLflow.

Each command runs in its own process, as in CI. Wall time and peak memory (ru_maxrss of that one
child, from wait4) are the median of N runs. The import checks run `bench/cli_probe.py`, which
reports at exit whether `mlflow` was loaded and how many registry clients were built.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.forge_fixtures import FIXTURES
from tests.helpers import TEST_SIGNING_KEY

HERE = Path(__file__).resolve().parent
# Variables that would change what a probe does (CI detection, a developer's own settings).
_SCRUB = ("GITLAB_CI", "GITHUB_ACTIONS", "CI_", "GITLAB_", "GITHUB_", "PROMOTION_BOT_", "MLFLOW_")


@dataclass(frozen=True)
class Probe:
    name: str
    args: list[str]
    touches_registry: bool
    env: dict[str, str] = field(default_factory=dict)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env["PROMOTION_BOT_SIGNING_KEY"] = TEST_SIGNING_KEY  # the key the benchmark's records bear
    env.update(extra)
    return env


def prepare_workdir(workdir: Path, model: str) -> dict[str, Path]:
    """params.yaml for `model`, a ping and a chatter comment event, an empty local forge."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "params.yaml").write_text(f"register_model:\n  model_name: {model}\n")
    ping = workdir / "ping.json"
    ping.write_text((FIXTURES / "webhooks" / "github_ping.json").read_text())
    comment = json.loads((FIXTURES / "webhooks" / "github_issue_comment_issue.json").read_text())
    comment["comment"]["body"] = "Thanks, the calibration plot looks fine to me."
    chatter = workdir / "comment.json"
    chatter.write_text(json.dumps(comment))
    (workdir / "local").mkdir(exist_ok=True)
    return {"ping": ping, "chatter": chatter, "local": workdir / "local"}


def probes(files: dict[str, Path]) -> list[Probe]:
    github = {
        "PROMOTION_BOT_PLATFORM": "github",
        "GITHUB_REPOSITORY": "octo-org/models",
        "GITHUB_TOKEN": "ghp_bench_not_a_token",
        "PROMOTION_BOT_USERNAME": "promotion-bot",
    }
    local = {"PROMOTION_BOT_PLATFORM": "local", "PROMOTION_BOT_LOCAL_DIR": str(files["local"])}
    handle = ["handle", "--event-name"]
    return [
        Probe("--help", ["--help"], False),
        Probe("--version", ["--version"], False),
        Probe("handle ping", [*handle, "ping", "--event-file", str(files["ping"])], False, github),
        Probe(
            "handle non-command comment",
            [*handle, "issue_comment", "--event-file", str(files["chatter"])],
            False,
            github,
        ),
        # The champion is checked against the ledger first (docs/design.md, "Drift"): poll reads
        # the registry.
        Probe("poll (local, nothing to do)", ["poll"], True, local),
        Probe("gate", ["gate"], True, local),
        Probe("status", ["status"], True, local),
        Probe("history", ["history"], True, local),
        Probe("verify", ["verify"], True, local),
    ]


def import_checks(workdir: Path, tracking_uri: str, model: str) -> list[dict[str, Any]]:
    files = prepare_workdir(workdir, model)
    rows = []
    for probe in probes(files):
        report = workdir / "probe.json"
        report.unlink(missing_ok=True)
        env = clean_env(MLFLOW_TRACKING_URI=tracking_uri, **probe.env)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(HERE / "cli_probe.py"), str(report), *probe.args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        seen = json.loads(report.read_text()) if report.exists() else {}
        loaded = bool(seen.get("mlflow_loaded"))
        ok = (
            done.returncode == 0
            and loaded == probe.touches_registry
            and seen.get("mlflow_loads", 0) <= 1
            and seen.get("registries", 0) == int(probe.touches_registry)
        )
        rows.append(
            {
                "command": probe.name,
                "touches_registry": probe.touches_registry,
                "mlflow_loaded": loaded,
                "mlflow_loads": seen.get("mlflow_loads"),
                "registry_clients": seen.get("registries"),
                "exit_code": done.returncode,
                "seconds": round(time.perf_counter() - started, 3),
                "ok": ok,
                **({} if ok else {"stderr": done.stderr[-800:]}),
            }
        )
    return rows


def _bot_command() -> list[str]:
    script = Path(sys.executable).with_name("promotion-bot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def run_once(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB of the command alone, exit code (see bench/rusage.py)."""
    report = cwd / "rusage.json"
    launcher = [sys.executable, "-S", str(HERE / "rusage.py"), str(report)]
    subprocess.run([*launcher, *cmd], cwd=cwd, env=env, check=True, timeout=300)
    data = json.loads(report.read_text())
    return float(data["wall_s"]), data["maxrss_kib"] / 1024, int(data["exit"])


def timings(workdir: Path, tracking_uri: str, model: str, runs: int) -> list[dict[str, Any]]:
    files = prepare_workdir(workdir, model)
    bot = _bot_command()
    py = sys.executable
    github = next(p.env for p in probes(files) if p.name == "handle ping")
    local = {"PROMOTION_BOT_PLATFORM": "local", "PROMOTION_BOT_LOCAL_DIR": str(files["local"])}
    chatter = ["handle", "--event-name", "issue_comment", "--event-file", str(files["chatter"])]
    cases: list[tuple[str, list[str], dict[str, str]]] = [
        ("python -c pass (interpreter alone)", [py, "-c", "pass"], {}),
        ('python -c "import bot"', [py, "-c", "import bot"], {}),
        ('python -c "import bot.cli"', [py, "-c", "import bot.cli"], {}),
        ("promotion-bot --help", [*bot, "--help"], {}),
        ("promotion-bot --version", [*bot, "--version"], {}),
        ("promotion-bot handle (non-command comment, GitHub)", [*bot, *chatter], github),
        ("promotion-bot gate (HTTP registry)", [*bot, "gate"], local),
        ('python -c "import mlflow" (reference)', [py, "-c", "import mlflow"], {}),
    ]
    rows = []
    for name, cmd, extra in cases:
        env = clean_env(MLFLOW_TRACKING_URI=tracking_uri, **extra)
        run_once(cmd, env, workdir)  # warm the page cache; not counted
        samples = [run_once(cmd, env, workdir) for _ in range(runs)]
        walls = [s[0] for s in samples]
        rss = [s[1] for s in samples]
        rows.append(
            {
                "command": name,
                "runs": runs,
                "wall_s_median": round(statistics.median(walls), 3),
                "wall_s_min": round(min(walls), 3),
                "wall_s_max": round(max(walls), 3),
                "peak_rss_mib_median": round(statistics.median(rss), 1),
                "exit_codes": sorted({s[2] for s in samples}),
            }
        )
    return rows
