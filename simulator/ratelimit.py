"""The tenant-wide request budget (one per minute window for every key), on the real wall clock."""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timezone

RATE_LIMIT_MESSAGE = ("Compliance API rate limit of {n} requests per minute per parent organization has been exceeded. "
                      "Retry after the time indicated by the retry-after header. Quote the request-id response header "
                      "when contacting Anthropic support.")


class RateLimiter:
    """Fixed one-minute window per parent organization (one tenant per simulator, so one budget).

    The window opens at the first request after the previous one expired (a fixed window, not sliding); that keeps
    tests deterministic while matching the contract's reset-timestamp semantics. Real (wall) time, not sim time."""

    WINDOW_S = 60.0

    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._window_start = -math.inf  # monotonic
        self._wall_start = 0.0
        self._count = 0
        self.rejected = 0

    def hit(self) -> tuple[bool, int, float, int]:
        """Charge one unit. Returns (allowed, remaining, reset_wall_epoch_s, retry_after_s)."""
        with self._lock:
            mono = time.monotonic()
            if mono - self._window_start >= self.WINDOW_S:
                self._window_start = mono
                self._wall_start = time.time()
                self._count = 0
            reset = self._wall_start + self.WINDOW_S
            retry_after = max(1, math.ceil(self._window_start + self.WINDOW_S - mono))
            if self._count >= self.limit:
                self.rejected += 1
                return False, 0, reset, retry_after
            self._count += 1
            return True, self.limit - self._count, reset, retry_after

    def snapshot(self) -> dict:
        return {"limit_per_minute": self.limit, "used_in_window": self._count, "rejected": self.rejected}


def iso_seconds(epoch_s: float) -> str:
    return datetime.fromtimestamp(math.ceil(epoch_s), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

