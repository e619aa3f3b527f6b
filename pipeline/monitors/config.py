"""The 9 monitors as configuration: every window, threshold, type list and the embargo list (docs/monitors: README.md
beside this file).

Precedence, lowest first:
  1. the built-in defaults below (monitors.md);
  2. a YAML or JSON file named by COMPLIANCE_MONITORS_CONFIG;
  3. one environment variable per knob: COMPLIANCE_MONITOR__<MONITOR>__<FIELD>, e.g.
     COMPLIANCE_MONITOR__EXCESSIVE_FAILED_AUTH__THRESHOLD=10 (lists comma-separated, booleans true/false).

Embargo list (monitor 4), first found wins:
  1. `embargo:` entries inline in the config file;
  2. the CSV named by COMPLIANCE_MONITORS_EMBARGO_FILE (or `embargo_file:` in the config file);
  3. the dbt seed dbt_project/seeds/embargoed_regions.csv when it exists (shared with the marts, so editing the seed
     changes dashboards and the monitor together);
  4. the built-in DEFAULT_EMBARGO.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

CONFIG_ENV = "COMPLIANCE_MONITORS_CONFIG"
EMBARGO_FILE_ENV = "COMPLIANCE_MONITORS_EMBARGO_FILE"
KNOB_ENV_PREFIX = "COMPLIANCE_MONITOR__"

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMBARGO_SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "embargoed_regions.csv"

# The grid every sliding window ends on: the ingest partition size.
PARTITION_MINUTES = 5

SIGN_IN_FLOW = ("sso_login_initiated", "sso_login_failed", "sso_login_succeeded", "magic_link_login_initiated",
                "magic_link_login_failed", "magic_link_login_succeeded", "phone_code_sent", "phone_code_verified",
                "sso_second_factor_magic_link", "social_login_succeeded")


@dataclass(frozen=True)
class Rule:
    """One monitor. A window of `window_minutes` ends every `step_minutes` (on the UTC grid); it fires when its
    count of matching events for one group is > `threshold` (monitor 8: see `floor`/`sigmas`)."""

    name: str
    description: str
    types: tuple[str, ...] = ()            # matched activity types; empty = any type
    exclude_types: tuple[str, ...] = ()    # never matched
    actor_types: tuple[str, ...] = ()      # matched actor types; empty = any
    window_minutes: int = 15
    step_minutes: int = PARTITION_MINUTES
    threshold: int = 0
    enabled: bool = True
    # monitor 2: boolean fields of the settings event whose value `false` means logging is off
    disabled_flags: tuple[str, ...] = ()
    # monitor 6: HTTP status codes of `compliance_api_accessed` that count
    status_codes: tuple[int, ...] = ()
    # monitor 8: an hour fires when count >= floor and count > mean + sigmas * stddev of the actor's hourly counts
    # over the previous baseline_days (zeros included, from the actor's first seen activity); with less than
    # min_history_hours of history, the floor alone
    floor: int = 0
    sigmas: float = 0.0
    baseline_days: int = 0
    min_history_hours: int = 0

    def validate(self) -> None:
        if self.step_minutes <= 0 or 1440 % self.step_minutes:
            raise ValueError(f"{self.name}: step_minutes must divide a day, got {self.step_minutes}")
        if self.step_minutes % PARTITION_MINUTES:
            raise ValueError(f"{self.name}: step_minutes must be a multiple of {PARTITION_MINUTES}")
        if self.window_minutes <= 0 or self.window_minutes % self.step_minutes:
            raise ValueError(f"{self.name}: window_minutes must be a positive multiple of step_minutes "
                             f"({self.step_minutes}), got {self.window_minutes}")
        if self.threshold < 0:
            raise ValueError(f"{self.name}: threshold must be >= 0")

    @property
    def windows_per_span(self) -> int:
        return self.window_minutes // self.step_minutes


@dataclass(frozen=True)
class EmbargoEntry:
    code: str                        # ISO 3166-1 alpha-2 country ("IR") or ISO 3166-2 region ("UA-43")
    effective_from: datetime | None  # events before this time never match
    effective_to: datetime | None = None
    name: str = ""

    @property
    def is_region(self) -> bool:
        return "-" in self.code


def _utc(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


# US comprehensive sanctions programmes (OFAC) and the dates they took effect.
DEFAULT_EMBARGO: tuple[EmbargoEntry, ...] = (
    EmbargoEntry("CU", _utc(date(1962, 2, 7)), name="Cuba"),
    EmbargoEntry("IR", _utc(date(1995, 5, 6)), name="Iran"),
    EmbargoEntry("KP", _utc(date(2008, 6, 26)), name="North Korea"),
    EmbargoEntry("SY", _utc(date(2011, 8, 18)), name="Syria"),
    EmbargoEntry("UA-43", _utc(date(2014, 12, 19)), name="Crimea"),
    EmbargoEntry("UA-40", _utc(date(2014, 12, 19)), name="Sevastopol"),
    EmbargoEntry("UA-14", _utc(date(2022, 2, 21)), name="Donetsk"),
    EmbargoEntry("UA-09", _utc(date(2022, 2, 21)), name="Luhansk"),
)

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("admin_or_platform_api_key_created",
         "An Admin API key or a platform API key was created.",
         types=("admin_api_key_created", "platform_api_key_created")),
    Rule("compliance_logging_disabled",
         "Compliance API logging (or the Compliance API itself) was turned off.",
         types=("org_compliance_api_settings_updated",),
         disabled_flags=("compliance_api_logging_enabled", "compliance_api_enabled")),
    Rule("ip_restriction_deleted",
         "An organization IP restriction was deleted.",
         types=("org_ip_restriction_deleted",)),
    Rule("embargoed_location",
         "Activity from an IP address that geolocates to an embargoed country or region.",
         types=()),
    Rule("excessive_failed_auth",
         "More than 5 failed sign-ins by one actor in 15 minutes.",
         types=("sso_login_failed", "magic_link_login_failed", "step_up_authentication_failed"),
         threshold=5),
    Rule("excessive_unauthorized_compliance_api",
         "More than 5 Compliance API calls answered 401/403 for one key (or IP) in 15 minutes.",
         types=("compliance_api_accessed",), status_codes=(401, 403), threshold=5),
    Rule("org_destructive_activity",
         "Organization deletion, bulk deletion, user removal or taint.",
         types=("org_deletion_requested", "org_bulk_delete_initiated", "org_deleted_via_bulk", "org_user_deleted",
                "org_taint_added")),
    Rule("resource_deletion_outlier",
         "An actor deleted unusually many chats, projects or files in one hour (>= 5 and > mean + 2 sigma of "
         "their hourly deletions over 30 days).",
         types=("claude_chat_deleted", "claude_project_deleted", "claude_file_deleted",
                "claude_project_file_deleted", "claude_project_document_deleted"),
         window_minutes=60, step_minutes=60, floor=5, sigmas=2.0, baseline_days=30, min_history_hours=24),
    Rule("unauthenticated_activity",
         "Activity by an unauthenticated actor outside the ordinary sign-in flow.",
         actor_types=("unauthenticated_user_actor",), exclude_types=SIGN_IN_FLOW),
)

MONITOR_NAMES: tuple[str, ...] = tuple(r.name for r in DEFAULT_RULES)


@dataclass(frozen=True)
class MonitorsConfig:
    rules: tuple[Rule, ...] = DEFAULT_RULES
    embargo: tuple[EmbargoEntry, ...] = DEFAULT_EMBARGO
    embargo_source: str = "built-in default"
    # a check executed outside a partitioned run evaluates the windows of this span before the newest ingested data
    adhoc_lookback_minutes: int = 60
    # events shown in check metadata and webhook messages
    sample_size: int = 10
    severity: str = "critical"

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def enabled_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)


# ---------------------------------------------------------------------------------------------------------------
# loading

_RULE_FIELDS = {f.name: f for f in fields(Rule) if f.name != "name"}
_TOP_LEVEL = {"monitors", "embargo", "embargo_file", "adhoc_lookback_minutes", "sample_size"}


def _coerce(rule_name: str, key: str, value: Any) -> Any:
    if key not in _RULE_FIELDS:
        raise ValueError(f"monitor {rule_name}: unknown setting {key!r} (known: {', '.join(sorted(_RULE_FIELDS))})")
    default = getattr(DEFAULT_RULES[0], key)
    if key in ("types", "exclude_types", "actor_types", "disabled_flags", "status_codes"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"monitor {rule_name}: {key} must be a list")
        return tuple(int(v) for v in value) if key == "status_codes" else tuple(str(v) for v in value)
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(f"monitor {rule_name}: {key} must be true or false, got {value!r}")
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return str(value)


def _apply(rules: dict[str, Rule], name: str, settings: Mapping[str, Any]) -> None:
    if name not in rules:
        raise ValueError(f"unknown monitor {name!r} (known: {', '.join(rules)})")
    rules[name] = replace(rules[name], **{k: _coerce(name, k, v) for k, v in settings.items()})


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return _utc(value)
    text = str(value).strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _entry(row: Mapping[str, Any]) -> EmbargoEntry:
    """One embargo row from a file or the seed. A row names one location: `code`, or `country_iso` (+ optional
    `subdivision_iso`/`region_iso`, which makes it a region); `effective_from` (date or timestamp, empty = always),
    optional `effective_to`, optional `name`."""
    row = {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
    code = row.get("code") or row.get("location_code") or row.get("iso_code")
    if not code:
        region = row.get("subdivision_iso") or row.get("region_iso") or row.get("region_code")
        country = row.get("country_iso") or row.get("country_code") or row.get("country")
        if region:
            code = region if "-" in str(region) else f"{country}-{region}"
        else:
            code = country
    if not code:
        raise ValueError(f"embargo row without a country or region code: {dict(row)}")
    name = row.get("name") or row.get("region_name") or row.get("country_name") or ""
    return EmbargoEntry(str(code).upper(), _parse_time(row.get("effective_from")),
                        _parse_time(row.get("effective_to") or row.get("effective_until")), str(name))


def read_embargo_csv(path: str | Path) -> tuple[EmbargoEntry, ...]:
    with open(path, newline="", encoding="utf-8") as f:
        return tuple(_entry(row) for row in csv.DictReader(f) if any((v or "").strip() for v in row.values()))


def _read_file(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml  # a Dagster dependency

        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)} (known: {sorted(_TOP_LEVEL)})")
    return data


def load_config(env: Mapping[str, str] | None = None, *, seed_path: Path | None = None) -> MonitorsConfig:
    """Defaults, then the config file, then per-knob environment variables (module docstring)."""
    env = os.environ if env is None else env
    rules = {r.name: r for r in DEFAULT_RULES}
    data: dict = {}
    config_path = env.get(CONFIG_ENV)
    if config_path:
        data = _read_file(Path(config_path))
        for name, settings in (data.get("monitors") or {}).items():
            _apply(rules, name, settings or {})
    for key, value in env.items():
        if key.startswith(KNOB_ENV_PREFIX):
            parts = key[len(KNOB_ENV_PREFIX):].split("__")
            if len(parts) != 2:
                raise ValueError(f"{key}: expected {KNOB_ENV_PREFIX}<MONITOR>__<SETTING>")
            _apply(rules, parts[0].lower(), {parts[1].lower(): value})
    for rule in rules.values():
        rule.validate()

    embargo_file = env.get(EMBARGO_FILE_ENV) or data.get("embargo_file")
    seed = EMBARGO_SEED if seed_path is None else seed_path
    if data.get("embargo") is not None:
        embargo, source = tuple(_entry(e) for e in data["embargo"]), f"{config_path} (embargo:)"
    elif embargo_file:
        embargo, source = read_embargo_csv(embargo_file), str(embargo_file)
    elif seed.exists():
        embargo, source = read_embargo_csv(seed), str(seed)
    else:
        embargo, source = DEFAULT_EMBARGO, "built-in default"
    return MonitorsConfig(
        rules=tuple(rules[n] for n in MONITOR_NAMES),
        embargo=embargo,
        embargo_source=source,
        adhoc_lookback_minutes=int(data.get("adhoc_lookback_minutes", 60)),
        sample_size=int(data.get("sample_size", 10)),
    )


def describe(config: MonitorsConfig) -> dict[str, Any]:
    """The effective configuration as plain data (for check metadata and `python -m pipeline.monitors`)."""
    out: dict[str, Any] = {"rules": {}, "embargo_source": config.embargo_source,
                           "embargo": [{"code": e.code, "effective_from": e.effective_from.isoformat()
                                        if e.effective_from else None,
                                        "effective_to": e.effective_to.isoformat() if e.effective_to else None,
                                        "name": e.name} for e in config.embargo]}
    for r in config.rules:
        out["rules"][r.name] = {f.name: getattr(r, f.name) for f in fields(Rule) if f.name != "name"}
    return out
