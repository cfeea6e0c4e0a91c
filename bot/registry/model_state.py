"""One read of a registered model, and the encodings of the tags the bot keeps on it: the
history cache, the intent of a change in flight, the ledger's address, the champion seen outside
the bot and the handled comment ids (docs/design.md, "Registry tags"). No I/O: `Registry.state`
reads, `bot.registry.client` writes."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from bot.registry.records import HistoryEntry
from bot.registry.tags import EXTERNAL_TAG, HANDLED_TAG, HISTORY_TAG, LEDGER_TAG, PENDING_TAG

log = logging.getLogger(__name__)

# The handled comment ids live in a registered-model tag, which MLflow's SQL stores keep in
# VARCHAR(5000): ten-digit ids (GitLab note ids, GitHub comment ids today) and their commas fit
# 454 at a time.
HANDLED_MAX_CHARS = 5000


def compact_json(value: Any) -> str:
    # ensure_ascii=False: an emoji costs 1 character of the tag budget, not 12 (\ud83d\ude80).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ModelState:
    """One read of a registered model: aliases and tags; the history and intent parsed once."""

    aliases: dict[str, int]
    tags: dict[str, str]

    @cached_property
    def history(self) -> tuple[HistoryEntry, ...]:
        return tuple(HistoryEntry.parse(item) for item in _json_list(self.tags.get(HISTORY_TAG)))

    @cached_property
    def pending(self) -> HistoryEntry | None:
        """The intent of a change in flight, if any: the intent tag, unless the history already
        holds its entry (the change is done; the tag stays until the next change)."""
        intent = _pending(self.tags.get(PENDING_TAG))
        if intent is None or any(_same_change(entry, intent) for entry in self.history):
            return None
        return intent

    @cached_property
    def ledger(self) -> tuple[str, str]:
        """(experiment name, experiment id) of the model's audit ledger; ("", "") before the
        history tag was imported into it."""
        try:
            value = json.loads(self.tags.get(LEDGER_TAG) or "{}")
        except ValueError:
            return "", ""
        if not isinstance(value, dict):
            return "", ""
        name, experiment_id = value.get("experiment"), value.get("experiment_id")
        if isinstance(name, str) and isinstance(experiment_id, str) and name and experiment_id:
            return name, experiment_id
        return "", ""

    @cached_property
    def expected_champion(self) -> tuple[bool, int | None]:
        """(known, version): what the records say the champion is without reading the ledger:
        the newest change seen outside the bot when it came after the history cache's newest
        entry, else that entry's `to`. Not known while an intent is in flight."""
        if self.pending is not None:
            return False, None
        newest = self.history[-1] if self.history else None
        after = _change_key(newest) if newest else ""
        try:
            outside = json.loads(self.tags.get(EXTERNAL_TAG) or "{}")
        except ValueError:
            outside = {}
        if isinstance(outside, dict) and outside.get("after") == after and "to" in outside:
            to = outside.get("to")
            return True, to if isinstance(to, int) and not isinstance(to, bool) else None
        return True, newest.to_version if newest else None

    @cached_property
    def handled(self) -> tuple[str, ...]:
        """The comment ids the bot handled, oldest first (as many as the tag holds)."""
        return tuple(parse_handled(self.tags.get(HANDLED_TAG)))


def external_value(newest: HistoryEntry | None, to_version: int | None) -> str:
    """The `promotion.external` tag of a champion seen outside the bot after `newest`."""
    return compact_json({"to": to_version, "after": _change_key(newest) if newest else ""})


def _change_key(entry: HistoryEntry) -> str:
    return f"{entry.comment_id}/{entry.to_version}/{entry.at}"


def _same_change(entry: HistoryEntry, intent: HistoryEntry) -> bool:
    return (entry.comment_id, entry.to_version, entry.at) == (
        intent.comment_id,
        intent.to_version,
        intent.at,
    )


def parse_handled(raw: str | None) -> list[str]:
    return [item for item in (raw or "").split(",") if item]


def handled_value(known: Sequence[str], comment_id: str) -> str:
    """The `promotion.handled` tag with `comment_id` added; the oldest ids drop off to fit."""
    kept = [item for item in known if item != comment_id] + [comment_id]
    size, start = -1, len(kept)
    while start > 0 and size + len(kept[start - 1]) + 1 <= HANDLED_MAX_CHARS:
        start -= 1
        size += len(kept[start]) + 1
    return ",".join(kept[start:])


def _json_list(raw: str | None) -> list[dict[str, Any]]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        log.warning("ignoring a %s tag that is not JSON", HISTORY_TAG)
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _pending(raw: str | None) -> HistoryEntry | None:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return HistoryEntry.parse(value) if isinstance(value, dict) else None
