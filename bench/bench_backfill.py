"""Wall time and Dagster overhead of a 30-day backfill of raw/activities at the simulator's default volume, launched
the way the UI launches it, on a real `dagster dev` deployment (webserver + daemon, SQLite instance)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import FULL_KEY, report
from pipeline.demo.dagster_dev import DagsterDev, open_instance
from simulator.process import SimulatorProcess

DAYS = int(os.environ.get("BENCH_BACKFILL_DAYS", "30"))


def main() -> None:
    args = ["--start", "2026-10-01T00:00:00Z", "--days", str(DAYS + 1), "--rate-limit", "0", "--chats-per-day", "0"]
    # ignore_cleanup_errors: the marts run the backfill triggers may still be writing its logs when we leave
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, SimulatorProcess(args, startup_timeout=300) as sim:
        tmp = Path(tmp)
        env = {"COMPLIANCE_API_BASE_URL": sim.base_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
               "COMPLIANCE_WAREHOUSE_PATH": str(tmp / "warehouse.duckdb"),
               "COMPLIANCE_PARTITIONS_START": "2026-10-01T00:00:00Z"}
        last_day = f"2026-10-{1 + DAYS:02d}" if DAYS < 31 else "2026-10-31"
        with DagsterDev(tmp / "home", env) as dagster:
            started = time.perf_counter()
            backfill_id = dagster.launch_backfill(["raw", "activities"], "2026-10-02-00:00", f"{last_day}-23:55")
            status = dagster.wait_for_backfill(backfill_id, timeout=3600)
            wall = time.perf_counter() - started
            runs = dagster.runs("dagster/backfill", backfill_id)
        instance = open_instance(tmp / "home")
        step_seconds, run_seconds = 0.0, 0.0
        for run in runs:
            for step in instance.get_run_step_stats(run["runId"]):
                step_seconds += (step.end_time or 0) - (step.start_time or 0)
            record = instance.get_run_record_by_id(run["runId"])
            if record.start_time and record.end_time:  # a run failed before it started has no start
                run_seconds += record.end_time - record.start_time
        import duckdb

        with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as conn:
            stored = conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0]
    report("backfill_30_days", [
        ("days", DAYS), ("status", status), ("runs", len(runs)), ("activities stored", stored),
        ("wall seconds (launch to completion)", wall),
        ("asset step seconds (sum)", step_seconds),
        ("run seconds (sum, incl. process start)", run_seconds),
        ("Dagster overhead seconds (wall - steps)", wall - step_seconds),
        ("activities/s end to end", stored / wall),
    ])


if __name__ == "__main__":
    main()
