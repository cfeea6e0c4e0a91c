"""Stage 1 `register`: the trained run becomes a version with its initial alias (idempotent).

See docs/design.md, "The lifecycle".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError
from bot.registry.tags import REGISTERED_AS_TAG
from bot.registry.versions import VersionInfo, requester_tags
from bot.runtime.context import Context

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


def requester_warning(model: str, version: int) -> str:
    """The one line `register` and `request` print when nobody is recorded as the requester
    (`bot.ci.request_body.requester_missing`): said where it happens, not at approval."""
    return (
        "warning: no requester: PROMOTION_BOT_REQUESTED_BY (or GITLAB_USER_LOGIN / GITHUB_ACTOR) "
        f"is not set, so the registry records nobody as having triggered {model} v{version}: "
        "every /promote of it will be refused until it is set and `promotion-bot request` runs "
        "again (or promotion.approvers.allow_self_approval: true)"
    )


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
        # Kept in the registry: a request body can be edited. The name and, when CI gave it,
        # the forge's user id (a renamed account keeps its id).
        settings = ctx.settings
        tags = requester_tags(ctx.keys, cfg.model_name, version.version,
                              settings.requested_by, settings.requested_by_id)  # fmt: skip
        for key, value in tags.items():
            registry.set_version_tag(cfg.model_name, version.version, key, value)
        log.info("registered %s version %s from run %s", cfg.model_name, version.version, run_id)
    else:
        version = existing
        if REGISTERED_AS_TAG not in version.tags:
            registry.set_version_tag(cfg.model_name, version.version, REGISTERED_AS_TAG, alias)
        log.info("run %s is already %s version %s", run_id, cfg.model_name, version.version)
    registry.set_alias(cfg.model_name, alias, version.version)
    return RegisterResult(version=version, alias=alias, reused=existing is not None)
