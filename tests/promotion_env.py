"""A promotion playground for tests: a real MLflow registry, a LocalForge, people with roles."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from mlflow import MlflowClient

from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import request_tags
from bot.ci.request_body import render_request_body
from bot.commands.handler import handle_comment
from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.forges.local import LocalForge
from bot.ledger.entry import LedgerEntry
from bot.ledger.store import Where
from bot.registry.client import Registry
from bot.registry.records import Outcome
from bot.registry.versions import RunRecord
from bot.runtime.context import Context
from bot.threads.thread import Comment, CommentEvent, Thread, ThreadKind
from tests.helpers import TEST_SIGNING_KEY, log_training_run

MakePlayground = Callable[..., "Playground"]
PEOPLE = {"maria": "maintainer", "olga": "owner", "sam": "reporter", "dana": "developer"}


def make_context(
    tracking_uri: str, model: str, root: Path, promotion: dict[str, Any] | None = None
) -> Context:
    params = parse_params(
        {"register_model": {"model_name": model}, "promotion": promotion or {}}, "test"
    )
    settings = Settings(
        tracking_uri=tracking_uri,
        platform="local",
        local_dir=root / "forge",
        signing_key=Secret(TEST_SIGNING_KEY),  # the key `cli` gets from the environment
    )
    return Context(settings=settings, params=params)


@dataclass
class Playground:
    ctx: Context
    root: Path

    @property
    def forge(self) -> LocalForge:
        forge = self.ctx.forge
        assert isinstance(forge, LocalForge)
        return forge

    @property
    def model(self) -> str:
        return self.ctx.model

    def setup_people(self) -> None:
        for person, role in PEOPLE.items():
            self.forge.set_role(person, role)

    def train(
        self,
        logloss: float,
        accuracy: float = 0.7,
        alias: str = "smoke",
        tags: dict[str, str] | None = None,
        gate_it: bool = True,
    ) -> int:
        """A training run registered under `alias` (and gated unless told otherwise)."""
        run_id = log_training_run(
            self.ctx.settings.tracking_uri,
            {"final.logloss": logloss, "final.accuracy": accuracy},
            tags=tags,
        )
        version = register(self.ctx, run_id=run_id, alias=alias).version.version
        if gate_it and alias == "smoke":
            gate(self.ctx, version=version)
        return version

    def open_request(
        self,
        version: int,
        kind: ThreadKind = "issue",
        requested_by: str = "dana",
        ticked: bool = True,
        model: str = "",
        record: bool = True,
    ) -> Thread:
        """A request thread whose body the product renders (`render_request_body`), ticked or not.

        `model` renders it as a request of another model. `record`: tag the version with the
        thread (and `requested_by` when it has no requester) as `request` does; a request of
        another `model` is never recorded in this model.
        """
        info = self.ctx.registry.version(self.model, version)
        if model:
            info = dataclasses.replace(info, model=model)
        body = render_request_body(self.ctx, info, kind=kind, requested_by=requested_by)
        if ticked:
            body = body.replace("- [ ]", "- [x]")
        title = f"Promote {self.model} v{version} to champion"
        labels = list(self.ctx.params.promotion.request.labels)
        if kind == "issue":
            thread = self.forge.open_issue(title, body, labels)
        else:
            branch = f"promotion/{self.model}/v{version}"
            self.forge.commit_file(branch, "main", "record.json", "{}", "record")
            thread = self.forge.open_merge_request(title, body, labels, branch, "main")
        if record and not model:
            self.record_request(version, thread, requested_by)
        return thread

    def record_request(self, version: int, thread: Thread, requested_by: str = "") -> None:
        """The registry's record of the request, as `promotion-bot request` writes it."""
        registry = self.ctx.registry
        info = registry.version(self.model, version)
        tags = request_tags(self.ctx.keys, info, thread.url, requested_by, "", thread.head_sha)
        for key, value in tags.items():
            registry.set_version_tag(self.model, version, key, value)

    def comment(
        self, thread: Thread, author: str, body: str, *, internal: bool = False
    ) -> tuple[Outcome, CommentEvent]:
        posted = self.forge.add_comment(thread.number, author, body, internal=internal)
        event = self.event(thread, posted)
        return handle_comment(self.ctx, event), event

    def event(self, thread: Thread, comment: Comment, action: str = "created") -> CommentEvent:
        project = self.forge.project_ref()
        return CommentEvent.from_comment("local", project, thread, comment, action)  # type: ignore[arg-type]

    def cli(self, *args: str) -> Result:
        """A `promotion-bot` command on this playground's registry and forge folder."""
        from bot.cli import cli

        params = self.root / "params.yaml"
        params.write_text(f"register_model:\n  model_name: {self.model}\n")
        settings = self.ctx.settings
        connection = [
            "--params",
            str(params),
            "--platform",
            "local",
            "--local-dir",
            str(settings.local_dir),
            "--tracking-uri",
            settings.tracking_uri,
        ]
        return CliRunner().invoke(cli, [*args, *connection])

    def answers(self, thread: Thread) -> list[Comment]:
        bot = self.forge.bot_username()
        return [c for c in self.forge.list_comments(thread) if c.author == bot]

    def thread(self, thread: Thread) -> Thread:
        return self.forge.get_thread(thread.kind, thread.number)

    def alias(self, name: str) -> int | None:
        return self.ctx.registry.aliases(self.model).get(name)

    def champion(self) -> int | None:
        return self.alias("champion")

    def history(self) -> list[dict[str, Any]]:
        """The champion history as the registry stores it."""
        return [dict(entry.stored) for entry in self.ctx.registry.history(self.model)]

    def ledger(self) -> list[LedgerEntry]:
        """The model's audit ledger, newest first, as `history` reads it (FINISHED runs)."""
        experiment_id = self.ctx.ledger.experiment_id()
        if not experiment_id:
            return []
        return list(self.ctx.ledger.entries(experiment_id, Where(model=self.model)))

    def ledger_runs(self) -> list[RunRecord]:
        """Every run of the ledger for this model, whatever its state (params or intent tag)."""
        experiment_id = self.ctx.ledger.experiment_id()
        if not experiment_id:
            return []
        runs, _ = self.ctx.registry.search_runs([experiment_id], "", max_results=5000)
        mine = f"{self.model} "
        return [
            run
            for run in runs
            if run.params.get("model") == self.model
            or run.tags.get("mlflow.runName", "").startswith(mine)
        ]


