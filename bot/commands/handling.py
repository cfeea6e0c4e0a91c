"""What one handling of a comment knows, passed between the handler's steps
(`bot.commands.handler`, `bot.commands.confirmation`, `bot.commands.moves`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.commands.locking import Lease
from bot.commands.replies import Replies
from bot.registry.model_state import ModelState
from bot.registry.versions import VersionInfo
from bot.runtime.context import Context
from bot.threads.markers import RequestMarker
from bot.threads.thread import CommentEvent, Thread


@dataclass(frozen=True)
class Handling:
    """What one handling knows: the event, its thread, the model as read under the lock.

    Frozen: only the handler (`bot.commands.handler`) makes one, and it adds what a step
    returns (`version`, from `bind_to_registry`) with `dataclasses.replace`. The steps return
    what they found or did (`bot.commands.moves.Moved`) instead of writing it here. `roles` is
    the one container filled on the way: `bot.commands.policy.actor_refusal` keeps each role it
    looked up there, so that the ledger's evidence records the levels the rules were decided on.
    """

    ctx: Context
    event: CommentEvent
    thread: Thread
    marker: RequestMarker
    replies: Replies
    lease: Lease  # checked before every write: a lost lock stops the change
    state: ModelState  # read under the lock, an interrupted change settled first
    version: VersionInfo | None = None  # the request's version, once the registry vouched for it
    roles: dict[str, int] = field(default_factory=dict)  # levels looked up: the ledger's record
