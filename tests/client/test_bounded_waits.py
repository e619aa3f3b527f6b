"""Every server-given wait is validated and capped, and a 429 storm backs off (issue #12)."""

from __future__ import annotations

import math

import httpx
import pytest

from pipeline.compliance_api import RequestBudget
from pipeline.compliance_api.transport import MAX_SERVER_WAIT_SECONDS
from tests.client.conftest import FakeSleep, error_body, ok, scripted

PATH = "/v1/compliance/organizations"


def rate_limited(**headers: str) -> httpx.Response:
    return httpx.Response(429, json=error_body("rate_limit_error", "slow down", "req_1"), headers=headers)


@pytest.mark.parametrize("headers", [
    {"retry-after-ms": "1e300"}, {"retry-after-ms": "inf"}, {"retry-after-ms": "-5"}, {"retry-after-ms": "NaN"},
    {"retry-after": "inf"}, {"retry-after": "1e308"}, {"retry-after": "-1"}, {"retry-after": "nan"},
    {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"},
    {"anthropic-ratelimit-requests-remaining": "inf", "retry-after": "1"},
])
def test_server_given_waits_are_finite_and_capped(make_client, headers):
    budget_sleep, sleep = FakeSleep(), FakeSleep()
    handler = scripted(rate_limited(**headers), ok())
    client = make_client(handler, budget=RequestBudget(None, sleep=budget_sleep), sleep=sleep)
    assert client.request("GET", PATH).data == {"ok": True}
    waits = budget_sleep.calls + sleep.calls
    assert waits and all(math.isfinite(w) and 0 <= w <= MAX_SERVER_WAIT_SECONDS for w in waits)


def test_a_storm_of_retry_after_0_backs_off_exponentially(make_client):
    budget_sleep = FakeSleep()
    handler = scripted(*[rate_limited(**{"retry-after": "0"})] * 8, ok())
    client = make_client(handler, backoff_initial=1.0, backoff_max=60.0,
                         budget=RequestBudget(None, sleep=budget_sleep))
    client.request("GET", PATH)
    assert handler.count == 9
    floors = [min(60.0, 2.0 ** i) / 2 for i in range(8)]
    assert len(budget_sleep.calls) == 8
    # (the budget sleeps until the pause ends: a few microseconds of it already passed)
    assert all(wait >= floor * 0.99 for wait, floor in zip(budget_sleep.calls, floors)), budget_sleep.calls


# -- complete bodies with hostile records (issue #12) -------------------------------------------------------------


def body(raw: bytes) -> httpx.Response:
    return httpx.Response(200, content=raw, headers={"request-id": "req_b"})


def test_a_complete_body_with_hostile_records_is_not_retried_as_truncated(make_client):
    from pipeline.compliance_api.hostile import RejectedRecord

    raw = (b'{"data":[{"id":"c1","updated_at":"2026-11-01T00:00:00Z"},{"id":"c2","name":"\\ud800"},'
           b'{"id":"c3","name":"\xff"}],"has_more":false,"first_id":"c1","last_id":"c3"}')
    handler = scripted(body(raw), body(raw))
    page = next(iter(make_client(handler).iter_chat_pages("2026-11-01T00:00:00Z")))
    assert handler.count == 1  # the same bytes would come back: decoded record by record instead
    assert page.records[0]["id"] == "c1"
    assert [r.reason for r in page.records[1:]] == ["invalid_unicode_escape", "invalid_utf8"]
    assert all(isinstance(r, RejectedRecord) for r in page.records[1:])


def test_a_complete_body_undecodable_outside_its_records_fails_at_once(make_client):
    from pipeline.compliance_api import InvalidResponseError

    handler = scripted(body(b'{"id":"chat_1","name":"\xff","chat_messages":[]}'), ok())
    with pytest.raises(InvalidResponseError) as info:
        make_client(handler).get_chat_messages("chat_1")
    assert handler.count == 1 and not info.value.retryable


def test_a_message_repeated_with_other_content_is_kept_for_quarantine(make_client):
    page = {"id": "chat_1", "chat_messages": [{"id": "m1", "role": "user"}, {"id": "m1", "role": "user"},
                                              {"id": "m1", "role": "assistant"}], "has_more": False}
    messages = make_client(scripted(ok(page))).get_chat_messages("chat_1")["chat_messages"]
    assert messages == [{"id": "m1", "role": "user"}, {"id": "m1", "role": "assistant"}]
