"""The ways in: `handle` (an Actions event file), `serve` (the webhook server) and the local
platform's `comment`, each ending in the command handler. `poll` is `bot.intake.poll`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.commands.grammar import Command, Usage
from bot.commands.routing import context_of_thread, route_comment
from bot.commands.unavailable import answer_now, answer_unavailable, told
from bot.errors import BotError, Unavailable
from bot.intake.payloads import PayloadError, parse_event
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.threads.thread import CommentEvent

if TYPE_CHECKING:
    from bot.intake.wsgi import WebhookApp
    from bot.reports.chain_walks import ChainWalks

log = logging.getLogger(__name__)

MAX_WORKERS = 16  # serve's worker threads: one per model (and one more), up to this


def handle_event_file(ctx: Context, event_name: str, event_file: str) -> Outcome:
    """`handle`: one delivery from a file, as GitHub Actions hands it over."""
    path = Path(event_file)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BotError(f"{path}: cannot read the event file ({exc.strerror})") from None
    except ValueError:
        raise BotError(f"{path}: not a JSON event payload") from None
    try:
        event = parse_event(event_name, payload)
    except PayloadError as exc:
        raise BotError(f"{path}: malformed {event_name} payload: {exc}") from None
    if event is None:
        return Outcome("ignored", f"{event_name} events need no work")
    try:
        return route_comment(ctx, event)
    except Unavailable as exc:
        # No redelivery comes on GitHub Actions: the approver is answered now, and the job
        # still fails for whoever watches the runs (bot.commands.unavailable).
        answered = answer_now(ctx, event, exc)
        _log_outcome(event, "after its one attempt", answered)
        said = "; the thread was told to repeat it" if told(answered) else ""
        raise BotError(f"{exc}: the command was not carried out{said}") from None


def local_comment(ctx: Context, thread: str, body: str, author: str) -> Outcome:
    """`comment`: the local platform's stand-in for a person commenting on a forge."""
    from bot.forges.local import LocalForge

    forge = ctx.forge
    if not isinstance(forge, LocalForge):
        raise BotError("`comment` works on the local platform only (PROMOTION_BOT_PLATFORM=local)")
    number = thread.removeprefix("#")
    if not (number.isascii() and number.isdigit()):
        raise BotError(f"THREAD must be an issue number such as 3 or #3, got {thread!r}")
    current = forge.get_thread("issue", number)
    comment = forge.add_comment(number, author, body)
    event = CommentEvent.from_comment("local", forge.project_ref(), current, comment)
    return route_comment(ctx, event, current)


def serve(ctx: Context, host: str, port: int) -> None:
    """`serve`: the webhook server, with comments handled by the shared handler."""
    from bot.intake.http_server import run_server
    from bot.intake.sources import SOURCES

    app = serve_app(ctx)
    open_routes = [s.route for s in SOURCES if app.allows(s.name) and app.configured(s.name)]
    routes = ", ".join(open_routes) or "none (no secret set)"

    def announce(urls: list[str]) -> None:  # once bound: a busy port fails before this line
        if ctx.echo is not None:
            ctx.echo(f"promotion-bot serving on {', '.join(urls)} — accepting {routes}")

    run_server(ctx.settings, host, port, app, announce=announce)


