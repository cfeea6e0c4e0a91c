"""Stage 2 `gate`: a new version becomes the candidate when its metric is no worse than the
current candidate's (within the tolerance). A failed gate is an expected outcome, returned.

See docs/design.md, "The lifecycle". The hard gates checked at /promote are `bot.rules.gates`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.errors import BotError
from bot.registry.versions import TOY_ALIAS, VersionInfo
from bot.rules.gates import metrics_it_has
from bot.runtime.context import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateResult:
    model: str
    version: int
    metric: str
    new_value: float
    candidate_version: int | None
    candidate_value: float | None
    tolerance: float
    greater_is_better: bool
    passed: bool
    reason: str

    def to_json(self) -> str:
        # JSON has no -Infinity or NaN: a value that is no number is written as null.
        data = {
            key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in asdict(self).items()
        }
        return json.dumps(data, indent=2) + "\n"


def gate(ctx: Context, version: int | None = None) -> GateResult:
    """Compare the newly registered version with the current candidate; move `candidate` on pass.

    The version under test is `version`, else the one the initial alias points at.
    A failed gate is an expected outcome: it is returned, not raised.
    """
    cfg = ctx.params.promote_model
    name = ctx.model
    registry = ctx.registry
    if version is None:
        initial = ctx.params.register_model.model_stage
        found = registry.version_by_alias(name, initial)
        if found is None:
            raise BotError(f"{name} has no @{initial} version: run `promotion-bot register` first")
        new = found
    else:
        new = registry.version(name, version)
    if new.is_toy:
        raise BotError(
            f"{name} v{new.version} was registered as {TOY_ALIAS}: a toy model never becomes "
            f"{cfg.candidate_alias}"
        )
    new_value = _metric(ctx, new, cfg.metric)
    current = registry.version_by_alias(name, cfg.candidate_alias)
    current_value = None
    if not math.isfinite(new_value):  # -inf logloss would pass any comparison
        passed = False
        reason = f"failed: `{cfg.metric}` of v{new.version} is {new_value}, not a finite number"
        if current is not None and current.version != new.version:
            current_value = _metric(ctx, current, cfg.metric)
    elif current is None:
        passed, reason = True, f"no current {cfg.candidate_alias}: the first version always passes"
    elif current.version == new.version:
        current_value = new_value
        passed, reason = True, f"v{new.version} already is {cfg.candidate_alias}"
    else:
        current_value = _metric(ctx, current, cfg.metric)
        passed, reason = _compare(new_value, current_value, cfg.tolerance, cfg.greater_is_better)
    if passed and (current is None or current.version != new.version):
        registry.set_alias(name, cfg.candidate_alias, new.version)
    result = GateResult(
        model=name,
        version=new.version,
        metric=cfg.metric,
        new_value=new_value,
        candidate_version=current.version if current else None,
        candidate_value=current_value,
        tolerance=cfg.tolerance,
        greater_is_better=cfg.greater_is_better,
        passed=passed,
        reason=reason,
    )
    _write_output(cfg.output, result)
    if not passed:
        log.warning("gate failed for %s v%s: %s", name, new.version, reason)
    return result


def _metric(ctx: Context, version: VersionInfo, metric: str) -> float:
    run = ctx.registry.run(version.run_id)
    value = run.metrics.get(metric)
    if value is None:
        # Names are backticked for the request body; a line in a CI log reads them as well.
        raise BotError(
            f"run {version.run_id} ({version.model} v{version.version}) has no metric {metric!r} "
            f"(promote_model.metric): {metrics_it_has(run.metrics, metric)}"
        )
    return value


def _compare(new: float, current: float, tolerance: float, higher_better: bool) -> tuple[bool, str]:
    if not math.isfinite(current):
        # Only set by hand (gate refuses such a value): it must not block its replacement.
        return True, f"passed: the current candidate's value is {current}, not comparable"
    if higher_better:
        passed = new >= current - tolerance
        rule = f"{new:.6g} >= {current:.6g} - {tolerance:g}"
    else:
        passed = new <= current + tolerance
        rule = f"{new:.6g} <= {current:.6g} + {tolerance:g}"
    return passed, (f"passed: {rule}" if passed else f"failed: not {rule}")


def _write_output(path: str, result: GateResult) -> None:
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(file.suffix + ".tmp")
        tmp.write_text(result.to_json(), encoding="utf-8")
        tmp.replace(file)
    except OSError as exc:
        raise BotError(f"{file}: cannot write the gate result ({exc.strerror})") from None
