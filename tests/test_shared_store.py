"""The Redis lease and the shared delivery memory against a real `redis-server` (docs/design.md,
"Locking"): the lessons of Atlantis's locks that never released — a TTL always, a token-checked
release — and a lease that is renewed while held and refuses to be used once lost.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from bot.commands.locking import model_lock
from bot.config.params import parse_params
from bot.config.settings import Settings
from bot.errors import BotError, LockLost
from bot.intake.workers import SharedKeys
from bot.runtime.context import Context
from bot.runtime.shared_store import RedisStore
from tests.redis_server import RedisServer

MODEL = "lock-test-model"


def replica(
    redis: RedisServer | None, ttl: float = 5.0, tracking_uri: str = "http://mlflow.internal:5000"
) -> Context:
    """A replica's context, on the shared Redis when given (else this machine's file lock)."""
    settings = Settings(tracking_uri=tracking_uri, lock_ttl=ttl)
    if redis is not None:
        settings = replace(settings, lock_url=redis.url)
    return Context(
        settings=settings, params=parse_params({"register_model": {"model_name": MODEL}}, "t")
    )


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROMOTION_BOT_LOCK_DIR", str(tmp_path / "locks-a"))
    return tmp_path


def test_replicas_on_different_machines_exclude_each_other_only_through_redis(
    folders: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = replica(redis_server), replica(redis_server)
    with model_lock(a):
        monkeypatch.setenv("PROMOTION_BOT_LOCK_DIR", str(folders / "locks-b"))
        with pytest.raises(BotError, match="still running"), model_lock(b, timeout=0.3):
            pass
    with model_lock(b):
        pass

    # The control: file locks in two folders (two machines) do not see each other.
    monkeypatch.setenv("PROMOTION_BOT_LOCK_DIR", str(folders / "locks-a"))
    with model_lock(replica(None)):
        monkeypatch.setenv("PROMOTION_BOT_LOCK_DIR", str(folders / "locks-b"))
        with model_lock(replica(None), timeout=0.3):
            pass


@pytest.mark.slow  # waits out two TTLs
def test_a_lease_is_renewed_while_held_and_frees_itself_when_its_holder_is_gone(
    folders: Path, redis_server: RedisServer
) -> None:
    a, b = replica(redis_server, ttl=1.5), replica(redis_server)
    with model_lock(a) as lease:
        time.sleep(3.2)  # over two TTLs: the renewing thread (every 0.5 s) keeps it
        with pytest.raises(BotError, match="still running"), model_lock(b, timeout=0.2):
            pass
        lease.check()

    # A holder that died without releasing (no renewals, no finally): free after one TTL.
    store = b.lock_store
    assert store is not None
    assert store.lock(MODEL, 1.0).acquire(blocking=False)
    started = time.monotonic()
    with model_lock(b, timeout=5):
        waited = time.monotonic() - started
    assert 0.5 < waited < 3.0


def test_a_lost_lease_refuses_every_write_and_its_release_frees_nobody_else(
    folders: Path, redis_server: RedisServer
) -> None:
    a, b, c = replica(redis_server), replica(redis_server), replica(redis_server)
    store = a.lock_store
    assert store is not None
    with ExitStack() as held_by_a, ExitStack() as held_by_b:
        lease = held_by_a.enter_context(model_lock(a))
        store._redis.delete(store.lock_key(MODEL))  # expired while its holder was away
        other = held_by_b.enter_context(model_lock(b, timeout=1))  # another replica takes it
        with pytest.raises(LockLost, match="nothing more was written"):
            lease.check()
        with pytest.raises(LockLost):
            lease.check()  # lost stays lost
        held_by_a.close()  # a releases while b holds: token-checked, it frees nothing
        with pytest.raises(BotError, match="still running"), model_lock(c, timeout=0.3):
            pass
        other.check()


def test_delivery_keys_are_taken_all_or_nothing_and_released_only_by_their_taker(
    redis_server: RedisServer,
) -> None:
    first = SharedKeys(RedisStore(redis_server.url), "m-keys")
    second = SharedKeys(RedisStore(redis_server.url), "m-keys")
    other_model = SharedKeys(RedisStore(redis_server.url), "another-model")
    assert first.claim(["github:comment:1", "github:delivery:d1"])
    # A redelivery (same delivery id) or another delivery of the same comment: taken.
    assert not second.claim(["github:comment:1", "github:delivery:d2"])
    assert not second.claim(["github:delivery:d1"])
    assert second.claim(["github:delivery:d2"]), "a refused claim must not have kept its keys"
    assert other_model.claim(["github:comment:1"]), "keys are per model"
    second.release(["github:comment:1"])  # not second's: stays taken
    assert not second.claim(["github:comment:1"])
    first.release(["github:comment:1", "github:delivery:d1"])  # given up: redeliverable
    assert second.claim(["github:comment:1", "github:delivery:d1"])


def test_without_redis_delivery_keys_fall_back_to_this_process(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    keys = SharedKeys(RedisStore(redis_server.url), "m-down")
    redis_server.stop()
    try:
        assert keys.claim(["github:comment:7"])
        assert not keys.claim(["github:comment:7"])
        keys.release(["github:comment:7"])
        assert keys.claim(["github:comment:7"])
    finally:
        redis_server.start()
    assert "remembering this delivery in this process only" in caplog.text


def test_two_bots_on_one_redis_share_no_lock_and_no_delivery_key(
    folders: Path, redis_server: RedisServer
) -> None:
    """Staging and production, each with its registry, on one Redis, serving a model of the
    same name: neither waits for the other's change nor calls the other's deliveries taken."""
    staging = replica(redis_server, tracking_uri="https://mlflow-staging.example.com")
    production = replica(redis_server, tracking_uri="https://mlflow.example.com")
    with model_lock(staging), model_lock(production, timeout=0.3):
        pass  # both held at once: two registries, two aliases
    staging_keys = SharedKeys(_store(staging), MODEL)
    production_keys = SharedKeys(_store(production), MODEL)
    assert staging_keys.claim(["gitlab:note:1234"])
    assert production_keys.claim(["gitlab:note:1234"]), "another bot's delivery is no duplicate"
    assert not production_keys.claim(["gitlab:note:1234"]), "its own redelivery still is"
    # Replicas of one bot do share them; its credentials (rotated, or given only to some
    # processes) do not make it another bot.
    same_bot = replica(redis_server, tracking_uri="https://ci:s3cret@MLflow.example.com:443/")
    with (
        model_lock(production),
        pytest.raises(BotError, match="still running"),
        model_lock(same_bot, timeout=0.3),
    ):
        pass
    assert not SharedKeys(_store(same_bot), MODEL).claim(["gitlab:note:1234"])
    keys = _store(same_bot)._redis.keys("*")
    assert keys and not any(b"s3cret" in key or b"mlflow" in key.lower() for key in keys)


def _store(ctx: Context) -> RedisStore:
    store = ctx.lock_store
    assert store is not None
    return store
