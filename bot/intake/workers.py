"""The webhook server's back office: a bounded job queue with worker threads, and the memory of
the deliveries already taken: this process's, bounded, or shared by every replica in Redis
(docs/design.md, "Webhooks": answer first, work after, de-duplicate).

A failing job is tried again in the same worker after a short wait (a lock timeout or a registry
blip passes); the handler is idempotent (answer markers, registry history), so a retry never
answers twice. After the last attempt the job's `on_give_up` runs: the server forgets the
delivery there, so a manual redelivery from the forge is taken instead of called a duplicate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bot.errors import LockUnavailable

if TYPE_CHECKING:
    from bot.runtime.shared_store import RedisStore

log = logging.getLogger(__name__)

RETRY_DELAYS = (1.0, 4.0)  # seconds before the 2nd and 3rd attempt: three attempts in all


@dataclass(frozen=True)
class Job:
    what: str  # for log lines: "comment 123 on issue #7"
    run: Callable[[], object]
    extra: dict[str, str] = field(default_factory=dict)  # delivery_id, platform
    on_give_up: Callable[[], object] | None = None  # after the last attempt failed
    # Jobs of one lane run one at a time, in order; "" runs whenever a worker is free.
    lane: str = ""


class WorkerPool:
    """Threads taking the oldest job whose lane is free. A failing job is retried, logged, and
    never kills its thread. `sleep` is injectable so tests need not wait out the retry delays.

    A lane (a request thread) keeps a burst of commands in one thread from holding every worker
    while they wait for one model's lock: the other models' commands go on in parallel (the
    model lock still serialises one model's commands across threads, processes and replicas).
    """

    def __init__(
        self,
        workers: int = 2,
        queue_size: int = 1000,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("workers and queue_size must be at least 1")
        self._workers = workers
        self._queue_size = queue_size
        self._retry_delays = tuple(retry_delays)
        self._sleep = sleep
        self._jobs: deque[Job] = deque()
        self._busy_lanes: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._unfinished = 0  # queued + running
        self._changed = threading.Condition()
        self._accepting = False
        self._stopping = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            self._accepting = True
            self._stopping = False
            for number in range(self._workers):
                thread = threading.Thread(
                    target=self._loop, name=f"promotion-bot-worker-{number}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    @property
    def queued(self) -> int:
        return len(self._jobs)

    @property
    def healthy(self) -> bool:
        """Can take work: started, not stopping, every worker alive and the queue not full."""
        threads = list(self._threads)
        return (
            self._accepting
            and bool(threads)
            and all(thread.is_alive() for thread in threads)
            and len(self._jobs) < self._queue_size
        )

    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full or the pool is not running."""
        with self._changed:
            if not self._accepting or len(self._jobs) >= self._queue_size:
                return False
            self._jobs.append(job)
            self._unfinished += 1
            self._changed.notify_all()
        return True

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued job has finished; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._changed.wait(remaining):
                    return self._unfinished == 0
        return True

    def stop(self, timeout: float = 30.0) -> bool:
        """Refuse new jobs, finish the ones in hand, then end the threads. True if all finished."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._accepting = False
        drained = self.drain(timeout)
        with self._lock:
            threads, self._threads = self._threads, []
        with self._changed:  # the threads end once no job is left
            self._stopping = True
            self._changed.notify_all()
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.01))
        stuck = [thread.name for thread in threads if thread.is_alive()]
        if stuck or not drained:
            log.warning(
                "stopped with %d job(s) unfinished",
                self._unfinished,
                extra={"delivery_id": "", "platform": ""},
            )
        return drained and not stuck

    def _next(self) -> Job | None:
        """The oldest job whose lane is free (waiting for one); None once stopping and idle."""
        with self._changed:
            while True:
                for index, job in enumerate(self._jobs):
                    if not job.lane or job.lane not in self._busy_lanes:
                        del self._jobs[index]
                        if job.lane:
                            self._busy_lanes.add(job.lane)
                        return job
                if self._stopping and not self._jobs:
                    return None
                self._changed.wait()

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._run(job)
            finally:
                self._done(job)

    def _run(self, job: Job) -> None:
        attempts = len(self._retry_delays) + 1
        for attempt in range(1, attempts + 1):
            try:
                job.run()
                return
            except Exception:
                if attempt == attempts:
                    log.exception(
                        "%s failed (attempt %d of %d), giving up",
                        job.what,
                        attempt,
                        attempts,
                        extra=job.extra,
                    )
                    break
                delay = self._retry_delays[attempt - 1]
                log.warning(
                    "%s failed (attempt %d of %d), retrying in %g s",
                    job.what,
                    attempt,
                    attempts,
                    delay,
                    exc_info=True,
                    extra=job.extra,
                )
                self._sleep(delay)
        if job.on_give_up is not None:
            try:
                job.on_give_up()
            except Exception:
                log.exception(
                    "%s: clean-up after the last attempt failed", job.what, extra=job.extra
                )

    def _done(self, job: Job) -> None:
        with self._changed:
            self._busy_lanes.discard(job.lane)
            self._unfinished -= 1
            self._changed.notify_all()


class KeyMemory(Protocol):
    """The delivery and comment ids taken: this process's `RecentKeys`, or `SharedKeys`."""

    def claim(self, keys: Iterable[str]) -> bool: ...

    def release(self, keys: Iterable[str]) -> None: ...

    def __len__(self) -> int: ...


class RecentKeys:
    """A bounded, thread-safe memory of the delivery and comment ids taken; oldest forgotten."""

    def __init__(self, limit: int = 10_000) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def claim(self, keys: Iterable[str]) -> bool:
        """Remember every key and answer True, unless one of them was seen already (False)."""
        wanted = [key for key in keys if key]
        with self._lock:
            seen = [key for key in wanted if key in self._keys]
            for key in seen:
                self._keys.move_to_end(key)
            if seen:
                return False
            for key in wanted:
                self._keys[key] = None
            while len(self._keys) > self._limit:
                self._keys.popitem(last=False)
            return True

    def release(self, keys: Iterable[str]) -> None:
        """Forget keys whose work could not be queued or done: a redelivery is no duplicate."""
        with self._lock:
            for key in keys:
                self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)


class SharedKeys:
    """The keys taken, shared by every replica through Redis (`SET NX EX`, all or nothing).

    While Redis cannot be reached this process's own memory stands in, with a warning: the
    delivery is still taken, and the model lock (which does need Redis) and the thread's answer
    markers keep the command exactly once. The memory is only there to spare work.
    """

    def __init__(self, store: RedisStore, namespace: str, limit: int = 10_000) -> None:
        self._store = store
        self._namespace = namespace
        self._local = RecentKeys(limit)

    def claim(self, keys: Iterable[str]) -> bool:
        wanted = list(keys)
        try:
            return self._store.claim(self._namespace, wanted)
        except LockUnavailable as exc:
            log.warning("%s; remembering this delivery in this process only", exc, extra=_NONE)
            return self._local.claim(wanted)

    def release(self, keys: Iterable[str]) -> None:
        wanted = list(keys)
        self._local.release(wanted)
        try:
            self._store.release(self._namespace, wanted)
        except LockUnavailable as exc:  # its keys expire by themselves
            log.warning("%s; a redelivery may be called a duplicate", exc, extra=_NONE)

    def __len__(self) -> int:
        return len(self._local)


_NONE = {"delivery_id": "", "platform": ""}
