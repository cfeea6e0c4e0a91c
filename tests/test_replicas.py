"""Two `serve` replicas and `poll` runs sharing one Redis (docs/design.md, "Locking"): any
number of them may run at once on any machines.

Each is its own process with its own lock folder, as on separate machines, so only the Redis
lease can keep them apart. 50 `/promote` and `/rollback` commands are spread over the two
replicas, each delivery is also redelivered to the other replica, and `poll` runs while they
work. The history must be one chain, every command must have exactly one answer, every change
exactly one record, and each replica's /metrics must add up to what happened.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import open_or_update_request
from bot.threads.markers import answered_comment_ids
from tests.fakes.forge_server import FakeForgeServer
from tests.fakes.forges import BOT
from tests.forge_world import World, make_world
from tests.helpers import log_training_run
from tests.redis_server import RedisServer
from tests.replicas import (
    Replica,
    new_delivery,
    replica_env,
    start_poll,
    start_replica,
    wait_ready,
    write_params,
)

pytestmark = pytest.mark.slow

COMMANDS = 50
# After the first /promote (v1 -> v2) the request is closed: later /promote are refused, the
# rollbacks move the champion between two versions that have both been champion (or are refused
# when it is there already), /rollback 9 names no version. At most 15 changes: the registry's
# history tag keeps the newest ~20 entries, and every change must be found there.
CYCLE = ("/rollback 1", "/promote", "/help", "/promote", "/rollback 2", "/promote", "/rollback 9")


def plan() -> list[str]:
    return ["/promote", *itertools.islice(itertools.cycle(CYCLE), COMMANDS - 1)]


def setup_world(world: World) -> int:
    """v1 is champion (promoted in-process), v2 the candidate with its own ticked request."""
    outcome = world.handle(world.post(world.number, "/promote"))
    assert outcome.status == "changed", outcome
    run_id = log_training_run(world.ctx.settings.tracking_uri, {"final.logloss": 0.5})
    version = register(world.ctx, run_id=run_id, alias="smoke").version.version
    assert gate(world.ctx, version=version).passed
    number = int(open_or_update_request(world.ctx).number)
    world.fake.set_body(number, world.fake.body(number).replace("- [ ]", "- [x]"))
    return number


def test_two_replicas_and_poll_share_one_lock(
    tracking_uri: str, model_name: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    with make_world("github", tracking_uri, model_name, tmp_path) as world:
        world.rsps.add_passthru("http://127.0.0.1")  # the replicas and the fake forge's server
        number = setup_world(world)
        base = len(world.ctx.registry.history(model_name))
        server = FakeForgeServer(world.fake, world.fake.api).start()
        params = write_params(tmp_path, model_name)
        envs = {
            name: replica_env(world, server.url, redis_server.url, tmp_path / f"locks-{name}")
            for name in ("a", "b", "poll")
        }
        replicas = [start_replica(name, envs[name], params, tmp_path) for name in ("a", "b")]
        polls = []
        try:
            wait_ready(replicas)
            started = time.monotonic()
            statuses, comment_ids = deliver_all(world, server, replicas, number, polls, envs)
            wait_until_answered(world, server, comment_ids, seconds=180)
            took = time.monotonic() - started
            metrics = wait_until_done(replicas, seconds=120)
            final = start_poll(envs["poll"], params, tmp_path)
            final_out, final_err = final.communicate(timeout=120)
        finally:
            for replica in replicas:
                replica.stop()
            server.stop()
        poll_outputs = [p.communicate(timeout=120) for p in polls]

        assert final.returncode == 0, final_err
        assert "0 command(s) handled" in final_out, final_out
        for process, (_out, err) in zip(polls, poll_outputs, strict=True):
            assert process.returncode == 0, err
        # Shared de-duplication: of each delivery and its redelivery, one replica took it.
        assert all(sorted(pair) == [(200, "duplicate"), (202, "accepted")] for pair in statuses)

        history = [dict(e.stored) for e in world.ctx.registry.history(model_name)][base:]
        assert_one_chain(world, model_name, history, base)
        answers = answers_by_comment(world, number)
        assert sorted(answers) == sorted(comment_ids), "a command has no answer"
        assert all(len(bodies) == 1 for bodies in answers.values()), "a command has two answers"
        changed = {cid for cid, [body] in answers.items() if changed_answer(body)}
        assert changed == {entry["comment_id"] for entry in history}
        assert len(history) == len(changed) >= 5  # 13-15 in the runs so far

        polled = sum(out.count(": changed:") for out, _err in poll_outputs)
        assert_metrics_add_up(metrics, len(history) - polled)
        print(f"\n{COMMANDS} commands, {len(history)} changes, {took:.1f} s, {polled} by poll")


def deliver_all(
    world: World,
    server: FakeForgeServer,
    replicas: list[Replica],
    number: int,
    polls: list[Any],
    envs: dict[str, dict[str, str]],
) -> tuple[list[list[tuple[int, str]]], list[str]]:
    """Each command: comment on the forge, deliver to one replica, redeliver to the other;
    `poll` starts halfway and again after the last command."""
    statuses, comment_ids = [], []
    for i, body in enumerate(plan()):
        with server.lock:
            payload = world.post(number, body)
        comment_ids.append(str(payload["comment"]["id"]))
        first, second = replicas[i % 2], replicas[(i + 1) % 2]
        delivery = new_delivery()
        statuses.append([first.deliver(payload, delivery), second.deliver(payload, delivery)])
        if i in (COMMANDS // 2, COMMANDS - 1):
            polls.append(start_poll(envs["poll"], world.tmp_path / "params.yaml", world.tmp_path))
    return statuses, comment_ids


def wait_until_answered(
    world: World, server: FakeForgeServer, comment_ids: list[str], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with server.lock:
            bodies = [b for thread in world.fake.comments.values() for b in bot_bodies(thread)]
        if set(comment_ids) <= answered_comment_ids(bodies):
            return
        assert time.monotonic() < deadline, "not every command was answered in time"
        time.sleep(0.2)


def wait_until_done(replicas: list[Replica], seconds: float) -> list[dict[Any, float]]:
    """The replicas' metrics once every job taken has ended (a command `poll` answered first is
    still a job of a replica, which then finds the answer)."""
    deadline = time.monotonic() + seconds
    while True:
        metrics = [replica.metrics() for replica in replicas]
        jobs = sum(
            value
            for samples in metrics
            for (name, _labels), value in samples.items()
            if name == "promotion_bot_commands_total"
        )
        if jobs >= COMMANDS:
            return metrics
        assert time.monotonic() < deadline, f"{jobs} of {COMMANDS} jobs ended in time"
        time.sleep(0.2)


def bot_bodies(comments: list[dict[str, Any]]) -> list[str]:
    return [c["body"] for c in comments if c["user"]["login"] == BOT]


def answers_by_comment(world: World, number: int) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for body in bot_bodies(world.fake.comments[number]):
        for cid in answered_comment_ids([body]):
            found.setdefault(cid, []).append(body)
    return found


def changed_answer(body: str) -> bool:
    return "is now `champion`" in body or "rolled back to" in body


def assert_one_chain(world: World, model: str, history: list[dict[str, Any]], base: int) -> None:
    previous = world.ctx.registry.history(model)[base - 1].to_version
    for entry in history:
        assert entry["from"] == previous, f"interleaved changes: {history}"
        assert entry["to"] != entry["from"]
        previous = entry["to"]
    assert world.ctx.registry.aliases(model)["champion"] == previous
    assert world.ctx.registry.pending(model) is None
    assert len({entry["comment_id"] for entry in history}) == len(history), "a change twice"


def assert_metrics_add_up(metrics: list[dict[Any, float]], replica_changes: int) -> None:
    def total(name: str, **labels: str) -> float:
        return sum(
            value
            for samples in metrics
            for (sample, tags), value in samples.items()
            if sample == name and set(labels.items()) <= set(tags)
        )

    deliveries = "promotion_bot_deliveries_total"
    assert total(deliveries, route="github", status="accepted") == COMMANDS
    assert total(deliveries, route="github", status="duplicate") == COMMANDS
    assert total(deliveries) == 2 * COMMANDS
    outcomes: Counter[str] = Counter()
    for samples in metrics:
        for (sample, tags), value in samples.items():
            if sample == "promotion_bot_commands_total":
                outcomes[dict(tags)["outcome"]] += int(value)
    assert sum(outcomes.values()) == COMMANDS, outcomes
    assert outcomes["failed"] == 0
    assert total("promotion_bot_champion_changes_total") == replica_changes
    assert outcomes["changed"] == replica_changes
    assert total("promotion_bot_delivery_to_answer_seconds_count") == COMMANDS
    assert total("promotion_bot_queue_depth") == 0
    assert all(
        any(s == "promotion_bot_commands_total" and v > 0 for (s, _t), v in samples.items())
        for samples in metrics
    ), "one replica did all the work"
