"""The monitors as configuration: the 9 seed monitors (monitors.md), the peers' rules (peers.md §4) and custom rules
from the configuration file, with every window, threshold, type list, field condition and the embargo list
(docs/monitors: README.md beside this file).

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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.settings import MONITOR_KNOB_PREFIX

CONFIG_ENV = "COMPLIANCE_MONITORS_CONFIG"
EMBARGO_FILE_ENV = "COMPLIANCE_MONITORS_EMBARGO_FILE"
KNOB_ENV_PREFIX = MONITOR_KNOB_PREFIX

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMBARGO_SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "embargoed_regions.csv"
ACTIVITY_CATALOG_SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "activity_catalog.csv"

# The grid every sliding window ends on: the ingest partition size.
PARTITION_MINUTES = 5

SIGN_IN_FLOW = ("sso_login_initiated", "sso_login_failed", "sso_login_succeeded", "magic_link_login_initiated",
                "magic_link_login_failed", "magic_link_login_succeeded", "phone_code_sent", "phone_code_verified",
                "sso_second_factor_magic_link", "social_login_succeeded")


CONDITION_OPS = ("eq", "ne", "in", "not_in", "exists", "missing", "is_true", "is_false", "gt", "gte", "lt", "lte",
                 "matches")
RULE_KINDS = ("threshold", "first_seen", "impossible_travel", "sequence")
GROUP_BY_BUILTIN = ("none", "actor", "ip", "api_key", "actor_type")
_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
_TYPE_NAME = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class Condition:
    """A test on one field of the activity record (a dotted JSON path, e.g. `audience.type`; when a step of the path
    is a list of objects, any element may match). `values` is a tuple (one element for eq/ne/gt/...)."""

    field: str
    op: str
    values: tuple = ()

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "values": list(self.values)}


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
    # --- peer and custom rules (pipeline/monitors/README.md) ---
    source: str = "seed (monitors.md)"
    kind: str = "threshold"                # threshold | first_seen | impossible_travel | sequence
    conditions: tuple[Condition, ...] = ()  # field conditions, combined by `match`
    match: str = "all"                      # all | any (of the conditions)
    group_by: str = "none"                 # none | actor | ip | api_key | actor_type | a JSON field path
    automated_user_agent: bool = False     # only events whose user agent is automated (SDK, script, bot, scanner)
    lookback_days: int = 0                 # first_seen: no earlier matching event of the group in this many days
    speed_kmh: float = 0.0                 # impossible_travel: implied speed above which a pair fires
    min_distance_km: float = 0.0           # impossible_travel: closer pairs never fire (GeoIP precision)
    max_gap_minutes: int = 0               # impossible_travel: pair span; sequence: follow-up delay
    follow_types: tuple[str, ...] = ()     # sequence: the second step (same actor, within max_gap_minutes)
    custom: bool = False                   # defined in the configuration file

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
        if self.kind not in RULE_KINDS:
            raise ValueError(f"{self.name}: kind must be one of {', '.join(RULE_KINDS)}, got {self.kind!r}")
        if self.match not in ("all", "any"):
            raise ValueError(f"{self.name}: match must be 'all' or 'any', got {self.match!r}")
        if self.group_by not in GROUP_BY_BUILTIN and not _FIELD_PATH.match(self.group_by):
            raise ValueError(f"{self.name}: group_by must be one of {', '.join(GROUP_BY_BUILTIN)} or a field path "
                             f"like `audience.type`, got {self.group_by!r}")
        for t in self.types + self.exclude_types + self.follow_types:
            if not _TYPE_NAME.match(t):
                raise ValueError(f"{self.name}: {t!r} is not an activity type name")
        for c in self.conditions:
            if not _FIELD_PATH.match(c.field):
                raise ValueError(f"{self.name}: condition field {c.field!r} is not a field path (letters, digits, "
                                 f"_ and dots)")
            if c.op not in CONDITION_OPS:
                raise ValueError(f"{self.name}: condition on {c.field}: unknown op {c.op!r} "
                                 f"(known: {', '.join(CONDITION_OPS)})")
            if c.op in ("exists", "missing", "is_true", "is_false"):
                if c.values:
                    raise ValueError(f"{self.name}: condition {c.field} {c.op} takes no value")
            elif c.op in ("in", "not_in"):
                if not c.values:
                    raise ValueError(f"{self.name}: condition {c.field} {c.op} needs a non-empty list of values")
            elif len(c.values) != 1:
                raise ValueError(f"{self.name}: condition {c.field} {c.op} needs exactly one value")
            if c.op in ("gt", "gte", "lt", "lte") and (isinstance(c.values[0], bool)
                                                       or not isinstance(c.values[0], (int, float))):
                raise ValueError(f"{self.name}: condition {c.field} {c.op} needs a number, got {c.values[0]!r}")
            if c.op == "matches":
                try:
                    re.compile(str(c.values[0]))
                except re.error as e:
                    raise ValueError(f"{self.name}: condition {c.field} matches: bad regular expression ({e})")
        if self.kind == "first_seen" and self.lookback_days <= 0:
            raise ValueError(f"{self.name}: first_seen needs lookback_days > 0")
        if self.kind == "impossible_travel" and (self.speed_kmh <= 0 or self.max_gap_minutes <= 0):
            raise ValueError(f"{self.name}: impossible_travel needs speed_kmh > 0 and max_gap_minutes > 0")
        if self.kind == "sequence" and (not self.follow_types or self.max_gap_minutes <= 0):
            raise ValueError(f"{self.name}: sequence needs follow_types and max_gap_minutes > 0")

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

SEED_MONITOR_NAMES: tuple[str, ...] = tuple(r.name for r in DEFAULT_RULES)

# Changes that hand out or remove control of the organization: the follow-up step of the "logging disabled, then a
# privileged change" sequence and the scope of the automated-client rule (one list for both).
PRIVILEGED_CHANGE_TYPES = ("role_assignment_granted", "primary_owner_transferred", "org_sso_toggled",
                           "org_sso_connection_deactivated", "org_sso_connection_deleted",
                           "org_magic_link_second_factor_toggled", "admin_api_key_deleted", "service_key_created",
                           "service_key_revoked", "mcp_server_created", "org_data_export_started")
ADMIN_ROLES_REGEX = r"(^|[:/.])(admin|owner|primary_owner|membership_admin)$"
LOGGING_OFF = (Condition("compliance_api_logging_enabled", "is_false"), Condition("compliance_api_enabled", "is_false"))
SIGN_IN_SUCCESS = ("sso_login_succeeded", "magic_link_login_succeeded", "social_login_succeeded")

# The peers' rules (peers.md §4) on the same engine. Impossible travel is disabled by default: it is noisy by nature
# (VPN and mobile-carrier exits, GeoIP city error, travellers on a plane's Wi-Fi).
PEER_RULES: tuple[Rule, ...] = (
    Rule("admin_role_granted", "An admin or owner role (admin, owner, primary_owner, membership_admin, possibly "
         "namespaced) was granted.", types=("role_assignment_granted",),
         conditions=(Condition("role", "matches", (ADMIN_ROLES_REGEX,)),),
         source="Datadog def-000-gb2, Elastic Admin Role Assigned, Panther role granted"),
    Rule("primary_owner_transferred", "The primary owner role was transferred to another member.",
         types=("primary_owner_transferred",),
         source="Elastic Primary Owner Transferred, Panther primary owner transferred"),
    Rule("sso_disabled", "SSO was turned off for the organization.", types=("org_sso_toggled",),
         conditions=(Condition("enabled", "is_false"),), source="Datadog def-000-7dn, Panther SSO disabled"),
    Rule("sso_connection_removed", "An SSO connection was deactivated or deleted.",
         types=("org_sso_connection_deactivated", "org_sso_connection_deleted"),
         source="Datadog def-000-mph, Elastic SSO deactivated"),
    Rule("magic_link_second_factor_disabled", "The magic-link second factor was turned off.",
         types=("org_magic_link_second_factor_toggled",), conditions=(Condition("enabled", "is_false"),),
         source="Elastic Magic-link 2FA disabled"),
    Rule("resource_shared_publicly", "An artifact or project was shared with anyone with the link / publicly.",
         types=("claude_artifact_sharing_updated", "claude_project_sharing_updated"),
         conditions=(Condition("audience.type", "in", ("anyone_with_link", "public")),),
         source="Elastic Artifact Shared Publicly, Panther artifact shared publicly"),
    Rule("access_key_changed", "A Compliance Access (service) key was created or revoked, or an Admin API key was "
         "deleted (Admin API key creation is the seed monitor admin_or_platform_api_key_created).",
         types=("service_key_created", "service_key_revoked", "admin_api_key_deleted"),
         source="Elastic Admin/Compliance API Key Created, Panther admin key deleted, service key created/revoked"),
    Rule("mcp_server_created", "An MCP server was added to the organization.", types=("mcp_server_created",),
         source="Elastic MCP Server Created, Panther MCP server created"),
    Rule("first_data_export", "An organization data export was started by an actor who started none in the "
         "previous 30 days.", types=("org_data_export_started",), kind="first_seen", group_by="actor",
         lookback_days=30, source="Elastic Data Export Started"),
    Rule("impossible_travel", "Two sign-ins of one actor from public IPs at least 500 km apart whose distance over "
         "time exceeds 1,000 km/h (pairs at most 24 h apart). Disabled by default: noisy by nature (VPN exits, "
         "GeoIP error).", types=SIGN_IN_SUCCESS, kind="impossible_travel", group_by="actor", speed_kmh=1000.0,
         min_distance_km=500.0, max_gap_minutes=1440, enabled=False, source="Elastic Impossible Travel Login"),
    Rule("automated_privileged_action", "A privileged or destructive change made from an automated client or "
         "scanner user agent (SDK, scripting library, bot, scanner).", types=PRIVILEGED_CHANGE_TYPES,
         automated_user_agent=True, group_by="actor", source="Elastic Suspicious User Agent"),
    Rule("excessive_chat_deletions", "30 or more chats deleted by one actor in one UTC day.",
         types=("claude_chat_deleted",), group_by="actor", window_minutes=1440, step_minutes=1440, threshold=29,
         source="Elastic Excessive Chat Deletion"),
    Rule("excessive_chat_access_failures", "50 or more failed chat accesses by one actor in 10 minutes.",
         types=("claude_chat_access_failed",), group_by="actor", window_minutes=10, step_minutes=5, threshold=49,
         source="Panther excessive chat access failures"),
    Rule("logging_disabled_then_privileged_change", "Compliance logging turned off, followed within 1 hour by a "
         "privileged change by the same actor.", types=("org_compliance_api_settings_updated",),
         conditions=LOGGING_OFF, match="any", kind="sequence", follow_types=PRIVILEGED_CHANGE_TYPES,
         max_gap_minutes=60, group_by="actor", source="Elastic Compliance Logging Disabled + sensitive admin action"),
)

BUILTIN_RULES: tuple[Rule, ...] = DEFAULT_RULES + PEER_RULES
MONITOR_NAMES: tuple[str, ...] = tuple(r.name for r in BUILTIN_RULES)


@dataclass(frozen=True)
class NoDataSettings:
    """The no-data monitor (`no_data:` in the config file): an alert when nothing was ingested for `after_minutes`
    while the ingest schedule runs, or when every ingest run failed (the API answering errors) for that long."""

    enabled: bool = True
    after_minutes: int = 60

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> "NoDataSettings":
        if not isinstance(data, Mapping):
            raise ValueError("no_data must be a mapping {enabled, after_minutes}")
        unknown = set(data) - {"enabled", "after_minutes"}
        if unknown:
            raise ValueError(f"no_data: unknown settings {sorted(unknown)} (known: after_minutes, enabled)")
        out = cls(enabled=bool(data.get("enabled", True)), after_minutes=data.get("after_minutes", 60))
        if not isinstance(out.after_minutes, int) or isinstance(out.after_minutes, bool) or out.after_minutes < 5:
            raise ValueError(f"no_data.after_minutes must be an integer >= 5, got {out.after_minutes!r}")
        return out


@dataclass(frozen=True)
class MonitorsConfig:
    rules: tuple[Rule, ...] = BUILTIN_RULES
    embargo: tuple[EmbargoEntry, ...] = DEFAULT_EMBARGO
    embargo_source: str = "built-in default"
    # a check executed outside a partitioned run evaluates the windows of this span before the newest ingested data
    adhoc_lookback_minutes: int = 60
    # events shown in check metadata and webhook messages
    sample_size: int = 10
    severity: str = "critical"
    # an alert already notified is posted again once it has grown by this many events (0 = never)
    renotify_growth: int = 10
    no_data: NoDataSettings = field(default_factory=lambda: NoDataSettings())

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

_RULE_FIELDS = {f.name: f for f in fields(Rule) if f.name not in ("name", "custom")}
_TOP_LEVEL = {"monitors", "custom_rules", "embargo", "embargo_file", "adhoc_lookback_minutes", "sample_size",
              "renotify_growth", "no_data"}
_LIST_FIELDS = ("types", "exclude_types", "actor_types", "disabled_flags", "status_codes", "follow_types")
# custom rules: the generic threshold engine only (kinds with their own SQL are the built-in rules')
_CUSTOM_FIELDS = {"description", "enabled", "types", "exclude_types", "actor_types", "conditions", "match",
                  "group_by", "window_minutes", "step_minutes", "threshold", "automated_user_agent"}


def _conditions(rule_name: str, value: Any) -> tuple[Condition, ...]:
    """`conditions:` as a list of {field, op, value | values}; a mapping {field: value} is shorthand for eq / in."""
    if isinstance(value, Mapping):
        value = [{"field": k, "op": "in" if isinstance(v, list) else "eq",
                  ("values" if isinstance(v, list) else "value"): v} for k, v in value.items()]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"monitor {rule_name}: conditions must be a list of {{field, op, value}}")
    out = []
    for c in value:
        if not isinstance(c, Mapping) or "field" not in c:
            raise ValueError(f"monitor {rule_name}: each condition needs a `field` (got {c!r})")
        unknown = set(c) - {"field", "op", "value", "values"}
        if unknown:
            raise ValueError(f"monitor {rule_name}: condition on {c['field']}: unknown keys {sorted(unknown)}")
        op = str(c.get("op", "in" if "values" in c else "eq"))
        if "values" in c:
            vals = c["values"]
            if not isinstance(vals, (list, tuple)):
                raise ValueError(f"monitor {rule_name}: condition on {c['field']}: `values` must be a list")
        else:
            vals = [c["value"]] if "value" in c else []
        for v in vals:
            if not isinstance(v, (str, int, float, bool)):
                raise ValueError(f"monitor {rule_name}: condition on {c['field']}: values must be scalars, got {v!r}")
        out.append(Condition(str(c["field"]), op, tuple(vals)))
    return tuple(out)


def _coerce(rule_name: str, key: str, value: Any) -> Any:
    if key not in _RULE_FIELDS:
        raise ValueError(f"monitor {rule_name}: unknown setting {key!r} (known: {', '.join(sorted(_RULE_FIELDS))})")
    default = getattr(BUILTIN_RULES[0], key)
    if key == "conditions":
        return _conditions(rule_name, value)
    if key in _LIST_FIELDS:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"monitor {rule_name}: {key} must be a list")
        try:
            return tuple(int(v) for v in value) if key == "status_codes" else tuple(str(v) for v in value)
        except ValueError:
            raise ValueError(f"monitor {rule_name}: {key} must be a list of integers, got {value!r}") from None
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(f"monitor {rule_name}: {key} must be true or false, got {value!r}")
            return value.strip().lower() in ("1", "true", "yes", "on")
        if not isinstance(value, (bool, int)):
            raise ValueError(f"monitor {rule_name}: {key} must be true or false, got {value!r}")
        return bool(value)
    try:
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"monitor {rule_name}: {key} must be a number, got {value!r}") from None
    return str(value)


def _apply(rules: dict[str, Rule], name: str, settings: Mapping[str, Any]) -> None:
    if name not in rules:
        raise ValueError(f"unknown monitor {name!r} (known: {', '.join(rules)}; new rules go under custom_rules:)")
    if not isinstance(settings, Mapping):
        raise ValueError(f"monitor {name}: expected a mapping of settings, got {settings!r}")
    rules[name] = replace(rules[name], **{k: _coerce(name, k, v) for k, v in settings.items()})


def _custom_rule(name: str, settings: Any, known_types: frozenset[str] | None) -> Rule:
    """A rule added in the configuration file (custom_rules:), validated here so that a bad one stops the load."""
    where = f"custom rule {name!r}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{where}: names are lower-case letters, digits and _ (2-63 characters)")
    if name in MONITOR_NAMES:
        raise ValueError(f"{where}: the name of a built-in monitor (tune it under monitors: instead)")
    if not isinstance(settings, Mapping):
        raise ValueError(f"{where}: expected a mapping of settings")
    unknown = set(settings) - _CUSTOM_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown settings {sorted(unknown)} (known: {', '.join(sorted(_CUSTOM_FIELDS))})")
    if not settings.get("types") and not settings.get("actor_types") and not settings.get("conditions"):
        raise ValueError(f"{where}: needs at least one of types, actor_types or conditions (it would match every "
                         f"activity)")
    if "threshold" not in settings:
        raise ValueError(f"{where}: threshold is required (the alert fires when a window's count is > threshold)")
    rule = Rule(name, str(settings.get("description") or f"Custom rule {name}."),
                source="custom (configuration file)", custom=True)
    try:
        rule = replace(rule, **{k: _coerce(name, k, v) for k, v in settings.items() if k != "description"})
        rule.validate()
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if known_types is not None:
        unknown_types = [t for t in rule.types + rule.exclude_types if t not in known_types]
        if unknown_types:
            raise ValueError(f"{where}: unknown activity types {unknown_types} (not in the activity catalog; "
                             f"check the spelling)")
    return rule


def _known_types() -> frozenset[str] | None:
    if not ACTIVITY_CATALOG_SEED.exists():
        return None
    with open(ACTIVITY_CATALOG_SEED, newline="", encoding="utf-8") as f:
        return frozenset(row["event_type"] for row in csv.DictReader(f))


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
    """Defaults, then the config file (custom rules, then settings), then per-knob environment variables."""
    from pipeline.settings import load_settings, monitor_knobs

    if env is None:  # the environment, through the settings (validated once, errors naming the variable)
        settings = load_settings()
        config_path = str(settings.monitors_config) if settings.monitors_config else None
        embargo_env = str(settings.monitors_embargo_file) if settings.monitors_embargo_file else None
    else:
        config_path, embargo_env = env.get(CONFIG_ENV), env.get(EMBARGO_FILE_ENV)
    knobs = monitor_knobs(env)
    rules = {r.name: r for r in BUILTIN_RULES}
    data: dict = {}
    if config_path:
        data = _read_file(Path(config_path))
        custom = data.get("custom_rules") or {}
        if not isinstance(custom, Mapping):
            raise ValueError(f"{config_path}: custom_rules must be a mapping of rule name -> settings")
        known = _known_types() if custom else None
        for name, settings in custom.items():
            rules[name] = _custom_rule(name, settings, known)
        monitors = data.get("monitors") or {}
        if not isinstance(monitors, Mapping):
            raise ValueError(f"{config_path}: monitors must be a mapping of monitor name -> settings")
        for name, settings in monitors.items():
            _apply(rules, name, settings or {})
    for variable, monitor, setting, value in knobs:
        try:
            _apply(rules, monitor, {setting: value})
        except ValueError as exc:
            raise ValueError(f"{variable}={value!r}: {exc}") from None
    for rule in rules.values():
        rule.validate()

    embargo_file = embargo_env or data.get("embargo_file")
    seed = EMBARGO_SEED if seed_path is None else seed_path
    if data.get("embargo") is not None:
        embargo, source = tuple(_entry(e) for e in data["embargo"]), f"{config_path} (embargo:)"
    elif embargo_file:
        embargo, source = read_embargo_csv(embargo_file), str(embargo_file)
    elif seed.exists():
        embargo, source = read_embargo_csv(seed), str(seed)
    else:
        embargo, source = DEFAULT_EMBARGO, "built-in default"
    renotify = data.get("renotify_growth", 10)
    if not isinstance(renotify, int) or isinstance(renotify, bool) or renotify < 0:
        raise ValueError(f"renotify_growth must be an integer >= 0 (0 = never re-notify), got {renotify!r}")
    return MonitorsConfig(
        rules=tuple(rules.values()),
        embargo=embargo,
        embargo_source=source,
        adhoc_lookback_minutes=int(data.get("adhoc_lookback_minutes", 60)),
        sample_size=int(data.get("sample_size", 10)),
        renotify_growth=renotify,
        no_data=NoDataSettings.parse(data.get("no_data") or {}),
    )


def describe(config: MonitorsConfig) -> dict[str, Any]:
    """The effective configuration as plain data (for check metadata and `python -m pipeline.monitors`)."""
    out: dict[str, Any] = {"rules": {}, "embargo_source": config.embargo_source,
                           "embargo": [{"code": e.code, "effective_from": e.effective_from.isoformat()
                                        if e.effective_from else None,
                                        "effective_to": e.effective_to.isoformat() if e.effective_to else None,
                                        "name": e.name} for e in config.embargo]}
    for r in config.rules:
        out["rules"][r.name] = {f.name: ([c.as_dict() for c in r.conditions] if f.name == "conditions"
                                         else getattr(r, f.name)) for f in fields(Rule) if f.name != "name"}
    out["renotify_growth"] = config.renotify_growth
    out["no_data"] = {"enabled": config.no_data.enabled, "after_minutes": config.no_data.after_minutes}
    return out
