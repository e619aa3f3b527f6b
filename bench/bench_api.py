"""Simulator and client throughput over one generated day (default 1M activities), limit=5000.

cold:   first traversal (the simulator generates the day's hour buckets on demand)
served: raw HTTP traversal (httpx + orjson for the cursor), i.e. what the simulator serves
client: the project's ComplianceClient (retries, budget, validation, page-boundary dedupe)
"""

from __future__ import annotations

import os
import time

import httpx
import orjson

from bench.common import FULL_KEY, report
from pipeline.compliance_api import ComplianceClient
from simulator.process import SimulatorProcess

DAY = ("2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z")  # a Tuesday: full working-day volume
VOLUME = int(os.environ.get("BENCH_VOLUME", "1000000"))


def raw_traversal(base_url: str) -> tuple[int, float]:
    """What the simulator serves: only the envelope's tail is parsed (the simulator writes `has_more`, `first_id` and
    `last_id` after `data`), so the figure is not the client's JSON parsing."""
    params = {"created_at.gte": DAY[0], "created_at.lt": DAY[1], "limit": "5000"}
    count = 0
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers={"x-api-key": FULL_KEY}, timeout=60) as http:
        while True:
            content = http.get("/v1/compliance/activities", params=params).content
            tail = orjson.loads(b"{" + content[content.rindex(b'"has_more":'):])
            count += content.count(b'{"id":"activity_')
            if not tail["has_more"]:
                break
            params["after_id"] = tail["last_id"]
    return count, time.perf_counter() - started


def client_traversal(base_url: str) -> tuple[int, float]:
    started = time.perf_counter()
    with ComplianceClient(api_key=FULL_KEY, base_url=base_url, requests_per_minute=100_000) as client:
        count = sum(len(page.records) for page in client.iter_activity_pages(*DAY))
    return count, time.perf_counter() - started


def main() -> None:
    args = ["--start", DAY[0], "--days", "1", "--volume", str(VOLUME), "--rate-limit", "0", "--chats-per-day", "0"]
    with SimulatorProcess(args, startup_timeout=300) as sim:
        cold_n, cold_s = raw_traversal(sim.base_url)
        served_n, served_s = raw_traversal(sim.base_url)
        client_n, client_s = client_traversal(sim.base_url)
    report("api_throughput", [
        ("activities in the day", served_n),
        ("cold traversal (generation + serving) s", cold_s),
        ("cold activities/s", cold_n / cold_s),
        ("simulator served activities/s (warm)", served_n / served_s),
        ("client traversal activities/s (warm)", client_n / client_s),
        ("client traversal s", client_s),
    ])


if __name__ == "__main__":
    main()
