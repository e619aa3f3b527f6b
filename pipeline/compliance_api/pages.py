"""Page models and the `after_id` cursor iterator (contract §3).

A failed call never advances a cursor: page iterators update their state only after a page was received whole, and
calling `next()` again after an error retries the same cursor. Records repeated from the previous page (at-least-once
delivery at the cursor) are dropped: by `id`, or by exact content for a record without a usable id.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import orjson

from pipeline.compliance_api.errors import PaginationError
from pipeline.compliance_api.hostile import RejectedRecord
from pipeline.compliance_api.transport import (
    APIResponse,
    ComplianceTransport,
    _validate_cursor_envelope,
    _validate_lazy_envelope,
    decode_envelope_lazily,
)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a cursor traversal.

    `records`: the parsed items of `data` in server order, minus ids repeated from the previous page (or earlier in
    this page). Items that are not objects or have no string `id` are kept as they are (the caller quarantines them).
    `body`: the raw response bytes, exactly as received (so including any repeated items; dedupe on `id` if you parse
    it yourself). `cursor`: the `after_id` sent for this page (None on a first page).

    Pages of a traversal started with `parse_records=False` carry `records=None`, `raw_count=None` and `data_json`:
    the bytes of the `data` array as received (repeats included, nothing parsed in Python). The caller deduplicates.
    """

    records: list[Any] | None
    raw_count: int | None
    duplicates_dropped: int
    first_id: str | None
    last_id: str | None
    has_more: bool
    request_id: str | None
    cursor: str | None
    page_number: int
    body: bytes = field(repr=False)
    malformed: int = 0  # items without a usable id (not deduplicated, still in `records`)
    data_json: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ActivityPage(Page):
    pass


@dataclass(frozen=True, slots=True)
class ChatPage(Page):
    pass


@dataclass(frozen=True, slots=True)
class TraversalSummary:
    """Completeness attestation of a traversal (contract §3 pattern 4).

    `start_cursor`: the `after_id` the traversal began from (None = from the window edge). `first_cursor`: `first_id`
    of the first page. `last_cursor`: the terminal `last_id` (last non-null one). `final_request_id`: `request-id` of
    the last page. `records` counts records yielded (after dedupe, malformed items included). `complete` is True once
    a page with `has_more: false` was received.
    """

    gte: str | None
    lt: str | None
    pages: int = 0
    records: int = 0
    raw_records: int = 0
    duplicates_dropped: int = 0
    malformed: int = 0
    start_cursor: str | None = None
    first_cursor: str | None = None
    last_cursor: str | None = None
    final_request_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    complete: bool = False

    @property
    def duplicates(self) -> int:
        return self.duplicates_dropped



