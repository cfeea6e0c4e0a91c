"""One champion change of a model at a time (docs/design.md, "Locking").

Embedded default: an exclusive `flock` on a per-(registry, model) lock file. Every acquisition
opens its own file description, so threads of one server serialise as well as separate CLI
processes on this machine. A flock cannot be lost while its holder lives, so its lease's
`check` does nothing.

With PROMOTION_BOT_LOCK_URL: a lease in the shared Redis (redis-py's `Lock`: a random token
per holder, a TTL, release only by the token's holder), so replicas and `poll` runs on any
machines serialise. A lease can be lost: a paused holder (SIGSTOP, a stalled VM, a network
split) finds it expired and possibly taken by another. Two things keep that safe:

- a thread renews the lease every third of its TTL while the holder runs, so a slow step
  (a forge waiting out a rate limit) does not lose it, and a holder that died frees the model
  within one TTL;
- the holder calls `check()` before every write of a change and before its answer: a
  token-checked extension that fails (lost, or Redis unreachable) raises LockLost, and nothing
  more is written. A paused process cannot renew, so the check is what stops it.

Redis unreachable when the lock is wanted is LockUnavailable: nothing runs unlocked.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from bot.config.settings import lock_folder
from bot.errors import BotError, ConfigError, LockLost, LockUnavailable
from bot.runtime.context import Context

log = logging.getLogger(__name__)


class Lease(Protocol):
    def check(self) -> None:
        """Raise LockLost unless this holder still holds the lock (and extend it)."""


class _FileLease:
    def check(self) -> None:
        return None


def lock_path(tracking_uri: str, model: str) -> Path:
    digest = hashlib.sha256(f"{tracking_uri}\0{model}".encode()).hexdigest()[:24]
    return lock_folder() / f"promotion-bot-{digest}.lock"


@contextmanager
def model_lock(ctx: Context, timeout: float = 120.0) -> Iterator[Lease]:
    """Hold `ctx.model`'s lock, waiting up to `timeout` seconds for another holder."""
    store = ctx.lock_store
    if store is None:
        with file_lock(ctx.settings.tracking_uri, ctx.model, timeout):
            yield _FileLease()
        return
    lease = _RedisLease(store, ctx.model, ctx.settings.lock_ttl)
    lease.acquire(timeout)
    try:
        yield lease
    finally:
        lease.release()


@contextmanager
def file_lock(tracking_uri: str, model: str, timeout: float = 120.0) -> Iterator[None]:
    path = lock_path(tracking_uri, model)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"PROMOTION_BOT_LOCK_DIR: cannot create the lock file {path} ({exc.strerror})"
        ) from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BotError(f"another champion change of {model} is still running") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class _RedisLease:
    """A held Redis lock, renewed by a thread, checked by the holder before each write."""

    def __init__(self, store: Any, model: str, ttl: float) -> None:
        self._store = store
        self._model = model
        self._ttl = ttl
        self._lock = store.lock(model, ttl)
        self._lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, timeout: float) -> None:
        with self._store.failures(f"lock {self._model}"):
            taken = self._lock.acquire(blocking=True, blocking_timeout=timeout)
        if not taken:
            raise BotError(f"another champion change of {self._model} is still running")
        self._renewer = threading.Thread(
            target=self._renew, name=f"promotion-bot-lease-{self._model}", daemon=True
        )
        self._renewer.start()

    def check(self) -> None:
        if not self._lost:
            try:
                self._extend()
                return
            except (self._store.lock_error, LockUnavailable):
                self._lost = True
        raise LockLost(
            f"the lock of {self._model} expired or could not be confirmed (lease of "
            f"{self._ttl:g} s): nothing more was written"
        )

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=self._ttl)
        try:
            with self._store.failures(f"unlock {self._model}"):
                self._lock.release()  # token-checked: never frees another holder's lock
        except self._store.lock_error:
            log.warning("the lock of %s was no longer held when released", self._model)
        except LockUnavailable as exc:  # it expires by itself after its TTL
            log.warning("%s; it expires within %g s", exc, self._ttl)

    def _extend(self) -> None:
        with self._store.failures(f"extend the lock of {self._model}"):
            self._lock.reacquire()  # the TTL back to full, only if the token is still ours

    def _renew(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                self._extend()
            except self._store.lock_error:
                self._lost = True
                log.warning("the lock of %s was lost while held", self._model)
                return
            except LockUnavailable as exc:  # the holder's next check decides
                log.warning("%s; will try again", exc)
