"""Ingest each 5-minute window shortly after it closes, and re-pull trailing windows for late-indexed events.
Timing (README: "Freshness and late data"): the API makes an activity queryable within about a minute, so the window
[t-5m, t) is requested COMPLIANCE_INGEST_LAG_MINUTES (default 2) after t. Events indexed later than that are caught
by a ranged re-pull of the last COMPLIANCE_REPULL_MINUTES (default 60) every COMPLIANCE_REPULL_EVERY_MINUTES
(default 15, a divisor of 60 from 5 up); the load replaces the range
and deduplicates by id, so a re-pull only adds what was missing.
"""


from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.config import Settings
from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.ingest.chats import raw_chats, raw_chats_reconciliation, raw_organization_users
from pipeline.defs.ingest.partitions import PARTITION_FORMAT, activity_partitions

WINDOW = timedelta(minutes=5)
_settings = Settings.from_env()
LAG_MINUTES = _settings.ingest_lag_minutes  # 1-4, validated in pipeline.settings
REPULL_EVERY = _settings.repull_every_minutes  # 5, 10, 15, 20, 30 or 60, validated in pipeline.settings

ingest_activities_job = dg.define_asset_job(
    "ingest_activities", selection=[raw_activities],
    description="Ingest activity windows into raw.activities.",
)
ingest_chats_job = dg.define_asset_job(
    "ingest_chats", selection=[raw_chats],
    description="Ingest chats updated in a window, with their messages.",
)
directory_job = dg.define_asset_job(
    "refresh_directory", selection=[raw_organization_users, raw_chats_reconciliation],
    description="Refresh organizations and users; find hard-deleted chats.",
)


def last_closed_window_end(now: datetime, lag: timedelta) -> datetime:
    """End of the newest 5-minute window that closed at least `lag` before `now`."""
    t = (now - lag).astimezone(timezone.utc)
    return t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)


def repull_range(now: datetime, lag: timedelta, span: timedelta) -> tuple[str, str]:
    """First and last partition keys of the trailing span that ends with the last closed window."""
    end = last_closed_window_end(now, lag)
    span = max(span, WINDOW)
    return (end - span).strftime(PARTITION_FORMAT), (end - WINDOW).strftime(PARTITION_FORMAT)


@dg.schedule(
    job=ingest_activities_job,
    cron_schedule=f"{LAG_MINUTES}-59/5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: the window that closed LAG minutes ago.",
)
def activities_every_5_minutes(context: dg.ScheduleEvaluationContext):
    return latest_window_request(context.scheduled_execution_time, run_key_prefix="")


def latest_window_request(now: datetime, run_key_prefix: str) -> dg.RunRequest | dg.SkipReason:
    """A run of the window that closed LAG minutes before `now` (one run key per window: never twice)."""
    end = last_closed_window_end(now, timedelta(minutes=LAG_MINUTES))
    key = (end - WINDOW).strftime(PARTITION_FORMAT)
    if end - WINDOW < activity_partitions.start:
        return dg.SkipReason(f"window {key} is before the first partition")
    return dg.RunRequest(partition_key=key, run_key=f"{run_key_prefix}{key}")


@dg.schedule(
    job=ingest_activities_job,
    # One minute after the window's own run, so a re-pull never races the newest window.
    cron_schedule=f"{LAG_MINUTES + 1}-59/{REPULL_EVERY} * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Every {REPULL_EVERY} minutes: one ranged run over the trailing windows, for events indexed late.",
)
def activities_late_repull(context: dg.ScheduleEvaluationContext):
    first, last = repull_range(context.scheduled_execution_time, timedelta(minutes=LAG_MINUTES),
                               timedelta(minutes=_settings.repull_minutes))
    first_dt = datetime.strptime(first, PARTITION_FORMAT).replace(tzinfo=timezone.utc)
    if first_dt < activity_partitions.start:
        first = activity_partitions.start.strftime(PARTITION_FORMAT)
        if first > last:
            return dg.SkipReason("no complete window after the first partition yet")
    return dg.RunRequest(
        run_key=f"repull-{first}-{last}",
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last, "pipeline/repull": "true"},
    )


@dg.schedule(
    job=ingest_chats_job,
    cron_schedule=f"{LAG_MINUTES}-59/5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: chats updated in the window that closed LAG minutes ago.",
)
def chats_every_5_minutes(context: dg.ScheduleEvaluationContext):
    return latest_window_request(context.scheduled_execution_time, run_key_prefix="chats-")


directory_daily = dg.ScheduleDefinition(
    name="directory_and_chat_deletions_daily", job=directory_job, cron_schedule="17 3 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: organizations and users directory, and hard-deleted chats.",
)
