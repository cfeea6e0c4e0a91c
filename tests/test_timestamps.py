from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.timestamps import parse_iso, utc_now_iso

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
