"""Child process of the kill tests: handle one comment, and SIGKILL itself at a named step.

`run(spec)` arms one kill point (a Registry or LocalForge method, before or after its Nth call)
and hands the comment to the real handler. Reaching the end without being killed exits with
`NOT_KILLED`, so a test knows its kill point was really reached. With `"signal": "STOP"` the
process pauses itself there instead (tests/test_lease_lost.py resumes it with SIGCONT), holding
a Redis lease (`lock_url`, `lock_ttl`), and writes the outcome to `outcome_file` at the end.
The tests start it through a `forkserver` that has MLflow imported already;
`python -m tests.kill_worker '<json spec>'` runs it by hand.

spec: tracking_uri, model, root (the Playground folder), promotion (params), thread, comment,
step (e.g. "set_alias"), when ("before" | "after"), nth (1-based).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow  # noqa: F401 - imported once in the forkserver, not in every child

from bot.commands.handler import handle_comment
from bot.forges.local import LocalForge
from bot.registry.client import Registry
from bot.runtime.context import Context
from bot.threads.thread import CommentEvent
from tests.promotion_env import make_context

NOT_KILLED = 3
OWNERS: dict[str, type] = {
    "set_pending": Registry,
    "set_alias": Registry,
    "set_version_tag": Registry,
    "append_history": Registry,
    "clear_pending": Registry,
    "create_run": Registry,  # the ledger run of the change begins (RUNNING)
    "log_params": Registry,  # the entry, in full
    "finish_run": Registry,  # the ledger run committed (FINISHED)
    "post_comment": LocalForge,
    "update_body": LocalForge,
    "close": LocalForge,
    "update_and_close": LocalForge,  # a promoted issue's status and close, one write
}


def arm(step: str, when: str, nth: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Replace `step` so that its `nth` call signals this process `when` (before/after) it runs."""
    owner = OWNERS[step]
    real: Callable[..., Any] = getattr(owner, step)
    calls = 0

    def killer(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth and when == "before":
            os.kill(os.getpid(), sig)
        result = real(self, *args, **kwargs)
        if calls == nth and when == "after":
            os.kill(os.getpid(), sig)
        return result

    setattr(owner, step, killer)


def run(spec: dict[str, Any]) -> None:
    sig = signal.Signals[f"SIG{spec.get('signal', 'KILL')}"]
    arm(spec["step"], spec["when"], int(spec.get("nth", 1)), sig)
    ctx = make_context(spec["tracking_uri"], spec["model"], Path(spec["root"]), spec["promotion"])
    if spec.get("lock_url"):
        settings = replace(ctx.settings, lock_url=spec["lock_url"], lock_ttl=spec["lock_ttl"])
        ctx = Context(settings=settings, params=ctx.params)
    forge = ctx.forge
    thread = forge.get_thread("issue", spec["thread"])
    [comment] = [c for c in forge.list_comments(thread) if c.id == spec["comment"]]
    event = CommentEvent.from_comment("local", forge.project_ref(), thread, comment)
    outcome = handle_comment(ctx, event)
    if spec.get("outcome_file"):
        Path(spec["outcome_file"]).write_text(str(outcome), encoding="utf-8")
    sys.exit(NOT_KILLED)


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
