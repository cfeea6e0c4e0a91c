"""Forge adapters. Core code talks to `Forge` only; `make_forge` picks the adapter."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.forges.base import Forge
from bot.urls import redact_url

if TYPE_CHECKING:
    from bot.config.settings import Settings

__all__ = ["Forge", "make_forge"]

log = logging.getLogger(__name__)


def make_forge(settings: Settings, echo: Callable[[str], None] | None = None) -> Forge:
    """Build the adapter named by settings.platform (imports only that adapter's library)."""
    platform = settings.platform
    if platform == "gitlab":
        from bot.forges.gitlab import GitLabForge

        url = redact_url(settings.gitlab_url)
        log.info("GitLab at %s, project %s", url, settings.gitlab_project)
        return GitLabForge.from_settings(settings)
    if platform == "github":
        from bot.forges.github import GitHubForge

        log.info(
            "GitHub API at %s, repository %s",
            redact_url(settings.github_api_url),
            settings.github_repository,
        )
        return GitHubForge.from_settings(settings)
    from bot.forges.local import LocalForge

    log.info("local forge in %s", settings.local_dir)
    return LocalForge.from_settings(settings, echo=echo)