class CountingRegistry(Registry):
    """The real client, counting the ledger's searches (their page sizes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.searches: list[int] = []

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        self.searches.append(kwargs.get("max_results", 0))
        return super().search_runs(*args, **kwargs)


def counted(pg: Playground) -> tuple[Context, CountingRegistry]:
    """A Context of `pg`'s model whose registry counts the ledger's searches."""
    registry = CountingRegistry(pg.ctx.settings.tracking_uri, pg.ctx.keys)
    return Context(pg.ctx.settings, pg.ctx.params, registry=registry, forge=pg.forge), registry


# --- what the registry writer's tests share -------------------------------------------------
def client(pg: Playground) -> MlflowClient:
    """MLflow's own client on the playground's server: how a registry writer edits it."""
    return MlflowClient(tracking_uri=pg.ctx.settings.tracking_uri)


def verified(pg: Playground) -> tuple[int, dict[str, Any]]:
    """`verify --format json` on the playground's model: its exit code and its object."""
    result = pg.cli("verify", "--format", "json")
    [shown] = json.loads(result.output)["models"]  # one shape however many models
    return result.exit_code, shown


def promoted(pg: Playground, logloss: float = 0.6) -> int:
    """A new version trained and promoted by maria through its request: its number."""
    version = pg.train(logloss)
    outcome, _event = pg.comment(pg.open_request(version), "maria", "/promote")
    assert outcome.status == "changed", outcome
    return version
