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


@dataclass
class Handling:
    """What one handling knows: the event, its thread and the bot's earlier answers there."""

    ctx: Context
    event: CommentEvent
    thread: Thread
    marker: RequestMarker
    bot_bodies: list[str]
    replies: Replies
    lease: Lease  # checked before every write: a lost lock stops the change
    changed: bool = False  # the alias moved: from here on a failure must never read "unchanged"
    state: ModelState = field(default_factory=lambda: ModelState({}, {}))  # read under the lock
    version: VersionInfo | None = None  # the request's version, once the registry vouched for it
    roles: dict[str, int] = field(default_factory=dict)  # levels looked up: the ledger's record
