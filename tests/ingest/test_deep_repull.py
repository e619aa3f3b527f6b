"""Late-event reconciliation (issue #12): events indexed 3 hours late are missed by the window runs and the trailing
re-pull, and stored by the next scheduled deep re-pull, exactly once; the run reports how many it found."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import duckdb
import yaml

from pipeline.config import PROJECT_ROOT
from pipeline.defs.ingest import schedules
from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
from simulator.config import SimConfig
from simulator.process import SimulatorProcess
from tests.ingest.test_raw_activities import materialize_range
from tests.support.sim import ground_truth, set_clock
from tests.unit.test_warehouse_load import snapshot

DAY = "2026-11-03"
UTC = timezone.utc


def tick(schedule, at: str) -> dg.RunRequest:
    context = dg.build_schedule_context(scheduled_execution_time=datetime.fromisoformat(at))
    request = schedule(context)  # the schedule's own function (partition keys are resolved by the daemon)
    assert isinstance(request, dg.RunRequest)
    assert int(request.tags["dagster/max_runtime"]) > 0  # every scheduled run has a maximum runtime
    return request


def deep_repull(res, request: dg.RunRequest) -> int:
    result = dg.materialize([raw_activities], resources=res, tags=request.tags)
    assert result.success
    return result.asset_materializations_for_node("raw__activities")[0].metadata["late_events_found"].value


def stored(warehouse) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM raw.activities").fetchall()]


def test_events_indexed_3_hours_late_are_stored_by_the_next_deep_repull_once(tmp_path):
    config = SimConfig(start=datetime(2026, 11, 3, tzinfo=UTC), end=datetime(2026, 11, 4, tzinfo=UTC),
                       activities_per_day=4000, late_share=0.03, late_minutes=(180.0, 190.0), rate_limit=0,
                       chats_per_day=5, incidents=False)
    warehouse = tmp_path / "w.duckdb"
    with SimulatorProcess(config) as sim:
        res = {"compliance_api": ComplianceAPIResource(base_url=sim.base_url, requests_per_minute=100_000),
               "warehouse": WarehouseResource(path=str(warehouse)), "geoip": GeoIPResource()}
        # the day as the window runs and the hourly re-pulls saw it: each hour fetched 3 minutes after it closed
        for hour in range(24):
            set_clock(sim.base_url, f"{DAY}T{hour:02d}:58:00Z" if hour < 23 else "2026-11-04T00:03:00Z")
            assert materialize_range(res, f"{DAY}-{hour:02d}:00", f"{DAY}-{hour:02d}:55").success
        set_clock(sim.base_url, "2026-11-04T02:47:00Z")
        truth = set(ground_truth(sim.base_url, f"{DAY}T00:00:00Z", "2026-11-04T00:00:00Z")["activity_ids"])
        late = truth - set(stored(warehouse))
        assert late, "events indexed 3 hours late are missing before the deep re-pull"

        request = tick(schedules.activities_deep_repull, "2026-11-04T02:47:00+00:00")
        assert request.tags["dagster/asset_partition_range_start"] <= f"{DAY}-00:00"  # the previous 2 days
        assert request.tags["dagster/asset_partition_range_end"] >= f"{DAY}-23:55"
        found = deep_repull(res, request)
        ids = stored(warehouse)
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            before = snapshot(conn)
        again = deep_repull(res, request)  # the next day's re-pull finds nothing new and changes nothing
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            after = snapshot(conn)
    assert set(ids) == truth and len(ids) == len(set(ids))
    assert found == len(late) and again == 0
    assert after == before
    print(f"deep re-pull: {len(late)} events indexed 3 h late, found {found}, {len(truth)} events in the day")


def test_every_run_has_a_maximum_runtime():
    tick(schedules.activities_every_5_minutes, "2026-11-04T02:47:00+00:00")
    tick(schedules.activities_late_repull, "2026-11-04T02:48:00+00:00")
    tick(schedules.chats_every_5_minutes, "2026-11-04T02:47:00+00:00")
    assert int(schedules.directory_daily.tags["dagster/max_runtime"]) > 0
    instance = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert instance["run_monitoring"]["enabled"] and instance["run_monitoring"]["max_runtime_seconds"] > 0
