"""Cursor traversal of the activity feed and chats, page-token directory listings, messages and deletes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from pipeline.compliance_api import ActivityPage, BadRequestError, NotFoundError, PaginationError
from tests.client.conftest import FakeFeed, error_body, make_activity, ok, scripted

GTE = datetime(2026, 1, 1, tzinfo=timezone.utc)
LT = GTE + timedelta(minutes=5)


def desc_activities(n: int) -> list[dict]:
    return [make_activity(i) for i in reversed(range(n))]


def test_traversal_follows_after_id_until_has_more_is_false(make_client):
    feed = FakeFeed(desc_activities(23))
    client = make_client(feed)
    pages = list(client.iter_activity_pages(GTE, LT, limit=10))
    assert [p.page_number for p in pages] == [1, 2, 3]
    assert [p.raw_count for p in pages] == [10, 10, 3]
    assert [p.has_more for p in pages] == [True, True, False]
    assert pages[0].cursor is None
    assert pages[1].cursor == pages[0].last_id and pages[2].cursor == pages[1].last_id
    ids = [r["id"] for p in pages for r in p.records]
    assert ids == [a["id"] for a in desc_activities(23)]
    assert all(isinstance(p, ActivityPage) for p in pages)
    assert [p.request_id for p in pages] == ["req_1", "req_2", "req_3"]


def test_query_parameters(make_client):
    feed = FakeFeed(desc_activities(3))
    client = make_client(feed)
    list(client.iter_activity_pages("2026-01-01T00:00:00+00:00", LT, activity_types=["a", "b"],
                                     organization_ids="org_1", actor_ids=["user_1"], limit=5000))
    params = feed.seen_params[0]
    assert params["created_at.gte"] == "2026-01-01T00:00:00Z"
    assert params["created_at.lt"] == "2026-01-01T00:05:00Z"
    assert params.get_list("activity_types[]") == ["a", "b"]
    assert params.get_list("organization_ids[]") == ["org_1"]
    assert params.get_list("actor_ids[]") == ["user_1"]
    assert params["limit"] == "5000"
    assert "order" not in params and "after_id" not in params and "before_id" not in params


def test_repeats_across_a_page_boundary_are_dropped_and_counted(make_client):
    feed = FakeFeed(desc_activities(25), repeat=3)
    pages = make_client(feed).iter_activity_pages(GTE, LT, limit=10)
    collected = list(pages)
    ids = [r["id"] for p in collected for r in p.records]
    assert len(ids) == len(set(ids)) == 25
    assert [p.duplicates_dropped for p in collected] == [0, 3, 3]
    assert [p.raw_count for p in collected] == [10, 13, 8]
    s = pages.summary
    assert (s.pages, s.records, s.raw_records, s.duplicates_dropped, s.complete) == (3, 25, 31, 6, True)
    assert s.first_cursor == collected[0].first_id and s.last_cursor == collected[-1].last_id
    assert s.final_request_id == "req_3" and s.gte == "2026-01-01T00:00:00Z" and s.start_cursor is None


def test_repeat_within_a_page_is_dropped(make_client):
    items = desc_activities(4)
    items.insert(2, dict(items[1]))
    page = next(iter(make_client(FakeFeed(items)).iter_activity_pages(GTE, LT)))
    assert [r["id"] for r in page.records] == [a["id"] for a in desc_activities(4)]
    assert page.duplicates_dropped == 1 and page.raw_count == 5


def test_malformed_items_are_kept_as_they_are(make_client):
    items = desc_activities(3)
    items[1:1] = ["not an object", {"type": "no_id"}, 42, {"id": None}]
    feed = FakeFeed(items)
    pages = make_client(feed).iter_activity_pages(GTE, LT)
    page = next(pages)
    assert page.records == items
    assert page.malformed == 4 and page.duplicates_dropped == 0
    assert pages.summary.malformed == 4 and pages.summary.records == 7


def test_a_repeated_malformed_item_is_dropped_by_its_content(make_client):
    """At-least-once delivery repeats the cursor record; one without an id is recognised by its exact content."""
    items = desc_activities(3)
    items[1:1] = [{"type": "no_id", "n": 1}, {"n": 1, "type": "no_id"}, {"type": "no_id", "n": 2}]
    page = next(iter(make_client(FakeFeed(items)).iter_activity_pages(GTE, LT)))
    assert page.records == [items[0], items[1], items[3], items[4], items[5]]
    assert page.malformed == 2 and page.duplicates_dropped == 1


def test_body_is_the_raw_response(make_client):
    feed = FakeFeed(desc_activities(2))
    page = next(iter(make_client(feed).iter_activity_pages(GTE, LT)))
    assert json.loads(page.body)["data"] == desc_activities(2)


def test_traverse_activities_returns_the_summary(make_client):
    seen = []
    summary = make_client(FakeFeed(desc_activities(12), repeat=1)).traverse_activities(
        GTE, LT, limit=5, on_page=seen.append)
    assert summary.pages == 3 == len(seen)
    assert summary.records == 12 and summary.duplicates == 2
    assert summary.started_at is not None and summary.finished_at >= summary.started_at


def test_empty_window(make_client):
    pages = make_client(FakeFeed([])).iter_activity_pages(GTE, LT)
    collected = list(pages)
    assert len(collected) == 1 and collected[0].records == [] and collected[0].last_id is None
    assert pages.summary.complete and pages.summary.last_cursor is None


def test_failed_call_does_not_advance_the_cursor_and_can_be_resumed(make_client):
    feed = FakeFeed(desc_activities(20))
    fail = {"on": False}

    def handler(request):
        if fail["on"]:
            return httpx.Response(400, json=error_body("invalid_request_error", "boom"))
        return feed(request)

    pages = make_client(handler).iter_activity_pages(GTE, LT, limit=10)
    first = next(pages)
    fail["on"] = True
    with pytest.raises(BadRequestError):
        next(pages)
    assert pages.cursor == first.last_id and pages.summary.pages == 1
    fail["on"] = False
    second = next(pages)
    assert second.cursor == first.last_id and second.page_number == 2
    with pytest.raises(StopIteration):
        next(pages)


def test_resume_from_saved_cursor(make_client):
    items = desc_activities(10)
    pages = list(make_client(FakeFeed(items)).iter_activity_pages(GTE, LT, after_id=items[3]["id"]))
    assert [r["id"] for r in pages[0].records] == [a["id"] for a in items[4:]]
    assert pages[0].cursor == items[3]["id"]


def test_has_more_without_last_id_is_a_pagination_error(make_client):
    handler = scripted(ok({"data": [], "has_more": True, "first_id": None, "last_id": None}))
    with pytest.raises(PaginationError):
        next(iter(make_client(handler).iter_activity_pages(GTE, LT)))


def test_wrong_envelope_is_retried(make_client):
    handler = scripted(ok({"unexpected": 1}), ok({"data": [], "has_more": False}))
    assert next(iter(make_client(handler).iter_activity_pages(GTE, LT))).records == []
    assert handler.count == 2


@pytest.mark.parametrize("kwargs,exc", [
    (dict(gte=datetime(2026, 1, 1), lt=LT), ValueError),                       # naive datetime
    (dict(gte="2026-01-01", lt=LT), ValueError),                               # bare date
    (dict(gte=LT, lt=GTE), ValueError),                                        # empty window
    (dict(gte=GTE, lt=LT, activity_types=["a"], exclude_activity_types=["b"]), ValueError),
    (dict(gte=GTE, lt=LT, limit=5001), ValueError),
])
def test_invalid_arguments_rejected_before_any_request(make_client, kwargs, exc):
    handler = scripted(ok())
    with pytest.raises(exc):
        make_client(handler).iter_activity_pages(**kwargs)
    assert handler.count == 0


# -- chats -----------------------------------------------------------------------------------------------------------


def chat(i: int, updated: str = "2026-01-01T00:00:00Z") -> dict:
    return {"id": f"claude_chat_{i:04d}", "name": f"c{i}", "updated_at": updated, "created_at": updated,
            "deleted_at": None}


def test_chat_pages_org_wide_by_updated_at(make_client):
    feed = FakeFeed([chat(i) for i in range(7)], repeat=1)
    client = make_client(feed)
    pages = client.iter_chat_pages(GTE, LT, organization_ids=["org_1"], limit=3)
    ids = [c["id"] for p in pages for c in p.records]
    assert ids == [f"claude_chat_{i:04d}" for i in range(7)]
    assert pages.summary.duplicates_dropped == 2
    first = feed.seen_params[0]
    assert first["order_by"] == "updated_at"
    assert first["updated_at.gte"] == "2026-01-01T00:00:00Z" and first["updated_at.lt"] == "2026-01-01T00:05:00Z"
    assert first.get_list("organization_ids[]") == ["org_1"] and first["limit"] == "3"
    assert all("user_ids[]" not in p and "created_at.gte" not in p for p in feed.seen_params)
    assert feed.seen_params[1]["after_id"] == "claude_chat_0002"


def test_chat_updated_during_walk_is_kept(make_client):
    # same id, newer updated_at after the boundary: a real update, not a repeat
    items = [chat(0), chat(1), chat(0, "2026-01-01T00:03:00Z")]
    page = next(iter(make_client(FakeFeed(items, key=lambda c: c["id"] + c["updated_at"])).iter_chat_pages(GTE)))
    assert len(page.records) == 3 and page.duplicates_dropped == 0


def test_get_chat_messages_whole_chat_in_one_call(make_client):
    body = {**chat(1), "chat_messages": [{"id": "m1"}, {"id": "m2"}], "has_more": False, "first_id": "m1",
            "last_id": "m2"}
    handler = scripted(ok(body))
    result = make_client(handler).get_chat_messages("claude_chat_0001", tool_result_max_chars=-1)
    assert [m["id"] for m in result["chat_messages"]] == ["m1", "m2"] and result["name"] == "c1"
    req = handler.requests[0]
    assert req.url.path == "/v1/compliance/apps/chats/claude_chat_0001/messages"
    assert "limit" not in req.url.params and req.url.params["tool_result_max_chars"] == "-1"


def test_get_chat_messages_follows_after_id_when_limited(make_client):
    msgs = [{"id": f"m{i}"} for i in range(5)]

    def handler(request):
        after = request.url.params.get("after_id")
        start = 0 if after is None else int(after[1:]) + 1
        part = msgs[start:start + 2]
        return ok({**chat(1), "chat_messages": part, "has_more": start + 2 < len(msgs), "first_id": part[0]["id"],
                   "last_id": part[-1]["id"]})

    rec = scripted(handler)
    result = make_client(rec).get_chat_messages("claude_chat_0001", limit=2)
    assert [m["id"] for m in result["chat_messages"]] == ["m0", "m1", "m2", "m3", "m4"]
    assert rec.count == 3 and result["has_more"] is False
    assert [r.url.params.get("after_id") for r in rec.requests] == [None, "m1", "m3"]


def test_delete_chat(make_client):
    handler = scripted(ok({"id": "claude_chat_1", "type": "claude_chat_deleted"}))
    assert make_client(handler).delete_chat("claude_chat_1")["type"] == "claude_chat_deleted"
    assert handler.requests[0].method == "DELETE"
    assert handler.requests[0].url.path == "/v1/compliance/apps/chats/claude_chat_1"


def test_delete_of_missing_chat_raises_not_found(make_client):
    handler = scripted(httpx.Response(404, json=error_body("not_found_error", "Chat claude_chat_1 not found.")))
    with pytest.raises(NotFoundError):
        make_client(handler).delete_chat("claude_chat_1")
    assert handler.count == 1


def test_delete_404_after_interrupted_attempt_counts_as_done(make_client):
    handler = scripted(httpx.ReadTimeout("timed out"),
                       httpx.Response(404, json=error_body("not_found_error", "Chat claude_chat_1 not found.")))
    assert make_client(handler).delete_chat("claude_chat_1") == {"id": "claude_chat_1", "type": "claude_chat_deleted"}
    assert handler.count == 2


def test_ids_are_path_escaped(make_client):
    handler = scripted(ok({"id": "x", "type": "claude_chat_deleted"}))
    make_client(handler).delete_chat("../../organizations")
    assert handler.requests[0].url.raw_path.startswith(b"/v1/compliance/apps/chats/..%2F..%2Forganizations")


# -- page-token listings ---------------------------------------------------------------------------------------------


def test_organizations_and_users_follow_next_page(make_client):
    def handler(request):
        page = request.url.params.get("page")
        if request.url.path.endswith("/users"):
            if page is None:
                return ok({"data": [{"id": "user_1"}], "has_more": True, "next_page": "page_2"})
            return ok({"data": [{"id": "user_2"}], "has_more": False, "next_page": None})
        return ok({"data": [{"uuid": "u1"}, {"uuid": "u2"}], "has_more": False, "next_page": None})

    rec = scripted(handler)
    client = make_client(rec)
    assert [o["uuid"] for o in client.iter_organizations()] == ["u1", "u2"]
    assert [u["id"] for u in client.iter_organization_users("u1", limit=1)] == ["user_1", "user_2"]
    user_requests = [r for r in rec.requests if r.url.path == "/v1/compliance/organizations/u1/users"]
    assert [r.url.params.get("page") for r in user_requests] == [None, "page_2"]
    assert all(r.url.params["limit"] == "1" for r in user_requests)


def test_repeated_page_token_is_a_pagination_error(make_client):
    handler = scripted(ok({"data": [{"uuid": "u1"}], "has_more": True, "next_page": "page_x"}))
    with pytest.raises(PaginationError):
        list(make_client(handler).iter_organizations())
