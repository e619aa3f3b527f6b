"""One new 5-minute window, end to end, after a day of history at the simulator's default volume.

Setup (reported, not the point): a day of activities, chats and the directory ingested through Dagster, the marts
built once (full refresh) and the serving file published. Then the measured part, as production runs it:
  ingest   raw/activities + raw/chats for the new window (one run, like the 5-minute schedules)
  dbt      dbt_activity_marts (incremental: the changed window plus the forward horizon, nothing else)
  publish  serve/marts_file (the changed days/hours to new Parquet files, new catalog + atomic rename)
dbt and publish run in one Dagster run (the `refresh_marts` job); their split comes from the step timings.
Target: under 30 s end to end on 2 cores.   `python -m bench bench_incremental`  (BENCH_INCREMENTAL_VOLUME to vary)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("COMPLIANCE_PARTITIONS_START", "2026-10-01T00:00:00Z")

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG  # noqa: E402

from bench.common import FULL_KEY, report  # noqa: E402
from simulator.process import SimulatorProcess  # noqa: E402

VOLUME = int(os.environ.get("BENCH_INCREMENTAL_VOLUME", "50000"))  # the simulator's default
HISTORY_DAY = "2026-11-02"          # a Monday: full weekday volume
NEW_WINDOW = "2026-11-03-00:00"


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    return {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(run_id)}


def main() -> None:
    from pipeline.defs.ingest.assets import raw_activities
    from pipeline.defs.ingest.chats import raw_chats, raw_organization_users
    from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
    from pipeline.defs.serve.assets import marts_file
    from pipeline.defs.transform.assets import dbt_activity_marts, dbt_reference
    from pipeline.defs.transform.project import dbt_resource

    args = ["--start", f"{HISTORY_DAY}T00:00:00Z", "--days", "2", "--volume", str(VOLUME), "--rate-limit", "0",
            "--late-share", "0"]
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(args, startup_timeout=300) as sim:
        tmp = Path(tmp)
        os.environ["COMPLIANCE_SERVING_PATH"] = str(tmp / "marts.duckdb")
        os.environ.setdefault("ANTHROPIC_COMPLIANCE_ACCESS_KEY", FULL_KEY)  # read from the environment only
        os.environ.setdefault("COMPLIANCE_API_ALLOWED_HOSTS", "127.0.0.1")
        warehouse = tmp / "warehouse.duckdb"
        resources = {
            "compliance_api": ComplianceAPIResource(base_url=sim.base_url,
                                                    requests_per_minute=100_000),
            "warehouse": WarehouseResource(path=str(warehouse)), "geoip": GeoIPResource(), "dbt": dbt_resource()}
        day = {ASSET_PARTITION_RANGE_START_TAG: f"{HISTORY_DAY}-00:00",
               ASSET_PARTITION_RANGE_END_TAG: f"{HISTORY_DAY}-23:55"}

        started = time.perf_counter()
        assert dg.materialize([raw_activities, raw_chats], resources=resources, tags=day).success
        assert dg.materialize([raw_organization_users], resources=resources).success
        history_ingest = time.perf_counter() - started
        started = time.perf_counter()
        full = dg.materialize([dbt_reference, dbt_activity_marts, marts_file], resources=resources,
                              run_config={"ops": {"dbt_activity_marts": {"config": {"full_refresh": True}}}})
        assert full.success
        history_build = time.perf_counter() - started

        started = time.perf_counter()
        ingest = dg.materialize([raw_activities, raw_chats], resources=resources, partition_key=NEW_WINDOW)
        assert ingest.success
        ingest_seconds = time.perf_counter() - started
        instance = dg.DagsterInstance.ephemeral()
        started = time.perf_counter()
        marts = dg.materialize([dbt_activity_marts, marts_file], resources=resources, instance=instance)
        assert marts.success
        marts_seconds = time.perf_counter() - started
        steps = _step_seconds(instance, marts.run_id)
        publish_meta = marts.asset_materializations_for_node("serve__marts_file")[0].metadata
        copied = publish_meta["copied"].value
        if os.environ.get("BENCH_KEEP"):
            shutil.copytree(tmp, os.environ["BENCH_KEEP"], dirs_exist_ok=True)

        with duckdb.connect(str(warehouse), read_only=True) as conn:
            history = conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0]
            window = conn.execute("SELECT count(*) FROM raw.activities WHERE created_at >= '2026-11-03'").fetchone()[0]
            rewritten = conn.execute(
                "SELECT count(*) FROM marts.activity_overview WHERE dbt_invocation_id = "
                "(SELECT dbt_invocation_id FROM marts.activity_overview WHERE created_at >= '2026-11-03' LIMIT 1)"
            ).fetchone()[0]

    dbt_step = next((v for k, v in steps.items() if "dbt_activity_marts" in k), 0.0)
    publish_step = next((v for k, v in steps.items() if "marts_file" in k), 0.0)
    total = ingest_seconds + marts_seconds
    report("incremental_window", [
        ("activities per day (simulator volume)", VOLUME),
        ("history: activities stored", history - window),
        ("history: ingest seconds (day, ranged run)", history_ingest),
        ("history: dbt full build + publish seconds", history_build),
        ("new window: activities", window),
        ("new window: mart rows rewritten (changed window + 60 min horizon)", rewritten),
        ("ingest seconds (raw/activities + raw/chats run)", ingest_seconds),
        ("dbt step seconds (incremental build + tests)", dbt_step),
        ("publish step seconds", publish_step),
        ("publish: tables re-copied in part or whole",
         ", ".join(f"{k.split('.')[-1]}: {v}" for k, v in copied.items() if v != "unchanged")),
        ("marts run seconds (dbt + publish + Dagster run overhead)", marts_seconds),
        ("end to end seconds (target < 30)", total),
    ])


if __name__ == "__main__":
    main()