def serve_app(ctx: Context, **options: Any) -> WebhookApp:
    """The WSGI app `serve` runs: comments go to the shared handler, alias changes to the report.

    `options` go to the WebhookApp (tests: shorter retry delays)."""
    from bot.commands.external_change import report_external_change
    from bot.forges.project_binding import Binding
    from bot.intake.readiness import Readiness
    from bot.intake.workers import RETRY_DELAYS, SharedKeys
    from bot.intake.wsgi import WebhookApp

    def dispatch(event: CommentEvent, admitted: Command | Usage) -> Outcome:
        # A comment the forge does not list yet raises: the worker retries it (API lag behind
        # the webhook) and, after the last attempt, gives up on it. The app admitted the
        # comment before queueing it: its command travels on, never read from the text again.
        outcome = route_comment(ctx, event, wait_for_forge=True, admitted=admitted)
        _log_outcome(event, "handled", outcome)
        return outcome

    # Build the registry, forge and lock-store clients once, before two workers race to, and
    # fail fast on bad settings instead of on the first delivery.
    _ = ctx.registry, ctx.forge
    store = ctx.lock_store
    delays = options.pop("retry_delays", RETRY_DELAYS)
    models = ctx.each_model()
    page = _StatusPage(ctx)
    return WebhookApp(
        ctx.settings,
        dispatch,
        on_alias_change=lambda change: report_external_change(_of_model(ctx, change.model), change),
        champion_alias={model.params.promotion.champion_alias for model in models},
        # One model's commands wait for its lock; the other models' run meanwhile.
        workers=options.pop("workers", min(max(2, len(models) + 1), MAX_WORKERS)),
        # Only the configured forge's comments: another forge's issue numbers and user ids mean
        # nothing here (MLflow's route is always open).
        allowed_platforms=[ctx.settings.platform],
        # Only the configured project's: one secret often signs a whole group's deliveries.
        binding=Binding.of(ctx.forge),
        retry_delays=delays,
        # Replicas share what they took; keys carry the model (or the project, for several), so
        # bots can share one Redis.
        seen=SharedKeys(store, _namespace(ctx)) if store is not None else None,
        on_give_up=_after_the_last_attempt(ctx, sum(delays)),
        readiness=Readiness(_readiness_checks(ctx)),
        status_page=page.build,
        status_upkeep=page.upkeep,
        **options,
    )


class _StatusPage:
    """The status page's build and, after each, the walks of the whole ledger chains that are
    due (bot.reports.chain_walks), both on the page's own thread. The readers are imported by
    the first build: `serve` answers webhooks without loading them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.walks: ChainWalks | None = None

    def build(self) -> str:
        from bot.ledger.store import now_ms
        from bot.reports.chain_walks import ChainWalks
        from bot.reports.page import page_data, render_html

        if self.walks is None:
            self.walks = ChainWalks()
        return render_html(page_data(self.ctx, now_ms(), self.walks))

    def upkeep(self, stopping: Callable[[], bool]) -> object:
        return self.walks.walk_due(self.ctx, stopping) if self.walks is not None else None


def _after_the_last_attempt(
    ctx: Context, seconds: float
) -> Callable[[CommentEvent, Sequence[BaseException]], object]:
    """Answer a command whose every attempt found the registry or lock service unreachable
    before reading anything; anything else that failed may have left a change half done, and
    the next pass (a redelivery, `poll`) must find it unanswered."""

    def give_up(event: CommentEvent, failures: Sequence[BaseException]) -> None:
        last = failures[-1] if failures else None
        if not isinstance(last, Unavailable) or not all(
            isinstance(failure, Unavailable) for failure in failures
        ):
            return
        model_ctx = context_of_thread(ctx, event)
        outcome = answer_unavailable(
            model_ctx, event, last, attempts=len(failures), seconds=seconds
        )
        _log_outcome(event, "after its last attempt", outcome)

    return give_up


def _of_model(ctx: Context, model: str) -> Context:
    """The served model's Context, by the name the registry's event gives (ignored if none)."""
    return ctx.for_model(model) if model in ctx.model_names() else ctx


def _namespace(ctx: Context) -> str:
    """Where a delivery's keys live in the shared Redis: the model's, as before, or with several
    models (a delivery is taken before its model is known) the project's."""
    if not ctx.several:
        return ctx.model
    return f"{ctx.settings.platform}:{ctx.forge.project_ref()}"


def _log_outcome(event: CommentEvent, when: str, outcome: Outcome) -> None:
    extra = {"delivery_id": event.delivery_id, "platform": event.platform}
    log.info("comment %s %s: %s", event.comment_id, when, outcome, extra=extra)


def _readiness_checks(ctx: Context) -> dict[str, Callable[[], object]]:
    """One cheap read each: the model (absent is fine), the project, Redis's PING."""
    checks: dict[str, Callable[[], object]] = {
        "registry": lambda: ctx.registry.model_exists(ctx.model),
        "forge": ctx.forge.ping,
    }
    if ctx.lock_store is not None:
        checks["lock"] = ctx.lock_store.ping
    return checks
