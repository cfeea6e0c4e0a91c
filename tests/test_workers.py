"""bot.intake.workers, fast: the bounded queue with its retries, and the memory of deliveries
taken (docs/design.md, "Webhooks"). Sleeps are injected: no test waits out a retry delay."""

from __future__ import annotations

import threading

import pytest

from bot.intake.workers import Job, RecentKeys, WorkerPool


class Flaky:
    """Fails `failures` times, then succeeds; records every attempt."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    def __call__(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise RuntimeError(f"attempt {self.attempts} fails")


def pool(**options: object) -> tuple[WorkerPool, list[float]]:
    slept: list[float] = []
    made = WorkerPool(1, 10, retry_delays=(1.0, 4.0), sleep=slept.append, **options)  # type: ignore[arg-type]
    made.start()
    return made, slept


@pytest.mark.parametrize(
    ("failures", "attempts", "slept", "gave_up"),
    [(0, 1, [], False), (1, 2, [1.0], False), (2, 3, [1.0, 4.0], False), (5, 3, [1.0, 4.0], True)],
)
def test_a_failing_job_is_retried_then_given_up(
    failures: int, attempts: int, slept: list[float], gave_up: bool
):
    workers, waits = pool()
    job = Flaky(failures)
    given_up: list[str] = []
    assert workers.submit(Job("job", job, on_give_up=lambda: given_up.append("job")))
    assert workers.drain(5)
    assert (job.attempts, waits, given_up == ["job"]) == (attempts, slept, gave_up)
    assert workers.healthy  # a failing job never kills its thread
    assert workers.stop(5)


def test_a_failing_give_up_is_logged_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture):
    workers, _ = pool()

    def broken() -> None:
        raise OSError("cleanup failed")

    after = Flaky(0)
    workers.submit(Job("first", Flaky(9), on_give_up=broken))
    workers.submit(Job("second", after))
    assert workers.drain(5) and after.attempts == 1
    assert "first: clean-up after the last attempt failed" in caplog.text
    assert workers.stop(5)


def test_the_queue_is_bounded_and_refuses_when_full():
    release = threading.Event()
    workers = WorkerPool(1, 2, retry_delays=(), sleep=lambda _s: None)
    assert not workers.submit(Job("before start", Flaky(0)))  # not running: refused
    workers.start()
    started = threading.Event()

    def blocking() -> None:
        started.set()
        release.wait(5)

    assert workers.submit(Job("running", blocking))
    assert started.wait(5)
    assert workers.submit(Job("queued 1", Flaky(0)))
    assert workers.submit(Job("queued 2", Flaky(0)))
    assert workers.queued == 2 and not workers.healthy  # a full queue takes no more work
    assert not workers.submit(Job("one too many", Flaky(0)))
    release.set()
    assert workers.drain(5) and workers.queued == 0 and workers.healthy


def test_stop_finishes_the_work_in_hand_then_refuses_more():
    workers, _ = pool()
    done = Flaky(0)
    workers.submit(Job("last", done))
    assert workers.stop(5)
    assert done.attempts == 1
    assert not workers.healthy and not workers.submit(Job("late", Flaky(0)))


def test_workers_and_queue_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        WorkerPool(0, 10)
    with pytest.raises(ValueError, match="at least 1"):
        WorkerPool(1, 0)


def test_recent_keys_claims_once_and_forgets_the_oldest():
    keys = RecentKeys(limit=3)
    assert keys.claim(["github:comment:1", "github:delivery:a"])
    assert not keys.claim(["github:comment:1"])  # the same comment, another delivery
    assert not keys.claim(["github:delivery:a", "github:comment:2"])  # a redelivery
    assert len(keys) == 2  # a refused claim remembers nothing new
    assert keys.claim(["", "gitlab:comment:9"]) and len(keys) == 3  # "" is no key
    assert keys.claim(["x"]) and len(keys) == 3
    assert keys.claim(["github:comment:1"])  # forgotten: the oldest went first
    assert not keys.claim(["x"])


def test_a_released_key_may_be_claimed_again():
    keys = RecentKeys()
    assert keys.claim(["mlflow:delivery:7"])
    keys.release(["mlflow:delivery:7", "never-claimed"])
    assert keys.claim(["mlflow:delivery:7"])


def test_one_lanes_jobs_run_in_order_while_other_lanes_go_on():
    """A lane is a request thread: its commands wait for each other without holding the worker
    another thread's (another model's) command needs."""
    workers = WorkerPool(2, 10, retry_delays=(), sleep=lambda _s: None)
    workers.start()
    release = threading.Event()
    events: list[str] = []

    def blocking(name: str) -> None:
        events.append(f"{name} start")
        release.wait(5)
        events.append(f"{name} end")

    def quick(name: str) -> None:
        events.append(name)

    assert workers.submit(Job("a1", lambda: blocking("a1"), lane="thread-a"))
    assert workers.submit(Job("a2", lambda: quick("a2"), lane="thread-a"))
    assert workers.submit(Job("b1", lambda: quick("b1"), lane="thread-b"))
    for _ in range(500):  # up to 5 s
        if "b1" in events:
            break
        threading.Event().wait(0.01)
    # b1 ran on the second worker while a1 blocks; a2 waits for a1, not for a worker
    assert events == ["a1 start", "b1"] and workers.queued == 1
    release.set()
    assert workers.drain(5)
    assert events == ["a1 start", "b1", "a1 end", "a2"]
    assert workers.stop(5)
