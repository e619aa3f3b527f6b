"""Settings read from the environment, with defaults that work out of the box (README: Configuration).

Plain Python: Dagster definitions read these through resources; the API key is read from the environment by the
API client itself (no resource field, no run config) and never passes through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# Defined and validated once in pipeline.settings; re-exported here for existing imports.
from pipeline.settings import (  # noqa: F401
    API_KEY_ENV,
    DATA_DIR,
    DEFAULT_BASE_URL,
    PROJECT_ROOT,
    default_partitions_start,
    load_settings,
    parse_utc,
)


@dataclass(frozen=True)
class Settings:
    base_url: str
    warehouse_path: Path
    serving_path: Path
    partitions_start: datetime
    geoip_city_db: str | None
    duckdb_memory_limit: str
    ingest_lag_minutes: int
    repull_minutes: int
    repull_every_minutes: int
    store_message_text: bool
    deep_repull_hours: int = 48
    deep_repull_cron: str = "47 2 * * *"

    @classmethod
    def from_env(cls) -> "Settings":
        """The validated environment (pipeline.settings): raises SettingsError naming every invalid variable."""
        env = load_settings()
        return cls(
            base_url=env.api_base_url,
            warehouse_path=env.warehouse_path,
            serving_path=env.serving_path,
            partitions_start=env.partitions_start,
            geoip_city_db=str(env.geoip_city_db) if env.geoip_city_db else None,
            duckdb_memory_limit=env.duckdb_memory_limit,
            ingest_lag_minutes=env.ingest_lag_minutes,
            repull_minutes=env.repull_minutes,
            repull_every_minutes=env.repull_every_minutes,
            store_message_text=env.store_message_text,
            deep_repull_hours=env.deep_repull_hours,
            deep_repull_cron=env.deep_repull_cron,
        )

