"""`refresh_marts` after 3 days at demo volume, launched as the UI launches it on a real `dagster dev`, with the
instance on SQLite and on a real PostgreSQL (deploy/postgres.sh): Dagster's bookkeeping beside dbt's own time.

Setup (not measured): the simulator's 3 days ingested into a fresh warehouse (ranged run) and the reference layer
built; the deployment's start-up work (its automation's first build of the seeds and views) waited for. Measured:
the marts run from launch to success, split into queue + Dagster before the first step, the dbt step, the publish
step, and the events the run recorded. Before this design the same run took 526 s and recorded 16,417
materializations (19 dbt assets x 864 five-minute partitions); target <= 30 s.

    python -m bench bench_refresh_marts       (BENCH_REFRESH_VOLUME per day, default 10,560: ~31,700 in 3 days;
                                               BENCH_REFRESH_STORAGE=sqlite|postgres: one instance storage only)
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("COMPLIANCE_PARTITIONS_START", "2026-10-01T00:00:00Z")
os.environ.setdefault("COMPLIANCE_API_ALLOWED_HOSTS", "127.0.0.1")  # the simulator on loopback

import dagster as dg  # noqa: E402
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG  # noqa: E402

from bench.common import FULL_KEY, report  # noqa: E402

os.environ.setdefault("ANTHROPIC_COMPLIANCE_ACCESS_KEY", FULL_KEY)  # the key is read from the environment only
from simulator.process import SimulatorProcess  # noqa: E402

VOLUME = int(os.environ.get("BENCH_REFRESH_VOLUME", "10560"))
STORAGES = os.environ.get("BENCH_REFRESH_STORAGE", "sqlite,postgres").split(",")  # one of them only: sqlite|postgres
FIRST, LAST = "2026-11-02", "2026-11-04"


def figures(instance: dg.DagsterInstance, run_id: str) -> dict:
    from dagster._core.events import DagsterEventType

    records = instance.all_logs(run_id)

    def times(kind):
        return [r.timestamp for r in records if r.dagster_event and r.dagster_event.event_type == kind]

    run = instance.get_run_record_by_id(run_id)
    created = run.create_timestamp.timestamp()
    start, end = min(times(DagsterEventType.RUN_START)), max(times(DagsterEventType.RUN_SUCCESS))
    first_step = min(times(DagsterEventType.STEP_START))
    steps = {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(run_id)}
    return {"total": end - created, "queued": start - created, "before_step": first_step - start,
            "dbt": next(v for k, v in steps.items() if "dbt_activity_marts" in k),
            "publish": next(v for k, v in steps.items() if "marts_file" in k),
            "events": len(records), "materializations": len(times(DagsterEventType.ASSET_MATERIALIZATION))}


def measure(sim_url: str, tmp: Path, storage_env: dict[str, str]) -> dict:
    from pipeline.defs.ingest.assets import raw_activities
    from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
    from pipeline.defs.transform.assets import dbt_reference
    from pipeline.defs.transform.project import dbt_resource
    from bench.bench_backfill import settle
    from pipeline.demo.dagster_dev import DagsterDev, open_instance
    from tests.support.postgres import instance_yaml

    warehouse = tmp / "warehouse.duckdb"
    resources = {"compliance_api": ComplianceAPIResource(base_url=sim_url,
                                                         requests_per_minute=1_000_000),
                 "warehouse": WarehouseResource(path=str(warehouse)), "geoip": GeoIPResource(), "dbt": dbt_resource()}
    tags = {ASSET_PARTITION_RANGE_START_TAG: f"{FIRST}-00:00", ASSET_PARTITION_RANGE_END_TAG: f"{LAST}-23:55"}
    assert dg.materialize([raw_activities], resources=resources, tags=tags).success
    assert dg.materialize([dbt_reference], resources=resources).success
    env = {"COMPLIANCE_API_BASE_URL": sim_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
           "COMPLIANCE_WAREHOUSE_PATH": str(warehouse), "COMPLIANCE_SERVING_PATH": str(tmp / "marts.duckdb"),
           **storage_env}
    home = tmp / "dagster_home"
    with DagsterDev(home, env, instance_yaml=instance_yaml(postgres=bool(storage_env))) as dagster:
        # As a user launches it on a running deployment: after the start-up work (the automation builds the seeds and
        # views this new instance has no record of; the marts run would queue behind it in the duckdb pool).
        settled = settle(dagster, timeout=180)
        started = time.perf_counter()
        run_id = dagster.launch_job("refresh_marts")
        assert dagster.wait_for_run(run_id, 1800) == "SUCCESS"
        wall = time.perf_counter() - started
        os.environ.update(storage_env)
        try:
            result = figures(open_instance(home), run_id)
        finally:
            for key in storage_env:
                os.environ.pop(key, None)
    result.update(wall=wall, settled=settled)
    return result


def main() -> None:
    from tests.support import postgres

    args = ["--start", f"{FIRST}T00:00:00Z", "--days", "3", "--volume", str(VOLUME), "--rate-limit", "0",
            "--chats-per-day", "0"]
    results = {}
    with SimulatorProcess(args, startup_timeout=300) as sim:
        if "sqlite" in STORAGES:
            with tempfile.TemporaryDirectory() as tmp:
                results["sqlite"] = measure(sim.base_url, Path(tmp), {})
        if "postgres" in STORAGES and postgres.available():
            with postgres.postgres_server() as server, tempfile.TemporaryDirectory() as tmp:
                results["postgres"] = measure(sim.base_url, Path(tmp), {"DAGSTER_PG_URL": server.database()})
    rows: list[tuple[str, object]] = [("activities per day (simulator volume), days", f"{VOLUME:,} x 3"),
                                      ("load average (1, 5, 15 min) at the end",
                                       ", ".join(f"{x:.1f}" for x in os.getloadavg()))]
    for storage, r in results.items():
        rows += [
            (f"{storage}: deployment start-up work waited for before the launch s (not counted)", r["settled"]),
            (f"{storage}: refresh_marts seconds, launch to success (target <= 30; was 526)", r["total"]),
            (f"{storage}: queued + Dagster before first step s", f"{r['queued']:.1f} + {r['before_step']:.1f}"),
            (f"{storage}: dbt step s / publish step s", f"{r['dbt']:.1f} / {r['publish']:.1f}"),
            (f"{storage}: events / materializations recorded (was 16,417 materializations)",
             f"{r['events']} / {r['materializations']}"),
        ]
    if len(results) == 2:
        rows.append(("postgres / sqlite run seconds", results["postgres"]["total"] / results["sqlite"]["total"]))
    report("refresh_marts", rows)


if __name__ == "__main__":
    main()
