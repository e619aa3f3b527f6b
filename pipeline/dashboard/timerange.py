"""Time ranges of the global filter and the staleness rule (pure, unit-tested)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

RANGES = {"Last hour": timedelta(hours=1), "Last 24 hours": timedelta(hours=24), "Last 7 days": timedelta(days=7),
          "All time": None, "Custom": None}
RANGE_KEYS = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "all": "All time", "custom": "Custom"}
DEFAULT_RANGE = "7d"
STALE_AFTER = timedelta(minutes=15)


def resolve_range(key: str, anchor: datetime | None, custom: tuple[date, date] | None = None
                  ) -> tuple[datetime | None, datetime | None]:
    """[start, end) in UTC. Relative ranges end at `anchor`, the end of the newest window the file holds (in a
    running pipeline: about now), so a file that stopped updating still shows its last hour/day/week, under the
    stale banner, rather than nothing. Custom: whole UTC days, both inclusive."""
    label = RANGE_KEYS[key]
    if label == "Custom":
        if not custom:
            return None, None
        first, last = sorted(custom)
        return (datetime.combine(first, time(), timezone.utc),
                datetime.combine(last + timedelta(days=1), time(), timezone.utc))
    span = RANGES[label]
    if span is None or anchor is None:
        return None, None
    return anchor - span, None


def is_stale(published_at: datetime | None, now: datetime) -> bool:
    """No publish for more than 15 minutes (or never)."""
    return published_at is None or now - published_at > STALE_AFTER
