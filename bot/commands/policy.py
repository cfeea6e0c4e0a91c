"""Who may move `champion`, and when a command must be refused (docs/design.md, "Rules for a
champion change").

Each check returns a `Refusal` (why + what to do) or None. Nothing here writes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.errors import NotFoundError
from bot.registry.records import HistoryEntry
from bot.registry.tags import CHAMPION_SINCE_TAG
from bot.registry.versions import TOY_ALIAS, RunInfo, VersionInfo
from bot.rules.approvers import describe, eligibility
from bot.rules.gates import GateCheck, evaluate_gates, failed
from bot.runtime.context import Context
from bot.templating import escape_markdown, inline_code
from bot.threads.markers import read_request_marker, read_ticks
from bot.threads.thread import Thread, same_person, thread_noun


@dataclass(frozen=True)
class Refusal:
    code: str  # stable id for logs and tests: not_eligible, self_approval, stale, ...
    why: str
    todo: str


def actor_refusal(
    ctx: Context, author: str, author_id: str, roles: dict[str, int] | None = None
) -> Refusal | None:
    """The actor must be an eligible approver (`bot.rules.approvers`), and never the bot.

    `roles` keeps the level the role lookup found, by lower-case name, for the audit ledger. A
    team lookup that fails is a refusal saying so, since that team might have admitted the actor.
    """
    approvers = ctx.params.promotion.approvers
    if ctx.forge.is_bot(author):
        return Refusal("bot", "the bot never acts on its own comments", "")
    found = eligibility(ctx.forge, approvers, author, author_id)
    if roles is not None and found.level is not None:
        roles[author.lower()] = found.level
    if not found.eligible and found.unread:
        return Refusal(
            "team_lookup_failed",
            f"the bot could not read whether @{author} is a member of {', '.join(found.unread)}",
            "Comment again in a while. If it keeps failing, the bot's token must be able to "
            "read the team's members (GitHub: the read:org scope, or a GitHub App's Members "
            "read permission; GitLab: a token that can see the group).",
        )
    if not found.eligible:
        # The request body says who may approve in these same words.
        because = f": {found.why}" if found.why else ""
        return Refusal(
            "not_eligible",
            f"@{author} is not an eligible approver{because}",
            f"Approvers are {describe(approvers)}.",
        )
    return None


def self_approval_refusal(
    ctx: Context, author: str, author_id: str, version: VersionInfo
) -> Refusal | None:
    """Not the person who triggered training, as the version's tags record them.

    User ids decide when both sides have one (a renamed account keeps its id); names, in any
    letter case, otherwise. A version that records nobody cannot be checked: refused.
    """
    if ctx.params.promotion.approvers.allow_self_approval:
        return None
    name, user_id = version.requested_by, version.requested_by_id
    if not name and not user_id:
        return Refusal(
            "no_requester",
            f"the registry does not record who triggered the training of v{version.version}, "
            "so the self-approval rule cannot be checked",
            "Set PROMOTION_BOT_REQUESTED_BY (and PROMOTION_BOT_REQUESTED_BY_ID) where "
            "`promotion-bot register` or `request` runs and re-run `promotion-bot request`, or "
            "set `promotion.approvers.allow_self_approval: true`.",
        )
    problem = version.requester_problem(ctx.keys)
    if problem:  # docs/security.md: a requester anyone may have rewritten decides nothing
        return Refusal(
            "requester_unsigned",
            f"the registry's record of who triggered the training of v{version.version} was "
            f"not written by promotion-bot ({escape_markdown(problem)})",  # names a tag's kid
            "Re-run `promotion-bot request` for this version where PROMOTION_BOT_REQUESTED_BY "
            "names who triggered the training: it records the requester again, signed.",
        )
    if same_person(name, user_id, author, author_id):
        return Refusal(
            "self_approval",
            f"@{author} triggered this training run and may not approve it",
            "Ask another approver to comment, or set "
            "`promotion.approvers.allow_self_approval: true`.",
        )
    return None


def promote_refusal(
    ctx: Context,
    thread: Thread,
    version: VersionInfo,
    candidate: VersionInfo | None,
    champion: VersionInfo | None,
) -> tuple[Refusal | None, list[GateCheck]]:
    """Preconditions of /promote, in the order a person would fix them; also the gate results."""
    promotion = ctx.params.promotion
    candidate_alias = ctx.params.promote_model.candidate_alias
    if thread.state != "open":
        return Refusal(
            "closed",
            f"this request is {thread.state}",
            "Open a new request with `promotion-bot request`, or use `/rollback <version>`.",
        ), []
    if version.is_toy:
        return Refusal(
            "toy",
            f"v{version.version} was registered as {TOY_ALIAS}: a toy model is never served",
            "",
        ), []
    if champion is not None and champion.version == version.version:
        return Refusal("already_champion", f"v{version.version} already is champion", ""), []
    if candidate is None or candidate.version != version.version:
        newer = _newer_request(ctx, candidate)
        current = f"v{candidate.version}" if candidate else "no version"
        where = f" See {newer}." if newer else ""
        return Refusal(
            "stale",
            f"v{version.version} is no longer `{candidate_alias}` ({current} is)",
            f"Review the current candidate's request instead.{where}",
        ), []
    champion_run = _run_or_none(ctx, champion)
    gates = evaluate_gates(ctx.params, ctx.registry.run(version.run_id), champion_run)
    bad = failed(gates)
    if bad:
        detail = "; ".join(f"{gate.name}: {gate.detail}" for gate in bad)
        return Refusal(
            "gate",
            f"a hard gate fails against the current champion: {detail}",
            "Train a better model, or change `promotion.gates` if the gate is wrong.",
        ), gates
    if promotion.require_checklist:
        ticks = read_ticks(thread.body)
        open_items = [item for item in promotion.checklist if not ticks.get(item.id)]
        if open_items:
            names = ", ".join(f"“{item.text}”" for item in open_items)
            return Refusal(
                "checklist",
                f"{len(open_items)} checklist item(s) are not ticked: {names}",
                "Tick them in the request description, then comment again.",
            ), gates
    needs_approval = promotion.approvers.require_platform_approval
    if needs_approval and thread.kind == "merge_request" and not ctx.forge.is_approved(thread):
        return Refusal(
            "platform_approval",
            "this merge request has no approval on the platform yet",
            "Approve it on the platform, then comment again.",
        ), gates
    return unreviewed_commits_refusal(ctx, thread, version), gates


def unreviewed_commits_refusal(
    ctx: Context, thread: Thread, version: VersionInfo
) -> Refusal | None:
    """With `merge_on_promote` the bot merges, with its own rights, only the commit `request`
    recorded: the promotion branch is not protected, and the approver approves a model, not
    commits someone pushed to the branch since."""
    if thread.kind != "merge_request" or not ctx.params.promotion.request.merge_on_promote:
        return None
    recorded, head = version.request_head, thread.head_sha
    if recorded and head == recorded:
        return None
    noun = thread_noun(thread.kind, ctx.forge.platform)
    if recorded:
        why = (
            # The recorded head is a registry tag: quoted so no value can leave its code span.
            f"this {noun}'s branch is at {inline_code(head[:12] or '?')}, not at "
            f"{inline_code(recorded[:12])}, the "
            "commit `promotion-bot request` recorded: it holds commits nobody reviewed for this "
            "promotion"
        )
    else:
        why = f"the registry records no head commit of this {noun} to merge"
    return Refusal(
        "unreviewed_commits",
        why,
        "Review the new commits, then re-run `promotion-bot request` (it records the branch "
        "head again) and comment the command again; or set "
        "`promotion.request.merge_on_promote: false` and merge by hand.",
    )


def _run_or_none(ctx: Context, version: VersionInfo | None) -> RunInfo | None:
    """The version's run; a deleted run has no metrics (its gates read: not comparable)."""
    if version is None:
        return None
    try:
        return ctx.registry.run(version.run_id)
    except NotFoundError:
        return RunInfo(run_id=version.run_id, experiment_id="")


