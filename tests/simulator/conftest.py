"""Fixtures for the simulator contract tests: real `python -m simulator serve` processes on free loopback ports.

Each fixture is one process with the configuration its tests need (tiny volume so pages and walks stay fast):
  sim            historical day, faults off, rate limit off, no access events: a stable, read-only feed
  sim_clock      clock frozen at mid-day, 20 % late arrivals (visibility / lag tests; tests move the clock)
  sim_mutable    for DELETE (hard deletes change the chat list)
  sim_ratelimit  rate limit 5/min
  sim_faults     fault injection (tests set the rates through POST /_sim/faults)
  sim_access     live mode with compliance_api_accessed emission on
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulator.process import SimulatorProcess

FULL = "sk-ant-api01-sim-full"
ACTIVITIES = "sk-ant-api01-sim-activities"
USERDATA = "sk-ant-api01-sim-userdata"
ORGDATA = "sk-ant-api01-sim-orgdata"
ADMIN = "sk-ant-admin01-sim-admin"

DAY = "2026-03-02"  # a Monday (full weekday volume)
START = f"{DAY}T00:00:00Z"
END = "2026-03-03T00:00:00Z"
MIDDAY = f"{DAY}T12:00:00Z"

BASE_ARGS = ["--start", START, "--days", "1", "--seed", "7", "--volume", "4000", "--chats-per-day", "120",
             "--faults", "", "--rate-limit", "0", "--no-emit-access-events"]


def _proc(extra: list[str]) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(BASE_ARGS + extra) as sim:
        yield sim


@pytest.fixture(scope="session")
def sim() -> Iterator[SimulatorProcess]:
    yield from _proc([])


@pytest.fixture(scope="module")
def sim_clock() -> Iterator[SimulatorProcess]:
    yield from _proc(["--frozen-now", MIDDAY, "--late-share", "0.2"])  # many late arrivals to observe


@pytest.fixture(scope="module")
def sim_mutable() -> Iterator[SimulatorProcess]:
    yield from _proc([])


@pytest.fixture(scope="module")
def sim_ratelimit() -> Iterator[SimulatorProcess]:
    yield from _proc(["--rate-limit", "5"])


@pytest.fixture(scope="module")
def sim_faults() -> Iterator[SimulatorProcess]:
    yield from _proc(["--fault-seed", "3", "--slow-seconds", "1.0", "--fault-retry-after", "1"])


@pytest.fixture(scope="module")
def sim_access() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(["--live-hours", "1", "--volume", "500", "--chats-per-day", "10", "--faults", "",
                           "--rate-limit", "0", "--emit-access-events", "--seed", "5"]) as s:
        yield s


def client_for(sim: SimulatorProcess, key: str | None = FULL, **kw) -> httpx.Client:
    headers = {"x-api-key": key} if key is not None else {}
    headers.update(kw.pop("headers", {}))
    return httpx.Client(base_url=sim.base_url, headers=headers, timeout=kw.pop("timeout", 30.0), **kw)


@pytest.fixture(scope="module")
def api(sim) -> Iterator[httpx.Client]:
    with client_for(sim) as c:
        yield c


# Helpers reach the test modules as fixtures (conftest is not importable as a module under every pytest import mode).

@pytest.fixture(scope="session")
def make_client():
    return client_for


@pytest.fixture(scope="session")
def check_error():
    return assert_error


@pytest.fixture(scope="session")
def walker():
    return walk


def assert_error(resp: httpx.Response, status: int, etype: str, message: str | None = None) -> dict:
    """The platform error shape: {"type": "error", "error": {"type", "message"}, "request_id"} + request-id header."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == etype
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"].startswith("req_")
    assert resp.headers["request-id"] == body["request_id"]
    if message is not None:
        assert body["error"]["message"] == message
    return body


def walk(client: httpx.Client, path: str, params: dict | list, *, direction: str = "after_id",
         start_cursor: str | None = None, max_pages: int = 10_000) -> tuple[list[dict], list[dict]]:
    """Follow a cursor (`after_id` <- last_id, or `before_id` <- first_id) until has_more is false.
    Returns (all items, the envelopes without data)."""
    items: list[dict] = []
    pages: list[dict] = []
    cursor = start_cursor
    base = list(params.items()) if isinstance(params, dict) else list(params)
    for _ in range(max_pages):
        q = base + ([(direction, cursor)] if cursor else [])
        r = client.get(path, params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        data = body.get("data", body.get("chat_messages"))
        items.extend(data)
        pages.append({k: v for k, v in body.items() if k not in ("data", "chat_messages")} | {"n": len(data)})
        if not body["has_more"]:
            return items, pages
        cursor = body["last_id"] if direction == "after_id" else body["first_id"]
        assert cursor is not None
    raise AssertionError("walk did not terminate")
