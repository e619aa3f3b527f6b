"""pipeline.settings: defaults out of the box; every invalid value refused with the variable, the value and what is
allowed; nothing clamped; the key never shown."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.settings import PROJECT_ROOT, SETTINGS_ENV_VARS, SettingsError, load_settings


@pytest.fixture
def env(monkeypatch):
    """A clean environment of the settings' variables; returns setenv."""
    for name in SETTINGS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch.setenv


def test_every_variable_of_the_readme_table_is_a_setting():
    readme = (PROJECT_ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in (PROJECT_ROOT / "docs").glob("*.md"))
    table = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    wanted = {n for n in table if n.startswith(("COMPLIANCE_", "GEOIP_", "ANTHROPIC_"))}
    assert len(wanted) >= 16
    # COMPLIANCE_DBT_MEMORY_LIMIT is read by dbt's profiles.yml; validated here all the same
    assert wanted <= set(SETTINGS_ENV_VARS)


def test_defaults(env):
    s = load_settings()
    assert s.api_base_url == "https://api.anthropic.com" and s.api_key is None
    assert (s.api_timeout_seconds, s.api_max_retries, s.api_requests_per_minute) == (30.0, 8, 600)
    assert s.warehouse_path == PROJECT_ROOT / "data" / "warehouse.duckdb"
    assert s.serving_path == PROJECT_ROOT / "data" / "marts.duckdb"
    assert (s.ingest_lag_minutes, s.repull_minutes, s.repull_every_minutes) == (2, 60, 15)
    assert s.store_message_text is True
    assert (s.duckdb_memory_limit, s.dbt_memory_limit) == ("256MB", "512MB")
    assert s.geoip_city_db is None and s.alert_webhook_url is None
    assert s.partitions_start.day == 1 and s.partitions_start <= datetime.now(timezone.utc)


