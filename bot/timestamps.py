"""ISO 8601 timestamps as the forges, MLflow and the audit record write them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

_AUDIT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def parse_iso(value: Any) -> datetime | None:
    """An aware datetime (a naive one is taken as UTC), or None when `value` is no timestamp."""
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def utc_now_iso() -> str:
    """Now, to the second, with `Z`: the shape of the audit record's `at`."""
    return datetime.now(timezone.utc).strftime(_AUDIT_FORMAT)


def iso_from_epoch(seconds: float) -> str:
    """A Unix time in the audit record's shape; "" when it is no time a calendar has."""
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime(_AUDIT_FORMAT)
    except (OverflowError, OSError, ValueError):
        return ""


def iso_from_ms(at_ms: int) -> str:
    """Milliseconds since the epoch as `2026-03-03T14:00:00.123Z` (the audit ledger's times)."""
    stamp = datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at_ms % 1000:03d}Z"


def ms_from_iso(value: Any) -> int | None:
    """An ISO 8601 time (a date alone is its midnight, a naive time is UTC) in ms, or None."""
    when = parse_iso(value)
    return None if when is None else round(when.timestamp() * 1000)
