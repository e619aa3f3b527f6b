"""The client against the real simulator over loopback HTTP, with injected faults.

The main test walks every 5-minute window of a generated day through 429s (retry-after honoured), 5xx, truncated
bodies, dropped connections, slow answers (client timeout below the simulator's delay) and at-least-once repeats, and
checks the ids against the simulator's ground truth: each exactly once, nothing missing, nothing extra.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.compliance_api import (
    AuthenticationError,
    ComplianceClient,
    NotFoundError,
    PermissionDeniedError,
    RequestBudget,
    ServerError,
)
from simulator.process import SimulatorProcess

DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)
FULL_KEY = "sk-ant-api01-sim-full"
ACTIVITIES_KEY = "sk-ant-api01-sim-activities"
FAULTS = "429=5%,5xx=5%,truncated=1%,slow=1%,repeated=2%"
SLOW_SECONDS = 3.0   # simulator default for `slow` faults
CLIENT_TIMEOUT = 1.0  # below SLOW_SECONDS: a slow answer is a real client timeout
WORKERS = 6           # independent workers (each its own client and budget), so 1-second retry-afters overlap
PAGE_LIMIT = 10       # small pages: most windows take several cursor pages, so `repeated` faults have work to do


@pytest.fixture(scope="module")
def sim():
    args = ["--start", DAY.strftime("%Y-%m-%dT%H:%M:%SZ"), "--days", "1", "--volume", "4000", "--faults", FAULTS,
            "--fault-seed", "11", "--rate-limit", "0", "--malformed-rate", "0.005"]
    with SimulatorProcess(args) as proc:
        # frozen well after the day and its late arrivals (<= 15 min), so everything of the day is visible
        proc.set_clock((DAY + timedelta(days=1, minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        yield proc


def client(sim, key: str = FULL_KEY, **kw) -> ComplianceClient:
    kw.setdefault("max_retries", 10)
    return ComplianceClient(key, sim.base_url, timeout=CLIENT_TIMEOUT, backoff_initial=0.01, backoff_max=0.05,
                            budget=RequestBudget(None), **kw)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def walk_window(c: ComplianceClient, gte: datetime, lt: datetime):
    """All pages of one window. A 500 marked `x-should-retry: false` is not retried by the client; like an
    orchestrator retry, resume the same iterator, which still holds the cursor of the failed call."""
    pages = c.iter_activity_pages(gte, lt, limit=PAGE_LIMIT)
    out, resumed = [], 0
    while True:
        try:
            out.append(next(pages))
        except StopIteration:
            return out, pages.summary, resumed
        except ServerError as exc:
            assert not exc.retryable and resumed < 20
            resumed += 1


def test_every_window_of_a_faulty_day_matches_the_ground_truth(sim):
    sim.set_faults(FAULTS, reseed=True)
    before = sim.stats()["faults_injected"]
    windows: queue.Queue = queue.Queue()
    for i in range(288):
        windows.put(DAY + timedelta(minutes=5 * i))
    results: list[tuple[datetime, list, object, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker():
        try:
            with client(sim) as c:
                while True:
                    try:
                        gte = windows.get_nowait()
                    except queue.Empty:
                        return
                    pages, summary, resumed = walk_window(c, gte, gte + timedelta(minutes=5))
                    with lock:
                        results.append((gte, pages, summary, resumed))
        except BaseException as exc:  # surfaced below with its type and text
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 288

    truth = sim.ground_truth(iso(DAY), iso(DAY + timedelta(days=1)))
    expected = set(truth["activity_ids"])
    malformed_keys = {m["key"] for m in truth.get("malformed", [])}

    counts: Counter = Counter()
    for gte, pages, summary, _ in results:
        assert summary.complete and summary.pages == len(pages)
        assert summary.records == sum(len(p.records) for p in pages)
        for p in pages:
            for rec in p.records:
                if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                    counts[rec["id"]] += 1
    ids = set(counts) - malformed_keys
    assert not [i for i, n in counts.items() if n > 1], "an id was delivered more than once"
    assert ids == expected, f"missing {len(expected - ids)}, unexpected {len(ids - expected)}"
    # malformed records are handed over too (never dropped): those without a usable id are counted as malformed
    malformed = truth.get("malformed", [])
    assert malformed, "the day should contain deliberately malformed records"
    assert sum(s.records for _, _, s, _ in results) == len(expected) + len(malformed)
    no_id = sum(1 for m in malformed if m["reason"] in ("missing_id", "not_an_object"))
    assert sum(s.malformed for _, _, s, _ in results) == no_id

    after = sim.stats()["faults_injected"]
    injected = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    # every re-delivered record was recognised and dropped exactly once
    assert sum(s.duplicates_dropped for _, _, s, _ in results) == injected.get("repeated", 0)
    assert sum(s.pages for _, _, s, _ in results) > 288  # cursors were really followed
    assert injected.get("429", 0) > 0 and injected.get("slow", 0) > 0 and injected.get("truncated", 0) > 0


def test_directory_chats_and_delete_against_the_simulator(sim):
    sim.set_faults({})
    with client(sim) as c:
        orgs = list(c.iter_organizations())
        assert orgs and all("uuid" in o for o in orgs)
        users = list(c.iter_organization_users(orgs[0]["uuid"], limit=3))
        assert len({u["id"] for u in users}) == len(users) > 0

        truth = sim.ground_truth(iso(DAY), iso(DAY + timedelta(days=1)))
        expected_chats = {ch["id"] for ch in truth.get("chats", []) if not ch.get("hard_deleted")}
        pages = c.iter_chat_pages(DAY - timedelta(days=400), DAY + timedelta(days=2), limit=7)
        chats = [ch for p in pages for ch in p.records]
        assert {ch["id"] for ch in chats} >= expected_chats
        if not chats:
            pytest.skip("the generated tenant has no chats")
        target = chats[0]["id"]
        whole = c.get_chat_messages(target)
        paged = c.get_chat_messages(target, limit=1)
        assert [m["id"] for m in paged["chat_messages"]] == [m["id"] for m in whole["chat_messages"]]
        assert c.delete_chat(target)["type"] == "claude_chat_deleted"
        with pytest.raises(NotFoundError) as info:
            c.get_chat_messages(target)
        assert info.value.request_id and info.value.request_id.startswith("req_")


def test_scope_and_key_errors_against_the_simulator(sim):
    sim.set_faults({})
    with client(sim, ACTIVITIES_KEY) as c, pytest.raises(PermissionDeniedError) as info:
        list(c.iter_chat_pages(DAY))
    assert info.value.missing_scopes == ["read:compliance_user_data"]
    assert info.value.granted_scopes == ["read:compliance_activities"]
    with client(sim, "sk-ant-api01-not-a-real-key") as c, pytest.raises(AuthenticationError):
        list(c.iter_activity_pages(DAY, DAY + timedelta(minutes=5)))
