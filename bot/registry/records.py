"""The bot's records: a champion change, the history entry it leaves, what a delivery came to.

A champion change has one type per place it lives, each with one job:
- `Change`: the change itself, as the bot makes it (or made it): complete and typed, what the
  rules, the answer and the follow-ups read (`bot.commands`).
- `HistoryEntry`: the same change as the registry's history tag (and the intent of a change in
  flight) stores it, read back leniently: a person may have edited the tag. `Change.entry()` and
  `HistoryEntry.change()` convert one into the other, field by field.
- `bot.ledger.entry.LedgerEntry`: the audit ledger's record, a change with the evidence it was
  approved on, or a champion seen set outside the bot; built from a `Change` by
  `LedgerEntry.of_change`.

The history and the intent are read from the registry once, into `HistoryEntry`
(`bot.registry.model_state.ModelState`), so every rule reads typed fields. An entry read back
keeps the JSON it was read from (`stored`): appending writes it back as it was, so the bot never
rewrites an entry, even one edited by hand. See docs/design.md, "Registry tags" and "Exactly
once".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.signing import NOT_SIGNED, Keys
from bot.threads.thread import same_person
from bot.timestamps import iso_from_epoch

Action = Literal["promote", "rollback"]
ACTIONS: tuple[Action, ...] = ("promote", "rollback")

Status = Literal[
    "ignored",  # not for the bot, or nothing to do: no answer
    "duplicate",  # answered (or reported) before
    "usage",  # a malformed command: usage answered
    "help",  # /help answered
    "refused",  # a rule refused the command: answered why and what to do
    "approval",  # an approval recorded; more are required
    "changed",  # the champion moved, recorded and answered
    "recovered",  # a change made by an earlier pass, its lost answer posted now
    "error",  # the registry or forge failed before anything changed: answered
    "damaged",  # the request marker is unreadable: answered
    "unrecorded",  # the registry has no record of the request: answered
    "reported",  # an external champion change reported in the request thread
]


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of the model's champion history, or the intent of a change in flight."""

    to_version: int | None  # None: no version can be read from it (an entry edited by hand)
    from_version: int | None = None
    action: Action | None = None  # None: not an action the bot writes
    actor: str = ""
    reason: str = ""
    request_url: str = ""
    comment_id: str = ""
    at: str = ""  # ISO 8601 ("" when unreadable)
    # The JSON it was read from; None for an entry the bot makes now (`Change.entry`).
    read_from: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, stored: Mapping[str, Any]) -> HistoryEntry:
        """Read one stored entry; a field of the wrong type reads as absent, never raises."""
        action = stored.get("action")
        return cls(
            to_version=read_version(stored.get("to")),
            from_version=read_version(stored.get("from")),
            action=action if action in ACTIONS else None,
            actor=read_text(stored.get("actor")),
            reason=read_text(stored.get("reason")),
            request_url=read_text(stored.get("request_url")),
            comment_id=read_text(stored.get("comment_id")),
            at=_timestamp(stored.get("at")),
            read_from=dict(stored),
        )

    @property
    def stored(self) -> Mapping[str, Any]:
        """The JSON the tag holds for this entry: as it was read (edited by hand or not), or,
        for an entry made now, its fields."""
        if self.read_from is not None:
            return self.read_from
        return {
            "at": self.at,
            "from": self.from_version,
            "to": self.to_version,
            "actor": self.actor,
            "action": self.action,
            "reason": self.reason,
            "request_url": self.request_url,
            "comment_id": self.comment_id,
        }

    def caused_by(self, comment_id: str, request_url: str) -> bool:
        """This entry is the change `comment_id` in the thread at `request_url` made."""
        return bool(comment_id) and (self.comment_id, self.request_url) == (comment_id, request_url)

    def change(self, model: str) -> Change | None:
        """The change this entry records; None when it names no version to move to."""
        if self.to_version is None:
            return None
        return Change(
            model=model,
            from_version=self.from_version,
            to_version=self.to_version,
            actor=self.actor,
            action=self.action or "promote",
            reason=self.reason,
            request_url=self.request_url,
            comment_id=self.comment_id,
            at=self.at,
        )


