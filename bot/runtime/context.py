"""What a command needs, built lazily: MLflow and the forge client are created on first use.

With several models (params.yaml's `models:`), one Context serves them all and `for_model`
gives each model's own, sharing the registry, forge and lock-store clients of the first: one
`GET /user`, one MLflow client per process whatever the number of models. A caller may hand
its own (`Context(settings, params, registry=..., forge=...)`): tests pass their fakes this way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.config.params import Params
from bot.config.settings import Settings
from bot.templating import render

if TYPE_CHECKING:
    from bot.config.model_set import ModelSet
    from bot.forges.base import Forge
    from bot.ledger.store import Ledger
    from bot.registry.client import Registry
    from bot.runtime.shared_store import RedisStore
    from bot.signing import Keys


@dataclass(init=False)  # the init below: the collaborators are arguments, not fields
class Context:
    settings: Settings
    params: Params
    echo: Callable[[str], None] | None  # the local platform prints requests and answers
    # Every model this run serves (None: `params` alone); `params` is then the first one's.
    models: ModelSet | None
    root: Context | None = field(repr=False, compare=False)  # whose clients

    def __init__(
        self,
        settings: Settings,
        params: Params | None = None,
        echo: Callable[[str], None] | None = None,
        models: ModelSet | None = None,
        root: Context | None = None,
        *,
        registry: Registry | None = None,
        ledger: Ledger | None = None,
        forge: Forge | None = None,
        lock_store: RedisStore | None = None,
    ) -> None:
        self.settings = settings
        self.params = params if params is not None else Params()
        self.echo = echo
        self.models = models
        self.root = root
        # Collaborators the caller brings (a test's fake, the benchmark's counting client) stand
        # in for the ones made on first use; None keeps the lazy default.
        self._registry = registry
        self._ledger = ledger
        self._forge = forge
        self._lock_store = lock_store

    @cached_property
    def registry(self) -> Registry:
        if self._registry is not None:
            return self._registry
        if self.root is not None:
            return self.root.registry
        from bot.registry.client import Registry

        return Registry(self.settings.tracking_uri, self.keys)

    @cached_property
    def ledger(self) -> Ledger:
        """The audit ledger in the registry's tracking server (docs/design.md, "The ledger"):
        one for every model, as the registry is."""
        if self._ledger is not None:
            return self._ledger
        if self.root is not None:
            return self.root.ledger
        from bot.ledger.store import Ledger

        return Ledger(self.registry, self.keys, self.settings.ledger_experiment)

    @cached_property
    def keys(self) -> Keys:
        """The bot's signing key and the public keys it trusts (docs/security.md): the key of
        PROMOTION_BOT_SIGNING_KEY, else on the local platform its own, kept in its folder; on a
        forge, without one, records can be checked (`verify`) but none written."""
        if self.root is not None:
            return self.root.keys
        from bot.signing import Keys, local_key

        private, trusted = self.settings.signing_key.value, self.params.promotion.trusted_keys
        if private or self.settings.platform != "local":
            return Keys.load(private, trusted)
        folder = self.settings.local_dir  # made at the first signature: a dry run writes nothing
        return Keys.load(local_key(folder, create=False), trusted, lambda: local_key(folder))

    @cached_property
    def forge(self) -> Forge:
        if self._forge is not None:
            return self._forge
        if self.root is not None:
            return self.root.forge
        from bot.forges import make_forge

        return make_forge(self.settings, echo=self.echo)

    @cached_property
    def lock_store(self) -> RedisStore | None:
        """The shared Redis (PROMOTION_BOT_LOCK_URL), or None: this machine's file lock."""
        if self._lock_store is not None:
            return self._lock_store
        if self.root is not None:
            return self.root.lock_store
        if not self.settings.lock_url:
            return None
        from bot.runtime.shared_store import RedisStore

        settings = self.settings
        return RedisStore(
            settings.lock_url, bot=settings.instance_id, registry=settings.registry_id
        )

    @property
    def model(self) -> str:
        return self.params.register_model.model_name

    @property
    def several(self) -> bool:
        """More than one model to serve: commands are routed to their request's model."""
        return self.models is not None and len(self.models) > 1

    def model_names(self) -> tuple[str, ...]:
        return self.models.names if self.models is not None else (self.model,)

    def for_model(self, name: str) -> Context:
        """The Context of model `name`: its own params, the same clients."""
        if name == self.model:
            return self
        params = self.models.get(name) if self.models is not None else None
        if params is None:
            raise KeyError(name)
        return Context(self.settings, params, self.echo, self.models, self.root or self)

    def each_model(self) -> list[Context]:
        return [self.for_model(name) for name in self.model_names()]

    def render(self, template: str, **context: Any) -> str:
        """Render a packaged template, or its override from promotion.templates_dir."""
        return render(template, self.params.promotion.templates_dir, **context)
