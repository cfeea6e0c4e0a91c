"""A delivered comment, admitted once: `Command | Usage | Ignored` (docs/design.md, "Which
comments the bot acts on", steps 1 to 3).

`admit` reads the comment's text, the only time anything does, with no network: `serve`'s
webhook answer runs it before queueing, so chatter is answered 200 ignored at once. A command
that mentions the bot is kept whatever name it mentions, since the bot's own name may cost an
API call. `for_this_bot` then takes what `admit` returned, on every path (the handler, routing,
`poll`): the event must come from this bot's forge and project, not from the bot itself, and a
mention must name the bot. It reads no text again; the parsed command travels on from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.commands.grammar import Command, Usage, addressed_to, read_comment
from bot.forges.project_binding import Binding
from bot.runtime.context import Context
from bot.threads.thread import CommentEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ignored:
    """A comment the bot does not answer, and why (for the log and the Outcome)."""

    reason: str


Admitted = Command | Usage | Ignored

EDITED = Ignored("edited comments are not commands")
NOT_A_COMMAND = Ignored("not a command")
BOTS_OWN = Ignored("the bot's own comment")


def admit(event: CommentEvent) -> Admitted:
    """What the comment asks, from its action and text alone (no network, no bot name)."""
    if event.action != "created":
        return EDITED
    parsed = read_comment(event.body)
    return NOT_A_COMMAND if parsed is None else parsed


def for_this_bot(ctx: Context, event: CommentEvent, admitted: Admitted | None = None) -> Admitted:
    """`admitted` (else `admit(event)`) when the event is for this bot; Ignored otherwise.

    Chatter first (a group webhook's chatter from other projects is routine, and needs no forge
    client), then the project binding (a command-shaped comment from elsewhere is worth a
    warning), then the author and the mention, which need the bot's name. Running it again on
    its own answer changes nothing and reads no text.
    """
    if admitted is None:
        admitted = admit(event)
    if isinstance(admitted, Ignored):
        return admitted  # chatter: no forge client is even built for it
    forge = ctx.forge
    unbound = Binding.of(forge).refusal(event)
    if unbound is not None:
        extra = {"comment_id": event.comment_id, "thread_number": event.thread_number}
        log.warning("ignored: %s", unbound, extra=extra)
        return Ignored(unbound)
    if forge.is_bot(event.author):
        return BOTS_OWN
    if not addressed_to(admitted, forge.bot_username()):
        return NOT_A_COMMAND
    return admitted
