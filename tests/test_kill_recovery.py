"""SIGKILL at every step of a champion change, then a recovery pass: exactly once, always.

A child process (tests/kill_worker.py) handles a `/promote` and kills itself right before or
right after one step. Whatever it left, `poll` must end in: one champion change, one history
entry, one ledger entry (with its approval snapshot, and no run left RUNNING), one answer, no
pending intent. Right after the kill, a moved alias must already be covered by the intent or
the record: never a change nobody can account for.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from bot.intake.poll import poll
from bot.threads.markers import answered_comment_ids
from tests.kill_worker import NOT_KILLED
from tests.promotion_env import MakePlayground, Playground

PROMOTION: dict[str, Any] = {}  # defaults: close_on_promote, one approval, maintainers

# (step, when, nth): every write of the change sequence, in order, and the answer after it.
KILL_POINTS = [
    ("set_pending", "before", 1),
    ("set_pending", "after", 1),
    ("create_run", "before", 1),
    ("create_run", "after", 1),
    ("log_params", "before", 1),
    ("log_params", "after", 1),
    ("set_alias", "before", 1),
    ("set_alias", "after", 1),
    ("finish_run", "before", 1),
    ("finish_run", "after", 1),
    ("set_version_tag", "before", 1),
    ("set_version_tag", "after", 1),
    ("set_version_tag", "after", 3),
    ("append_history", "before", 1),
    ("append_history", "after", 1),
    ("post_comment", "before", 1),
    ("post_comment", "after", 1),
    ("update_and_close", "before", 1),
    ("update_and_close", "after", 1),
]


@pytest.fixture(scope="module")
def workers() -> Iterator[multiprocessing.context.ForkServerContext]:
    """Children fork from a server that imported MLflow once (a fresh interpreter costs ~2 s)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.kill_worker"])
    yield context


@pytest.fixture
def pg(make_pg: MakePlayground) -> Playground:
    return make_pg(**PROMOTION)


def run_child(workers: Any, pg: Playground, thread: Any, comment_id: str, point: tuple) -> int:
    from tests.kill_worker import run

    step, when, nth = point
    spec = {
        "tracking_uri": pg.ctx.settings.tracking_uri,
        "model": pg.model,
        "root": str(pg.root),
        "promotion": PROMOTION,
        "thread": thread.number,
        "comment": comment_id,
        "step": step,
        "when": when,
        "nth": nth,
    }
    child = workers.Process(target=run, args=(spec,))
    child.start()
    child.join(timeout=60)
    assert not child.is_alive(), "the child hung"
    return int(child.exitcode)


def accounted_for(pg: Playground, before: int | None, earlier: int = 0) -> None:
    """Right after a kill: a moved alias is covered by the intent or by the record."""
    champion = pg.champion()
    pending = pg.ctx.registry.pending(pg.model)
    recorded = [h["to"] for h in pg.history()[earlier:]]
    assert len(recorded) <= 1
    if champion != before:
        assert recorded == [champion] or (pending is not None and pending.to_version == champion), (
            f"champion moved to v{champion} with no record and no intent"
        )


def assert_exactly_once(pg: Playground, thread: Any, comment_id: str, version: int) -> None:
    assert pg.champion() == version
    [entry] = pg.history()
    assert (entry["from"], entry["to"], entry["comment_id"]) == (None, version, comment_id)
    assert entry["actor"] == "maria" and entry["reason"] == "Ship it."
    assert pg.ctx.registry.pending(pg.model) is None
    answers = pg.answers(thread)
    marked = [cid for a in answers for cid in answered_comment_ids([a.body])]
    assert marked == [comment_id], f"answers: {[a.body[:60] for a in answers]}"
    assert "is now `champion`" in answers[0].body
    tags = pg.ctx.registry.version(pg.model, version).tags
    assert tags["promotion.promoted_by"] == "maria"
    assert_one_ledger_entry(pg, comment_id, version)


def assert_one_ledger_entry(pg: Playground, comment_id: str, version: int) -> None:
    """One FINISHED ledger run for the change, carrying its snapshot; no run left RUNNING (a
    run whose change never happened is FAILED)."""
    [entry] = pg.ledger()
    assert (entry.action, entry.from_version, entry.to_version) == ("promote", None, version)
    assert (entry.comment_id, entry.actor, entry.reason) == (comment_id, "maria", "Ship it.")
    assert [(a.user, a.role) for a in entry.evidence.approvers] == [("maria", "maintainer")]
    assert entry.evidence.gates and all(gate["passed"] for gate in entry.evidence.gates)
    assert entry.evidence.checklist and all(item["ticked"] for item in entry.evidence.checklist)
    statuses = sorted(run.status for run in pg.ledger_runs())
    assert statuses.count("FINISHED") == 1 and "RUNNING" not in statuses, statuses


