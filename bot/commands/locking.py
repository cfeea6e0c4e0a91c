"""Serialise one model's champion changes across threads and processes on this machine.

An exclusive `flock` on a per-(registry, model) lock file: every acquisition opens its own file
description, so threads of one server serialise as well as separate CLI processes. Runners on
different machines are serialised by the CI files (`resource_group` / `concurrency`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.errors import BotError, ConfigError
from bot.settings import lock_folder

log = logging.getLogger(__name__)


def lock_path(tracking_uri: str, model: str) -> Path:
    digest = hashlib.sha256(f"{tracking_uri}\0{model}".encode()).hexdigest()[:24]
    return lock_folder() / f"promotion-bot-{digest}.lock"


@contextmanager
def model_lock(tracking_uri: str, model: str, timeout: float = 120.0) -> Iterator[None]:
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
