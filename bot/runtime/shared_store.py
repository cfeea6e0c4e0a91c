"""The shared Redis of PROMOTION_BOT_LOCK_URL: each model's lease, and the keys of deliveries and
comments taken, for any number of `serve` replicas and `poll` runs on any machines
(docs/design.md, "Locking" and "De-duplication").

redis-py is an optional extra (`promotion-bot[redis]`), imported only when the URL is set.
Calls have short timeouts and a small bounded retry: an unreachable Redis is an error within
seconds, never a long wait, and never a reason to go on without the lock. Keys live under
`promotion-bot:` and carry who they belong to (bot.config.identity), so one Redis can serve
several bots: a model's lock carries the registry's id (the lock guards that registry's aliases,
whichever bot moves them), the keys taken carry the bot's (a delivery is one bot's work; two
bots of one project each answer it for their own registry).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bot.errors import ConfigError, LockUnavailable
from bot.urls import redact_url

KEY_PREFIX = "promotion-bot"
TAKEN_SECONDS = 3 * 24 * 3600  # GitHub lets a delivery be redelivered for three days
# `serve` takes a delivery's keys before answering it: an unreachable Redis must cost the forge's
# request about two seconds at most (one try, one retry), far inside its 10 s timeout.
SOCKET_TIMEOUT = 1.0
ACQUIRE_POLL = 0.05  # seconds between two tries of a lock someone else holds

# All or nothing: a delivery is taken only when none of its keys (delivery id, comment id) was.
_CLAIM = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
return 1
"""
# Only our own claims are forgotten: a key another replica set since stays.
_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


class RedisStore:
    """One connection pool to the shared Redis, for every thread of this process."""

    def __init__(self, url: str, *, bot: str = "", registry: str = "") -> None:
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError:
            raise ConfigError(
                "PROMOTION_BOT_LOCK_URL needs redis-py: pip install 'promotion-bot[redis]'"
            ) from None
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self.lock_error: type[Exception] = redis.exceptions.LockError
        self.shown_url = redact_url(url)
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),  # a dropped connection
        )
        self._token = uuid.uuid4().hex  # marks this process's claims
        self._bot = bot
        self._registry = registry
        self._claim = self._redis.register_script(_CLAIM)
        self._release = self._redis.register_script(_RELEASE)

    def lock(self, model: str, ttl: float) -> Any:
        """redis-py's Lock for `model`: a random token per acquisition, `ttl` seconds to live.

        Not thread-local: the thread that renews the lease must see the holder's token.
        """
        return self._redis.lock(
            self.lock_key(model), timeout=ttl, sleep=ACQUIRE_POLL, thread_local=False
        )

    def lock_key(self, model: str) -> str:
        return f"{KEY_PREFIX}:lock:{self._registry}:{model}"

    def claim(self, namespace: str, keys: Sequence[str]) -> bool:
        """Take every key for TAKEN_SECONDS; False when one of them was taken already."""
        names = [self._key(namespace, key) for key in keys if key]
        if not names:
            return True
        with self.failures("remember a delivery"):
            return bool(self._claim(keys=names, args=[self._token, TAKEN_SECONDS]))

    def release(self, namespace: str, keys: Sequence[str]) -> None:
        names = [self._key(namespace, key) for key in keys if key]
        if names:
            with self.failures("forget a delivery"):
                self._release(keys=names, args=[self._token])

    def ping(self) -> None:
        with self.failures("ping"):
            self._redis.ping()

    @contextmanager
    def failures(self, what: str) -> Iterator[None]:
        """Redis errors inside become LockUnavailable (the URL shown without credentials);
        redis-py's LockError (not owned, not held) is an answer from Redis and passes."""
        try:
            yield
        except self.lock_error:
            raise
        except self._errors as exc:
            raise LockUnavailable(
                f"{what}: the lock service at {self.shown_url} could not be reached "
                f"({type(exc).__name__})"
            ) from None

    def _key(self, namespace: str, key: str) -> str:
        return f"{KEY_PREFIX}:taken:{self._bot}:{namespace}:{key}"
