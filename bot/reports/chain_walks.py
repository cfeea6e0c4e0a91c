"""`serve`'s walks of every model's whole ledger chain, in the background, for the status page
(docs/operations.md, "The status page").

A page build decides drift from the newest entries (bot.reports.drift_view). Here the whole
chain is walked as `verify` walks it, on `serve`'s page thread after a build, once per model
every EVERY_SECONDS. The chain only grows at its head, so a walk stays good for every entry up
to the one it ended at (its tip), but for edits of older entries since: hence a new walk every
ten minutes, and the page shows the walk's time. A page whose newest entries, each following
the one before, reach back to the tip shows the chain from its first entry to its head as
checked: up to the tip at the walk's time, after it at the build's. When they do not reach it
(more new entries than one search reads, or the tip is gone), the model is walked again soon.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.ledger.entry import LedgerEntry
from bot.reports.audit import Verification, verify
from bot.reports.drift_view import DriftView
from bot.timestamps import iso_from_ms

if TYPE_CHECKING:
    from bot.runtime.context import Context

log = logging.getLogger(__name__)

EVERY_SECONDS = 600.0  # a model's whole chain is walked again after this long
AGAIN_SECONDS = 30.0  # the soonest a walk the page's newest entries did not reach is redone


@dataclass(frozen=True)
class FullWalk:
    """One walk of a model's whole chain: when, and what it found (or why it could not)."""

    at_ms: int
    result: Verification | None
    error: str = ""

    @property
    def tip(self) -> LedgerEntry | None:
        """The newest entry the walk found to be evidence."""
        if self.result is None or not self.result.entries:
            return None
        return self.result.check.last


@dataclass(frozen=True)
class WholeChain:
    """What the page says of a model's whole chain."""

    line: str
    problems: tuple[str, ...] = ()  # what the walk found, shown with the drift state
    reached: bool = True  # False: the page's newest entries do not reach the walk's tip


def whole_chain(view: DriftView, walks: ChainWalks | None, model: str) -> WholeChain:
    """The page's line for the whole chain, given the drift view it shows and `serve`'s walks
    (None: a page written once, by `report`)."""
    if not view.bounded:
        return WholeChain(f"walked for this page ({view.result.entries} entries)")
    if walks is None:
        return WholeChain("not walked for this page: `promotion-bot verify` walks it")
    walk = walks.get(model)
    if walk is None:
        return WholeChain("not walked yet: `serve` walks it in the background, soon")
    when = iso_from_ms(walk.at_ms)
    if walk.result is None:
        return WholeChain(f"could not be walked at {when} ({walk.error})", reached=False)
    found = tuple([*walk.result.problems, *(str(b) for b in walk.result.breaks)])
    verdict = "no break" if not found else f"{len(found)} not evidence or missing (listed above)"
    walked = f"walked at {when}: {walk.result.entries} entries, {verdict}"
    tip = walk.tip
    digests = [entry.digest for entry in view.newest]
    if tip is None or tip.digest not in digests:
        return WholeChain(f"{walked}; newer entries not walked yet", found, reached=False)
    since = digests.index(tip.digest)
    if since:
        walked += f"; the {since} newer {'entry follows' if since == 1 else 'entries follow'} it"
    return WholeChain(walked, found)


class ChainWalks:
    """The last walk of each model's whole chain, and which are due again."""

    def __init__(
        self,
        every: float = EVERY_SECONDS,
        again: float = AGAIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._every = every
        self._again = again
        self._clock = clock
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._walks: dict[str, tuple[float, FullWalk]] = {}
        self._short: set[str] = set()  # the page's newest entries did not reach the tip

    def get(self, model: str) -> FullWalk | None:
        with self._lock:
            found = self._walks.get(model)
        return found[1] if found else None

    def not_reached(self, model: str) -> None:
        """The page's newest entries do not reach the last walk's tip: walk again soon."""
        with self._lock:
            self._short.add(model)

    def due(self, model: str) -> bool:
        with self._lock:
            found = self._walks.get(model)
            if found is None:
                return True
            age = self._clock() - found[0]
            return age >= self._every or (model in self._short and age >= self._again)

    def walk_due(self, ctx: Context, stopping: Callable[[], bool] = lambda: False) -> list[str]:
        """Walk every model that is due, one after the other; the models walked."""
        walked = []
        for one in ctx.each_model():
            if stopping():
                break
            if not self.due(one.model):
                continue
            walk = self._walk(one)
            with self._lock:
                self._walks[one.model] = (self._clock(), walk)
                self._short.discard(one.model)
            walked.append(one.model)
        return walked

    def _walk(self, ctx: Context) -> FullWalk:
        at_ms = self._now_ms()
        try:
            return FullWalk(at_ms, verify(ctx, ctx.model))
        except Exception as exc:  # one model's trouble: tried again at the next due time
            log.warning(
                "status page: the chain of %s could not be walked: %s",
                ctx.model,
                exc,
                extra={"model": ctx.model},
            )
            return FullWalk(at_ms, None, type(exc).__name__)
