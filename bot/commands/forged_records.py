"""A record in the registry the bot relies on but did not sign (the intent of a change in flight,
a version's approvals) is reported once in a request thread (docs/design.md, "Forged records").

Where such a record is read it is already no evidence (`ModelState.pending`,
`Approval.parse_signed`); this tells people. The passes that read it anyway report it, and no
other: `poll` and the MLflow webhook (the intent, in the model read they make for drift) in the
model's latest request thread, as drift is; a command (the intent, read under its lock, and the
approvals `/promote` reads) in its own thread. The report names the record and what is wrong with
it in the bot's own words, never what the record holds.

Once per value, at most once an hour per record: a fingerprint of the value (SHA-256 of the model,
version, tag and value, 16 hex) rides in the report's hidden marker and in `promotion.reported`,
the bot's signed note of what it reported when, which the pass's model read brings for free. So
a record seen again costs nothing, and one rewritten every second is reported at most hourly. The
note is only a cache: before posting, under the model lock, the thread's own reports decide (the
registry writer can delete the note, not the bot's comments).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from bot.commands.replies import promote_command
from bot.errors import ForgeError, RegistryError
from bot.registry.model_state import ModelState, reported_value
from bot.registry.tags import APPROVALS_TAG, PENDING_TAG, REPORTED_TAG
from bot.runtime.context import Context
from bot.runtime.request_threads import latest_request
from bot.threads.thread import Thread
from bot.timestamps import ms_from_iso

if TYPE_CHECKING:
    from bot.commands.handling import Handling

log = logging.getLogger(__name__)

TEMPLATE = "answer_forged_record.md.j2"
QUIET_MS = int(timedelta(hours=1).total_seconds() * 1000)  # one report per record at most
_MARKER_RE = re.compile(r"<!-- promotion-bot:forged ((?:[\w.:-]+=[0-9a-f]{16} ?)+) -->")


@dataclass(frozen=True)
class Forged:
    """A record found not signed: which one, what is wrong with it, the fingerprint of its value."""

    name: str  # how the marker and `promotion.reported` name it: the tag, or `v<n>:<tag>`
    tag: str
    version: int | None  # None: a tag of the registered model
    problem: str  # the bot's own words only: nothing of the record's content
    fingerprint: str


def forged_intent(state: ModelState) -> Forged | None:
    """The model's intent tag, when it is there and not evidence."""
    if not state.intent_problem:
        return None
    raw = state.tags.get(PENDING_TAG, "")
    return _forged(state.model, PENDING_TAG, None, raw, [state.intent_problem])


def forged_approvals(model: str, version: int, raw: str, problems: list[str]) -> Forged | None:
    """A version's approvals tag, when items in it are not evidence (`problems`)."""
    return _forged(model, APPROVALS_TAG, version, raw, problems) if problems else None


def _forged(model: str, tag: str, version: int | None, raw: str, problems: list[str]) -> Forged:
    digest = hashlib.sha256(f"{model}\0{version or ''}\0{tag}\0{raw}".encode()).hexdigest()
    name = tag if version is None else f"v{version}:{tag}"
    # What is in parentheses quotes the record (a key id, a model name): left out.
    what = "; ".join(sorted({problem.split(" (")[0] for problem in problems}))
    return Forged(name, tag, version, what, digest[:16])


def report_forged(ctx: Context, state: ModelState, now: datetime | None = None) -> None:
    """`poll` and the MLflow webhook: the intent in `state` (the model as the pass read it),
    reported in the model's latest request thread. Nothing to report: no call at all."""
    at_ms = _ms(now)
    if not ctx.keys.can_sign or not _due(state.reported, [forged_intent(state)], at_ms):
        return
    from bot.commands.locking import model_lock

    with model_lock(ctx) as lease:
        state = ctx.registry.state(ctx.model)  # under the lock: another pass may have reported
        due = _due(state.reported, [forged_intent(state)], at_ms)
        thread = latest_request(ctx, ctx.model) if due else None
        if thread is None:
            if due:
                log.warning("%s: no request thread to report a forged record in", ctx.model)
            return
        _report(ctx, state, due, thread, lease.check, at_ms)


def report_forged_in(run: Handling, found: Iterable[Forged | None]) -> None:
    """A command: the records it found, reported in its own thread under its lock (`run.state`
    was read under it). A failure to report is logged: the command goes on, and the next pass
    reports it."""
    ctx, at_ms = run.ctx, _ms(None)
    due = _due(run.state.reported, found, at_ms)
    if not due or not ctx.keys.can_sign:
        return
    try:
        _report(ctx, run.state, due, run.thread, run.lease.check, at_ms)
    except (ForgeError, RegistryError) as exc:
        log.warning("could not report a forged record of %s: %s", ctx.model, exc)


def _report(
    ctx: Context,
    state: ModelState,
    due: list[Forged],
    thread: Thread,
    guard: Callable[[], None],
    at_ms: int,
) -> None:
    """Post what the thread's own reports do not hold yet, then note it in the registry (also
    when nothing was posted: the next pass then stops at the model read)."""
    posted = _posted(ctx, thread)
    due = _due(posted, due, at_ms)
    noted = dict(state.reported)
    for name, (fingerprint, when) in posted.items():
        if when >= noted.get(name, ("", -1))[1]:
            noted[name] = (fingerprint, when)
    if due:
        names = " ".join(f"{record.name}={record.fingerprint}" for record in due)
        body = ctx.render(
            TEMPLATE, model=ctx.model, records=due, promote_command=promote_command(ctx)
        )
        guard()
        ctx.forge.post_comment(
            thread, f"{body.rstrip()}\n\n<!-- promotion-bot:forged {names} -->\n"
        )
        log.warning("%s: reported %s, not signed by the bot", ctx.model, names)
        noted.update({record.name: (record.fingerprint, at_ms) for record in due})
    if noted != state.reported:
        value = reported_value(ctx.keys, ctx.model, noted)
        guard()
        ctx.registry.set_model_tag(ctx.model, REPORTED_TAG, value)


def _due(
    reported: dict[str, tuple[str, int]], found: Iterable[Forged | None], at_ms: int
) -> list[Forged]:
    """The records to report: a value not reported yet, of a record not reported this hour."""
    due = []
    for record in found:
        if record is None:
            continue
        fingerprint, when = reported.get(record.name, ("", 0))
        if fingerprint != record.fingerprint and (not fingerprint or at_ms - when >= QUIET_MS):
            due.append(record)
    return due


def _posted(ctx: Context, thread: Thread) -> dict[str, tuple[str, int]]:
    """What the bot's own reports in `thread` name, by record: the newest one's fingerprint and
    time."""
    posted: dict[str, tuple[str, int]] = {}
    for comment in ctx.forge.list_comments(thread):
        found = _MARKER_RE.search(comment.body) if ctx.forge.is_bot(comment.author) else None
        if found is None:
            continue
        when = ms_from_iso(comment.created_at) or 0
        for token in found.group(1).split():
            name, _, fingerprint = token.partition("=")
            if when >= posted.get(name, ("", -1))[1]:
                posted[name] = (fingerprint, when)
    return posted


def _ms(now: datetime | None) -> int:
    return int((now or datetime.now(timezone.utc)).timestamp() * 1000)
