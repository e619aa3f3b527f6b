"""A 30-day backfill launched the way the UI launches it, on a real Dagster deployment (`dagster dev`: webserver,
daemon, SQLite instance with the project's dagster.yaml). The run queue is held (max_concurrent_runs: 0) so the
test measures what the backfill daemon submits without waiting for 30 runs to execute; `bench/bench_backfill.py`
executes them and reports the wall time."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
import yaml

from pipeline.config import PROJECT_ROOT
from simulator.process import SimulatorProcess
from pipeline.demo.dagster_dev import DagsterDev
from tests.support.sim import FULL_KEY

FMT = "%Y-%m-%d-%H:%M"
EXPECTED = 30 * 288


def windows_of(runs: list[dict]) -> set[datetime]:
    """The 5-minute windows the runs' partition-range tags cover."""
    covered = set()
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        first = datetime.strptime(tags["dagster/asset_partition_range_start"], FMT)
        last = datetime.strptime(tags["dagster/asset_partition_range_end"], FMT)
        covered |= {first + timedelta(minutes=5 * i) for i in range(int((last - first).total_seconds() // 300) + 1)}
    return covered


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_30_day_backfill_is_submitted_as_at_most_31_ranged_runs_covering_every_window(tmp_path):
    instance = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    instance["concurrency"]["runs"]["max_concurrent_runs"] = 0
    args = ["--start", "2026-10-01T00:00:00Z", "--days", "31", "--volume", "300", "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        env = {"COMPLIANCE_API_BASE_URL": sim.base_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
               "COMPLIANCE_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
               "COMPLIANCE_PARTITIONS_START": "2026-10-01T00:00:00Z"}
        with DagsterDev(tmp_path / "dagster_home", env, instance_yaml=yaml.safe_dump(instance)) as dagster:
            backfill_id = dagster.launch_backfill(["raw", "activities"], "2026-10-02-00:00", "2026-10-31-23:55")
            runs: list[dict] = []
            deadline = time.monotonic() + 720
            while time.monotonic() < deadline and len(windows_of(runs)) < EXPECTED:
                time.sleep(3)
                runs = dagster.runs("dagster/backfill", backfill_id)
            time.sleep(10)  # nothing more is submitted once every window is requested
            runs = dagster.runs("dagster/backfill", backfill_id)
    assert 1 <= len(runs) <= 31, len(runs)
    covered = windows_of(runs)
    assert sum(len(windows_of([run])) for run in runs) == len(covered), "two runs cover the same window"
    assert len(covered) == EXPECTED
    assert min(covered) == datetime(2026, 10, 2) and max(covered) == datetime(2026, 10, 31, 23, 55)
