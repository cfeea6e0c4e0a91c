"""What a champion change was approved on, as the audit ledger keeps it (docs/design.md, "The
ledger"): every approver with the role the forge reported for them during this pass, the hard
gates as evaluated at execution, the checklist as ticked, the version's run and the values the
gates read. Nothing here calls the forge or the registry: it is what the handler already read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from bot.forges.base import role_name
from bot.ledger.entry import Approver, Evidence
from bot.registry.records import Approval
from bot.registry.versions import VersionInfo
from bot.rules.approvers import is_listed
from bot.rules.gates import GateCheck
from bot.runtime.context import Context
from bot.threads.markers import read_ticks
from bot.threads.thread import CommentEvent, Thread


def promote_evidence(
    ctx: Context,
    thread: Thread,
    event: CommentEvent,
    version: VersionInfo,
    approvals: Sequence[Approval],
    roles: Mapping[str, int],
    gates: Sequence[GateCheck],
) -> Evidence:
    """A `/promote`'s snapshot: every approval it rests on, gates, checklist."""
    ticks = read_ticks(thread.body)
    return Evidence(
        approvers=tuple(_approver(ctx, approval, roles) for approval in approvals),
        run_id=version.run_id,
        metrics={gate.metric: gate.value for gate in gates if gate.metric},
        gates=tuple(_gate(gate) for gate in gates),
        checklist=tuple(
            {"id": item.id, "text": item.text, "ticked": bool(ticks.get(item.id))}
            for item in ctx.params.promotion.checklist
        ),
        comment_url=ctx.forge.comment_url(thread, event.comment_id),
    )


def rollback_evidence(
    ctx: Context,
    thread: Thread,
    event: CommentEvent,
    target: VersionInfo,
    roles: Mapping[str, int],
    at: str,
) -> Evidence:
    """A `/rollback`'s snapshot: its approver and the version's run (no gate is evaluated)."""
    approval = Approval(event.author, event.author_id, event.comment_id, at)
    return Evidence(
        approvers=(_approver(ctx, approval, roles),),
        run_id=target.run_id,
        comment_url=ctx.forge.comment_url(thread, event.comment_id),
    )


def _approver(ctx: Context, approval: Approval, roles: Mapping[str, int]) -> Approver:
    level = roles.get(approval.user.lower())
    listed = is_listed(ctx.params.promotion.approvers, approval.user)
    return Approver(
        user=approval.user,
        user_id=approval.user_id,
        role="" if level is None else role_name(ctx.forge.platform, level),
        listed=listed,
        comment_id=approval.comment_id,
        at=approval.at,
    )


def _gate(gate: GateCheck) -> dict[str, object]:
    shown: dict[str, object] = {"name": gate.name, "passed": gate.passed, "detail": gate.detail}
    if gate.metric:
        shown.update(
            metric=gate.metric, value=_finite(gate.value), reference=_finite(gate.reference)
        )
    return shown


def _finite(value: float | None) -> float | str | None:
    """JSON has no word for inf or nan: those are kept as text."""
    if value is None or math.isfinite(value):
        return value
    return str(value)
