"""What signing costs per champion change (docs/security.md): CPU time, no round trip.

A `/promote` signs three records (the intent, the ledger entry, the champion cache with the
chain's head, and with two approvals or more each approval) and checks the seals of what it
reads: the intent and the champion cache (whose head it chains to, without a search), and in a
drift check the model's newest entries. Measured here on a ledger entry as the
bot writes one (two approvers, a gate, the checklist, a long reason), with the process's CPU
clock, many times over:

    python bench/signing.py          # prints the figures, merges them into bench/results.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results.json"
ROUNDS = 2000


def _entry() -> Any:
    from bot.ledger.entry import Approver, Evidence, LedgerEntry

    return LedgerEntry(
        model="soccer-match-outcome",
        action="promote",
        from_version=11,
        to_version=12,
        at_ms=1_770_000_000_123,
        actor="maria",
        reason="Better calibration on the March data; checked against the champion. " * 4,
        request_url="https://gitlab.example.com/ml/models/-/issues/42",
        comment_id="1234567890",
        evidence=Evidence(
            approvers=(
                Approver("maria", "18", "maintainer", True, "1234567890", "2026-03-03T14:00:00Z"),
                Approver("olga", "31", "owner", False, "1234567891", "2026-03-03T14:01:00Z"),
            ),
            run_id="0123456789abcdef0123456789abcdef",
            metrics={"final.logloss": 0.5812, "final.accuracy": 0.7123},
            gates=({"name": "max_regression_vs_champion", "passed": True, "detail": "ok"},),
            checklist=tuple(
                {"id": item, "text": f"{item} checked", "ticked": True}
                for item in ("metrics", "data", "contract", "rollback")
            ),
            comment_url="https://gitlab.example.com/ml/models/-/issues/42#note_1234567890",
        ),
        prev="ab" * 32,
    )


def _cpu_us(work: Any, rounds: int = ROUNDS) -> float:
    start = time.process_time()
    for _ in range(rounds):
        work()
    return (time.process_time() - start) / rounds * 1e6


def measure() -> dict[str, Any]:
    from bot.ledger.entry import LedgerEntry
    from bot.registry.model_state import Head, ModelState, history_value
    from bot.registry.records import HistoryEntry
    from bot.registry.tags import HISTORY_TAG
    from bot.registry.versions import RunRecord
    from bot.signing import Keys

    keys = Keys.load("5e" * 32)
    entry = _entry()
    _sealed, params = entry.sealed(keys)
    run = RunRecord("r" * 32, entry.at_ms, "FINISHED", False, params, {})
    intent = {"to": 12, "from": 11, "action": "promote", "actor": "maria", "ledger": "intent:x"}
    signed_intent = keys.signed(intent)
    sign_entry = _cpu_us(lambda: entry.sealed(keys))
    read_entry = _cpu_us(lambda: LedgerEntry.from_run(run, keys))
    read_unchecked = _cpu_us(lambda: LedgerEntry.from_run(run))
    sign_intent = _cpu_us(lambda: keys.signed(intent))
    check_intent = _cpu_us(lambda: keys.opened(signed_intent))
    check_entry = read_entry - read_unchecked
    # The champion cache as it grows: the history tag at its 5,000-character bound.
    stored = dict(HistoryEntry.parse(intent).stored, reason=entry.reason[:120])
    entries = [stored] * 18
    head = Head("ab" * 32, entry.at_ms, "1")
    cache = history_value(keys, "m", entries, head)
    sign_cache = _cpu_us(lambda: history_value(keys, "m", entries, head))
    check_cache = _cpu_us(lambda: ModelState({}, {HISTORY_TAG: cache}, keys, "m").history)
    # One /promote: sign the intent, the entry and the cache; check the intent and the cache
    # (its head is what the entry chains to). A drift check (poll, the webhook, status) checks
    # the window of the model's newest 20.
    per_change = sign_intent + check_intent + sign_entry + sign_cache + check_cache
    return {
        "rounds": ROUNDS,
        "entry_params_chars": sum(len(k) + len(v) for k, v in params.items()),
        "sign_entry_us": round(sign_entry, 1),
        "check_entry_us": round(check_entry, 1),
        "sign_intent_us": round(sign_intent, 1),
        "check_intent_us": round(check_intent, 1),
        "cache_chars": len(cache),
        "sign_cache_us": round(sign_cache, 1),
        "check_cache_us": round(check_cache, 1),
        "per_change_us": round(per_change, 1),
        "drift_window_of_20_us": round(20 * check_entry, 1),
        "extra_round_trips_per_change": 0,
        "why": "the chain's head rides in the champion cache the change reads and writes anyway",
    }


def main() -> None:
    figures = measure()
    print(json.dumps(figures, indent=2))
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results["signing"] = figures
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
