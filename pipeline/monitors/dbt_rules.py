"""The marts' per-event rule matching (`monitor_rules` in int_activities: which monitors an event can feed),
generated from the monitors' configuration so that marts and monitors agree under any configuration: one source of
truth (pipeline/monitors/config.py + the configuration file), rendered to the dbt macro
dbt_project/macros/monitor_rules.sql.

The macro is rewritten (only when its text changes) by `python -m pipeline.monitors dbt-rules`, by
`python -m pipeline.defs.transform.prepare` (make setup / make run) and before every dbt invocation of the Dagster
dbt assets. The committed file is the default configuration's (tests/monitors/test_dbt_rules.py keeps it so).

Per-event condition of a rule, without its threshold and window: its types, excluded types, actor types, field
conditions and automated-user-agent test; the seed monitors' own filters (monitor 2's disabled flags, monitor 4's
embargo match as `is_embargoed`, monitor 6's status codes); for a sequence its first step. Disabled rules feed
nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.monitors.config import PROJECT_ROOT, MonitorsConfig, Rule
from pipeline.monitors.evaluate import _sql_literal, conditions_sql

MACRO_PATH = PROJECT_ROOT / "dbt_project" / "macros" / "monitor_rules.sql"
A = "{{ a }}"


def _jinja_literal(v: Any) -> str:
    text = _sql_literal(v)
    return "{% raw %}" + text + "{% endraw %}" if any(ch in text for ch in "{}%#") else text


def _in(values) -> str:
    return "(" + ", ".join(_jinja_literal(v) for v in values) + ")"


def event_condition(rule: Rule) -> str:
    parts = []
    if rule.types:
        parts.append(f"{A}.event_type in {_in(rule.types)}")
    if rule.exclude_types:
        parts.append(f"coalesce({A}.event_type not in {_in(rule.exclude_types)}, true)")
    if rule.actor_types:
        parts.append(f"{A}.actor_type in {_in(rule.actor_types)}")
    if rule.name == "compliance_logging_disabled":
        flags = " or ".join(f"lower({A}.raw ->> '$.{f}') = 'false'" for f in rule.disabled_flags) or "false"
        parts.append(f"({flags})")
    elif rule.name == "embargoed_location":
        parts.append(f"coalesce({A}.is_embargoed, false)")
    elif rule.name == "excessive_unauthorized_compliance_api":
        codes = ", ".join(str(int(c)) for c in rule.status_codes) or "null"
        parts.append(f"try_cast({A}.raw ->> '$.status_code' as double) in ({codes})")
    if rule.conditions:
        parts.append(conditions_sql(rule, raw=f"{A}.raw", literal=_jinja_literal))
    if rule.automated_user_agent:
        parts.append(f"coalesce({A}.ua_is_automated, false)")
    return " and ".join(parts) or "true"


def render_macro(config: MonitorsConfig) -> str:
    cases = [f"        case when {event_condition(r)}\n             then '{r.name}' end" for r in config.enabled_rules]
    body = ",\n".join(cases)
    listed = f"list_filter([\n{body}\n    ]::varchar[], lambda rule: rule is not null)" if cases else "[]::varchar[]"
    return (
        "{#- GENERATED from the monitors' configuration by `python -m pipeline.monitors dbt-rules`\n"
        "    (pipeline/monitors/dbt_rules.py): do not edit. The per-event conditions of the enabled monitors, without\n"
        "    their thresholds and windows: which rules an event can feed. The alerts are in marts.alerts. -#}\n"
        "{% macro monitor_rules(a) -%}\n"
        f"    {listed}\n"
        "{%- endmacro %}\n")


def write_macro(config: MonitorsConfig, path: Path = MACRO_PATH) -> tuple[Path, bool]:
    """Write the macro when its text differs (an unchanged file keeps dbt's partial parse)."""
    text = render_macro(config)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path, False
    tmp = path.with_suffix(".sql.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path, True
