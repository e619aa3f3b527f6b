"""`make run`: the pipeline end to end on the embedded default (the simulator, a local DuckDB file).

1. start the Compliance API simulator in live mode (events keep arriving relative to now);
2. ingest the last few hours of closed 5-minute windows through Dagster, recorded in the persistent instance
   ($DAGSTER_HOME), and print what landed;
3. start `dagster dev` (webserver + daemon, schedules on) against the same simulator until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.config import PROJECT_ROOT, Settings
from simulator.process import SimulatorProcess

SIMULATOR_PORT = int(os.environ.get("DEMO_SIMULATOR_PORT", "8765"))
SIMULATOR_KEY = "sk-ant-api01-sim-full"  # the simulator's built-in demo key, not a secret
HOURS = int(os.environ.get("DEMO_HOURS", "3"))


def main() -> int:
    os.environ.setdefault("ANTHROPIC_COMPLIANCE_ACCESS_KEY", SIMULATOR_KEY)
    with SimulatorProcess(["--live-hours", str(HOURS + 1)], port=SIMULATOR_PORT) as sim:
        os.environ["COMPLIANCE_API_BASE_URL"] = sim.base_url
        print(f"Simulator (live mode) on {sim.base_url}")
        ingest_recent(HOURS)
        if os.environ.get("DEMO_UI", "1") == "0":
            return 0
        return run_dagster_dev()


def ingest_recent(hours: int) -> None:
    from pipeline.definitions import defs as load_defs
    from pipeline.defs.ingest.partitions import PARTITION_FORMAT
    from pipeline.defs.ingest.schedules import last_closed_window_end

    defs = load_defs()
    end = last_closed_window_end(datetime.now(timezone.utc), timedelta(minutes=2))
    first = (end - timedelta(hours=hours)).strftime(PARTITION_FORMAT)
    last = (end - timedelta(minutes=5)).strftime(PARTITION_FORMAT)
    print(f"Ingesting windows {first} … {last} into {Settings.from_env().warehouse_path}")
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(["raw", "activities"])],
            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        )
    mats = result.asset_materializations_for_node("raw__activities")
    meta = {k: v.value for k, v in mats[-1].metadata.items()} if mats else {}
    print(f"  stored {meta.get('records_stored')} activities in {meta.get('pages')} pages, "
          f"{meta.get('quarantined')} quarantined, {meta.get('duplicates_dropped')} duplicates dropped, "
          f"{meta.get('activities_per_second')} activities/s")


def run_dagster_dev() -> int:
    print("Starting Dagster on http://127.0.0.1:3000 (Ctrl-C stops everything)")
    proc = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")],
                            cwd=PROJECT_ROOT, env=os.environ.copy())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