def _content_key(item: Any) -> tuple[str, bytes]:
    """Dedup key of an id-less record: its exact bytes (a rejected one) or its canonical JSON."""
    if isinstance(item, RejectedRecord):
        return ("raw", item.raw)
    try:
        return ("json", orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    except (TypeError, orjson.JSONEncodeError):  # not re-encodable: compare its repr
        return ("repr", repr(item).encode())


class _CursorPageIterator:
    """Iterator over `after_id` pages. State changes only after a page arrived whole, so after an exception the
    traversal can be continued (`next()` again) from the same cursor; `cursor` is the resume point."""

    _page_cls: type[Page] = Page

    def __init__(self, client: ComplianceTransport, path: str, params: list[tuple[str, str]], *,
                 start_cursor: str | None, gte: str | None, lt: str | None, parse_records: bool = True) -> None:
        self._client = client
        self._parse_records = parse_records
        self._path = path
        self._params = params
        self.cursor = start_cursor
        self._done = False
        self._prev_keys: set[Any] = set()
        self._summary = TraversalSummary(gte=gte, lt=lt, start_cursor=start_cursor)

    @property
    def summary(self) -> TraversalSummary:
        return self._summary

    @property
    def done(self) -> bool:
        return self._done

    @staticmethod
    def _key(item: Any) -> Any:
        """Dedup key of an item, or None when it has no usable id (kept, counted as malformed)."""
        rid = item.get("id") if isinstance(item, dict) else None
        return rid if isinstance(rid, str) and rid else None

    def __iter__(self) -> "_CursorPageIterator":
        return self

    def __next__(self) -> Page:
        if self._done:
            raise StopIteration
        cursor = self.cursor
        params = self._params + ([("after_id", cursor)] if cursor else [])
        started = datetime.now(timezone.utc)
        if self._parse_records:
            resp = self._client.request("GET", self._path, params=params, validate=_validate_cursor_envelope)
        else:
            resp = self._client.request("GET", self._path, params=params, validate=_validate_lazy_envelope,
                                        decode=decode_envelope_lazily)
        data = resp.data
        has_more = bool(data.get("has_more", False))
        first_id, last_id = data.get("first_id"), data.get("last_id")
        if has_more and (not last_id or last_id == cursor):
            # Continuing would repeat this page forever (or stop early): refuse rather than loop or lose data.
            raise PaginationError(f"has_more is true but last_id is {last_id!r} (cursor {cursor!r})",
                                  request_id=resp.request_id, method="GET", path=self._path)
        if not self._parse_records:
            return self._unparsed_page(resp, data, cursor, has_more, first_id, last_id, started)
        items: list[Any] = data["data"]
        records: list[Any] = []
        keys: set[Any] = set()
        dropped = malformed = 0
        for item in items:
            key = self._key(item)
            # A record without a usable id is still handed over (counted as malformed), but an at-least-once
            # re-delivery of it (the cursor record repeated on the next page) is recognised by its exact content.
            dedup_key = key if key is not None else _content_key(item)
            if dedup_key in self._prev_keys or dedup_key in keys:
                dropped += 1
                continue
            keys.add(dedup_key)
            records.append(item)
            if key is None:
                malformed += 1
        s = self._summary
        number = s.pages + 1
        page = self._page_cls(records=records, raw_count=len(items), duplicates_dropped=dropped, first_id=first_id,
                              last_id=last_id, has_more=has_more, request_id=resp.request_id, cursor=cursor,
                              page_number=number, body=resp.body, malformed=malformed)
        # Commit the traversal state only now that the page is whole.
        self._prev_keys = keys  # bounded memory: only the previous page is remembered
        return self._commit(page, started, records=s.records + len(records), raw_records=s.raw_records + len(items),
                            duplicates_dropped=s.duplicates_dropped + dropped, malformed=s.malformed + malformed)

    def _commit(self, page: Page, started: datetime, **counts: int) -> Page:
        """Record a page that arrived whole in the summary (with the parsed page's `counts`), move the cursor past it
        (or end the traversal) and hand it over."""
        s, has_more, last_id = self._summary, page.has_more, page.last_id
        self._summary = replace(
            s, pages=page.page_number, first_cursor=page.first_id if page.page_number == 1 else s.first_cursor,
            last_cursor=last_id if last_id is not None else s.last_cursor, final_request_id=page.request_id,
            started_at=s.started_at or started, finished_at=datetime.now(timezone.utc), complete=not has_more,
            **counts)
        if has_more:
            self.cursor = last_id
        else:
            self._done = True
        return page

    def _unparsed_page(self, resp: APIResponse, data: dict, cursor: str | None, has_more: bool, first_id: Any,
                       last_id: Any, started: datetime) -> Page:
        data_json = data["data_json"]
        if data_json is None:  # an envelope of another layout was parsed anyway: hand its array over as bytes
            data_json = b"[" + b",".join(r.raw if isinstance(r, RejectedRecord) else orjson.dumps(r)
                                         for r in data["data"]) + b"]"
        number = self._summary.pages + 1
        page = self._page_cls(records=None, raw_count=None, duplicates_dropped=0, first_id=first_id, last_id=last_id,
                              has_more=has_more, request_id=resp.request_id, cursor=cursor, page_number=number,
                              body=resp.body, data_json=data_json)
        return self._commit(page, started)


class ActivityPageIterator(_CursorPageIterator):
    _page_cls = ActivityPage


class ChatPageIterator(_CursorPageIterator):
    _page_cls = ChatPage

    @staticmethod
    def _key(item: Any) -> Any:
        # A chat updated during the walk legitimately comes back with a newer updated_at: only exact repeats drop.
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item.get("id"):
            return None
        return (item["id"], item.get("updated_at"))
