"""What a command needs, built lazily: MLflow and the forge client are created on first use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.config import Params
from bot.settings import Settings
from bot.templating import render

if TYPE_CHECKING:
    from bot.coordination import RedisStore
    from bot.forges.base import Forge
    from bot.ledger import Ledger
    from bot.registry import Registry


@dataclass
class Context:
    settings: Settings
    params: Params = field(default_factory=Params)
    echo: Callable[[str], None] | None = None  # the local platform prints requests and answers

    @cached_property
    def registry(self) -> Registry:
        from bot.registry import Registry

        return Registry(self.settings.tracking_uri)

    @cached_property
    def ledger(self) -> Ledger:
        """The audit ledger in the registry's tracking server (docs/design.md, "The ledger")."""
        from bot.ledger import Ledger

        return Ledger(self.registry, self.settings.ledger_experiment)

    @cached_property
    def forge(self) -> Forge:
        from bot.forges import make_forge

        return make_forge(self.settings, echo=self.echo)

    @cached_property
    def lock_store(self) -> RedisStore | None:
        """The shared Redis (PROMOTION_BOT_LOCK_URL), or None: this machine's file lock."""
        if not self.settings.lock_url:
            return None
        from bot.coordination import RedisStore

        return RedisStore(self.settings.lock_url)

    @property
    def model(self) -> str:
        return self.params.register_model.model_name

    def render(self, template: str, **context: Any) -> str:
        """Render a packaged template, or its override from promotion.templates_dir."""
        return render(template, self.params.promotion.templates_dir, **context)
