"""Fixtures of the preflight tests: a small simulator per module and an isolated environment per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.preflight import CheckResult
from simulator.process import SimulatorProcess

# A small historical day: the simulator starts in about two seconds and no request is rate limited or faulted.
SIM_ARGS = ["--start", "2026-03-02T00:00:00Z", "--days", "1", "--seed", "7", "--volume", "200", "--chats-per-day", "5",
            "--faults", "", "--rate-limit", "0", "--no-emit-access-events"]

FULL = "sk-ant-api01-sim-full"
ACTIVITIES = "sk-ant-api01-sim-activities"
USERDATA = "sk-ant-api01-sim-userdata"
ADMIN = "sk-ant-admin01-sim-admin"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(SIM_ARGS) as proc:
        yield proc


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Everything the preflight reads points into tmp_path (also the working directory, so no stray `.env` is
    loaded); no key, no GEOIP_CITY_DB. Returns the data directory (not created)."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    monkeypatch.setenv("COMPLIANCE_WAREHOUSE_PATH", str(data / "warehouse.duckdb"))
    monkeypatch.setenv("COMPLIANCE_SERVING_PATH", str(data / "marts.duckdb"))
    for name in ("ANTHROPIC_COMPLIANCE_ACCESS_KEY", "COMPLIANCE_API_BASE_URL", "GEOIP_CITY_DB"):
        monkeypatch.delenv(name, raising=False)
    return data


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}
