"""Client-side request budget for the Compliance API.

The API allows **600 requests per minute per parent organization**, one budget shared by every key, endpoint and
worker (contract §8). A 429 costs a round trip and a wait, so each process paces itself below its share instead:

* `RequestBudget` is a sliding-window limiter: it never lets more than `requests_per_minute` requests start in any
  60-second interval (so also in any fixed minute window, which is what the server appears to use). Callers queue in
  FIFO order; it is thread-safe, so all threads of a process share one budget.
* By default every `ComplianceClient` in a process uses the same budget (`shared_budget(rpm)`), so "600/min" means
  per process, however many clients and threads the process creates.
* It also follows the server's view: when a response says `anthropic-ratelimit-requests-remaining: 0`, nobody in the
  process starts a request until `anthropic-ratelimit-requests-reset`; a 429's `retry-after` pauses the whole process
  the same way (`pause_for`).

Splitting the org-wide budget across processes: the limit is per parent organization, not per process or key, so the
sum over everything that calls the API for the tenant (pipeline workers, other tools, other keys) must stay below
600/min. Give each process a share with `COMPLIANCE_API_REQUESTS_PER_MINUTE`, e.g. two concurrent workers:
``COMPLIANCE_API_REQUESTS_PER_MINUTE=300`` each; three workers plus an ad-hoc tool: 180 each and keep 60 spare. Leave a
little headroom (network jitter can move a request into the next server minute); 429s are still handled (retry-after is
honoured), they just cost time. `0` disables client-side pacing (tests against a simulator with its limit off).
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

WINDOW_SECONDS = 60.0

REMAINING_HEADER = "anthropic-ratelimit-requests-remaining"
RESET_HEADER = "anthropic-ratelimit-requests-reset"


def _parse_rfc3339(value: str) -> float | None:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return dt.timestamp()


class RequestBudget:
    """At most `requests_per_minute` request starts in any 60 s interval, plus server-directed pauses.

    `clock` (monotonic seconds), `sleep` and `wall_clock` (epoch seconds, to read the reset header) are injectable so
    tests run instantly.
    """

    def __init__(self, requests_per_minute: int | None = 600, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, wall_clock: Callable[[], float] = time.time,
                 max_server_pause: float = WINDOW_SECONDS + 5.0) -> None:
        if requests_per_minute is not None and requests_per_minute < 0:
            raise ValueError("requests_per_minute must be >= 0 (0 or None = unlimited)")
        self.requests_per_minute = requests_per_minute or None
        self._clock = clock
        self._sleep = sleep
        self._wall = wall_clock
        # A reset far away (clock skew, a simulator with a shifted clock) must not stall a run: a minute window
        # resets within a minute.
        self._max_server_pause = max_server_pause
        self._lock = threading.Lock()
        self._starts: collections.deque[float] = collections.deque()  # sorted reserved start times, last 60 s
        self._pause_until = float("-inf")
        self.total_wait = 0.0  # seconds spent waiting in acquire(), for metrics

    def acquire(self) -> float:
        """Block until one more request may start; return the seconds waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._pause_until)
            if self._starts and self._starts[-1] > start:
                start = self._starts[-1]  # FIFO: never start before a request that reserved earlier
            if self.requests_per_minute is not None:
                starts = self._starts
                while starts and starts[0] <= start - WINDOW_SECONDS:
                    starts.popleft()
                while len(starts) >= self.requests_per_minute:
                    # Wait until the oldest start leaves the window (60 s after it began); popping it explicitly
                    # avoids float round-off keeping it in the window forever.
                    start = max(start, starts.popleft() + WINDOW_SECONDS)
                starts.append(start)
            wait = start - now
        if wait > 0:
            self._sleep(wait)
            with self._lock:
                self.total_wait += wait
            return wait
        return 0.0

    def pause_for(self, seconds: float) -> None:
        """No request starts in this process for `seconds` (e.g. a 429's retry-after)."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        with self._lock:
            self._pause_until = max(self._pause_until, self._clock() + seconds)

    def observe_headers(self, headers: Mapping[str, str]) -> float:
        """Honour `anthropic-ratelimit-requests-remaining: 0` until `...-reset`; return the pause set (seconds)."""
        remaining = headers.get(REMAINING_HEADER)
        if remaining is None:
            return 0.0
        try:
            if int(float(remaining)) > 0:
                return 0.0
        except (ValueError, OverflowError):  # "nan", "inf": not a count
            return 0.0
        reset = headers.get(RESET_HEADER)
        reset_at = _parse_rfc3339(reset) if reset else None
        if reset_at is None:
            return 0.0  # the server's 429 + retry-after will tell us if we go on
        pause = min(reset_at - self._wall(), self._max_server_pause)
        self.pause_for(pause)
        return max(pause, 0.0)


_shared: dict[int | None, RequestBudget] = {}
_shared_lock = threading.Lock()


def shared_budget(requests_per_minute: int | None) -> RequestBudget:
    """The process-wide budget for this rate (one per distinct rate), used by clients that are not given one."""
    key = requests_per_minute or None
    with _shared_lock:
        budget = _shared.get(key)
        if budget is None:
            budget = _shared[key] = RequestBudget(key)
        return budget


def _reset_after_fork() -> None:
    # A forked child has its own share of nothing: start with fresh budgets and an unheld lock.
    global _shared_lock
    _shared.clear()
    _shared_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
