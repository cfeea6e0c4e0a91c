"""Forge adapters. Core code talks to `Forge` only; `make_forge` picks the adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.forges.base import Forge

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = ["Forge", "make_forge"]


def make_forge(settings: Settings, echo: Callable[[str], None] | None = None) -> Forge:
    """Build the adapter named by settings.platform (imports only that adapter's library)."""
    platform = settings.platform
    if platform == "gitlab":
        from bot.forges.gitlab import GitLabForge

        return GitLabForge.from_settings(settings)
    if platform == "github":
        from bot.forges.github import GitHubForge

        return GitHubForge.from_settings(settings)
    from bot.forges.local import LocalForge

    return LocalForge.from_settings(settings, echo=echo)
