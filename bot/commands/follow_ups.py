"""What follows an answered champion change: the request's status section, the merge or close of
a promoted request, the post-promote hook and the forge deployment, in this order
(docs/design.md, "The change", step 8). None of them undoes the change: a failure is logged, and
reported in the thread when people must act (a merge to do by hand, serving not told). The
reports' text is the reply writer's (`bot.commands.replies`); the calls are made here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.commands.replies import Replies, common_context
from bot.errors import ForgeError, LockLost
from bot.registry.records import Change
from bot.runtime.context import Context
from bot.runtime.request_threads import refresh_status
from bot.threads.thread import Thread

log = logging.getLogger(__name__)


def follow_up(
    ctx: Context,
    thread: Thread,
    change: Change,
    replies: Replies,
    guard: Callable[[], None],
    *,
    merge_sha: str = "",
    call_hook: bool = True,
) -> None:
    """The follow-ups of `change`, made from `thread` (the request), after its answer.

    `guard`: the lease's check (bot.commands.locking). `merge_sha`: the only commit an MR/PR is
    merged at. `call_hook`: False for a change made by an earlier pass, which may have called
    it already.
    """
    try:
        guard()
    except LockLost as exc:
        # Another holder may have changed the champion since: a status, close or hook
        # now could be stale. The change and its answer stand.
        log.warning("%s; the request's status, merge or close and the hook are left out", exc)
        return
    try:
        status = ctx.render(
            "status_changed.md.j2",
            **common_context(ctx),
            action=change.action,
            to_version=change.to_version,
            at=change.at,
            actor=change.actor,
        )
        cfg = ctx.params.promotion.request
        promoted = change.action == "promote"
        close = promoted and thread.kind == "issue" and cfg.close_on_promote
        fresh = refresh_status(ctx, thread, status, close=close)  # one write for both
        if promoted and fresh.state == "open" and thread.kind == "merge_request":
            _merge(ctx, fresh, change, merge_sha, replies)
    except ForgeError as exc:
        log.warning("champion changed, but updating the request failed: %s", exc)
    if call_hook:
        _call_hook(ctx, change, replies)
    # --- the forge's deployment history (bot.commands.deployments): its own call, last ----
    from bot.commands.deployments import record_change

    record_change(ctx, change, merge_sha)


def _merge(ctx: Context, thread: Thread, change: Change, merge_sha: str, replies: Replies) -> None:
    """A merge is its own endpoint on both forges: it cannot share the status's write."""
    if not ctx.params.promotion.request.merge_on_promote:
        return
    try:
        ctx.forge.merge(thread, sha=merge_sha)
    except ForgeError as exc:  # the champion change stands; people merge by hand
        log.warning("champion changed, but the merge failed: %s", exc)
        replies.not_merged(change, merge_sha)


def _call_hook(ctx: Context, change: Change, replies: Replies) -> None:
    url = ctx.params.promotion.post_promote_hook
    if not url:
        return
    from bot.commands.post_promote_hook import call_hook

    payload = {
        "model": change.model,
        "from": change.from_version,
        "to": change.to_version,
        "actor": change.actor,
        "action": change.action,
        "request_url": change.request_url,
    }
    problem = call_hook(url, payload, ctx.settings.hook_secret.value)
    if problem:
        replies.hook_failed(change, problem)
