"""Stage 1 `register` and Stage 2 `gate` (SPEC §1): the automated half of the lifecycle."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.context import Context
from bot.errors import BotError, ConfigError
from bot.tags import REGISTERED_AS_TAG, REQUESTED_BY_TAG
from bot.versions import TOY_ALIAS, VersionInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisterResult:
    version: VersionInfo
    alias: str
    reused: bool  # the run id was registered before: its version was reused


def read_run_id(path: str | Path) -> str:
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file (training writes the run id there)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{file}: not a JSON file with a run_id ({exc})") from None
    run_id = data.get("run_id") if isinstance(data, dict) else None
    if not isinstance(run_id, str) or not run_id.strip():
        raise ConfigError(f'{file}: expected {{"run_id": "..."}}')
    return run_id.strip()


def register(ctx: Context, run_id: str | None = None, alias: str | None = None) -> RegisterResult:
    """Create (or reuse) the version for the run and point the initial alias at it."""
    cfg = ctx.params.register_model
    alias = alias or cfg.model_stage
    if alias not in ("ci-smoke", "smoke"):
        raise ConfigError(f"--alias: the initial alias is ci-smoke or smoke, not {alias!r}")
    run_id = run_id or read_run_id(cfg.run_id_file)
    registry = ctx.registry
    registry.run(run_id)  # a clear "run ... not found" before anything is created
    registry.ensure_model(cfg.model_name)
    existing = registry.version_by_run(cfg.model_name, run_id)
    if existing is None:
        source = f"runs:/{run_id}/{cfg.artifact_path}"
        version = registry.create_version(cfg.model_name, source, run_id)
        registry.set_version_tag(cfg.model_name, version.version, REGISTERED_AS_TAG, alias)
        if ctx.settings.requested_by:  # kept in the registry: a request body can be edited
            registry.set_version_tag(
                cfg.model_name, version.version, REQUESTED_BY_TAG, ctx.settings.requested_by
            )
        log.info("registered %s version %s from run %s", cfg.model_name, version.version, run_id)
    else:
        version = existing
        if REGISTERED_AS_TAG not in version.tags:
            registry.set_version_tag(cfg.model_name, version.version, REGISTERED_AS_TAG, alias)
        log.info("run %s is already %s version %s", run_id, cfg.model_name, version.version)
    registry.set_alias(cfg.model_name, alias, version.version)
    return RegisterResult(version=version, alias=alias, reused=existing is not None)


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
        return json.dumps(asdict(self), indent=2) + "\n"


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
    if current is None:
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
    if value is None or math.isnan(value):
        raise BotError(
            f"run {version.run_id} ({version.model} v{version.version}) has no metric {metric!r}"
        )
    return value


def _compare(new: float, current: float, tolerance: float, higher_better: bool) -> tuple[bool, str]:
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
