"""Bounded, delayed second chances above the client's own retries.

The client does not retry a 500 marked `x-should-retry: false` nor a call whose retries are exhausted: for one request
that is right. An ingestion run is many requests, though, and failing a whole day's run for one of them loses the
work done so far. These helpers resume a traversal from its last good cursor (or repeat one call) after a growing
pause, a bounded number of times, and re-raise when the failure persists: a persistent error still fails the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from pipeline.compliance_api.pages import Page
from pipeline.compliance_api.errors import RetriesExhaustedError, ServerError

logger = logging.getLogger("pipeline.compliance_api")
T = TypeVar("T")
SECOND_CHANCES = (ServerError, RetriesExhaustedError)


def resumable_pages(start: Callable[[str | None], Iterator[Page]], *, attempts: int = 3, delay: float = 2.0,
                    sleep: Callable[[float], None] = time.sleep) -> Iterator[Page]:
    """Pages of `start(after_id)`; after a persistent failure, wait and resume from the last page's `last_id`.

    A record repeated at the resume boundary is not dropped here: loads deduplicate on id.
    """
    cursor: str | None = None
    failures = 0
    while True:
        try:
            for page in start(cursor):
                yield page
                failures = 0
                if page.last_id is not None:
                    cursor = page.last_id
            return
        except SECOND_CHANCES as exc:
            failures += 1
            if failures > attempts:
                raise
            wait = delay * 2 ** (failures - 1)
            logger.warning("traversal interrupted (%s); resuming from the last cursor in %.1fs (%d/%d)",
                           exc, wait, failures, attempts)
            sleep(wait)


def with_second_chances(call: Callable[[], T], *, attempts: int = 3, delay: float = 2.0,
                        sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, repeated after a growing pause when it fails persistently, at most `attempts` more times."""
    for failure in range(attempts + 1):
        try:
            return call()
        except SECOND_CHANCES as exc:
            if failure == attempts:
                raise
            wait = delay * 2 ** failure
            logger.warning("call failed (%s); trying again in %.1fs (%d/%d)", exc, wait, failure + 1, attempts)
            sleep(wait)
    raise AssertionError("unreachable")
