"""A holder of the Redis lease paused past its TTL while another replica acts (docs/design.md,
"Locking").

A child process (tests/kill_worker.py) handles a `/promote` holding the shared lease and stops
itself (SIGSTOP) right after one write of the change. The lease expires; this process, another
replica with a lock folder of its own, takes the lock and acts. Then the child is resumed
(SIGCONT). Its next write must find the lease lost, and it must neither finish its stale change
nor record anything twice: it starts again under a new lock and answers from what it finds.

With the lease's check turned into a no-op (tried by hand) both cases fail: resumed after its
intent, the holder moves the champion on a state read before the other replica's change and
records its own entry over that change's; resumed after its alias move, its read-back finds the
other replica's rollback and the pass fails with its change in doubt, where with the check it
stops cleanly and answers from the record the other replica finished.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.commands.handler import handle_comment
from bot.runtime.context import Context
from bot.threads.markers import answered_comment_ids
from tests.kill_worker import NOT_KILLED
from tests.promotion_env import Playground
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow

TTL = 1.5  # seconds; the renewing thread extends every 0.5 s while the holder runs

# (the write after which the holder pauses, the other replica's command, what the history ends as)
CASES = {
    # The intent is written, the alias not moved: the other replica drops the intent and promotes.
    "paused-after-intent": ("set_pending", "/promote", "b"),
    # The alias moved: the other replica finishes the holder's record, then rolls back.
    "paused-after-alias-move": ("set_alias", "/rollback 1", "a+b"),
}


@pytest.fixture(scope="module")
def workers() -> Iterator[multiprocessing.context.ForkServerContext]:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.kill_worker"])
    yield context


def shared_lock(ctx: Context, redis: RedisServer) -> Context:
    settings = replace(ctx.settings, lock_url=redis.url, lock_ttl=TTL)
    return Context(settings=settings, params=ctx.params)


def stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.parametrize("case", list(CASES))
def test_a_holder_paused_past_its_ttl_changes_nothing_stale(
    workers: Any, pg: Playground, redis_server: RedisServer, tmp_path: Path, case: str
) -> None:
    step, other_command, expected = CASES[case]
    v1 = pg.train(0.6)
    first = pg.open_request(v1)
    assert pg.comment(first, "maria", "/promote")[0].status == "changed"
    v2 = pg.train(0.59)
    thread = pg.open_request(v2)
    held = pg.forge.add_comment(thread.number, "maria", "/promote\nShip v2.")
    outcome_file = tmp_path / "holder-outcome.txt"
    spec = {
        "tracking_uri": pg.ctx.settings.tracking_uri,
        "model": pg.model,
        "root": str(pg.root),
        "promotion": {},
        "thread": thread.number,
        "comment": held.id,
        "step": step,
        "when": "after",
        "signal": "STOP",
        "lock_url": redis_server.url,
        "lock_ttl": TTL,
        "outcome_file": str(outcome_file),
    }
    from tests.kill_worker import run

    holder = workers.Process(target=run, args=(spec,))
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while not stopped(holder.pid):
            assert holder.is_alive() and time.monotonic() < deadline, "the holder never paused"
            time.sleep(0.05)

        # Another replica: its own process state and lock folder, the same Redis. It waits for
        # the paused holder's lease to expire, then acts.
        other = shared_lock(pg.ctx, redis_server)
        posted = pg.forge.add_comment(thread.number, "olga", other_command)
        started = time.monotonic()
        outcome, _ = other_outcome(other, pg, thread, posted)
        waited = time.monotonic() - started
    finally:
        holder_resume(holder)

    assert holder.exitcode == NOT_KILLED, "the holder did not finish its pass"
    assert waited < TTL + 5, f"the other replica waited {waited:.1f} s for an expired lease"
    history = pg.history()[1:]  # after v1's promotion
    by = {"a": held.id, "b": posted.id}
    assert [entry["comment_id"] for entry in history] == [by[x] for x in expected.split("+")]
    previous = v1
    for entry in history:  # one chain: no stale "from"
        assert entry["from"] == previous
        previous = entry["to"]
    assert pg.champion() == previous
    assert pg.ctx.registry.pending(pg.model) is None
    answers = pg.answers(thread)
    marked = sorted(cid for a in answers for cid in answered_comment_ids([a.body]))
    assert marked == sorted([held.id, posted.id]), "a command has no answer, or two"
    holder_outcome = outcome_file.read_text()
    if expected == "b":
        assert outcome.status == "changed" and pg.champion() == v2
        assert holder_outcome.startswith("refused"), holder_outcome
    else:
        assert outcome.status == "changed" and pg.champion() == v1
        assert holder_outcome.startswith("recovered"), holder_outcome


def other_outcome(ctx: Context, pg: Playground, thread: Any, posted: Any) -> tuple[Any, Any]:
    event = pg.event(pg.thread(thread), posted)
    return handle_comment(ctx, event), event


def holder_resume(holder: Any) -> None:
    import os
    import signal

    if holder.is_alive():
        os.kill(holder.pid, signal.SIGCONT)
    holder.join(timeout=60)
    if holder.is_alive():
        holder.kill()
        holder.join(timeout=10)
