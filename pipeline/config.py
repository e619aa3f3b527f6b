"""Settings read from the environment, with defaults that work out of the box (README: Configuration).

Plain Python: Dagster definitions read these through resources; the API key is read from the environment by the
API client itself (no resource field, no run config) and never passes through this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_KEY_ENV = "ANTHROPIC_COMPLIANCE_ACCESS_KEY"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _path(name: str, default: Path) -> Path:
    value = _env(name)
    path = Path(value) if value else default
    return path if path.is_absolute() else (PROJECT_ROOT / path)


def default_partitions_start(today: datetime | None = None) -> datetime:
    """First day of the month 90 days ago: stable within a month and far below Dagster's 100k-partition guidance
    (at most ~123 days = ~35k five-minute partitions). Production sets COMPLIANCE_PARTITIONS_START explicitly."""
    today = today or datetime.now(timezone.utc)
    back = today - timedelta(days=90)
    return datetime(back.year, back.month, 1, tzinfo=timezone.utc)


def parse_utc(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


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
        start = _env("COMPLIANCE_PARTITIONS_START")
        return cls(
            base_url=_env("COMPLIANCE_API_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            warehouse_path=_path("COMPLIANCE_WAREHOUSE_PATH", DATA_DIR / "warehouse.duckdb"),
            serving_path=_path("COMPLIANCE_SERVING_PATH", DATA_DIR / "marts.duckdb"),
            partitions_start=parse_utc(start) if start else default_partitions_start(),
            geoip_city_db=_env("GEOIP_CITY_DB"),
            duckdb_memory_limit=_env("COMPLIANCE_DUCKDB_MEMORY_LIMIT", "256MB"),
            ingest_lag_minutes=int(_env("COMPLIANCE_INGEST_LAG_MINUTES", "2")),
            repull_minutes=int(_env("COMPLIANCE_REPULL_MINUTES", "60")),
            repull_every_minutes=int(_env("COMPLIANCE_REPULL_EVERY_MINUTES", "15")),
            store_message_text=_env("COMPLIANCE_STORE_MESSAGE_TEXT", "true").lower() not in ("0", "false", "no", "off"),
            deep_repull_hours=_deep_repull_hours(_env("COMPLIANCE_DEEP_REPULL_HOURS", "48")),
            deep_repull_cron=_cron("COMPLIANCE_DEEP_REPULL_CRON", _env("COMPLIANCE_DEEP_REPULL_CRON", "47 2 * * *")),
        )


def _deep_repull_hours(raw: str) -> int:
    try:
        hours = int(raw)
    except ValueError:
        hours = 0
    if not 1 <= hours <= 24 * 31:
        raise ValueError(f"COMPLIANCE_DEEP_REPULL_HOURS={raw!r}: expected whole hours from 1 to 744 (31 days).")
    return hours


def _cron(name: str, raw: str) -> str:
    from dagster._utils.schedules import is_valid_cron_string

    if not is_valid_cron_string(raw):
        raise ValueError(f"{name}={raw!r} is not a cron expression (e.g. '47 2 * * *': daily at 02:47 UTC).")
    return raw