def rollback_refusal(
    ctx: Context,
    target: VersionInfo | None,
    number: int,
    champion: int | None,
    history: Sequence[HistoryEntry],
    adopted: Callable[[], int | None] | None = None,
) -> Refusal | None:
    """`adopted`: the champion the bot replaced with its first change (asked last, it reads
    the ledger); None when unknown."""
    if target is None or target.status == "FAILED_REGISTRATION":
        return Refusal(
            "unknown_version",
            f"{ctx.model} has no version {number}",
            "Use `promotion-bot status` or the registry UI to pick an existing version.",
        )
    if target.is_toy:
        return Refusal(
            "toy",
            f"v{number} was registered as {TOY_ALIAS}: a toy model is never served",
            "Pick a version registered as smoke.",
        )
    if champion == number:
        return Refusal("already_champion", f"v{number} already is champion", "")
    # A version the bot made champion (its tag, or a `to` of the history), or the champion it
    # found serving and replaced at its first change; never one set by hand after that, which
    # nobody approved here.
    was_champion = CHAMPION_SINCE_TAG in target.tags or any(
        entry.to_version == number for entry in history
    )
    if not was_champion and (adopted is None or adopted() != number):
        return Refusal(
            "never_champion",
            f"v{number} was never champion through a change of the bot, nor the champion the "
            "bot replaced with its first change: `/rollback` only returns to a version approved "
            "here (not one set by hand in the registry since)",
            "A new version becomes champion through its own promotion request (`/promote`), "
            "where the gates and the checklist are checked.",
        )
    return None


def no_previous_refusal(champion: int | None) -> Refusal:
    """`/rollback previous` when the audit ledger knows no champion before the current one."""
    if champion is None:
        why = "there is no champion, so there is no previous one"
    else:
        why = f"the audit ledger records no champion before v{champion}"
    return Refusal(
        "no_previous",
        why,
        "Name the version: `/rollback <version>` (`promotion-bot history` lists the changes).",
    )


def _newer_request(ctx: Context, candidate: VersionInfo | None) -> str:
    if candidate is None:
        return ""
    if candidate.requested_in and not candidate.request_binding_problem(ctx.keys):
        return candidate.requested_in  # the registry's record, sealed: no listing needed
    from bot.runtime.request_threads import find_requests

    for thread in find_requests(ctx):
        marker = read_request_marker(thread.body)
        if marker is not None and not marker.problem and marker.version == candidate.version:
            return thread.url
    return ""
