"""One read of a registered model, and the encodings of the tags the bot keeps on it: the
history cache, the intent of a change in flight, the ledger's address, the champion seen outside
the bot and the handled comment ids (docs/design.md, "Registry tags"). No I/O: `Registry.state`
reads, `bot.registry.client` writes."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bot.registry.records import HistoryEntry
from bot.registry.tags import EXTERNAL_TAG, HANDLED_TAG, HISTORY_TAG, PENDING_TAG
from bot.signing import Keys

log = logging.getLogger(__name__)

# The handled comment ids live in a registered-model tag, which MLflow's SQL stores keep in
# VARCHAR(5000), behind the bot's seal (`|<kid>:<signature>`, 106 characters): ten-digit ids
# (GitLab note ids, GitHub comment ids today) and their commas fit 445 at a time.
HANDLED_MAX_CHARS = 5000
_HANDLED_SEAL_CHARS = 1 + 16 + 1 + 88


def compact_json(value: Any) -> str:
    # ensure_ascii=False: an emoji costs 1 character of the tag budget, not 12 (\ud83d\ude80).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ModelState:
    """One read of a registered model: aliases and tags; the history and intent parsed once.
    `keys` check the seals of the records the bot signs (docs/security.md): without them no
    intent is evidence."""

    aliases: dict[str, int]
    tags: dict[str, str]
    keys: Keys | None = field(default=None, compare=False, repr=False)

    @cached_property
    def history(self) -> tuple[HistoryEntry, ...]:
        return tuple(HistoryEntry.parse(item) for item in _json_list(self.tags.get(HISTORY_TAG)))

    @cached_property
    def pending(self) -> HistoryEntry | None:
        """The intent of a change in flight, if any: the intent tag, when the bot signed it and
        the history does not hold its entry yet (then the change is done; the tag stays until
        the next change). An intent anyone else wrote is no evidence (`intent_problem`)."""
        intent, problem = self._intent
        return None if problem else intent

    @cached_property
    def intent_problem(self) -> str:
        """What is wrong with an intent that is not done and not signed ("" if nothing)."""
        return self._intent[1]

    @cached_property
    def _intent(self) -> tuple[HistoryEntry | None, str]:
        try:
            value = json.loads(self.tags.get(PENDING_TAG) or "null")
        except ValueError:
            value = None
        if not isinstance(value, dict):
            return None, ""
        fields, problem = self.keys.opened(value) if self.keys else (value, "no key to check it")
        intent = HistoryEntry.parse(fields)
        if any(_same_change(entry, intent) for entry in self.history):
            return None, ""
        return intent, problem

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
        """The comment ids the bot handled, oldest first (as many as the tag holds), when the
        bot signed the list: ids anyone else wrote would silence their comments."""
        raw = self.tags.get(HANDLED_TAG) or ""
        ids, _, seal = raw.rpartition("|")
        kid, _, sig = seal.partition(":")
        if self.keys is None or self.keys.check({"handled": ids}, kid, sig):
            return ()
        return tuple(parse_handled(ids))


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
    """The ids of a `promotion.handled` value, its seal left aside (unchecked: for reading)."""
    ids = (raw or "").rpartition("|")[0] if "|" in (raw or "") else (raw or "")
    return [item for item in ids.split(",") if item]


def handled_value(known: Sequence[str], comment_id: str, keys: Keys) -> str:
    """The `promotion.handled` tag with `comment_id` added, signed; the oldest ids drop off to
    fit."""
    kept = [item for item in known if item != comment_id] + [comment_id]
    size, start = -1, len(kept)
    room = HANDLED_MAX_CHARS - _HANDLED_SEAL_CHARS
    while start > 0 and size + len(kept[start - 1]) + 1 <= room:
        start -= 1
        size += len(kept[start]) + 1
    ids = ",".join(kept[start:])
    seal = keys.seal({"handled": ids})
    return f"{ids}|{seal['kid']}:{seal['sig']}"


def _json_list(raw: str | None) -> list[dict[str, Any]]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        log.warning("ignoring a %s tag that is not JSON", HISTORY_TAG)
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
