"""Is this event for this bot? Platform and project, decided before anything is read or written.

One secret commonly signs a whole group's or organisation's deliveries (group webhooks, org
webhooks, a GitHub App on many repositories), so a valid signature says nothing about which
project a comment was made in. A thread number only means something inside one project: an
event is handled only when it comes from the configured forge and names the configured project.

The comparison uses what the configuration names, with no API call: the numeric id when the
configuration is one (GitLab's `CI_PROJECT_ID`), else the path, compared without ASCII letter
case (GitLab and GitHub keep paths unique regardless of case, and the bot's own API calls
address the project by that same path, so an event naming it is about the project the bot acts
on). Only ASCII: casefold() would make the Kelvin sign a `k` and the long s an `s`, and the
forges allow no other letters in paths.
An event naming no project is refused: it cannot be shown to be ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.threads.thread import CommentEvent, ProjectRef

if TYPE_CHECKING:
    from bot.forges.base import Forge


@dataclass(frozen=True)
class Binding:
    """The forge and project this bot serves."""

    platform: str
    project: ProjectRef

    @classmethod
    def of(cls, forge: Forge) -> Binding:
        return cls(forge.platform, forge.project_ref())

    def refusal(self, event: CommentEvent) -> str | None:
        """Why `event` is not for this bot, or None when it is."""
        if event.platform != self.platform:
            # A GitHub comment must never be read against GitLab numbers and user ids (or back).
            return f"a {event.platform} comment; this bot serves {self.platform}"
        if not self._same_project(event.project):
            return f"a comment in {event.project}; this bot serves {self.project}"
        return None

    def _same_project(self, named: ProjectRef) -> bool:
        if self.project.id:
            return named.id == self.project.id
        if self.project.path:
            return named.path.isascii() and named.path.lower() == self.project.path.lower()
        return False  # a forge that names no project serves none
