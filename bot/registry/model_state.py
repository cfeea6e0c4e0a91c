"""One read of a registered model, and the encodings of the tags the bot keeps on it: the
history cache, the intent of a change in flight, the ledger's address, the champion seen outside
the bot and the handled comment ids (docs/design.md, "Registry tags"). No I/O: `Registry.state`
reads, `bot.registry.client` writes.

The champion cache (the history tag and the champion seen outside the bot) is signed, bound to
its model, and carries the head of the model's ledger chain (`Head`): the next change chains to
it without searching the ledger, when the same read vouches for it (`ModelState.chain_head`). A
cache the bot did not sign is no evidence: the records read as empty and the ledger decides
(docs/security.md, "The registry writer and the signing key")."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bot.registry.records import HistoryEntry
from bot.registry.tags import EXTERNAL_TAG, HANDLED_TAG, HISTORY_TAG, PENDING_TAG, REPORTED_TAG
from bot.signing import NOT_SIGNED, Keys

log = logging.getLogger(__name__)

# The handled comment ids live in a registered-model tag, which MLflow's SQL stores keep in
# VARCHAR(5000), behind the bot's seal (`|<kid>:<signature>`, 106 characters): ten-digit ids
# (GitLab note ids, GitHub comment ids today) and their commas fit 445 at a time.
HANDLED_MAX_CHARS = 5000
_HANDLED_SEAL_CHARS = 1 + 16 + 1 + 88
REPORTED_LIMIT = 40  # records `promotion.reported` remembers (about 60 characters each)


def compact_json(value: Any) -> str:
    # ensure_ascii=False: an emoji costs 1 character of the tag budget, not 12 (\ud83d\ude80).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Head:
    """The newest entry of a model's ledger chain, as the champion cache records it: what the
    next entry names as `prev` and must come after, in the experiment it lives in."""

    digest: str
    at_ms: int
    experiment_id: str

    def stored(self) -> dict[str, Any]:
        return {"digest": self.digest, "at_ms": self.at_ms, "experiment_id": self.experiment_id}

    @classmethod
    def parse(cls, value: object) -> Head | None:
        if not isinstance(value, dict):
            return None
        digest, at_ms, experiment_id = (value.get(k) for k in ("digest", "at_ms", "experiment_id"))
        if not (isinstance(digest, str) and isinstance(experiment_id, str) and digest):
            return None
        if not isinstance(at_ms, int) or isinstance(at_ms, bool):
            return None
        return cls(digest, at_ms, experiment_id)


@dataclass(frozen=True)
class ModelState:
    """One read of a registered model: aliases and tags; the history and intent parsed once.
    `keys` check the seals of the records the bot signs (docs/security.md): without them no
    intent is evidence."""

    aliases: dict[str, int]
    tags: dict[str, str]
    keys: Keys | None = field(default=None, compare=False, repr=False)
    model: str = ""

    @cached_property
    def history(self) -> tuple[HistoryEntry, ...]:
        """The champion history cache, when the bot signed it for this model (else empty: the
        ledger decides; `history_problem` says why)."""
        fields, problem = self._cache
        if problem:
            return ()
        return tuple(HistoryEntry.parse(item) for item in _dicts(fields.get("entries")))

    @cached_property
    def history_problem(self) -> str:
        """What is wrong with the history cache ("" when the bot signed it, or there is none)."""
        return self._cache[1]

    @cached_property
    def unchecked_history(self) -> tuple[HistoryEntry, ...]:
        """The history tag's entries whoever wrote them: only for importing a history written
        before keys, trusted on first use (bot.ledger.setup), and for showing it."""
        raw = self.tags.get(HISTORY_TAG)
        value = _json(raw)
        items = value.get("entries") if isinstance(value, dict) else value
        if raw and value is None:
            log.warning("ignoring a %s tag that is not JSON", HISTORY_TAG)
        return tuple(HistoryEntry.parse(item) for item in _dicts(items))

    @property
    def cache_experiment(self) -> str:
        """The experiment of the chain head the signed history cache recorded ("" when none):
        the bot's own changes of the model are in that ledger."""
        head = Head.parse(self._cache[0].get("head"))
        return head.experiment_id if head else ""

    @cached_property
    def _cache(self) -> tuple[dict[str, Any], str]:
        return self._opened(HISTORY_TAG)

    @cached_property
    def _external(self) -> tuple[dict[str, Any], str]:
        return self._opened(EXTERNAL_TAG)

    def _opened(self, tag: str) -> tuple[dict[str, Any], str]:
        """A signed record of this model's tag `tag`: its fields, and "" when the bot signed it
        for this model (else what is wrong). No tag at all: no fields, nothing wrong."""
        raw = self.tags.get(tag)
        if not raw:
            return {}, ""
        value = _json(raw)
        if not isinstance(value, dict):
            return {}, NOT_SIGNED
        if self.keys is None:
            return {}, "no key to check it"
        fields, problem = self.keys.opened(value)
        if not problem and fields.get("model") != self.model:
            problem = f"signed for another model ({str(fields.get('model'))[:60]!r})"
        return ({}, problem) if problem else (fields, "")

    @property
    def cache_problems(self) -> dict[str, str]:
        """The champion cache's tags that are there but not evidence, and why."""
        found = {HISTORY_TAG: self.history_problem, EXTERNAL_TAG: self._external[1]}
        return {tag: problem for tag, problem in found.items() if problem}

    @cached_property
    def pending(self) -> HistoryEntry | None:
        """The intent of a change in flight, if any: the intent tag, when the bot signed it and
        the history does not hold its entry yet (then the change is done; the tag stays until
        the next change). An intent anyone else wrote is no evidence (`intent_problem`)."""
        intent, problem = self._intent
        return None if problem else intent

    @property
    def unchecked_intent(self) -> HistoryEntry | None:
        """The intent tag's change whoever wrote it: only for the operator's import, which
        clears an intent from before keys whose change it imported (bot.ledger.importing)."""
        value = _json(self.tags.get(PENDING_TAG))
        return HistoryEntry.parse(value) if isinstance(value, dict) else None

    @cached_property
    def intent_problem(self) -> str:
        """What is wrong with an intent that is not done and not signed ("" if nothing)."""
        return self._intent[1]

    @cached_property
    def _intent(self) -> tuple[HistoryEntry | None, str]:
        raw = self.tags.get(PENDING_TAG)
        value = _json(raw)
        if not isinstance(value, dict):
            return None, NOT_SIGNED if raw else ""
        fields, problem = self.keys.opened(value) if self.keys else (value, "no key to check it")
        model = fields.pop("model", None)  # signed with its model: no copy from another one
        if not problem and model != self.model:
            problem = "signed for another model"
        intent = HistoryEntry.parse(fields)
        if any(_same_change(entry, intent) for entry in self.history):
            return None, ""
        return intent, problem

    @cached_property
    def expected_champion(self) -> tuple[bool, int | None]:
        """(known, version): what the records say the champion is without reading the ledger:
        the newest change seen outside the bot when it came after the history cache's newest
        entry, else that entry's `to`. Not known while an intent is in flight."""
        if self.pending is not None or self.history_problem:
            return False, None
        return True, self._newest[0]

    @cached_property
    def _newest(self) -> tuple[int | None, Head | None]:
        """The champion the signed cache says, and the chain's head it recorded with it: the
        champion seen outside the bot when it came after the history's newest entry, else that
        entry's `to`."""
        newest = self.history[-1] if self.history else None
        after = _change_key(newest) if newest else ""
        outside = self._external[0]
        if outside.get("after") == after and "to" in outside:
            to = outside.get("to")
            version = to if isinstance(to, int) and not isinstance(to, bool) else None
            return version, Head.parse(outside.get("head"))
        return (newest.to_version if newest else None), Head.parse(self._cache[0].get("head"))

    @property
    def cached_head(self) -> Head | None:
        """The head of the model's ledger chain the signed champion cache recorded, whatever the
        champion is now (None: no cache the bot signed, or one from before heads were kept).
        Evidence of which entry is the newest, not that nothing happened since: a reader ties it
        to the ledger itself (`bot.ledger.chain.vouch`)."""
        return self._newest[1]

    def chain_head(self, experiment_id: str, alias: str) -> Head | None:
        """The head of the model's ledger chain as the signed cache recorded it, when this same
        read vouches that nothing happened since: no change in flight, the champion the one the
        cache says, the head in the ledger's experiment. None: the ledger is searched for it.

        Every writer of an entry (a change, its recovery, a champion seen outside the bot)
        writes the cache after it, under the model lock; a cache written before that entry
        disagrees with the champion or with the intent. A replayed older value the bot signed
        that agrees with both makes the next entry follow an older one: a fork `verify` names
        (docs/security.md, "The registry writer and the signing key")."""
        known, expected = self.expected_champion
        if not known or self.aliases.get(alias) != expected or self.intent_problem:
            return None
        head = self._newest[1]
        return head if head is not None and head.experiment_id == experiment_id else None

    @cached_property
    def reported(self) -> dict[str, tuple[str, int]]:
        """The records found not signed that the bot reported, by name: the fingerprint of the
        value reported and when (ms); empty unless the bot signed the list for this model."""
        records = self._opened(REPORTED_TAG)[0].get("records")
        found: dict[str, tuple[str, int]] = {}
        for name, item in records.items() if isinstance(records, dict) else ():
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
                at_ms = item[1]
                if isinstance(at_ms, int) and not isinstance(at_ms, bool):
                    found[name] = (item[0], at_ms)
        return found

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


def external_value(
    keys: Keys, model: str, newest: HistoryEntry | None, to_version: int | None, head: Head | None
) -> str:
    """The `promotion.external` tag of a champion seen outside the bot after `newest`, with the
    head of the chain its entry became, signed."""
    after = _change_key(newest) if newest else ""
    fields = {"model": model, "to": to_version, "after": after,
              "head": head.stored() if head else None}  # fmt: skip
    return compact_json(keys.signed(fields))


def history_value(
    keys: Keys, model: str, entries: Sequence[Mapping[str, Any]], head: Head | None
) -> str:
    """The `promotion.history` tag: the entries and the head of the chain, signed."""
    fields = {"model": model, "entries": list(entries), "head": head.stored() if head else None}
    return compact_json(keys.signed(fields))


def reported_value(keys: Keys, model: str, records: Mapping[str, tuple[str, int]]) -> str:
    """The `promotion.reported` tag: each record's fingerprint and when it was reported, the
    newest `REPORTED_LIMIT`, signed."""
    newest = sorted(records.items(), key=lambda item: item[1][1])[-REPORTED_LIMIT:]
    fields = {"model": model, "records": {name: [fp, at] for name, (fp, at) in newest}}
    return compact_json(keys.signed(fields))


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


def _json(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
