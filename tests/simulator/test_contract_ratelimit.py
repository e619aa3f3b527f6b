"""Contract §8 / §12.5: one fixed-minute budget per parent org shared by all keys; headers; 429 + retry-after.

The fixture simulator allows 5 requests/minute. Its window opens at the first charged request, so the whole
sequence below runs inside one window (it takes well under a minute).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx

ACT = "/v1/compliance/activities"
FULL = "sk-ant-api01-sim-full"
ACTIVITIES = "sk-ant-api01-sim-activities"
USERDATA = "sk-ant-api01-sim-userdata"
ADMIN = "sk-ant-admin01-sim-admin"

MESSAGE = ("Compliance API rate limit of 5 requests per minute per parent organization has been exceeded. Retry "
           "after the time indicated by the retry-after header. Quote the request-id response header when "
           "contacting Anthropic support.")


def test_budget_headers_and_429(sim_ratelimit, check_error):
    with httpx.Client(base_url=sim_ratelimit.base_url, timeout=30) as c:
        # 401s are rejected before the limiter and cost nothing
        for _ in range(7):
            check_error(c.get(ACT, headers={"x-api-key": "sk-ant-api01-wrong"}), 401, "authentication_error")

        # a valid key without the scope costs one unit
        r = c.get(ACT, headers={"x-api-key": USERDATA})
        check_error(r, 403, "permission_error")
        assert r.headers["anthropic-ratelimit-requests-remaining"] == "4"

        # successes with different keys draw on the same budget
        seen_resets = set()
        for expected_remaining, key in zip((3, 2, 1, 0), (FULL, ACTIVITIES, ADMIN, FULL)):
            r = c.get(ACT, params={"limit": 1}, headers={"x-api-key": key})
            assert r.status_code == 200
            assert r.headers["anthropic-ratelimit-requests-limit"] == "5"
            assert r.headers["anthropic-ratelimit-requests-remaining"] == str(expected_remaining)
            reset = datetime.fromisoformat(r.headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00"))
            now = datetime.now(timezone.utc)
            assert now - timedelta(seconds=5) < reset <= now + timedelta(seconds=61)
            seen_resets.add(reset)
        assert len(seen_resets) == 1  # fixed window: one reset instant

        # budget exhausted
        r = c.get(ACT, params={"limit": 1}, headers={"x-api-key": FULL})
        check_error(r, 429, "rate_limit_error", MESSAGE)
        retry_after = int(r.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert "anthropic-ratelimit-requests-remaining" not in r.headers

        # other endpoints and keys share the budget; auth still comes first
        check_error(c.get("/v1/compliance/organizations", headers={"x-api-key": FULL}), 429, "rate_limit_error")
        check_error(c.get(ACT, headers={"x-api-key": ADMIN}), 429, "rate_limit_error")
        check_error(c.get(ACT), 401, "authentication_error")

        # admin endpoints are never limited
        assert c.get("/_sim/health").status_code == 200
        stats = c.get("/_sim/stats").json()
        assert stats["rate_limited"] == 3
        assert stats["by_endpoint"]["activities"]["429"] == 2
        assert stats["by_endpoint"]["activities"]["401"] == 8
