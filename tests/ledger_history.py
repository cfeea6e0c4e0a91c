"""A long champion history written straight through the ledger API, for the 500-change test and
the benchmark: the same entries a year of `/promote` and `/rollback` would leave, with full
snapshots, made in seconds instead of through 500 commands.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from bot.ledger.entry import EXTERNAL, Approver, Evidence, LedgerEntry
from bot.ledger.store import Ledger
from bot.registry.model_state import Head
from bot.registry.records import HistoryEntry
from bot.registry.tags import LEDGER_TAG

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def planned_changes(model: str, count: int, seed: int = 12) -> list[LedgerEntry]:
    """`count` changes of `model`, oldest first: each `from` the previous `to`, minutes to days
    apart, every 25th a move seen outside the bot, some with two approvers and long reasons."""
    rng = random.Random(seed)
    entries: list[LedgerEntry] = []
    at_ms, champion = START_MS, None
    for index in range(count):
        at_ms += rng.randint(60_000, 3 * 86_400_000)
        to = rng.choice([v for v in range(1, 40) if v != champion])
        external = index % 25 == 24
        people = [("maria", "maintainer"), ("olga", "owner")][: rng.randint(1, 2)]
        entries.append(
            LedgerEntry(
                model=model,
                action=EXTERNAL if external else rng.choice(["promote", "rollback"]),
                from_version=champion,
                to_version=to,
                at_ms=at_ms,
                actor="" if external else people[-1][0],
                reason=f"change {index}: " + "why " * rng.randint(0, 400),
                request_url=f"https://gitlab.example/ml/models/-/issues/{index + 1}",
                comment_id="" if external else str(10_000 + index),
                evidence=Evidence(
                    approvers=()
                    if external
                    else tuple(
                        Approver(user, str(n + 1), role, comment_id=str(10_000 + index))
                        for n, (user, role) in enumerate(people)
                    ),
                    run_id=f"{index:032x}",
                    metrics={"final.logloss": round(rng.uniform(0.4, 0.7), 4)},
                    gates=({"name": "regression", "passed": True, "detail": "ok"},),
                    checklist=({"id": "data", "text": "Data checked", "ticked": True},),
                ),
                seen_by="poll" if external else "",
            )
        )
        champion = to
    return entries


def onto_versions(entries: list[LedgerEntry], versions: int) -> list[LedgerEntry]:
    """The planned changes between the versions 1..`versions` (the ones that exist), each `from`
    the previous `to`."""
    out: list[LedgerEntry] = []
    champion = None
    for entry in entries:
        to = 1 + (entry.to_version or 0) % versions
        if to == champion:
            to = 1 + to % versions
        out.append(replace(entry, from_version=champion, to_version=to))
        champion = to
    return out


def write_changes(
    ledger: Ledger, experiment_id: str, entries: list[LedgerEntry]
) -> list[LedgerEntry]:
    """Each entry as the bot records one (three calls), four at a time: chained in order first
    (signing is local), so each names the one before it as the bot's would. The entries as
    sealed (with their digests), oldest first."""
    chained: list[LedgerEntry] = []
    head: LedgerEntry | None = None
    for entry in entries:
        head, _params = ledger.sealed(experiment_id, entry, head)
        chained.append(head)
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(
            lambda item: ledger.record(
                experiment_id,
                item[1],
                f"bulk:{item[1].model}:{item[0]}",
                head=chained[item[0] - 1] if item[0] else None,
            ),
            enumerate(entries),
        )
        list(done)
    return chained


def leave_as_the_bot_does(ledger: Ledger, experiment_id: str, chained: list[LedgerEntry]) -> None:
    """What the bot keeps on the model after its last change, for entries written straight
    through the ledger: the signed ledger marker, the signed champion cache with the chain's
    head (the newest entry), and `champion` at its `to`."""
    last = chained[-1]
    registry, model = ledger.registry, last.model
    registry.set_model_tag(model, LEDGER_TAG, ledger.marker(model, experiment_id))
    change = HistoryEntry(last.to_version, last.from_version, None, last.actor, at=last.at)
    head = Head(last.digest, last.at_ms, experiment_id)
    registry.append_history(model, change, known=(), head=head)
    registry.set_alias(model, "champion", last.to_version or 1)
