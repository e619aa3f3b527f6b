"""Ingest each 5-minute window shortly after it closes, and re-pull trailing windows for late-indexed events.
Timing (README: "Freshness and late data"): the API makes an activity queryable within about a minute, so the window
[t-5m, t) is requested COMPLIANCE_INGEST_LAG_MINUTES (default 2) after t. Events indexed later than that are caught
by a ranged re-pull of the last COMPLIANCE_REPULL_MINUTES (default 60) every COMPLIANCE_REPULL_EVERY_MINUTES
(default 15, a divisor of 60 from 5 up); the load replaces the range
and deduplicates by id, so a re-pull only adds what was missing. Events indexed later still (hours: an API incident)
are caught by a deep re-pull of the last COMPLIANCE_DEEP_REPULL_HOURS (default 48) on COMPLIANCE_DEEP_REPULL_CRON
(default daily at 02:47 UTC); its run reports how many late events it found (`late_events_found`).

Every scheduled run carries a maximum runtime (`dagster/max_runtime`, enforced by run monitoring): a stuck run must
not hold the single `duckdb` pool slot. Other runs get the instance default (dagster.yaml `max_runtime_seconds`).
"""


from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    MAX_RUNTIME_SECONDS_TAG,
)

from pipeline.config import Settings
from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.ingest.chats import raw_chats, raw_chats_reconciliation, raw_organization_users
from pipeline.defs.ingest.partitions import PARTITION_FORMAT, activity_partitions

WINDOW = timedelta(minutes=5)
_settings = Settings.from_env()
LAG_MINUTES = _settings.ingest_lag_minutes  # 1-4, validated in pipeline.settings
REPULL_EVERY = _settings.repull_every_minutes  # 5, 10, 15, 20, 30 or 60, validated in pipeline.settings
WINDOW_RUN_MAX_SECONDS = 30 * 60        # a window or the trailing re-pull: minutes of work
DEEP_REPULL_MAX_SECONDS = 3 * 60 * 60   # days of activities: one traversal and one load

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
    return dg.RunRequest(partition_key=key, run_key=f"{run_key_prefix}{key}",
                         tags={MAX_RUNTIME_SECONDS_TAG: str(WINDOW_RUN_MAX_SECONDS)})


@dg.schedule(
    job=ingest_activities_job,
    # One minute after the window's own run, so a re-pull never races the newest window.
    cron_schedule=f"{LAG_MINUTES + 1}-59/{REPULL_EVERY} * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Every {REPULL_EVERY} minutes: one ranged run over the trailing windows, for events indexed late.",
)
def activities_late_repull(context: dg.ScheduleEvaluationContext):
    return repull_request(context.scheduled_execution_time, timedelta(minutes=_settings.repull_minutes),
                          kind="true", max_seconds=WINDOW_RUN_MAX_SECONDS)


def repull_request(now: datetime, span: timedelta, *, kind: str, max_seconds: int) -> dg.RunRequest | dg.SkipReason:
    """One ranged run over the trailing `span` (clamped to the first partition); `pipeline/repull` = `kind`."""
    first, last = repull_range(now, timedelta(minutes=LAG_MINUTES), span)
    first_dt = datetime.strptime(first, PARTITION_FORMAT).replace(tzinfo=timezone.utc)
    if first_dt < activity_partitions.start:
        first = activity_partitions.start.strftime(PARTITION_FORMAT)
        if first > last:
            return dg.SkipReason("no complete window after the first partition yet")
    prefix = "repull" if kind == "true" else f"repull-{kind}"
    return dg.RunRequest(
        run_key=f"{prefix}-{first}-{last}",
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last, "pipeline/repull": kind,
              MAX_RUNTIME_SECONDS_TAG: str(max_seconds)},
    )


@dg.schedule(
    job=ingest_activities_job,
    cron_schedule=_settings.deep_repull_cron,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Deep re-pull ({_settings.deep_repull_cron} UTC): one ranged run over the last "
                f"{_settings.deep_repull_hours} hours, for events indexed hours late; reports how many it found.",
)
def activities_deep_repull(context: dg.ScheduleEvaluationContext):
    return repull_request(context.scheduled_execution_time, timedelta(hours=_settings.deep_repull_hours),
                          kind="deep", max_seconds=DEEP_REPULL_MAX_SECONDS)


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
    tags={MAX_RUNTIME_SECONDS_TAG: str(DEEP_REPULL_MAX_SECONDS)},
    description="Daily: organizations and users directory, and hard-deleted chats.",
)
