"""The Dagster code location loads, with the names users and scripts rely on."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import dagster as dg

from pipeline.config import PROJECT_ROOT
from pipeline.definitions import defs as load_defs
from pipeline.defs.ingest.schedules import last_closed_window_end, repull_range


def test_definitions_validate_loadable():
    defs = load_defs()
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_assets_def(dg.AssetKey(["raw", "activities"]))
    assert {s.name for s in defs.schedules} >= {"activities_every_5_minutes", "activities_late_repull"}


def test_raw_activities_is_5_minute_partitioned_in_pool_duckdb_with_single_run_backfills():
    asset = load_defs().resolve_assets_def(dg.AssetKey(["raw", "activities"]))
    pdef = asset.partitions_def
    assert isinstance(pdef, dg.TimeWindowPartitionsDefinition)
    assert pdef.cron_schedule == "*/5 * * * *" and pdef.timezone == "UTC"
    assert pdef.start == datetime(2026, 10, 1, tzinfo=timezone.utc)  # from COMPLIANCE_PARTITIONS_START
    assert asset.backfill_policy.max_partitions_per_run is None  # single run per backfill
    assert {op.pool for op in [asset.op]} == {"duckdb"}


def test_dagster_cli_validates_the_workspace():
    out = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr


def test_schedule_requests_the_window_closed_lag_minutes_ago():
    now = datetime(2026, 11, 1, 10, 2, 0, tzinfo=timezone.utc)
    assert last_closed_window_end(now, timedelta(minutes=2)) == datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)
    assert last_closed_window_end(now, timedelta(minutes=3)) == datetime(2026, 11, 1, 9, 55, tzinfo=timezone.utc)


def test_repull_covers_the_trailing_hour_as_one_range():
    now = datetime(2026, 11, 1, 10, 3, 0, tzinfo=timezone.utc)
    assert repull_range(now, timedelta(minutes=2), timedelta(minutes=60)) == ("2026-11-01-09:00", "2026-11-01-09:55")


def test_schedules_evaluate_to_the_right_run_requests():
    repo = load_defs().get_repository_def()

    def tick(name: str, when: datetime):
        with dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo) as ctx:
            return repo.get_schedule_def(name).evaluate_tick(ctx).run_requests[0]

    request = tick("activities_every_5_minutes", datetime(2026, 11, 1, 10, 2, tzinfo=timezone.utc))
    assert request.partition_key == "2026-11-01-09:55"
    assert tick("chats_every_5_minutes", datetime(2026, 11, 1, 10, 2, tzinfo=timezone.utc)).partition_key == \
        "2026-11-01-09:55"
    request = tick("activities_late_repull", datetime(2026, 11, 1, 10, 3, tzinfo=timezone.utc))
    assert request.tags["dagster/asset_partition_range_start"] == "2026-11-01-09:00"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-01-09:55"
