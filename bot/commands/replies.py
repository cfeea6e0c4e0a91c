"""Answers in the thread, one template per message, each carrying the hidden answer marker."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from bot.commands.grammar import Command, Usage
from bot.commands.policy import Refusal
from bot.errors import ForgeError
from bot.registry.records import Change
from bot.runtime.context import Context
from bot.threads.command_forms import command_lines, format_command
from bot.threads.markers import answer_marker, approval_marker
from bot.threads.thread import CommentEvent, Thread

log = logging.getLogger(__name__)

# The bot reads its own state (answered comments, approvals) back from markers in its comments.
# Text it echoes from people (a malformed command line, a username) must never carry one.
_ECHOED_MARKER = re.compile(r"<!--(?=\s*promotion-bot:)")


def rollback_command(version: int) -> str:
    return format_command("rollback", version=version)


def promote_command(ctx: Context) -> str:
    forge = ctx.forge
    return format_command(
        "promote", mention=not forge.slash_promote_works(), bot=forge.bot_username()
    )


def common_context(ctx: Context) -> dict[str, Any]:
    """What every answer template (and the request's status section) is rendered with."""
    return {
        "model": ctx.model,
        "champion_alias": ctx.params.promotion.champion_alias,
        "candidate_alias": ctx.params.promote_model.candidate_alias,
    }


class Replies:
    """The reply writer: every text the bot writes in the thread about one comment, and
    nothing else (the change is `bot.commands.change`, its follow-ups
    `bot.commands.follow_ups`)."""

    def __init__(
        self,
        ctx: Context,
        thread: Thread,
        event: CommentEvent,
        guard: Callable[[], None] = lambda: None,
    ) -> None:
        self.ctx = ctx
        self.thread = thread
        self.event = event
        # The lease's check (bot.commands.locking): an answer is written under the lock, or
        # not at all; whoever holds the lock next answers.
        self.guard = guard
        self.attempted = False  # a comment was sent: it may be in the thread even if it failed

    def _common(self) -> dict[str, Any]:
        return common_context(self.ctx)

    def _post(self, template: str, extra_marker: str = "", **context: Any) -> None:
        body = defang(self.ctx.render(template, **self._common(), **context).rstrip())
        markers = "\n".join(m for m in (extra_marker, answer_marker(self.event.comment_id)) if m)
        self.guard()
        self.attempted = True
        # An answer to an internal note is internal too: it may repeat the reason.
        self.ctx.forge.post_comment(
            self.thread, f"{body}\n\n{markers}\n", internal=self.event.internal
        )

    def _react(self, reaction: str) -> None:
        try:
            self.ctx.forge.react(self.thread, self.event.comment_id, reaction)
        except Exception:  # reactions are decoration: never fail a command over one
            log.debug("reaction failed", exc_info=True)

    def usage(self, usage: Usage) -> None:
        forge = self.ctx.forge
        self._post(
            "answer_usage.md.j2",
            command=self._command_line(),
            problem=usage.problem,
            commands=command_lines(forge.bot_username(), forge.slash_promote_works()),
        )

    def help(self, version: int, approvals: int, aliases: dict[str, int]) -> None:
        ctx, forge = self.ctx, self.ctx.forge
        self._post(
            "answer_help.md.j2",
            commands=command_lines(forge.bot_username(), forge.slash_promote_works()),
            champion=aliases.get(ctx.params.promotion.champion_alias),
            candidate=aliases.get(ctx.params.promote_model.candidate_alias),
            version=version,
            approvals=approvals,
            required=ctx.params.promotion.approvers.required_approvals,
        )

    def damaged_request(self, problem: str) -> None:
        self._post("answer_damaged_request.md.j2", command=self._command_line(), problem=problem)

    def unrecorded_request(self, version: int) -> None:
        self._post("answer_unrecorded_request.md.j2", command=self._command_line(), version=version)

    def unsigned_request(self, version: int, problem: str) -> None:
        self._react("-1")
        self._post(
            "answer_unsigned_request.md.j2",
            command=self._command_line(),
            version=version,
            problem=problem,
        )

    def change_superseded(self, change: Change, champion: int | None) -> None:
        """A change this comment made whose answer never went out, overtaken since: say both,
        with no follow-ups (they belong to the change that is current now)."""
        self._post(
            "answer_change_superseded.md.j2",
            command=self._command_line(),
            from_version=change.from_version,
            to_version=change.to_version,
            at=change.at,
            champion=champion,
        )

    def unavailable(self, service: str, *, lock: bool, attempts: int, seconds: float) -> None:
        self._post(
            "answer_unavailable.md.j2",
            command=self._command_line(),
            service=service,
            lock=lock,
            attempts=attempts,
            seconds=f"{seconds:g}",
        )

    def _command_line(self) -> str:
        lines = [line for line in self.event.body.strip().splitlines() if line.strip()]
        return lines[0].strip()[:100] if lines else ""

    def refused(self, command: Command, refusal: Refusal) -> None:
        self._react("-1")
        self._post(
            "answer_refused.md.j2",
            command=shown_command(command),
            why=refusal.why,
            todo=refusal.todo,
        )

    def error(self, command: Command, problem: str) -> None:
        self._post("answer_error.md.j2", command=shown_command(command), problem=problem)

    def approval_recorded(self, version: int, approvers: list[str], required: int) -> None:
        self._react("+1")
        self._post(
            "answer_approval_recorded.md.j2",
            extra_marker=approval_marker(version, self.event.author),
            version=version,
            approvers=approvers,
            count=len(approvers),
            required=required,
            promote_command=promote_command(self.ctx),
        )

    def changed(
        self,
        change: Change,
        approvers: list[str],
        *,
        reason: str | None = None,
        rollback_to: int | None = None,
    ) -> None:
        """The answer to a change; its follow-ups are `bot.commands.follow_ups`.

        `reason`: the comment's own, when the record keeps another (an internal note's answer is
        internal and may say it). `rollback_to`: the version the answer offers `/rollback` to
        (None: none it would take). See docs/design.md, "The change".
        """
        template = (
            "answer_promoted.md.j2" if change.action == "promote" else "answer_rolled_back.md.j2"
        )
        self._post(
            template,
            from_version=change.from_version,
            to_version=change.to_version,
            actor=change.actor,
            approvers=approvers,
            reason=change.reason if reason is None else reason,
            at=change.at,
            rollback_command=rollback_command(rollback_to) if rollback_to else "",
        )
        self._react("rocket")

    def not_merged(self, change: Change, head: str) -> None:
        """A promoted MR/PR the forge would not merge at the commit the rule checked."""
        self._report("answer_not_merged.md.j2", change, head=head[:12])

    def hook_failed(self, change: Change, problem: str) -> None:
        """`post_promote_hook` failed after its retries; the change stands."""
        self._report("answer_hook_failed.md.j2", change, problem=problem)

    def _report(self, template: str, change: Change, **context: Any) -> None:
        """A follow-up that went wrong, said in the thread (no answer marker: it answers no
        comment). Forge and server messages stay in the log."""
        body = self.ctx.render(template, **self._common(), to_version=change.to_version, **context)
        try:
            self.ctx.forge.post_comment(self.thread, defang(body), internal=self.event.internal)
        except ForgeError as exc:  # the change and its answer stand; the log keeps the rest
            log.warning("reporting %s failed: %s", template, exc)


def defang(body: str) -> str:
    """Neutralise bot markers inside a rendered answer (they can only come from echoed text)."""
    return _ECHOED_MARKER.sub("&lt;!--", body)


def shown_command(command: Command) -> str:
    if command.name == "rollback":
        return f"/rollback {'previous' if command.previous else command.version}"
    return f"/{command.name}"
