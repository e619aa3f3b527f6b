"""The pipeline's environment settings, validated once (README: Configuration).

One field per variable of the configuration table, with its default and what it allows. `load_settings()` reads the
environment and refuses every invalid value with one error listing each offending variable, the value given and what
is allowed; nothing is clamped or replaced in silence. An empty variable counts as unset (its default applies).
The API key is held as a secret: never shown, also not in errors.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"

API_KEY_ENV = "ANTHROPIC_COMPLIANCE_ACCESS_KEY"
MONITOR_KNOB_PREFIX = "COMPLIANCE_MONITOR__"  # + <MONITOR>__<SETTING>: one variable per monitor setting
DEFAULT_BASE_URL = "https://api.anthropic.com"
REPULL_EVERY_ALLOWED = (5, 10, 15, 20, 30, 60)
# DuckDB's memory_limit syntax: a number and a unit (256MB, 2GB, 1.5GiB).
_MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


class SettingsError(ValueError):
    """One or more environment settings are invalid; the message names each variable, its value and what is allowed."""


def default_partitions_start(today: datetime | None = None) -> datetime:
    """First day of the month 90 days ago: stable within a month and far below Dagster's 100k-partition guidance
    (at most ~123 days = ~35k five-minute partitions). Production sets COMPLIANCE_PARTITIONS_START explicitly."""
    today = today or datetime.now(timezone.utc)
    back = today - timedelta(days=90)
    return datetime(back.year, back.month, 1, tzinfo=timezone.utc)


def parse_utc(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _utc(value: Any) -> Any:
    return parse_utc(value.strip()) if isinstance(value, str) else value


def _project_path(value: Path) -> Path:
    return value if value.is_absolute() else PROJECT_ROOT / value


def _http_url(value: str) -> str:
    value = value.strip().rstrip("/")
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("not an http(s)://host[:port] URL")
    return value


def _webhook_url(value: str) -> str:
    """Checked like a base URL but kept as given (a receiver may tell `/hook` from `/hook/`)."""
    _http_url(value)
    return value.strip()


def _memory_limit(value: str) -> str:
    if not _MEMORY_LIMIT.match(value.strip()):
        raise ValueError("not a size")
    return value.strip()


def _existing_file(value: Path) -> Path:
    value = _project_path(value)
    if not value.is_file():
        raise ValueError("no such file")
    return value


def _repull_every(value: int) -> int:
    if value not in REPULL_EVERY_ALLOWED:
        raise ValueError("not an allowed interval")
    return value


def _cron(value: str) -> str:
    from dagster._utils.schedules import is_valid_cron_string

    if not is_valid_cron_string(value):
        raise ValueError("not a cron expression")
    return value


def _serving_file_mode(value: str) -> str:
    from pipeline.warehouse.files import FileModeError, serving_mode

    try:
        serving_mode({"COMPLIANCE_SERVING_FILE_MODE": value})
    except FileModeError:
        raise ValueError("not an allowed mode") from None
    return value


def _serving_file_group(value: str) -> str:
    from pipeline.warehouse.files import FileModeError, serving_mode

    try:
        serving_mode({"COMPLIANCE_SERVING_FILE_MODE": "600", "COMPLIANCE_SERVING_FILE_GROUP": value})
    except FileModeError:
        raise ValueError("no such group") from None
    return value.strip()


def _multiple_of_5(value: int) -> int:
    if value % 5:
        raise ValueError("not a multiple of 5")
    return value


ProjectPath = Annotated[Path, AfterValidator(_project_path)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
WebhookUrl = Annotated[str, AfterValidator(_webhook_url)]
MemoryLimit = Annotated[str, AfterValidator(_memory_limit)]


def _setting(env: str, allowed: str, default: Any = None, **constraints: Any) -> Any:
    """A field read from variable `env`; `allowed` is what the error message says is accepted."""
    return Field(default, validation_alias=env, description=allowed, **constraints)


SECRET_FIELDS = frozenset({"api_key", "alert_webhook_url"})  # their values never appear in messages or reprs


class PipelineSettings(BaseSettings):
    """Every variable of README: Configuration, validated (see `load_settings`)."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True)

    api_key: SecretStr | None = _setting(API_KEY_ENV, "a Compliance Access Key (sk-ant-api01-...)")
    api_base_url: HttpUrl = _setting("COMPLIANCE_API_BASE_URL", "an http(s)://host[:port] URL", DEFAULT_BASE_URL)
    api_timeout_seconds: float = _setting("COMPLIANCE_API_TIMEOUT_SECONDS", "a number of seconds > 0", 30.0, gt=0)
    api_max_retries: int = _setting("COMPLIANCE_API_MAX_RETRIES", "a whole number >= 0", 8, ge=0)
    api_requests_per_minute: int = _setting(
        "COMPLIANCE_API_REQUESTS_PER_MINUTE", "a whole number of requests per minute >= 1", 600, ge=1)
    api_allowed_hosts: str | None = _setting(
        "COMPLIANCE_API_ALLOWED_HOSTS", "host names, comma-separated, the API resource's base_url may point at")
    warehouse_path: ProjectPath = _setting(
        "COMPLIANCE_WAREHOUSE_PATH", "a file path (relative to the project folder or absolute)",
        DATA_DIR / "warehouse.duckdb")
    serving_path: ProjectPath = _setting(
        "COMPLIANCE_SERVING_PATH", "a file path other than COMPLIANCE_WAREHOUSE_PATH", DATA_DIR / "marts.duckdb")
    serving_file_mode: Annotated[str, AfterValidator(_serving_file_mode)] = _setting(
        "COMPLIANCE_SERVING_FILE_MODE", "600, 640 or 660 (octal; nothing for others)", "600")
    serving_file_group: Annotated[str, AfterValidator(_serving_file_group)] | None = _setting(
        "COMPLIANCE_SERVING_FILE_GROUP", "a group name or id given access to the serving file")
    partitions_start: Annotated[datetime, BeforeValidator(_utc)] = Field(
        default_factory=default_partitions_start, validation_alias="COMPLIANCE_PARTITIONS_START",
        description="an ISO 8601 date or date-time (UTC unless it has an offset), not in the future")
    ingest_lag_minutes: int = _setting("COMPLIANCE_INGEST_LAG_MINUTES", "a whole number of minutes from 1 to 4", 2,
                                       ge=1, le=4)
    repull_minutes: Annotated[int, AfterValidator(_multiple_of_5)] = _setting(
        "COMPLIANCE_REPULL_MINUTES", "a whole number of minutes, a multiple of 5, at least 5", 60, ge=5)
    repull_every_minutes: Annotated[int, AfterValidator(_repull_every)] = _setting(
        "COMPLIANCE_REPULL_EVERY_MINUTES", "one of 5, 10, 15, 20, 30 or 60 (minutes)", 15)
    deep_repull_hours: int = _setting(
        "COMPLIANCE_DEEP_REPULL_HOURS", "whole hours from 1 to 744 (31 days)", 48, ge=1, le=24 * 31)
    deep_repull_cron: Annotated[str, AfterValidator(_cron)] = _setting(
        "COMPLIANCE_DEEP_REPULL_CRON", "a cron expression, e.g. '47 2 * * *' (daily at 02:47 UTC)", "47 2 * * *")
    store_message_text: bool = _setting(
        "COMPLIANCE_STORE_MESSAGE_TEXT", "true or false (also 1/0, yes/no, on/off)", True)
    duckdb_memory_limit: MemoryLimit = _setting(
        "COMPLIANCE_DUCKDB_MEMORY_LIMIT", "a size such as 256MB, 2GB or 1.5GiB", "256MB")
    # dbt reads COMPLIANCE_DBT_MEMORY_LIMIT and COMPLIANCE_DBT_THREADS itself (profiles.yml, same defaults): validated here
    dbt_memory_limit: MemoryLimit = _setting("COMPLIANCE_DBT_MEMORY_LIMIT", "a size such as 256MB, 2GB or 1.5GiB",
                                             "512MB")
    dbt_threads: int = _setting("COMPLIANCE_DBT_THREADS", "a whole number of dbt models built at once >= 1", 1, ge=1)
    marts_chunk_activities: int = _setting(
        "COMPLIANCE_MARTS_CHUNK_ACTIVITIES", "a whole number of activities >= 1 per dbt invocation", 100_000, ge=1)
    serving_retain_minutes: float = _setting(
        "COMPLIANCE_SERVING_RETAIN_MINUTES", "a number of minutes >= 0", 60.0, ge=0)
    geoip_city_db: Annotated[Path, AfterValidator(_existing_file)] | None = _setting(
        "GEOIP_CITY_DB", "the path of an existing GeoLite2/GeoIP2 City .mmdb file")
    monitors_config: Annotated[Path, AfterValidator(_existing_file)] | None = _setting(
        "COMPLIANCE_MONITORS_CONFIG", "the path of an existing YAML or JSON monitors file (pipeline/monitors/README.md)")
    monitors_embargo_file: Annotated[Path, AfterValidator(_existing_file)] | None = _setting(
        "COMPLIANCE_MONITORS_EMBARGO_FILE", "the path of an existing embargoed-regions CSV file")
    # A webhook URL is a credential (Slack's carry their token in the path): never in a repr or an error message.
    alert_webhook_url: WebhookUrl | None = _setting("COMPLIANCE_ALERT_WEBHOOK_URL", "an http(s):// URL", repr=False)
    dashboard_host: str = _setting(
        "COMPLIANCE_DASHBOARD_HOST", "an address to bind the dashboard app to (it has no login: keep loopback)",
        "127.0.0.1", min_length=1)
    dashboard_port: int = _setting("COMPLIANCE_DASHBOARD_PORT", "a port number from 1 to 65535", 8501, ge=1,
                                   le=65535)
    dashboard_warm: bool = _setting(
        "COMPLIANCE_DASHBOARD_WARM", "true or false: compute every page's default view after each publish", True)
    dagster_url: HttpUrl = _setting(
        "COMPLIANCE_DAGSTER_URL", "the Dagster UI's http(s):// URL (alert links)", "http://127.0.0.1:3000")
    alert_webhook_timeout_seconds: float = _setting(
        "COMPLIANCE_ALERT_WEBHOOK_TIMEOUT_SECONDS", "a number of seconds > 0", 10.0, gt=0)
    alert_tick_deadline_seconds: float = _setting(
        "COMPLIANCE_ALERT_TICK_DEADLINE_SECONDS", "a number of seconds > 0", 20.0, gt=0)
    alert_retry_base_seconds: float = _setting(
        "COMPLIANCE_ALERT_RETRY_BASE_SECONDS", "a number of seconds >= 0", 30.0, ge=0)
    alert_retry_max_seconds: float = _setting(
        "COMPLIANCE_ALERT_RETRY_MAX_SECONDS", "a number of seconds >= 0", 900.0, ge=0)
    alert_max_per_tick: int = _setting("COMPLIANCE_ALERT_MAX_PER_TICK", "a whole number of alerts >= 1", 20, ge=1)

    @model_validator(mode="after")
    def _checks_across_fields(self) -> "PipelineSettings":
        problems = []
        if self.partitions_start > datetime.now(timezone.utc):
            problems.append(f"COMPLIANCE_PARTITIONS_START={self.partitions_start.isoformat()!r} is in the future: "
                            f"allowed is {_describe('partitions_start')}.")
        if self.serving_path.resolve() == self.warehouse_path.resolve():
            problems.append(f"COMPLIANCE_SERVING_PATH={str(self.serving_path)!r} is the working warehouse file "
                            "(COMPLIANCE_WAREHOUSE_PATH): allowed is a separate file (BI readers on the working file "
                            "block the pipeline).")
        if problems:
            raise ValueError("\n  ".join(problems))
        return self


