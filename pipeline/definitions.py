"""The single Dagster entry point: domain definitions from `pipeline/defs/` plus cross-cutting policy, once."""

from __future__ import annotations

import dagster as dg

from pipeline.defs.ingest import schedules
from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.ingest.chats import raw_chats, raw_chats_reconciliation, raw_organization_users
from pipeline.defs.resources import build_resources


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_activities, raw_chats, raw_organization_users, raw_chats_reconciliation],
        jobs=[schedules.ingest_activities_job, schedules.ingest_chats_job, schedules.directory_job],
        schedules=[schedules.activities_every_5_minutes, schedules.activities_late_repull,
                   schedules.chats_every_5_minutes, schedules.directory_daily],
        resources=build_resources(),
    )
