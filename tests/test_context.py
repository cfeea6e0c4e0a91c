"""bot.runtime.context, fast: collaborators handed in stand in for the lazy ones, every model's
Context shares them, and without them the clients are still made on first use."""

from __future__ import annotations

from pathlib import Path

from bot.config.model_set import ModelSet
from bot.config.params import parse_params
from bot.config.settings import Settings
from bot.forges.local import LocalForge
from bot.runtime.context import Context
from tests.fakes.memory_registry import MemoryRegistry


def two_models(tmp_path: Path, **clients: object) -> Context:
    churn, fraud = (parse_params({"register_model": {"model_name": n}}) for n in ("churn", "fraud"))
    models = ModelSet((churn, fraud), declared=True)
    settings = Settings(platform="local", local_dir=tmp_path / "forge")
    return Context(settings, churn, models=models, **clients)  # type: ignore[arg-type]


def test_given_collaborators_are_used_and_shared_by_every_model(tmp_path: Path) -> None:
    registry, forge = MemoryRegistry(), LocalForge(tmp_path / "elsewhere")
    ctx = two_models(tmp_path, registry=registry, forge=forge)
    fraud = ctx.for_model("fraud")
    assert fraud.model == "fraud" and fraud is not ctx
    assert ctx.registry is registry and fraud.registry is registry
    assert ctx.forge is forge and fraud.forge is forge


def test_without_them_the_clients_are_made_once_on_first_use(tmp_path: Path) -> None:
    ctx = two_models(tmp_path)
    assert "forge" not in vars(ctx)  # nothing made yet
    forge = ctx.forge
    assert isinstance(forge, LocalForge) and ctx.for_model("fraud").forge is forge
    assert ctx.lock_store is None  # no PROMOTION_BOT_LOCK_URL: this machine's file lock
