"""`poll`'s cursor: the time up to which a pass read every request's comments, so the next pass
asks the forge only for the requests updated since (docs/design.md, "Polling").

It is a tag of the first model served, one per bot (`promotion.poll_cursor.<instance id>`: two
bots sharing a registry keep their own), sealed by the bot like its other records
(docs/security.md). A cursor that is missing, unsigned, sealed by a key not trusted, written for
another bot or model, unreadable, in the future or older than `MAX_AGE` means a full read:
a cursor can cost calls, never a missed command. It is written `OVERLAP` before the pass began,
which covers a forge clock behind ours and a comment indexed late.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.signing import Keys
from bot.timestamps import parse_iso

OVERLAP = timedelta(minutes=2)
MAX_AGE = timedelta(days=14)  # the rollback window: older than that, read everything again
TAG_PREFIX = "promotion.poll_cursor."


def tag_key(bot: str) -> str:
    return f"{TAG_PREFIX}{bot}"


def _record(stamp: str, bot: str, model: str) -> dict[str, str]:
    return {"poll_cursor": stamp, "bot": bot, "model": model}


def cursor_value(started: datetime, bot: str, model: str, keys: Keys) -> str:
    """The tag's value for a pass that began at `started` and completed without a failure."""
    stamp = (started - OVERLAP).strftime("%Y-%m-%dT%H:%M:%SZ")
    seal = keys.seal(_record(stamp, bot, model))
    return f"{stamp}|{seal['kid']}:{seal['sig']}"


def read_cursor(
    tags: Mapping[str, str], bot: str, model: str, keys: Keys, now: datetime
) -> tuple[str, str]:
    """(`since` for the forge, "") when the cursor holds; ("", why not) for a full read."""
    raw = tags.get(tag_key(bot))
    if not raw:
        return "", "no cursor yet"
    stamp, _, seal = raw.partition("|")
    kid, _, sig = seal.partition(":")
    problem = keys.check(_record(stamp, bot, model), kid, sig)
    if problem:
        return "", f"the cursor is not the bot's: {problem}"
    when = parse_iso(stamp)
    if when is None:
        return "", f"unreadable cursor {stamp[:40]!r}"
    if when > now + OVERLAP:
        return "", f"the cursor {stamp} is in the future"
    if now - when > MAX_AGE:
        return "", f"the cursor {stamp} is older than {MAX_AGE.days} days"
    return stamp, ""
