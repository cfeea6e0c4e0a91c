"""ISO 8601 timestamps as the forges, MLflow and the audit record write them, and the times a
person gives on the command line."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
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


_AGO = re.compile(r"(\d{1,6})\s*([mhdw])(?:\s+ago)?")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_DAYS_BACK = {"today": 0, "yesterday": 1}
TIME_FORMS = (
    "2026-03-03, 2026-03-03T14:00, 2026-03-03T14:00Z, now, today, yesterday, 30m, 2h, 1d, 1w"
)


def ms_from_user_time(value: str, now_ms: int | None = None) -> int | None:
    """A time given on the command line, in ms since the epoch; None when it is no time.

    ISO 8601 (a date alone is its midnight, a naive time is UTC); `now`; `today` and
    `yesterday`, that day's midnight in UTC; or a duration that long before now: `30m`, `2h`,
    `1d`, `1w` (`2h ago` too). Every time option of the command line reads its value here.
    """
    text = value.strip().lower()
    now = round(time.time() * 1000) if now_ms is None else now_ms
    if text == "now":
        return now
    if text in _DAYS_BACK:
        day = datetime.fromtimestamp(now / 1000, tz=timezone.utc).date()
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return round((midnight - timedelta(days=_DAYS_BACK[text])).timestamp() * 1000)
    ago = _AGO.fullmatch(text)
    if ago:
        at_ms = now - int(ago.group(1)) * _UNIT_MS[ago.group(2)]
    else:
        found = ms_from_iso(value)
        if found is None:
            return None
        at_ms = found
    # A time before the epoch is none the ledger can hold, and none a calendar prints back.
    return at_ms if at_ms >= 0 and iso_from_epoch(at_ms / 1000) else None
