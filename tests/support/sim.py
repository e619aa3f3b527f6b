"""Admin calls to a running simulator (its /_sim/ endpoints) used by the pipeline tests."""

from __future__ import annotations

import httpx

FULL_KEY = "sk-ant-api01-sim-full"  # the simulator's built-in demo key (not a secret)


def ground_truth(base_url: str, gte: str, lt: str) -> dict:
    response = httpx.get(f"{base_url}/_sim/ground-truth", params={"gte": gte, "lt": lt}, timeout=300)
    response.raise_for_status()
    return response.json()


def set_clock(base_url: str, now: str) -> None:
    httpx.post(f"{base_url}/_sim/clock", json={"now": now}, timeout=10).raise_for_status()


def stats(base_url: str) -> dict:
    response = httpx.get(f"{base_url}/_sim/stats", timeout=10)
    response.raise_for_status()
    return response.json()
