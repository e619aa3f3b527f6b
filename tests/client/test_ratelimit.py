"""The client-side request budget, on an injected clock (no real waiting)."""

from __future__ import annotations

import threading

import httpx
import pytest

from pipeline.compliance_api import ComplianceClient, RequestBudget, shared_budget
from tests.client.conftest import KEY, ok, scripted


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_budget_allows_rpm_then_waits_for_the_window():
    clock = FakeClock()
    budget = RequestBudget(600, clock=clock, sleep=clock.sleep)
    waits = [budget.acquire() for _ in range(600)]
    assert sum(waits) == 0
    assert budget.acquire() == pytest.approx(60.0)
    assert clock.now == pytest.approx(1060.0)


def test_no_60s_interval_ever_holds_more_than_rpm_starts():
    clock = FakeClock()
    budget = RequestBudget(50, clock=clock, sleep=clock.sleep)
    starts = []
    for i in range(400):
        budget.acquire()
        starts.append(clock.now)
        clock.now += 0.37 if i % 7 else 3.0  # irregular caller pace
    j = 0
    for i, t in enumerate(starts):
        while starts[j] <= t - 60 + 1e-9:  # (t - 60, t], with float round-off
            j += 1
        assert i - j + 1 <= 50
    assert sum(clock.sleeps) > 0  # the limit actually bit


def test_budget_is_shared_by_threads():
    # a frozen clock and a no-op sleep: every start time is a reservation, so lost updates would show
    budget = RequestBudget(10, clock=lambda: 0.0, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            w = budget.acquire()
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [0.0] * 10 + [60.0] * 10 + [120.0] * 10


def test_remaining_zero_pauses_until_reset():
    clock = FakeClock()
    wall = 1_800_000_000.0
    budget = RequestBudget(None, clock=clock, sleep=clock.sleep, wall_clock=lambda: wall)
    reset = "2027-01-15T08:00:05Z"  # 1_800_000_005 = wall + 5 s
    assert budget.observe_headers({"anthropic-ratelimit-requests-remaining": "3",
                                   "anthropic-ratelimit-requests-reset": reset}) == 0
    assert budget.acquire() == 0
    assert budget.observe_headers({"anthropic-ratelimit-requests-remaining": "0",
                                   "anthropic-ratelimit-requests-reset": reset}) == pytest.approx(5.0)
    assert budget.acquire() == pytest.approx(5.0)


def test_far_reset_is_capped():
    clock = FakeClock()
    budget = RequestBudget(None, clock=clock, sleep=clock.sleep, wall_clock=lambda: 0.0)
    pause = budget.observe_headers({"anthropic-ratelimit-requests-remaining": "0",
                                    "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z"})
    assert pause == pytest.approx(65.0)


def test_client_respects_the_budget_and_the_servers_remaining_header():
    clock = FakeClock()
    budget = RequestBudget(2, clock=clock, sleep=clock.sleep, wall_clock=lambda: 1_800_000_000.0)
    handler = scripted(ok(), ok(), ok(**{"anthropic-ratelimit-requests-remaining": "0",
                                         "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:30Z"}), ok())
    with ComplianceClient(KEY, "https://x.test", budget=budget, transport=httpx.MockTransport(handler)) as client:
        for _ in range(2):
            client.request("GET", "/v1/compliance/organizations")
        assert clock.sleeps == []
        client.request("GET", "/v1/compliance/organizations")  # third request: waits for the 60 s window
        assert clock.sleeps == [pytest.approx(60.0)]
        client.request("GET", "/v1/compliance/organizations")  # server said remaining 0, reset in 30 s
        assert clock.sleeps[1] == pytest.approx(30.0)
    assert handler.count == 4


def test_clients_share_a_process_budget_by_default():
    a = ComplianceClient(KEY, "https://x.test", requests_per_minute=123)
    b = ComplianceClient(KEY, "https://x.test", requests_per_minute=123)
    try:
        assert a.budget is b.budget is shared_budget(123)
        assert a.budget.requests_per_minute == 123
    finally:
        a.close()
        b.close()


def test_zero_means_unlimited():
    clock = FakeClock()
    budget = RequestBudget(0, clock=clock, sleep=clock.sleep)
    assert sum(budget.acquire() for _ in range(5000)) == 0
