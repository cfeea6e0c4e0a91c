"""`GET /readyz`: can this replica do its work now? (docs/design.md, "Metrics and readiness").

`/healthz` stays liveness (the workers run, the queue has room). Readiness asks every component
one cheap question at once — the registry, the forge and, when configured, the lock service —
each within a short deadline, and keeps the answer a few seconds, so a load balancer's probes
never become load. A failed component is named, never described: an error message can carry a
URL. The reason goes to the log, where URLs are redacted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

DEADLINE_SECONDS = 2.0
KEEP_SECONDS = 5.0
_SERVER = {"delivery_id": "", "platform": ""}


class Readiness:
    def __init__(
        self,
        checks: Mapping[str, Callable[[], object]],
        *,
        deadline: float = DEADLINE_SECONDS,
        keep: float = KEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = dict(checks)
        self._deadline = deadline
        self._keep = keep
        self._clock = clock
        self._lock = threading.Lock()
        self._answer: dict[str, bool] = {}
        self._at = 0.0
        # A check still running from an earlier probe is not started again: a hung registry
        # must not gather one thread per probe.
        self._running: dict[str, threading.Thread] = {}

    def report(self) -> dict[str, bool]:
        """Component name -> answered, fresh or at most `keep` seconds old."""
        with self._lock:
            if self._answer and self._clock() - self._at < self._keep:
                return dict(self._answer)
            self._answer = self._ask()
            self._at = self._clock()
            return dict(self._answer)

    def _ask(self) -> dict[str, bool]:
        results: dict[str, bool] = {}
        started: dict[str, threading.Thread] = {}
        for name, check in self._checks.items():
            earlier = self._running.get(name)
            if earlier is not None and earlier.is_alive():
                log.warning("readiness: %s is still on an earlier check", name, extra=_SERVER)
                results[name] = False
                continue
            thread = threading.Thread(
                target=self._one, args=(name, check, results), name=f"readyz-{name}", daemon=True
            )
            thread.start()
            started[name] = self._running[name] = thread
        until = self._clock() + self._deadline
        for name, thread in started.items():
            thread.join(max(until - self._clock(), 0.0))
            if thread.is_alive():
                log.warning(
                    "readiness: %s did not answer within %g s", name, self._deadline, extra=_SERVER
                )
        # A check that finished late writes into `results` after this copy: it is not counted.
        return {name: results.get(name) is True for name in self._checks}

    @staticmethod
    def _one(name: str, check: Callable[[], object], results: dict[str, bool]) -> None:
        try:
            check()
        except Exception as exc:
            log.warning(
                "readiness: %s failed (%s: %s)", name, type(exc).__name__, exc, extra=_SERVER
            )
            results[name] = False
            return
        results[name] = True