@dataclass(frozen=True)
class Change:
    """One champion change the bot makes or made (docs/design.md, "The change"); `entry()` is
    how the history tag keeps it, `bot.ledger.entry.LedgerEntry.of_change` how the ledger does."""

    model: str
    from_version: int | None
    to_version: int
    actor: str
    action: Action
    reason: str
    request_url: str
    comment_id: str
    at: str
    ledger_run: str = ""  # the ledger run that records it, once known (not part of the record)

    def entry(self) -> HistoryEntry:
        """The history entry this change appends (and, before it is made, its intent)."""
        return HistoryEntry(
            to_version=self.to_version,
            from_version=self.from_version,
            action=self.action,
            actor=self.actor,
            reason=self.reason,
            request_url=self.request_url,
            comment_id=self.comment_id,
            at=self.at,
        )


@dataclass(frozen=True)
class Approval:
    """One recorded `/promote` toward `required_approvals` (the version's promotion.approvals)."""

    user: str
    user_id: str = ""  # the forge's id: a rename keeps it, so one person counts once
    comment_id: str = ""
    at: str = ""

    def is_by(self, user: str, user_id: str) -> bool:
        """The same person (`bot.threads.thread.same_person`)."""
        return same_person(self.user, self.user_id, user, user_id)

    def stored(self) -> dict[str, str]:
        return {
            "user": self.user,
            "user_id": self.user_id,
            "comment_id": self.comment_id,
            "at": self.at,
        }

    def sealed(self, keys: Keys, model: str, version: int) -> dict[str, Any]:
        """As the tag keeps it: signed together with the model and version it approves, so it
        cannot be copied onto another version (docs/security.md)."""
        return keys.signed({**self.stored(), "model": model, "version": version})

    @classmethod
    def parse_signed(
        cls, raw: str | None, keys: Keys, model: str, version: int
    ) -> tuple[list[Approval], list[str]]:
        """The approvals of the tag the bot signed for this model and version, and what is wrong
        with each other item it holds (not evidence: written by someone else, or copied)."""
        try:
            value = json.loads(raw) if raw else []
        except ValueError:
            return [], [NOT_SIGNED]
        items = value if isinstance(value, list) else [value]
        found: list[Approval] = []
        problems: list[str] = []
        for item in items:
            fields, problem = keys.opened(item) if isinstance(item, dict) else ({}, NOT_SIGNED)
            if not problem and (fields.get("model"), fields.get("version")) != (model, version):
                problem = "signed for another model or version"
            if problem:
                problems.append(problem)
            else:
                found += cls.parse_all(json.dumps([fields]))
        return found, problems

    @classmethod
    def parse_all(cls, raw: str | None) -> list[Approval]:
        """The tag's JSON list; anything unreadable (edited by hand) reads as no approval."""
        try:
            value = json.loads(raw) if raw else []
        except ValueError:
            return []
        items = value if isinstance(value, list) else []
        return [
            cls(
                read_text(item.get("user")),
                read_text(item.get("user_id")),
                read_text(item.get("comment_id")),
                read_text(item.get("at")),
            )
            for item in items
            if isinstance(item, dict) and read_text(item.get("user"))
        ]


@dataclass(frozen=True)
class Outcome:
    """What handling one delivery came to; the CLI prints it, tests and logs read `status`."""

    status: Status
    detail: str = ""
    change: Change | None = None

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}" if self.detail else self.status


def read_version(value: object) -> int | None:
    """A version number as JSON holds it: an integer, or a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        return int(value)
    return None


def read_text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _timestamp(value: object) -> str:
    """ISO 8601 as written; a Unix time (an entry written by another tool) converted to it."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso_from_epoch(value)
    return ""
