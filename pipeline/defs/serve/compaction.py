"""`compact_serving_files`: a day's hour files of the serving folder become one day file once the day is closed.

Out of the 5-minute tick on purpose: at 1M activities a day, copying a day of every mart took most of the first tick
of each day. It runs in its own run, hourly (a no-op reading one small JSON file when no day closed), reads only the
published Parquet files (never the warehouse, so no `duckdb` pool slot and it never blocks the pipeline) and swaps
the files in one atomic catalog replacement: readers see the same rows before and after.
"""

import dagster as dg
from dagster._core.storage.tags import MAX_RUNTIME_SECONDS_TAG

from pipeline.config import Settings
from pipeline.defs.serve.assets import PublishConfig
from pipeline.serving.publish import compact

COMPACTION_MAX_SECONDS = 60 * 60  # a day of every mart, read from Parquet: minutes at 1M activities a day


@dg.op(description="Compact the hour files of closed days in the serving folder into one day file per mart.")
def compact_serving_day_files(context: dg.OpExecutionContext, config: PublishConfig) -> dg.Output:
    settings = Settings.from_env()
    target = config.serving_path or str(settings.serving_path)
    result = compact(target, memory_limit=settings.duckdb_memory_limit)
    days = sorted({d for ds in result.days.values() for d in ds})
    context.log.info(f"compacted {result.hour_files_replaced} hour file(s) of {days or 'no day'} into "
                     f"{result.files_written} day file(s) in {result.seconds:.2f} s"
                     + (f"; {result.skipped} left for the next run (a publish changed them)" if result.skipped else ""))
    return dg.Output(None, metadata={
        "days": dg.MetadataValue.json(days),
        "files_written": result.files_written,
        "bytes_written": result.bytes_written,
        "hour_files_replaced": result.hour_files_replaced,
        "skipped": result.skipped,
        "compaction_seconds": round(result.seconds, 3),
    })


@dg.job(name="compact_serving_files", tags={MAX_RUNTIME_SECONDS_TAG: str(COMPACTION_MAX_SECONDS)},
        description="Compact the serving folder's hour files of closed days (never part of the 5-minute tick).")
def compact_serving_files_job():
    compact_serving_day_files()


@dg.schedule(
    job=compact_serving_files_job,
    cron_schedule="20 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: compact the hour files of days no longer the newest (a no-op most hours).",
)
def compact_serving_files_hourly(context: dg.ScheduleEvaluationContext):
    return dg.RunRequest(run_key=context.scheduled_execution_time.strftime("%Y-%m-%dT%H"))