def test_valid_values_are_parsed(env, tmp_path):
    mmdb = tmp_path / "city.mmdb"
    mmdb.write_bytes(b"x")
    for name, value in {"COMPLIANCE_API_BASE_URL": "http://127.0.0.1:8080/", "COMPLIANCE_INGEST_LAG_MINUTES": "4",
                        "COMPLIANCE_REPULL_MINUTES": "5", "COMPLIANCE_REPULL_EVERY_MINUTES": "60",
                        "COMPLIANCE_STORE_MESSAGE_TEXT": "off", "COMPLIANCE_PARTITIONS_START": "2026-10-01",
                        "COMPLIANCE_WAREHOUSE_PATH": "w.duckdb", "GEOIP_CITY_DB": str(mmdb),
                        "COMPLIANCE_DUCKDB_MEMORY_LIMIT": "1.5GiB", "COMPLIANCE_API_REQUESTS_PER_MINUTE": ""}.items():
        env(name, value)
    s = load_settings()
    assert s.api_base_url == "http://127.0.0.1:8080"
    assert (s.ingest_lag_minutes, s.repull_minutes, s.repull_every_minutes) == (4, 5, 60)
    assert s.store_message_text is False
    assert s.partitions_start == datetime(2026, 10, 1, tzinfo=timezone.utc)
    assert s.warehouse_path == PROJECT_ROOT / "w.duckdb" and s.geoip_city_db == mmdb
    assert s.duckdb_memory_limit == "1.5GiB"
    assert s.api_requests_per_minute == 600  # empty = unset


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("COMPLIANCE_INGEST_LAG_MINUTES", "abc", "from 1 to 4"),
    ("COMPLIANCE_INGEST_LAG_MINUTES", "0", "from 1 to 4"),       # was clamped to 1 in silence
    ("COMPLIANCE_INGEST_LAG_MINUTES", "9", "from 1 to 4"),       # was clamped to 4 in silence
    ("COMPLIANCE_REPULL_EVERY_MINUTES", "7", "one of 5, 10, 15, 20, 30 or 60"),  # was replaced by 15 in silence
    ("COMPLIANCE_REPULL_MINUTES", "2", "multiple of 5, at least 5"),             # was raised to 5 in silence
    ("COMPLIANCE_REPULL_MINUTES", "12", "multiple of 5, at least 5"),
    ("COMPLIANCE_STORE_MESSAGE_TEXT", "flase", "true or false"),  # was read as true
    ("COMPLIANCE_API_BASE_URL", "api.anthropic.com", "http(s)://host"),
    ("COMPLIANCE_API_TIMEOUT_SECONDS", "0", "> 0"),
    ("COMPLIANCE_API_MAX_RETRIES", "-1", ">= 0"),
    ("COMPLIANCE_API_REQUESTS_PER_MINUTE", "lots", ">= 1"),
    ("COMPLIANCE_PARTITIONS_START", "last month", "ISO 8601"),
    ("COMPLIANCE_PARTITIONS_START", "2999-01-01", "not in the future"),
    ("COMPLIANCE_DUCKDB_MEMORY_LIMIT", "256", "256MB, 2GB"),
    ("COMPLIANCE_DBT_MEMORY_LIMIT", "two gigs", "256MB, 2GB"),
    ("GEOIP_CITY_DB", "/nonexistent/city.mmdb", "existing"),
    ("COMPLIANCE_ALERT_MAX_PER_TICK", "0", ">= 1"),
    ("COMPLIANCE_ALERT_RETRY_BASE_SECONDS", "soon", ">= 0"),   # a bare ValueError at the sensor tick before
])
def test_invalid_value_is_refused_naming_variable_value_and_allowed(env, name, value, allowed):
    env(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    line = next(line for line in message.splitlines() if name in line)
    assert value in line and allowed in line


def test_every_invalid_variable_is_reported_at_once(env):
    env("COMPLIANCE_INGEST_LAG_MINUTES", "5")
    env("COMPLIANCE_REPULL_EVERY_MINUTES", "7")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "COMPLIANCE_INGEST_LAG_MINUTES='5'" in message and "COMPLIANCE_REPULL_EVERY_MINUTES='7'" in message


def test_serving_file_must_not_be_the_warehouse(env):
    env("COMPLIANCE_WAREHOUSE_PATH", str(PROJECT_ROOT / "data" / "w.duckdb"))
    env("COMPLIANCE_SERVING_PATH", "data/w.duckdb")
    with pytest.raises(SettingsError, match="COMPLIANCE_SERVING_PATH=.*w.duckdb.*separate file"):
        load_settings()


def test_the_key_is_a_secret(env):
    env("ANTHROPIC_COMPLIANCE_ACCESS_KEY", "sk-ant-api01-secretvalue")
    env("COMPLIANCE_API_TIMEOUT_SECONDS", "soon")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "secretvalue" not in str(refused.value)
    env("COMPLIANCE_API_TIMEOUT_SECONDS", "5")
    s = load_settings()
    assert "secretvalue" not in repr(s) and s.api_key.get_secret_value() == "sk-ant-api01-secretvalue"


def test_the_webhook_url_is_a_secret_too(env):
    """A Slack webhook URL carries its token: refused without echoing it, never in the settings' repr."""
    env("COMPLIANCE_ALERT_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/tokenvalue")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    line = next(line for line in str(refused.value).splitlines() if "COMPLIANCE_ALERT_WEBHOOK_URL" in line)
    assert "tokenvalue" not in line and "hidden" in line and "http(s)://" in line
    env("COMPLIANCE_ALERT_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/tokenvalue")
    s = load_settings()
    assert "tokenvalue" not in repr(s) and "tokenvalue" not in str(s) and s.alert_webhook_url.endswith("tokenvalue")


def test_relative_paths_are_relative_to_the_project(env):
    env("COMPLIANCE_SERVING_PATH", "elsewhere/m.duckdb")
    assert load_settings().serving_path == PROJECT_ROOT / Path("elsewhere/m.duckdb")


def test_delivery_and_resources_read_the_validated_settings(env):
    from pipeline.defs.resources import build_resources
    from pipeline.monitors.delivery import DeliverySettings

    env("COMPLIANCE_ALERT_WEBHOOK_URL", " https://hooks.example/x/ ")
    env("COMPLIANCE_ALERT_MAX_PER_TICK", "5")
    env("COMPLIANCE_API_TIMEOUT_SECONDS", "2.5")
    delivery = DeliverySettings.from_env()
    assert delivery.webhook_url == "https://hooks.example/x/"  # kept as given, but for the spaces
    assert (delivery.max_per_tick, delivery.retry_base_seconds, delivery.retry_max_seconds) == (5, 30.0, 900.0)
    api = build_resources()["compliance_api"]
    assert (api.base_url, api.timeout_seconds, api.max_retries) == ("https://api.anthropic.com", 2.5, 8)
    env("COMPLIANCE_ALERT_RETRY_MAX_SECONDS", "-1")
    with pytest.raises(SettingsError, match="COMPLIANCE_ALERT_RETRY_MAX_SECONDS='-1'"):
        DeliverySettings.from_env()


def test_monitor_and_serving_variables_are_validated_naming_the_variable(env, monkeypatch, tmp_path):
    from pipeline.monitors.config import load_config
    from pipeline.settings import monitor_knobs

    env("COMPLIANCE_MONITORS_CONFIG", str(tmp_path / "missing.yaml"))
    env("COMPLIANCE_SERVING_FILE_GROUP", "no-such-group-xyz")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "COMPLIANCE_MONITORS_CONFIG=" in str(err.value) and "no such file" in str(err.value)
    assert "COMPLIANCE_SERVING_FILE_GROUP='no-such-group-xyz'" in str(err.value)
    with pytest.raises(SettingsError, match="COMPLIANCE_MONITOR__THRESHOLD is not a monitor setting"):
        monitor_knobs({"COMPLIANCE_MONITOR__THRESHOLD": "3"})
    monkeypatch.delenv("COMPLIANCE_MONITORS_CONFIG")
    monkeypatch.delenv("COMPLIANCE_SERVING_FILE_GROUP")
    env("COMPLIANCE_MONITOR__EXCESSIVE_FAILED_AUTH__THRESHOLD", "twelve")
    with pytest.raises(ValueError, match="COMPLIANCE_MONITOR__EXCESSIVE_FAILED_AUTH__THRESHOLD='twelve'"):
        load_config()  # the environment, through the settings
    env("COMPLIANCE_MONITOR__EXCESSIVE_FAILED_AUTH__THRESHOLD", "12")
    assert load_config().rule("excessive_failed_auth").threshold == 12
