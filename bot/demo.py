"""`promotion-bot demo`: the whole lifecycle on an embedded registry and the local platform.

Everything runs through the same code as production: `register`, `gate`, `request`, and
comments handled by the command handler; only the forge is the local one and training is a
stand-in that logs a run with a metric.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import RequestResult, open_or_update_request
from bot.config.params import Params, parse_params
from bot.config.settings import Settings
from bot.intake.entry import local_comment
from bot.reports.audit import Query, history_entries, render_table
from bot.reports.status import render_status, status_data
from bot.runtime.context import Context

Echo = Callable[[str], None]

PEOPLE = {"dana": "developer", "maria": "maintainer", "sam": "reporter"}
TRAININGS = [  # (final.logloss, final.accuracy): v1 good, v2 worse than v1, v3 better
    (0.640, 0.655),
    (0.702, 0.611),
    (0.611, 0.671),
]


def demo_params(folder: Path) -> Params:
    """Defaults, with every file the demo writes inside `folder` (never the user's project)."""
    return parse_params(
        {
            "register_model": {"run_id_file": str(folder / "final_run_id.json")},
            "promote_model": {"output": str(folder / "promoted_model.json")},
            "promotion": {
                "templates_dir": "",  # the packaged templates, never the project's overrides
                "approvers": {"users": [], "min_role": "maintainer"},
                "gates": {"thresholds": {"final.accuracy": {"min": 0.6}}},
            },
        },
        "demo",
    )


def run_demo(workdir: str | None, echo: Echo) -> None:
    started = time.monotonic()
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="promotion-bot-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        platform="local",
        local_dir=folder / "forge",
        requested_by="dana",
    )
    ctx = Context(settings=settings, params=demo_params(folder), echo=_indented(echo))
    step = _Stepper(echo)
    step(f"A fresh registry ({settings.tracking_uri}) and a local forge ({settings.local_dir}).")
    forge = ctx.forge
    for person, role in PEOPLE.items():
        forge.set_role(person, role)  # type: ignore[attr-defined]
    echo("   people: dana (developer, triggers training), maria (maintainer), sam (reporter)")

    first = _train_and_gate(ctx, step, folder, 0)
    step("dana's training pipeline opens a promotion request for the candidate.")
    request = _request(ctx)
    _tick_all(ctx, request.number, echo)
    step("maria approves it: the first champion.")
    _comment(ctx, request.number, "maria", "/promote\nFirst production model.", echo)

    _train_and_gate(ctx, step, folder, 1)
    _train_and_gate(ctx, step, folder, 2)
    step("A request for the new candidate (the checklist is fresh and unticked).")
    request = _request(ctx)
    step("sam, a reporter, tries to promote it: refused, nothing changes.")
    _comment(ctx, request.number, "sam", "/promote", echo)
    step("maria tries before the checklist is done: refused, nothing changes.")
    _comment(ctx, request.number, "maria", "/promote", echo)
    step("maria ticks the checklist in the description.")
    _tick_all(ctx, request.number, echo)
    step("maria approves: the candidate becomes champion.")
    _comment(ctx, request.number, "maria", "/promote\nBetter logloss, calibration checked.", echo)
    step(f"Monitoring looks wrong: maria rolls back to v{first}.")
    _comment(ctx, request.number, "maria", f"/rollback {first}\nDrift alert on live data.", echo)

    step("The audit ledger kept in the tracking server (`promotion-bot history`):")
    for line in render_table(history_entries(ctx, Query(model=ctx.model))).splitlines():
        echo(f"   {line}")
    step("And `promotion-bot status`:")
    from bot.reports.status import champion_status

    checked = champion_status(ctx)
    shown = replace(status_data(ctx, ctx.model), champion_check=checked)
    for line in render_status(shown).splitlines():
        echo(f"   {line}")
    echo(f"\nDone in {time.monotonic() - started:.1f}s. Files: {folder}")
    echo(
        "Try more by hand: "
        f"PROMOTION_BOT_PLATFORM=local PROMOTION_BOT_LOCAL_DIR={settings.local_dir} "
        f"MLFLOW_TRACKING_URI={settings.tracking_uri} promotion-bot status"
    )


class _Stepper:
    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.count = 0

    def __call__(self, text: str) -> None:
        self.count += 1
        self.echo(f"\n{self.count}. {text}")


def _indented(echo: Echo) -> Echo:
    def show(text: str) -> None:
        for line in text.rstrip().splitlines():
            echo(f"   │ {line}")

    return show


def _train_and_gate(ctx: Context, step: _Stepper, folder: Path, index: int) -> int:
    logloss, accuracy = TRAININGS[index]
    step(f"Training run {index + 1} finishes: final.logloss={logloss}, final.accuracy={accuracy}.")
    run_id = _log_run(ctx, logloss, accuracy, index)
    registered = register(ctx, run_id=run_id)
    echo = ctx.echo or print
    echo(f"register: {ctx.model} v{registered.version.version} @{registered.alias}")
    result = gate(ctx)
    verdict = "passed → @candidate" if result.passed else "failed, candidate unchanged"
    echo(f"gate: {verdict} ({result.reason})")
    return registered.version.version


def _log_run(ctx: Context, logloss: float, accuracy: float, index: int) -> str:
    """Stand-in for training: a run with the metrics and tags the gates read."""
    return ctx.registry.log_run(
        "demo-training",
        metrics={"final.logloss": logloss, "final.accuracy": accuracy},
        tags={"git_sha": f"demo{index:04d}", "data_version": "v1"},
    )


def _request(ctx: Context) -> RequestResult:
    return open_or_update_request(ctx, version=None)


def _tick_all(ctx: Context, number: str, echo: Echo) -> None:
    thread = ctx.forge.get_thread("issue", number)
    ticked = re.sub(r"^(\s*[-*] )\[ \]", r"\1[x]", thread.body, flags=re.MULTILINE)
    ctx.forge.update_body(thread, ticked)
    echo(f"   (#{number}: every checklist item ticked)")


def _comment(ctx: Context, number: str, author: str, body: str, echo: Echo) -> None:
    first = body.splitlines()[0]
    echo(f"   {author} comments on #{number}: {json.dumps(first)}")
    outcome = local_comment(ctx, number, body, author)
    echo(f"   → {outcome}")