@pytest.mark.parametrize("point", KILL_POINTS, ids=["-".join(map(str, p)) for p in KILL_POINTS])
def test_kill_at_each_step_then_poll_recovers_exactly_once(
    workers: Any, pg: Playground, point: tuple
) -> None:
    version = pg.train(0.6)
    thread = pg.open_request(version)
    posted = pg.forge.add_comment(thread.number, "maria", "/promote\nShip it.")

    exitcode = run_child(workers, pg, thread, posted.id, point)

    assert exitcode == -signal.SIGKILL, f"kill point {point} was not reached ({exitcode})"
    accounted_for(pg, before=None)
    result = poll(pg.ctx)
    assert result.failures == []
    assert_exactly_once(pg, thread, posted.id, version)
    assert poll(pg.ctx).outcomes == []  # a further pass finds nothing left to do


def test_the_recovery_pass_itself_killed_then_poll_still_recovers_once(
    workers: Any, pg: Playground
) -> None:
    version = pg.train(0.6)
    thread = pg.open_request(version)
    posted = pg.forge.add_comment(thread.number, "maria", "/promote\nShip it.")

    assert run_child(workers, pg, thread, posted.id, ("set_alias", "after", 1)) == -9
    # The second pass finishes the record (recover_pending) and is killed inside it.
    assert run_child(workers, pg, thread, posted.id, ("set_version_tag", "after", 2)) == -9
    accounted_for(pg, before=None)
    assert run_child(workers, pg, thread, posted.id, ("append_history", "after", 1)) == -9
    accounted_for(pg, before=None)

    assert poll(pg.ctx).failures == []
    assert_exactly_once(pg, thread, posted.id, version)


def test_a_recovery_pass_killed_at_the_ledger_step_then_poll_still_recovers_once(
    workers: Any, pg: Playground
) -> None:
    """The pass that finishes a dead pass's record dies as it commits the ledger run."""
    version = pg.train(0.6)
    thread = pg.open_request(version)
    posted = pg.forge.add_comment(thread.number, "maria", "/promote\nShip it.")

    assert run_child(workers, pg, thread, posted.id, ("set_alias", "after", 1)) == -9
    assert [run.status for run in pg.ledger_runs()] == ["RUNNING"]
    assert run_child(workers, pg, thread, posted.id, ("finish_run", "after", 1)) == -9
    accounted_for(pg, before=None)

    assert poll(pg.ctx).failures == []
    assert_exactly_once(pg, thread, posted.id, version)


def test_a_killed_rollback_is_recovered_from_the_right_from_version(
    workers: Any, pg: Playground
) -> None:
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.58)
    thread = pg.open_request(second)
    pg.comment(thread, "olga", "/promote")
    posted = pg.forge.add_comment(thread.number, "maria", f"/rollback {first}\nDrift.")

    assert run_child(workers, pg, thread, posted.id, ("set_version_tag", "after", 1)) == -9
    accounted_for(pg, before=second, earlier=2)
    assert poll(pg.ctx).failures == []

    assert pg.champion() == first
    chain = [(h["action"], h["from"], h["to"]) for h in pg.history()]
    assert chain == [
        ("promote", None, first),
        ("promote", first, second),
        ("rollback", second, first),
    ]
    assert pg.ctx.registry.pending(pg.model) is None
    ids = [cid for a in pg.answers(thread) for cid in answered_comment_ids([a.body])]
    assert sorted(ids) == sorted(set(ids)) and posted.id in ids


def test_the_worker_really_runs_to_the_end_when_not_killed(workers: Any, pg: Playground) -> None:
    """Guards the harness: a kill point that is never reached shows up as NOT_KILLED."""
    version = pg.train(0.6)
    thread = pg.open_request(version)
    posted = pg.forge.add_comment(thread.number, "maria", "/promote\nShip it.")
    assert run_child(workers, pg, thread, posted.id, ("set_alias", "after", 2)) == NOT_KILLED
    assert_exactly_once(pg, thread, posted.id, version)
