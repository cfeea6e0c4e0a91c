"""Each champion change also a deployment on the forge: the environment `model/<name>` shows, in
the forge's own deployment history, which version is live, since when, with links to the
version in MLflow and to the request thread (`promotion.deployments`; docs/operations.md, "The
forge's deployment history").

Display only (docs/security.md, "The status page"): no rule reads a deployment back, and the id
the ledger run keeps is a tag, not a signed param. A forge that refuses (a token without the
right, an old GitLab, a network fault) costs one warning and never stops or undoes the change.

The commit a deployment names is one the bot knows without asking the forge when it can: the
change's own (a merged request's head), else the one the CI job runs at (bot.config.ci_commit);
only then does the forge read its default branch.

A refusal (401/403/404: the token may not create deployments) is remembered by the forge client
for a day, so a process that makes many changes (`serve`, a `poll` pass) warns once and does not
ask again on every change; after a day it asks once more, so a right granted since is used
without a restart. A one-off process (`handle` in CI) asks once, and warns once.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

from bot.errors import ForgeAuthError, ForgeError, ForgeNotFoundError, RegistryError
from bot.forges.base import Deployment, DeploymentState
from bot.registry.tags import DEPLOYMENT_TAG
from bot.urls import redact_url

if TYPE_CHECKING:
    from bot.forges.base import Forge
    from bot.ledger.drift import ChampionCheck
    from bot.registry.records import Change
    from bot.runtime.context import Context
    from bot.threads.thread import Thread

log = logging.getLogger(__name__)

ASK_AGAIN_AFTER_S = 24 * 60 * 60  # a refusing forge is asked again once a day
_clock = time.monotonic
_refused: weakref.WeakKeyDictionary[Forge, float] = weakref.WeakKeyDictionary()
_refused_lock = threading.Lock()


def record_change(ctx: Context, change: Change, merge_sha: str = "") -> str:
    """The deployment of a /promote or /rollback (a rollback is a new deployment of the older
    version); its id kept on the change's ledger run. "" when none was made. `merge_sha`: the
    commit the change's request is merged at, when it has one."""
    who = f"{change.action} by {change.actor}" if change.actor else change.action
    description = f"{change.model} v{change.to_version} is champion ({who})"
    made = _record(
        ctx, change.model, change.to_version, "success", description, change.request_url, merge_sha
    )
    _keep(ctx, change.ledger_run, made)
    return made


def record_drift(ctx: Context, check: ChampionCheck, thread: Thread | None, ledger_run: str) -> str:
    """A champion set outside the bot: a deployment that failed, saying so; its id kept on the
    `external` ledger run that recorded the drift."""
    approved = f"v{check.approved_version}" if check.approved_version is not None else "none"
    shown = f"v{check.champion}" if check.champion is not None else "no version"
    description = f"{check.model}: {shown} set outside promotion-bot (approved: {approved})"
    url = thread.url if thread is not None else ""
    made = _record(ctx, check.model, check.champion, "failure", description, url)
    _keep(ctx, ledger_run, made)
    return made


def _keep(ctx: Context, ledger_run: str, made: str) -> None:
    """The deployment's id as a tag of the ledger run: the run's signed params were written
    before the deployment existed, and a tag is a link for people, never evidence."""
    if not (made and ledger_run):
        return
    try:
        ctx.registry.set_run_tag(ledger_run, DEPLOYMENT_TAG, f"{ctx.forge.platform}:{made}")
    except RegistryError as exc:
        log.warning("deployment %s made, but not noted on the ledger run: %s", made, exc)


def _record(
    ctx: Context,
    model: str,
    version: int | None,
    state: DeploymentState,
    description: str,
    log_url: str,
    pinned: str = "",
) -> str:
    cfg = ctx.params.promotion.deployments
    if not cfg.enabled:
        return ""
    forge = ctx.forge
    if _refusing(forge):
        log.debug("no deployment of %s: the forge refused them less than a day ago", model)
        return ""
    version_url = ctx.registry.version_url(model, version) if version is not None else ""
    ref, sha = _commit(ctx, pinned)
    deployment = Deployment(
        model=model,
        environment=f"{cfg.environment_prefix}{model}",
        version=version,
        state=state,
        description=" ".join(description.split())[:140],
        # A URL carrying a credential is no link (bot.urls): the forge shows it to everyone.
        environment_url=version_url if redact_url(version_url) == version_url else "",
        log_url=log_url if redact_url(log_url) == log_url else "",
        ref=ref,
        sha=sha,
    )
    try:
        return forge.record_deployment(deployment)
    except (ForgeAuthError, ForgeNotFoundError) as exc:
        with _refused_lock:
            _refused[forge] = _clock()
        log.warning(
            "champion of %s recorded, but the forge refused the deployment: %s; this process "
            "asks again in a day (promotion.deployments.enabled: false turns them off)",
            model,
            exc,
            extra={"model": model},
        )
    except ForgeError as exc:
        log.warning(
            "champion of %s recorded, but the forge did not take the deployment: %s",
            model,
            exc,
            extra={"model": model},
        )
    return ""


def _refusing(forge: Forge) -> bool:
    """Whether `forge` refused a deployment less than a day ago."""
    with _refused_lock:
        since = _refused.get(forge)
        if since is None:
            return False
        if _clock() - since < ASK_AGAIN_AFTER_S:
            return True
        del _refused[forge]  # a day passed: ask once more
        return False


def _commit(ctx: Context, pinned: str) -> tuple[str, str]:
    """The branch and commit a deployment names, "" where the forge must say: the configured
    branch, else the CI job's; the change's own commit (`pinned`), else the CI job's when it
    is on that branch. GitHub needs only one of them, GitLab both (bot.forges)."""
    configured = ctx.params.promotion.deployments.ref
    ran = ctx.settings.commit_ran_at()
    ref = configured or (ran.branch if ran else "")
    sha = pinned or (ran.sha if ran and ran.branch == ref else "")
    return ref, sha
