from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from bot.timestamps import ms_from_user_time, parse_iso, utc_now_iso

UTC_NOON = datetime(2025, 3, 8, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-08T12:00:00Z", UTC_NOON),  # GitHub
        ("2025-03-08T12:00:00.000Z", UTC_NOON),  # GitLab
        ("2025-03-08T14:00:00+02:00", UTC_NOON),
        ("2025-03-08T12:00:00", UTC_NOON),  # naive: UTC
        ("", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_iso(text: object, expected: datetime | None) -> None:
    assert parse_iso(text) == expected


def test_now_round_trips() -> None:
    stamp = utc_now_iso()
    assert stamp.endswith("Z") and parse_iso(stamp) is not None


NOW_MS = 1_770_000_000_000  # 2026-02-02T02:40:00Z
DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", 1_796_083_200_000),  # a date alone: its midnight, UTC
        ("2026-12-01T10:00+02:00", 1_796_112_000_000),
        ("now", NOW_MS),
        (" NOW ", NOW_MS),
        ("today", 1_769_990_400_000),  # 2026-02-02T00:00Z
        ("yesterday", 1_769_990_400_000 - DAY_MS),
        ("30m", NOW_MS - 30 * 60_000),
        ("2h", NOW_MS - 2 * 3_600_000),
        ("2h ago", NOW_MS - 2 * 3_600_000),
        ("1d", NOW_MS - DAY_MS),
        ("1w", NOW_MS - 7 * DAY_MS),
        ("0m", NOW_MS),
        # none of these is a time
        ("1y", None),
        ("-1d", None),
        ("d", None),
        ("last tuesday", None),
        ("", None),
        ("1000000d", None),  # too many digits
        ("999999w", None),  # before the epoch
        ("0001-01-01", None),
    ],
)
def test_a_time_on_the_command_line(text: str, expected: int | None) -> None:
    assert ms_from_user_time(text, now_ms=NOW_MS) == expected


def test_without_a_clock_given_now_is_now() -> None:
    before = round(time.time() * 1000)
    found = ms_from_user_time("now")
    assert found is not None and before <= found <= round(time.time() * 1000)
