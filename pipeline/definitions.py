"""The single Dagster entry point: domain definitions from `pipeline/defs/` plus cross-cutting policy, once."""

from __future__ import annotations

import dagster as dg

from pipeline.defs.ingest import schedules
from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.ingest.chats import raw_chats, raw_chats_reconciliation, raw_organization_users
from pipeline.defs.monitors import (activity_monitors, alert_lifecycle, monitor_alerts_webhook, no_data_monitor,
                                    run_failure_webhook)
from pipeline.defs.resources import build_resources
from pipeline.defs.serve.assets import marts_file
from pipeline.defs.serve.compaction import compact_serving_files_hourly, compact_serving_files_job
from pipeline.defs.transform import automation as transform
from pipeline.defs.transform.assets import dbt_activity_marts, dbt_reference, dbt_unit_tests
from pipeline.defs.transform.project import dbt_resource


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_activities, raw_chats, raw_organization_users, raw_chats_reconciliation,
                dbt_reference, dbt_activity_marts, marts_file],
        jobs=[schedules.ingest_activities_job, schedules.ingest_chats_job, schedules.directory_job,
              transform.refresh_marts_job, transform.reference_job, transform.unit_tests_job, alert_lifecycle,
              compact_serving_files_job],
        schedules=[schedules.activities_every_5_minutes, schedules.activities_late_repull,
                   schedules.activities_deep_repull, schedules.chats_every_5_minutes, schedules.directory_daily,
                   compact_serving_files_hourly],
        asset_checks=[activity_monitors, dbt_unit_tests],
        sensors=[monitor_alerts_webhook, run_failure_webhook, no_data_monitor, transform.marts_after_ingestion,
                 transform.reference_automation],
        resources={**build_resources(), "dbt": dbt_resource()},
        # One process per run: its steps share the DuckDB file, so they never run in parallel anyway, and a step
        # process of its own would cost another Python + Dagster + dbt start (seconds) per step.
        executor=dg.in_process_executor,
    )
