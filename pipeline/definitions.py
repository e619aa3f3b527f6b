"""The single Dagster entry point: domain definitions from `pipeline/defs/` plus cross-cutting policy, once."""

from __future__ import annotations

import dagster as dg

from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.ingest.schedules import activities_every_5_minutes, activities_late_repull, ingest_activities_job
from pipeline.defs.resources import build_resources


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_activities],
        jobs=[ingest_activities_job],
        schedules=[activities_every_5_minutes, activities_late_repull],
        resources=build_resources(),
    )
