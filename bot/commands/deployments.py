"""Each champion change also a deployment on the forge: the environment `model/<name>` shows, in
the forge's own deployment history, which version is live, since when, with links to the
version in MLflow and to the request thread (`promotion.deployments`; docs/operations.md, "The
forge's deployment history").

Display only (docs/security.md, "The status page"): no rule reads a deployment back, and the id
the ledger run keeps is a tag, not a signed param. A forge that refuses (a token without the
right, an old GitLab, a network fault) costs one warning and never stops or undoes the change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.errors import ForgeError, RegistryError
from bot.forges.base import Deployment, DeploymentState
from bot.registry.tags import DEPLOYMENT_TAG
from bot.urls import redact_url

if TYPE_CHECKING:
    from bot.ledger.drift import ChampionCheck
    from bot.registry.records import Change
    from bot.runtime.context import Context
    from bot.threads.thread import Thread

log = logging.getLogger(__name__)


def record_change(ctx: Context, change: Change, merge_sha: str = "") -> str:
    """The deployment of a /promote or /rollback (a rollback is a new deployment of the older
    version); its id kept on the change's ledger run. "" when none was made."""
    who = f"{change.action} by {change.actor}" if change.actor else change.action
    description = f"{change.model} v{change.to_version} is champion ({who})"
    made = _record(
        ctx, change.model, change.to_version, "success", description, change.request_url, merge_sha
    )
    if made and change.ledger_run:
        try:
            ctx.registry.set_run_tag(
                change.ledger_run, DEPLOYMENT_TAG, f"{ctx.forge.platform}:{made}"
            )
        except RegistryError as exc:
            log.warning("deployment %s made, but not noted on the ledger run: %s", made, exc)
    return made


def record_drift(ctx: Context, check: ChampionCheck, thread: Thread | None) -> str:
    """A champion set outside the bot: a deployment that failed, saying so."""
    approved = f"v{check.approved_version}" if check.approved_version is not None else "none"
    shown = f"v{check.champion}" if check.champion is not None else "no version"
    description = f"{check.model}: {shown} set outside promotion-bot (approved: {approved})"
    url = thread.url if thread is not None else ""
    return _record(ctx, check.model, check.champion, "failure", description, url)


def _record(
    ctx: Context,
    model: str,
    version: int | None,
    state: DeploymentState,
    description: str,
    log_url: str,
    sha: str = "",
) -> str:
    cfg = ctx.params.promotion.deployments
    if not cfg.enabled:
        return ""
    version_url = ctx.registry.version_url(model, version) if version is not None else ""
    deployment = Deployment(
        model=model,
        environment=f"{cfg.environment_prefix}{model}",
        version=version,
        state=state,
        description=" ".join(description.split())[:140],
        # A URL carrying a credential is no link (bot.urls): the forge shows it to everyone.
        environment_url=version_url if redact_url(version_url) == version_url else "",
        log_url=log_url if redact_url(log_url) == log_url else "",
        ref=cfg.ref,
        sha=sha,
    )
    try:
        return ctx.forge.record_deployment(deployment)
    except ForgeError as exc:
        log.warning(
            "champion of %s recorded, but the forge did not take the deployment: %s",
            model,
            exc,
            extra={"model": model},
        )
        return ""
