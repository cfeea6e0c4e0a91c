"""Which model a comment is for, with several models in one repository (docs/design.md, "Which
comments the bot acts on").

The thread's request marker names a model: a hint, since a description is editable. The
command goes to that model's handler, which acts only where that model's registry vouches for
the thread (`promotion.requested_in` on the version, or a change recorded from it). When it
does not, or the marker names no model this bot serves, or was removed, the registry is asked
once which of the served models requested in this thread; that model's handler then answers
the request as damaged. So an edited marker can never move a command to another model or
version: it can only make the bot say the description is damaged.

With one model the handler is called directly, exactly as before.
"""

from __future__ import annotations

import logging

from bot.commands.admission import Admitted, Ignored, for_this_bot
from bot.commands.handler import handle_comment
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.threads.markers import read_request_marker
from bot.threads.thread import CommentEvent, Thread

log = logging.getLogger(__name__)


def route_comment(
    ctx: Context,
    event: CommentEvent,
    thread: Thread | None = None,
    *,
    wait_for_forge: bool = False,
    admitted: Admitted | None = None,
) -> Outcome:
    """Handle `event` with the Context of its request's model (`handle_comment`'s contract);
    `admitted`: the comment as `bot.commands.admission` already admitted it, if it did."""
    if ctx.several:
        # The handler's own first checks, which need no thread (and chatter no forge client).
        admitted = for_this_bot(ctx, event, admitted)
    if not ctx.several or isinstance(admitted, Ignored):
        # One model, or a comment the handler ignores before reading anything.
        return handle_comment(ctx, event, thread, wait_for_forge=wait_for_forge, admitted=admitted)
    if thread is None:
        thread = ctx.forge.get_thread(event.thread_kind, event.thread_number)
    marker = read_request_marker(thread.body)
    named = ctx.models.named_in_marker(marker.model) if ctx.models and marker else None
    outcome: Outcome | None = None
    if named is not None:
        model_ctx = ctx.for_model(named.model_name)
        outcome = handle_comment(
            model_ctx, event, thread, wait_for_forge=wait_for_forge, admitted=admitted
        )
        if outcome.status != "ignored":
            return outcome
    if not ctx.forge.is_bot(thread.author):
        # A person's thread is no request, whatever it quotes.
        return outcome or Outcome("ignored", "not a promotion request")
    owners = [
        name
        for name in ctx.registry.models_requested_in(ctx.model_names(), thread.url)
        if named is None or name != named.model_name
    ]
    if len(owners) != 1:
        if outcome is not None:
            return outcome
        shown = f"a request of another model ({marker.model})" if marker else ""
        log.info("comment %s: %s", event.comment_id, shown or "no request marker")
        return Outcome("ignored", shown or "not a promotion request")
    log.warning(
        "thread #%s is a request of %s by the registry; its marker says %s",
        thread.number,
        owners[0],
        marker.model if marker else "nothing",
        extra={"comment_id": event.comment_id, "model": owners[0]},
    )
    owner = ctx.for_model(owners[0])
    return handle_comment(owner, event, thread, wait_for_forge=wait_for_forge, admitted=admitted)


def context_of_thread(ctx: Context, event: CommentEvent) -> Context:
    """The Context of the model a thread's marker names (a hint, for answers that change
    nothing, such as "not carried out"); the first model's when it names none served."""
    if not ctx.several or ctx.models is None:
        return ctx
    thread = ctx.forge.get_thread(event.thread_kind, event.thread_number)
    marker = read_request_marker(thread.body)
    named = ctx.models.named_in_marker(marker.model) if marker else None
    return ctx.for_model(named.model_name) if named is not None else ctx
