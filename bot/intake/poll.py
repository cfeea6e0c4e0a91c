"""`poll`: find commands nobody answered yet and handle them, oldest first (docs/design.md,
"Polling").

For forges without inbound network (GitLab scheduled pipelines): one listing call for the
requests of every model served (one per request kind on GitLab) updated since the cursor
(bot.intake.poll_cursor), then one comments call per such open (or recently active closed)
request; each command goes to its request's model. Without a cursor it holds, every request is
read. First, each model's champion is checked against the audit ledger (one model read each;
the first model's read also carries the cursor), so a champion moved outside the bot is caught
without an MLflow webhook (docs/design.md, "Drift"), and an intent the bot did not sign is
reported from the same read ("Forged records"). A pass without a failure moves the cursor (one
tag write).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bot.commands.admission import Admitted, Ignored, for_this_bot
from bot.commands.routing import route_comment
from bot.commands.unavailable import answer_now, told
from bot.errors import Unavailable
from bot.intake.poll_cursor import cursor_value, read_cursor, tag_key
from bot.registry.model_state import ModelState
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.runtime.request_threads import find_all_requests
from bot.threads.markers import answered_comment_ids
from bot.threads.thread import Comment, CommentEvent, Thread
from bot.timestamps import parse_iso

log = logging.getLogger(__name__)

CLOSED_WINDOW = timedelta(days=14)  # rollbacks are typed on recently closed requests


@dataclass
class PollResult:
    threads: int = 0
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    champions: list[tuple[str, Outcome]] = field(default_factory=list)  # (model, drift found)
    check_failures: list[str] = field(default_factory=list)  # drift checks that could not be made
    since: str = ""  # the cursor this pass read from; "" for a full read
    full_read: str = ""  # why the pass read every request ("" when it had a cursor)

    def summary(self) -> str:
        lines = [f"checked {self.threads} request(s); {len(self.outcomes)} command(s) handled"]
        lines += [f"  {model}: champion moved outside the bot: {o}" for model, o in self.champions]
        lines += [f"  comment {cid}: {outcome}" for cid, outcome in self.outcomes]
        lines += [f"  failed: {problem}" for problem in self.failures]
        lines += [f"  failed: the champion check of {problem}" for problem in self.check_failures]
        return "\n".join(lines)


def poll(ctx: Context, now: datetime | None = None) -> PollResult:
    now = now or datetime.now(timezone.utc)
    forge = ctx.forge
    result = PollResult()
    first: ModelState | None = None
    in_flight = False
    for model_ctx in ctx.each_model():
        state = _check_champion(model_ctx, result, now)
        in_flight = in_flight or (state is not None and state.pending is not None)
        if model_ctx.model == ctx.model:
            first = state
    bot = ctx.settings.instance_id
    if first is None:
        result.full_read = "the model holding the cursor could not be read"
    elif in_flight:  # a pass that died mid-change: its command may be older than the cursor
        result.full_read = "a change in flight awaits its answer"
    else:
        result.since, result.full_read = read_cursor(first.tags, bot, ctx.model, ctx.keys, now)
    pending: list[tuple[Comment, Thread, CommentEvent, Admitted]] = []
    project = forge.project_ref()  # read from this forge's project: bound by construction
    for thread in _model_threads(ctx, now, result.since):
        result.threads += 1
        comments = forge.list_comments(thread)
        answered = answered_comment_ids([c.body for c in comments if forge.is_bot(c.author)])
        for comment in comments:
            if comment.system or comment.edited or comment.id in answered:
                continue  # edits are never commands: only what was posted counts
            if forge.is_bot(comment.author):
                continue  # its own answers: not worth reading (for_this_bot would say so)
            event = CommentEvent.from_comment(forge.platform, project, thread, comment)
            admitted = for_this_bot(ctx, event)  # read once; routed with the thread below
            if not isinstance(admitted, Ignored):
                pending.append((comment, thread, event, admitted))
    pending.sort(key=lambda item: (item[0].created_at, _numeric(item[0].id)))
    for comment, thread, event, admitted in pending:
        try:
            outcome = route_comment(ctx, event, thread=thread, admitted=admitted)
            result.outcomes.append((comment.id, outcome))
        except Unavailable as exc:
            # Answered now, not retried silently by every scheduled run (bot.commands.
            # unavailable); still a failure of this run, so the job turns red.
            log.exception("comment %s on #%s failed", comment.id, thread.number)
            result.failures.append(
                f"comment {comment.id} on #{thread.number}: {exc} ({_answer(ctx, event, exc)})"
            )
        except Exception as exc:  # one failing command must not stop the others
            log.exception("comment %s on #%s failed", comment.id, thread.number)
            result.failures.append(f"comment {comment.id} on #{thread.number}: {exc}")
    if first is not None and not result.failures and not result.check_failures:
        _advance(ctx, bot, now)
    return result


def _answer(ctx: Context, event: CommentEvent, problem: Unavailable) -> str:
    try:
        answered = answer_now(ctx, event, problem)
    except Exception as exc:  # the forge or the lock failed too: the next poll tries again
        log.exception("answering comment %s failed", event.comment_id)
        return f"not answered: {exc}"
    return "answered: repeat the command" if told(answered) else str(answered)


def _advance(ctx: Context, bot: str, started: datetime) -> None:
    """Move the cursor to this pass's start (less the overlap). Without a key the bot cannot
    seal it, and an unsealed cursor would be ignored: the next pass reads everything."""
    if not ctx.keys.can_sign:
        return
    value = cursor_value(started, bot, ctx.model, ctx.keys)
    try:
        ctx.registry.set_model_tag(ctx.model, tag_key(bot), value)
    except Exception as exc:  # the commands stand; the next pass reads from the old cursor
        log.warning("could not move the poll cursor: %s", exc)


def _check_champion(ctx: Context, result: PollResult, now: datetime) -> ModelState | None:
    """Record and report a champion moved outside the bot, then a forged intent in the same
    model read; a failure is the poll's, but must not stop the commands. Returns the model as
    read (None when it could not be)."""
    from bot.commands.external_change import report_drift
    from bot.commands.forged_records import report_forged

    try:
        state = ctx.registry.state(ctx.model)
        outcome, check = report_drift(ctx, "poll", state=state)
        report_forged(ctx, state, now)
    except Exception as exc:
        log.exception("checking the champion of %s failed", ctx.model)
        result.check_failures.append(f"{ctx.model}: {exc}")
        return None
    if check is not None and check.unrecorded:
        result.champions.append((ctx.model, outcome))
    return state


def _model_threads(ctx: Context, now: datetime, since: str) -> list[Thread]:
    return [
        thread
        # Unmarked: a request whose marker a person removed is answered as damaged (the
        # handler asks the registry); the bot opens no other labelled threads.
        for thread in find_all_requests(ctx, state="all", unmarked=True, since=since)
        if thread.state == "open" or _recent(thread.updated_at, now)
    ]


def _recent(stamp: str, now: datetime) -> bool:
    when = parse_iso(stamp)
    return when is not None and now - when <= CLOSED_WINDOW


def _numeric(value: str) -> int:
    return int(value) if value.isdigit() else 0
