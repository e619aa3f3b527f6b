"""Simulator time: RFC 3339 parsing to epoch microseconds, and the clock (wall + offset, or frozen).

An activity is visible when indexed_us <= now_us of this clock. The rate limiter runs on the real wall clock instead.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_rfc3339_us(value: str) -> int | None:
    """RFC 3339 date-time (date AND time AND zone) -> epoch microseconds; None when invalid."""
    m = _RFC3339.fullmatch(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
    except ValueError:
        return None
    us = (dt - _EPOCH) // timedelta(microseconds=1)
    if frac:
        us += int((frac[1:] + "000000")[:6])
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            return None
        us -= sign * (hh * 3600 + mm * 60) * 1_000_000
    return us


def us_to_iso(us: int) -> str:
    dt = _EPOCH + timedelta(microseconds=us)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{dt.microsecond:06d}Z" if dt.microsecond else "Z")


def dt_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _wall_us() -> int:
    return time.time_ns() // 1000


class Clock:
    """Simulator clock: wall + offset, or frozen. Mutable at run time through POST /_sim/clock."""

    def __init__(self, offset_us: int = 0, frozen_us: int | None = None):
        self.offset_us = offset_us
        self.frozen_us = frozen_us

    @classmethod
    def of_config(cls, config: Any) -> "Clock":
        """The clock stored in a SimConfig (`frozen_now`, `clock_offset`), so data side and server share one clock."""
        return ConfigClock(config) if hasattr(config, "frozen_now") and hasattr(config, "clock_offset") else cls()

    def now_us(self) -> int:
        return self.frozen_us if self.frozen_us is not None else _wall_us() + self.offset_us

    def freeze(self, us: int) -> None:
        self.frozen_us = us

    def set_running(self, us: int) -> None:
        self.frozen_us = None
        self.offset_us = us - _wall_us()

    def advance(self, seconds: float) -> None:
        delta = int(round(seconds * 1_000_000))
        if self.frozen_us is not None:
            self.frozen_us += delta
        else:
            self.offset_us += delta

    def wall(self) -> None:
        self.frozen_us = None
        self.offset_us = 0

    def snapshot(self) -> dict:
        now = self.now_us()
        return {"now": us_to_iso(now), "now_us": now, "frozen": self.frozen_us is not None,
                "offset_seconds": self.offset_us / 1e6}


class ConfigClock(Clock):
    """Clock whose state lives in SimConfig.frozen_now / .clock_offset (datetime / timedelta)."""

    def __init__(self, config: Any):
        self.config = config

    @property
    def frozen_us(self) -> int | None:  # type: ignore[override]
        f = self.config.frozen_now
        return dt_to_us(f) if f is not None else None

    @frozen_us.setter
    def frozen_us(self, us: int | None) -> None:
        self.config.frozen_now = None if us is None else _EPOCH + timedelta(microseconds=us)

    @property
    def offset_us(self) -> int:  # type: ignore[override]
        return self.config.clock_offset // timedelta(microseconds=1)

    @offset_us.setter
    def offset_us(self, us: int) -> None:
        self.config.clock_offset = timedelta(microseconds=us)

