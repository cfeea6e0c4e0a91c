"""What handling one comment came to; the CLI prints it, tests and logs read `status`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.change import Change


@dataclass(frozen=True)
class Outcome:
    # ignored | duplicate | usage | help | refused | approval | changed | recovered | error
    # | damaged (unreadable request marker) | unrecorded (no registry record of the request)
    status: str
    detail: str = ""
    change: Change | None = None

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}" if self.detail else self.status
