"""The bot's request threads on the forge: which threads are requests of a model, and the one
write every stage makes to a request after opening it (its status section).

Policy (the stale answer's link), answers, `poll`, `status` and the MLflow report ask here;
only `bot.ci.request` opens, updates and supersedes requests.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from bot.errors import RegistryError
from bot.runtime.context import Context
from bot.threads.markers import marker_token, parse_request_marker, replace_section
from bot.threads.thread import Thread, ThreadKind

log = logging.getLogger(__name__)


def find_requests(
    ctx: Context,
    model: str | None = None,
    state: str = "open",
    *,
    also: str = "",
    unmarked: bool = False,
    since: str = "",
) -> list[Thread]:
    """The bot's request threads of `model` (default: the configured one), newest first.

    Only threads the bot opened count, and the forge is asked for those only: a person quoting
    a request body in their own issue must not have it updated or closed, and people's labelled
    issues must not push the bot's out of the listing. Only the configured `request.kind` is
    listed (one call on GitLab instead of two); requests opened before a change of `kind` are
    not seen. `also` keeps the thread of that URL whatever its marker says (the registry's
    record of a request whose marker a person damaged or removed); `unmarked` keeps the bot's
    threads that carry no marker at all (the handler asks the registry about those). A marker
    naming another bot (`of_another_bot`) is ours only when our registry names its thread.
    """
    request = ctx.params.promotion.request
    name = model or ctx.model
    kinds = (request.thread_kind,)
    return _listed(ctx, request.labels, kinds, [name], state, also, unmarked, since)


def latest_request(ctx: Context, model: str) -> Thread | None:
    """The newest request the bot opened for `model`, open or closed: where what the bot finds
    in the registry is reported (a person's issue quoting a marker gets no report)."""
    found = find_requests(ctx, model, state="all")  # newest first
    return found[0] if found else None


def find_all_requests(
    ctx: Context, state: str = "open", *, unmarked: bool = False, since: str = ""
) -> list[Thread]:
    """`find_requests` for every model served, in one listing (one per request kind on GitLab):
    by the labels all their requests carry (`ModelSet.listing_labels`). `since`: only those
    updated at or after it (`poll`'s cursor)."""
    if not ctx.several or ctx.models is None:
        return find_requests(ctx, state=state, unmarked=unmarked, since=since)
    models = ctx.models
    labels, kinds = models.listing_labels, models.thread_kinds
    return _listed(ctx, labels, kinds, models.names, state, "", unmarked, since)


def _listed(
    ctx: Context,
    labels: Sequence[str],
    kinds: Sequence[ThreadKind],
    names: Sequence[str],
    state: str,
    also: str,
    unmarked: bool,
    since: str = "",
) -> list[Thread]:
    models = {marker_token(name) for name in names}
    found = []
    author = ctx.forge.bot_username()  # filtered by the forge too: see Forge.find_threads
    listed = ctx.forge.find_threads(labels, state=state, kinds=kinds, author=author, since=since)
    for thread in listed:
        fields = parse_request_marker(thread.body)
        if fields is None:
            ours = unmarked
        elif of_another_bot(ctx, fields.get("bot", "")):
            ours = fields.get("model") in models and _named(ctx, names, thread)
        else:
            ours = fields.get("model") in models
        if not ours and not (also and thread.url == also):
            continue
        if thread.author and not ctx.forge.is_bot(thread.author):
            log.warning(
                "ignoring #%s: request marker in a thread not opened by the bot", thread.number
            )
            continue
        found.append(thread)
    return found


def _named(ctx: Context, names: Sequence[str], thread: Thread) -> bool:
    """Our registry names `thread` as a request of one of `names` (one search). When it cannot
    be asked, the thread is kept: whoever acts on it asks again, and that one action fails."""
    try:
        return bool(ctx.registry.models_requested_in(names, thread.url))
    except RegistryError as exc:
        log.warning("cannot tell whether #%s is ours: %s", thread.number, exc)
        return True


def of_another_bot(ctx: Context, bot: str) -> bool:
    """A request marker's `bot` names another bot (another registry on this project, or this
    registry with another project): not ours, unless our registry names the thread. A marker
    without `bot` was written before ids; the registry decides for it alone (docs/design.md,
    "Markers")."""
    return bool(bot) and bot != ctx.settings.instance_id


def refresh_status(
    ctx: Context, thread: Thread, status_markdown: str, *, close: bool = False
) -> Thread:
    """Replace the body's status section; re-reads the body first so fresh ticks survive.

    `close`: close the thread too, in the same write where the forge allows it (a promoted
    issue: docs/design.md, "The change"). Returns the thread as it now is (its state as just
    read or closed, the new body).
    """
    current = ctx.forge.get_thread(thread.kind, thread.number)
    body = replace_section(current.body, "status", status_markdown)
    if close and current.state == "open":
        ctx.forge.update_and_close(current, body)
        return dataclasses.replace(current, body=body, state="closed")
    if body != current.body:
        ctx.forge.update_body(current, body)
    return dataclasses.replace(current, body=body)
