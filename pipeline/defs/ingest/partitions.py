import dagster as dg

from pipeline.config import Settings

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"

activity_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="*/5 * * * *",
    start=Settings.from_env().partitions_start,
    fmt=PARTITION_FORMAT,
    timezone="UTC",
)
