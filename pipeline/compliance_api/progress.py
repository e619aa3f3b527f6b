"""Progress of a long activity traversal (a backfill run): windows done, activities, rate, ETA.

The feed is served newest first, so the oldest `created_at` of the latest page tells how far back the traversal has
come; activities are assumed spread evenly over the range for the ETA. Pages may be unparsed bytes (the fast path),
so counts are read off the bytes with two cheap scans, never a JSON parse: figures are approximate ("~"), the exact
count is the load's.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator

WINDOW = timedelta(minutes=5)
_CREATED_AT = re.compile(rb'"created_at"\s*:\s*"([^"]+)"')


@dataclass
class Progress:
    start: datetime
    end: datetime
    reached: datetime          # oldest created_at seen so far (the traversal runs from `end` back to `start`)
    activities: int
    pages: int
    elapsed: float

    @property
    def fraction(self) -> float:
        span = (self.end - self.start).total_seconds()
        return min(max((self.end - self.reached).total_seconds() / span, 0.0), 1.0) if span > 0 else 1.0

    @property
    def windows_done(self) -> int:
        return int((self.end - max(self.reached, self.start)) / WINDOW)

    @property
    def windows(self) -> int:
        return int((self.end - self.start) / WINDOW)

    def describe(self) -> str:
        rate = self.activities / self.elapsed if self.elapsed > 0 else 0.0
        eta = self.elapsed * (1 - self.fraction) / self.fraction if self.fraction > 0 else None
        eta_text = "?" if eta is None else str(timedelta(seconds=round(eta)))
        return (f"fetched back to {self.reached:%Y-%m-%d %H:%M} UTC: {self.windows_done:,} of {self.windows:,} "
                f"windows ({self.fraction:.0%}), ~{self.activities:,} activities in {self.pages:,} pages, "
                f"{rate:,.0f}/s, ETA {eta_text}")


def page_facts(page) -> tuple[int, datetime | None]:
    """(activities in the page, oldest created_at in it) for a parsed or unparsed client Page."""
    if page.records is not None:
        stamps = [r.get("created_at") for r in page.records if isinstance(r, dict)]
        oldest = _parse(min((s for s in stamps if isinstance(s, str)), default=None))
        return len(page.records), oldest
    body = page.data_json or b""
    last = body.rfind(b'"created_at"')
    match = _CREATED_AT.match(body, last) if last >= 0 else None
    # bytes.count is a C scan (a regex over a day of pages cost ~2 CPU-s); the spaced form covers pretty-printed JSON
    count = body.count(b'"id":"activity_') or body.count(b'"id": "activity_')
    return count, _parse(match.group(1).decode() if match else None)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def with_progress(pages: Iterable, start: datetime, end: datetime, report: Callable[[Progress], None],
                  every_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic) -> Iterator:
    """Yield `pages` unchanged; call `report` at most every `every_seconds`, and once at the end."""
    began = last_report = clock()
    progress = Progress(start, end, reached=end, activities=0, pages=0, elapsed=0.0)
    for page in pages:
        count, oldest = page_facts(page)
        progress.activities += count
        progress.pages += 1
        if oldest is not None and oldest < progress.reached:
            progress.reached = max(oldest, start)
        yield page
        now = clock()
        if now - last_report >= every_seconds:
            progress.elapsed, last_report = now - began, now
            report(progress)
    progress.elapsed, progress.reached = clock() - began, start  # traversal complete: every window fetched
    report(progress)