def _describe(field: str) -> str:
    return PipelineSettings.model_fields[field].description or "a valid value"


_FIELD_BY_ENV = {info.validation_alias: name for name, info in PipelineSettings.model_fields.items()}
SETTINGS_ENV_VARS: tuple[str, ...] = tuple(_FIELD_BY_ENV)


def monitor_knobs(env: Mapping[str, str] | None = None) -> list[tuple[str, str, str, str]]:
    """The per-monitor variables COMPLIANCE_MONITOR__<MONITOR>__<SETTING> (their names are open-ended, so they are
    not fields): (variable, monitor, setting, value), monitor and setting lower-case. A malformed name is refused
    naming the variable; the values are checked by pipeline.monitors.config against the monitor's settings."""
    env = os.environ if env is None else env
    knobs, problems = [], []
    for name, value in sorted(env.items()):
        if not name.startswith(MONITOR_KNOB_PREFIX):
            continue
        parts = name[len(MONITOR_KNOB_PREFIX):].split("__")
        if len(parts) != 2 or not all(parts):
            problems.append(f"{name} is not a monitor setting: allowed is {MONITOR_KNOB_PREFIX}<MONITOR>__<SETTING>.")
            continue
        knobs.append((name, parts[0].lower(), parts[1].lower(), value))
    if problems:
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(problems))
    return knobs


def load_settings() -> PipelineSettings:
    """The environment's settings, validated; raises SettingsError naming every invalid variable."""
    try:
        return PipelineSettings()
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        env = next((str(part) for part in error["loc"] if str(part) in _FIELD_BY_ENV), None)
        if env is None:  # a check across fields: its message names the variables itself
            lines.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        field = _FIELD_BY_ENV[env]
        shown = "(hidden: a secret)" if field in SECRET_FIELDS else repr(error["input"])
        reason = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{env}={shown} is invalid ({reason}): allowed is {_describe(field)}.")
    return "Invalid settings:\n  " + "\n  ".join(lines)
