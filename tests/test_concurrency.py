"""20 `/promote` and `/rollback` commands on one model at once, from threads and from processes.

Changes must never interleave: every history entry starts where the previous one ended, the
champion is the last entry's `to`, every command has exactly one answer, no intent is left.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.commands.handler import handle_comment
from bot.registry.records import Outcome
from bot.threads.markers import answered_comment_ids
from tests.promotion_env import MakePlayground, Playground, make_context

# The request stays open after /promote, so /promote can win again after a rollback.
PROMOTION: dict[str, Any] = {"request": {"close_on_promote": False}}
COMMANDS = 20
APPROVERS = ("maria", "olga")


def plan(versions: list[int]) -> list[tuple[str, str]]:
    """(author, body) of each command: rollbacks to every version, and /promote of the last."""
    out = []
    for i in range(COMMANDS):
        body = "/promote" if i % 4 == 0 else f"/rollback {versions[i % len(versions)]}"
        out.append((APPROVERS[i % 2], f"{body}\ncommand {i}"))
    return out


def run_commands(
    ctx: Any, thread_number: str, commands: list[tuple[str, str]], start: Callable[[], Any]
) -> list[Outcome]:
    """Post and handle `commands` in order, after `start()` released every worker at once."""
    from bot.threads.thread import CommentEvent

    forge = ctx.forge
    start()
    outcomes = []
    for author, body in commands:
        posted = forge.add_comment(thread_number, author, body)
        event = CommentEvent(
            platform="local",
            thread_kind="issue",
            thread_number=thread_number,
            comment_id=posted.id,
            author=author,
            body=body,
            created_at=posted.created_at,
            project=forge.project_ref(),
        )
        outcomes.append(handle_comment(ctx, event))
    return outcomes


def in_threads(
    ctx_for: Callable[[], Any], thread_number: str, batches: list[list[tuple[str, str]]], start: Any
) -> list[Outcome]:
    results: list[Outcome] = []
    errors: list[BaseException] = []

    def work(batch: list[tuple[str, str]]) -> None:
        try:
            results.extend(run_commands(ctx_for(), thread_number, batch, start))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    assert not any(worker.is_alive() for worker in workers)
    return results


def process_main(spec: dict[str, Any], barrier: Any) -> None:
    """One spawned process: its own Context on the same registry and forge folder, 2 threads."""
    ctx = make_context(spec["tracking_uri"], spec["model"], Path(spec["root"]), PROMOTION)
    batches = [spec["commands"][0::2], spec["commands"][1::2]]
    outcomes = in_threads(lambda: ctx, spec["thread"], batches, lambda: barrier.wait(timeout=120))
    assert len(outcomes) == len(spec["commands"])


@pytest.fixture
def pg(make_pg: MakePlayground) -> Playground:
    return make_pg(**PROMOTION)


def setup_model(pg: Playground) -> tuple[list[int], Any]:
    versions = [pg.train(0.6), pg.train(0.59), pg.train(0.58)]  # the last is the candidate
    return versions, pg.open_request(versions[-1])


def assert_serialised(pg: Playground, thread: Any) -> None:
    people = [c for c in pg.forge.list_comments(thread) if c.author in APPROVERS]
    assert len(people) == COMMANDS
    answers = pg.answers(thread)
    marked = [cid for a in answers for cid in answered_comment_ids([a.body])]
    assert sorted(marked) == sorted(c.id for c in people), "a command has no or two answers"

    history = pg.history()
    assert history, "no command changed anything"
    previous = None
    for entry in history:
        assert entry["from"] == previous, f"interleaved changes: {history}"
        assert entry["to"] != entry["from"]
        previous = entry["to"]
    assert pg.champion() == history[-1]["to"]
    assert pg.ctx.registry.pending(pg.model) is None

    changes = {a.body.split("comment=")[-1].split()[0] for a in answers if _is_change(a.body)}
    assert changes == {entry["comment_id"] for entry in history}
    assert len(changes) == len(history)


def _is_change(body: str) -> bool:
    return "is now `champion`" in body or "rolled back to" in body


def test_commands_from_many_threads_never_interleave(pg: Playground) -> None:
    versions, thread = setup_model(pg)
    commands = plan(versions)
    batches = [commands[i::5] for i in range(5)]
    barrier = threading.Barrier(len(batches))

    outcomes = in_threads(lambda: pg.ctx, thread.number, batches, barrier.wait)

    assert len(outcomes) == COMMANDS
    statuses = {o.status for o in outcomes}
    assert statuses <= {"changed", "refused"} and "changed" in statuses
    assert sum(o.status == "changed" for o in outcomes) == len(pg.history())
    assert_serialised(pg, thread)


def test_commands_from_many_processes_never_interleave(pg: Playground) -> None:
    versions, thread = setup_model(pg)
    commands = plan(versions)
    spawn = multiprocessing.get_context("spawn")
    processes = 4
    barrier = spawn.Barrier(processes * 2)  # two threads in each: all start together
    children = []
    for i in range(processes):
        spec = {
            "tracking_uri": pg.ctx.settings.tracking_uri,
            "model": pg.model,
            "root": str(pg.root),
            "thread": thread.number,
            "commands": commands[i::processes],
        }
        child = spawn.Process(target=process_main, args=(spec, barrier))
        child.start()
        children.append(child)
    for child in children:
        child.join(timeout=180)

    assert [child.exitcode for child in children] == [0] * processes
    assert_serialised(pg, thread)
