"""When the marts are rebuilt: right after each successful ingestion of activity windows (same partition or range),
whichever way it was launched, plus the jobs to launch by hand (full refresh: materialize with config `full_refresh: true`)."""

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, PARTITION_NAME_TAG

from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.ingest.schedules import ingest_activities_job
from pipeline.defs.serve.assets import marts_file
from pipeline.defs.transform.assets import dbt_activity_marts, dbt_reference, dbt_unit_tests

refresh_marts_job = dg.define_asset_job(
    "refresh_marts",
    selection=dg.AssetSelection.assets(dbt_activity_marts, marts_file) - dg.AssetSelection.checks(dbt_unit_tests),
    description="Rebuild the partition window of every mart (dbt, incremental) and publish the serving file.",
)
reference_job = dg.define_asset_job(
    "refresh_dbt_reference",
    selection=dg.AssetSelection.assets(dbt_reference) - dg.AssetSelection.checks(dbt_unit_tests),
    description="Seeds (activity catalog, type rules, embargo list, endpoints) and dbt views.",
)
unit_tests_job = dg.define_asset_job(
    "run_dbt_unit_tests", selection=dg.AssetSelection.checks(dbt_unit_tests),
    description="dbt unit tests of the categorisation, actor identity, outcome, embargo and user-agent logic.",
)


def ingested_activities(run: dg.DagsterRun) -> bool:
    """Runs that load activity windows: the ingest job (schedules, re-pull) and any run whose asset selection holds
    raw/activities (UI backfills and materializations, `dagster asset materialize`)."""
    return run.job_name == ingest_activities_job.name or raw_activities.key in (run.asset_selection or ())


def marts_request_for(run: dg.DagsterRun) -> dg.RunRequest | None:
    """The same window(s) the ingestion run loaded, for the marts job (pure: unit-tested)."""
    if not ingested_activities(run):
        return None
    tags = run.tags
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        first, last = tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
        return dg.RunRequest(run_key=f"marts-after-{run.run_id}",
                             tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
    if PARTITION_NAME_TAG in tags:
        return dg.RunRequest(run_key=f"marts-after-{run.run_id}", partition_key=tags[PARTITION_NAME_TAG])
    return None


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=refresh_marts_job,  # every job of the code location is watched: backfills run as __ASSET_JOB
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="After each successful ingestion of activity windows: rebuild those windows of the marts.",
)
def marts_after_ingestion(context: dg.RunStatusSensorContext):
    request = marts_request_for(context.dagster_run)
    if request is None:
        return dg.SkipReason(f"run {context.dagster_run.run_id} loaded no activity window")
    return request


reference_automation = dg.AutomationConditionSensorDefinition(
    "dbt_reference_automation",
    target=dg.AssetSelection.assets(dbt_reference),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Builds the seeds and dbt views when missing or when their code (SQL, CSV) changed.",
)
