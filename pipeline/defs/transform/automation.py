"""When the marts are rebuilt: right after each successful ingestion of activity windows, whichever way it was launched
(the run rebuilds whatever windows changed since the last build, so one queued marts run serves any number of
ingestion runs), and right after the seeds and views were rebuilt (an edited embargo list or activity catalog: the
marts run rewrites the rows whose reference changed, docs/reference-changes.md), plus the jobs to launch by hand
(full refresh: materialize with config `full_refresh: true`)."""

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, PARTITION_NAME_TAG


from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.ingest.schedules import ingest_activities_job
from pipeline.defs.serve.assets import marts_file
from pipeline.defs.transform.tags import AFTER_RUN_TAG, FIRST_WINDOW_TAG, LAST_WINDOW_TAG
from pipeline.defs.transform.assets import dbt_activity_marts, dbt_reference, dbt_unit_tests

refresh_marts_job = dg.define_asset_job(
    "refresh_marts",
    selection=dg.AssetSelection.assets(dbt_activity_marts, marts_file) - dg.AssetSelection.checks(dbt_unit_tests),
    description="Rebuild the windows ingested since the last build in every mart (dbt, incremental) and publish "
                "the serving file.",
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


def rebuilt_reference(run: dg.DagsterRun) -> bool:
    """Runs that built seeds or views the marts join: the automation after a seed's or view's code changed (a user
    edited the embargo list or the catalog and reloaded), the refresh_dbt_reference job, a UI materialization."""
    return run.job_name == reference_job.name or bool(set(run.asset_selection or ()) & set(dbt_reference.keys))


def marts_request_for(run: dg.DagsterRun) -> dg.RunRequest | None:
    """A marts run after an ingestion run or a reference run (pure: unit-tested). The marts job is unpartitioned: it
    rebuilds every window changed since its last build and the rows of changed reference keys; the tags only say
    which run triggered it and, after an ingestion, its windows (for people and the demo)."""
    if not ingested_activities(run):
        return dg.RunRequest(run_key=f"marts-after-{run.run_id}", tags={AFTER_RUN_TAG: run.run_id}) \
            if rebuilt_reference(run) else None
    tags = run.tags
    windows = ((tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG])
               if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags
               else (tags[PARTITION_NAME_TAG],) * 2 if PARTITION_NAME_TAG in tags else None)
    if windows is None:
        return None
    return dg.RunRequest(run_key=f"marts-after-{run.run_id}",
                         tags={AFTER_RUN_TAG: run.run_id, FIRST_WINDOW_TAG: windows[0], LAST_WINDOW_TAG: windows[1]})


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=refresh_marts_job,  # every job of the code location is watched: backfills run as __ASSET_JOB
    default_status=dg.DefaultSensorStatus.RUNNING,
    # The sensor daemon's loop is 5 s: every loop, so the marts follow an ingestion within seconds (the evaluation
    # reads the run-status events since its cursor: cheap).
    minimum_interval_seconds=5,
    description="After each successful ingestion of activity windows: rebuild the changed windows of the marts; "
                "after each build of the seeds and views (an edited embargo list or catalog): rewrite the rows "
                "whose reference changed (not when a marts run is already queued: it will pick these up).",
)
def marts_after_ingestion(context: dg.RunStatusSensorContext):
    request = marts_request_for(context.dagster_run)
    if request is None:
        return dg.SkipReason(f"run {context.dagster_run.run_id} loaded no activity window and built no reference")
    if FIRST_WINDOW_TAG not in request.tags and not context.instance.get_run_records(
            dg.RunsFilter(job_name=refresh_marts_job.name, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1):
        return dg.SkipReason("reference built before any marts run: the first marts run builds with it anyway")
    queued = context.instance.get_run_records(dg.RunsFilter(
        job_name=refresh_marts_job.name, statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]),
        limit=1)
    if queued:
        return dg.SkipReason(f"marts run {queued[0].dagster_run.run_id} is queued: it rebuilds these windows too")
    return request


reference_automation = dg.AutomationConditionSensorDefinition(
    "dbt_reference_automation",
    target=dg.AssetSelection.assets(dbt_reference),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Builds the seeds and dbt views when missing or when their code (SQL, CSV) changed.",
)
