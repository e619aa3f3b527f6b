"""The endpoints of the Compliance API: activity feed, chats and their messages, organizations and their users.

Usage::

    with ComplianceClient.from_env() as client:
        pages = client.iter_activity_pages(gte, lt)       # half-open [gte, lt), page by page, memory bounded
        for page in pages:
            store(page.body)                               # or page.records
        attest(pages.summary)                              # TraversalSummary: pages, records, cursors, request id

Each method builds and checks its parameters, then leaves the call to the transport (transport.py) and the walk of
cursor pages to the iterators (pages.py).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from pipeline.compliance_api.errors import InvalidResponseError, NotFoundError, PaginationError
from pipeline.compliance_api.pages import ActivityPage, ActivityPageIterator, ChatPageIterator, TraversalSummary
from pipeline.compliance_api.transport import ComplianceTransport

logger = logging.getLogger("pipeline.compliance_api")

ACTIVITIES_PATH = "/v1/compliance/activities"
CHATS_PATH = "/v1/compliance/apps/chats"
ORGANIZATIONS_PATH = "/v1/compliance/organizations"

ACTIVITY_LIMIT_MAX = 5000
CHAT_LIMIT_MAX = 1000
DIRECTORY_LIMIT_MAX = 1000


def format_timestamp(value: datetime | str, name: str = "timestamp") -> str:
    """RFC 3339 in UTC with `Z` (microseconds only when non-zero). Naive datetimes are refused: ambiguous."""
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} is not an RFC 3339 date-time: {value!r}") from None
        if "T" not in value.upper() and " " not in value.strip():
            raise ValueError(f"{name} needs a date, a time and a zone: {value!r}")
    elif isinstance(value, datetime):
        dt = value
    else:
        raise TypeError(f"{name} must be a datetime or an RFC 3339 string, not {type(value).__name__}")
    if dt.tzinfo is None:
        raise ValueError(f"{name} has no time zone (use an aware datetime, e.g. tzinfo=timezone.utc): {value!r}")
    dt = dt.astimezone(timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if dt.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return dt.strftime(fmt)


def _list_params(name: str, values: Iterable[str] | str | None) -> list[tuple[str, str]]:
    if values is None:
        return []
    if isinstance(values, str):  # a bare string would otherwise be split into characters
        values = [values]
    return [(f"{name}[]", str(v)) for v in values]



class ComplianceClient(ComplianceTransport):
    """Client of the Compliance API. Thread-safe for concurrent calls; use as a context manager or call `close()`."""

    # -- activity feed ----------------------------------------------------------------------------------------------

    def iter_activity_pages(self, gte: datetime | str, lt: datetime | str, *,
                            activity_types: Iterable[str] | None = None,
                            exclude_activity_types: Iterable[str] | None = None,
                            organization_ids: Iterable[str] | None = None, actor_ids: Iterable[str] | None = None,
                            limit: int = ACTIVITY_LIMIT_MAX, after_id: str | None = None,
                            parse_records: bool = True) -> "ActivityPageIterator":
        """Pages of the half-open window [gte, lt) (default newest-first order; `order` is never sent), following
        `after_id=<last_id>` until `has_more` is false. Returns an iterator whose `.summary` is the TraversalSummary.
        `after_id` resumes a traversal from a saved cursor. `parse_records=False` leaves the records as the bytes of
        each page's `data` array (`Page.data_json`) for a loader that parses them itself (and deduplicates)."""
        gte_s, lt_s = format_timestamp(gte, "gte"), format_timestamp(lt, "lt")
        if _as_dt(gte) >= _as_dt(lt):
            raise ValueError(f"empty window: gte {gte_s} must be before lt {lt_s}")
        if activity_types is not None and exclude_activity_types is not None:
            raise ValueError("activity_types and exclude_activity_types cannot be combined (contract §3)")
        if not 1 <= int(limit) <= ACTIVITY_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {ACTIVITY_LIMIT_MAX}")
        params = [("created_at.gte", gte_s), ("created_at.lt", lt_s)]
        params += _list_params("activity_types", activity_types)
        params += _list_params("exclude_activity_types", exclude_activity_types)
        params += _list_params("organization_ids", organization_ids)
        params += _list_params("actor_ids", actor_ids)
        params.append(("limit", str(int(limit))))
        return ActivityPageIterator(self, ACTIVITIES_PATH, params, start_cursor=after_id, gte=gte_s, lt=lt_s,
                                    parse_records=parse_records)

    def traverse_activities(self, gte: datetime | str, lt: datetime | str, *,
                            on_page: Callable[[ActivityPage], None] | None = None, **filters: Any) -> TraversalSummary:
        """Walk the whole window, calling `on_page` for each page; return the completeness summary."""
        pages = self.iter_activity_pages(gte, lt, **filters)
        for page in pages:
            if on_page is not None:
                on_page(page)
        return pages.summary

    # -- chats ------------------------------------------------------------------------------------------------------

    def iter_chat_pages(self, updated_gte: datetime | str, updated_lt: datetime | str | None = None, *,
                        organization_ids: Iterable[str] | None = None, limit: int = CHAT_LIMIT_MAX,
                        after_id: str | None = None) -> "ChatPageIterator":
        """Org-wide chat metadata ordered by `updated_at` ascending over [updated_gte, updated_lt), walking forward with
        `after_id`. Never sends `user_ids[]` (not allowed with `updated_at` filters). A chat modified during the walk
        can reappear later with a newer `updated_at`: upsert by id (only exact repeats are dropped)."""
        params = [("order_by", "updated_at"), ("updated_at.gte", format_timestamp(updated_gte, "updated_gte"))]
        if updated_lt is not None:
            params.append(("updated_at.lt", format_timestamp(updated_lt, "updated_lt")))
        params += _list_params("organization_ids", organization_ids)
        if not 1 <= int(limit) <= CHAT_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {CHAT_LIMIT_MAX}")
        params.append(("limit", str(int(limit))))
        return ChatPageIterator(self, CHATS_PATH, params, start_cursor=after_id, gte=params[1][1],
                                lt=format_timestamp(updated_lt, "updated_lt") if updated_lt is not None else None)

    def get_chat_messages(self, chat_id: str, *, limit: int | None = None, tool_result_max_chars: int | None = None,
                          tool_use_input_max_chars: int | None = None) -> dict[str, Any]:
        """The chat object with all its messages in `chat_messages` (oldest first). Without `limit` the API returns
        the whole chat at once; whenever `has_more` is true, pages are followed with `after_id` and merged."""
        path = f"{CHATS_PATH}/{_quote(chat_id)}/messages"
        base: list[tuple[str, str]] = []
        if limit is not None:
            if not 1 <= int(limit) <= CHAT_LIMIT_MAX:
                raise ValueError(f"limit must be between 1 and {CHAT_LIMIT_MAX}")
            base.append(("limit", str(int(limit))))
        if tool_result_max_chars is not None:
            base.append(("tool_result_max_chars", str(int(tool_result_max_chars))))
        if tool_use_input_max_chars is not None:
            base.append(("tool_use_input_max_chars", str(int(tool_use_input_max_chars))))
        chat: dict[str, Any] | None = None
        messages: list[Any] = []
        seen: dict[str, Any] = {}
        cursor: str | None = None
        while True:
            params = base + ([("after_id", cursor)] if cursor else [])
            data = self.request("GET", path, params=params, validate=_validate_messages).data
            for msg in data.get("chat_messages") or []:
                mid = msg.get("id") if isinstance(msg, dict) else None
                if isinstance(mid, str):
                    if mid in seen:
                        if seen[mid] != msg:  # same id, other content: kept for the caller to quarantine
                            messages.append(msg)
                        continue
                    seen[mid] = msg
                messages.append(msg)
            if chat is None:
                chat = {k: v for k, v in data.items() if k != "chat_messages"}
            last_id = data.get("last_id")
            if not data.get("has_more"):  # also followed without `limit`: never return a chat cut short
                break
            if not last_id or last_id == cursor:
                raise PaginationError(f"messages of {chat_id}: has_more without a new last_id", method="GET",
                                      path=path)
            cursor = last_id
        assert chat is not None
        chat["chat_messages"] = messages
        chat["has_more"] = False
        if cursor is not None:  # several pages: the cursors describe the merged result
            chat["last_id"] = data.get("last_id")
        return chat

    def delete_chat(self, chat_id: str) -> dict[str, Any]:
        """Hard-delete a chat (irreversible; archive first). A 404 after an attempt that may have reached the server
        (timeout / dropped connection) means that attempt did the delete: reported as success."""
        path = f"{CHATS_PATH}/{_quote(chat_id)}"
        try:
            return self.request("DELETE", path).data
        except NotFoundError as exc:
            if not exc.after_ambiguous_attempt:
                raise
            logger.warning("DELETE %s: 404 after an interrupted attempt; the chat was already deleted (request_id=%s)",
                           path, exc.request_id)
            return {"id": chat_id, "type": "claude_chat_deleted"}

    # -- directory ---------------------------------------------------------------------------------------------------

    def _iter_page_token(self, path: str, params: list[tuple[str, str]]) -> Iterator[Any]:
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            page_params = params + ([("page", token)] if token else [])
            data = self.request("GET", path, params=page_params, validate=_validate_page_envelope).data
            yield from data["data"]
            next_page = data.get("next_page")
            if data.get("has_more") is False or not next_page:
                if data.get("has_more") is True:
                    raise PaginationError("has_more is true but next_page is missing", method="GET", path=path)
                return
            if next_page in seen_tokens:
                raise PaginationError(f"next_page token repeated ({next_page!r})", method="GET", path=path)
            seen_tokens.add(next_page)
            token = next_page

    def iter_organizations(self, limit: int = DIRECTORY_LIMIT_MAX) -> Iterator[dict[str, Any]]:
        """Every organization of the tenant (`{uuid, name, created_at}`), following `page`/`next_page`."""
        return self._iter_page_token(ORGANIZATIONS_PATH, [("limit", str(int(limit)))])

    def iter_organization_users(self, org_uuid: str, limit: int = DIRECTORY_LIMIT_MAX) -> Iterator[dict[str, Any]]:
        """Current members of one organization (scope read:compliance_user_data), following `page`/`next_page`."""
        if not 1 <= int(limit) <= DIRECTORY_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {DIRECTORY_LIMIT_MAX}")
        return self._iter_page_token(f"{ORGANIZATIONS_PATH}/{_quote(org_uuid)}/users", [("limit", str(int(limit)))])


def _quote(segment: str) -> str:
    if not isinstance(segment, str) or not segment:
        raise ValueError("an id must be a non-empty string")
    return urllib.parse.quote(segment, safe="")


def _as_dt(value: datetime | str) -> datetime:
    return datetime.fromisoformat(format_timestamp(value).replace("Z", "+00:00"))


def _validate_page_envelope(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InvalidResponseError("response has no `data` array")


def _validate_messages(data: Any) -> None:
    if not isinstance(data, dict):
        raise InvalidResponseError("expected a JSON object")
    if data.get("chat_messages") is not None and not isinstance(data.get("chat_messages"), list):
        raise InvalidResponseError("`chat_messages` is not an array")

