"""The forge as `request --dry-run` sees it when it cannot read it (no credentials on a laptop,
no network): the configured platform and the bot's name, nothing else. A dry run then renders the
request as a new one and says what it did not check (docs/design.md, "The lifecycle").

Its threads live in a folder that does not exist, so nothing can be read from or written to it.
"""

from __future__ import annotations

from bot.config.settings import Settings
from bot.forges.local import LocalForge

NOWHERE = "/nonexistent/promotion-bot-offline-forge"


class OfflineForge(LocalForge):
    def __init__(self, settings: Settings) -> None:
        super().__init__(NOWHERE, bot_name=settings.bot_username)
        self.platform = settings.platform

    def slash_promote_works(self) -> bool:
        # As GitLabForge assumes when GitLab's /metadata cannot be read: EE, where `/promote`
        # is a quick action, so the request shows the mention form.
        return self.platform != "gitlab"
