"""A 30-day backfill launched the way the UI launches it, on a real Dagster deployment (`dagster dev`)."""

from __future__ import annotations

import duckdb
import pytest

from simulator.process import SimulatorProcess
from tests.support.dagster_dev import DagsterDev
from tests.support.sim import FULL_KEY, ground_truth


@pytest.mark.slow
def test_30_day_backfill_runs_as_at_most_31_runs_and_lands_every_window(tmp_path):
    args = ["--start", "2026-10-01T00:00:00Z", "--days", "31", "--volume", "300", "--rate-limit", "0",
            "--late-share", "0", "--chats-per-day", "0"]
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(args) as sim:
        env = {"COMPLIANCE_API_BASE_URL": sim.base_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
               "COMPLIANCE_WAREHOUSE_PATH": str(warehouse), "COMPLIANCE_PARTITIONS_START": "2026-10-01T00:00:00Z"}
        with DagsterDev(tmp_path / "dagster_home", env) as dagster:
            backfill_id = dagster.launch_backfill(["raw", "activities"], "2026-10-02-00:00", "2026-10-31-23:55")
            status = dagster.wait_for_backfill(backfill_id, timeout=420)
            runs = dagster.runs("dagster/backfill", backfill_id)
        truth = ground_truth(sim.base_url, "2026-10-02T00:00:00Z", "2026-11-01T00:00:00Z")
    assert status == "COMPLETED_SUCCESS", status
    assert 1 <= len(runs) <= 31, len(runs)
    assert all(r["status"] == "SUCCESS" for r in runs)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        windows, ids = conn.execute("""
            SELECT (SELECT count(*) FROM raw.activity_attestations
                    WHERE window_start >= '2026-10-02' AND window_start < '2026-11-01'),
                   (SELECT count(DISTINCT id) FROM raw.activities)""").fetchone()
    assert windows == 30 * 288
    assert ids == len(truth["activity_ids"])
