"""The marts' rule matching is generated from the monitors' configuration: the committed macro is the default
configuration's, and under another configuration the generated SQL flags exactly the events the monitors match."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline.monitors import load_config, run_monitors
from pipeline.monitors.alerts import read_alerts
from pipeline.monitors.dbt_rules import MACRO_PATH, render_macro
from pipeline.warehouse.connection import open_warehouse
from tests.monitors.rows import activity, at, load, unauth, user

UTC = timezone.utc
DAY = datetime(2026, 3, 2, tzinfo=UTC)
NO_SEED = Path("/nonexistent/embargoed_regions.csv")


def test_the_committed_macro_is_the_default_configuration():
    assert MACRO_PATH.read_text(encoding="utf-8") == render_macro(load_config(env={}))


def _macro_sql(text: str, alias: str) -> str:
    body = text.split("{% macro monitor_rules(a) -%}")[1].split("{%- endmacro %}")[0]
    return re.sub(r"\{% (end)?raw %\}", "", body.replace("{{ a }}", alias))


def test_under_a_custom_configuration_marts_and_monitors_flag_the_same_events(tmp_path):
    path = tmp_path / "monitors.json"
    path.write_text(json.dumps({
        "monitors": {"ip_restriction_deleted": {"types": ["org_ip_restriction_deleted", "org_ip_restriction_updated"]},
                     "excessive_failed_auth": {"threshold": 0},
                     "excessive_unauthorized_compliance_api": {"status_codes": [401], "threshold": 0},
                     "sso_disabled": {"enabled": False}},
        "custom_rules": {"xlsx_exports": {"types": ["claude_file_exported"], "threshold": 0, "conditions": [
            {"field": "filename", "op": "matches", "value": r"\.xlsx{1}$"}]}}}))
    config = load_config(env={"COMPLIANCE_MONITORS_CONFIG": str(path)}, seed_path=NO_SEED)
    macro = render_macro(config)
    assert "xlsx_exports" in macro and "'sso_disabled'" not in macro and "{% raw %}" in macro
    a = user("a@example.com")
    records = [
        activity("org_ip_restriction_updated", at(DAY, 60), actor=a),
        activity("sso_login_failed", at(DAY, 120), actor=unauth("81.2.69.160", "x@example.com")),
        activity("compliance_api_accessed", at(DAY, 180), actor=a, status_code=401),
        activity("compliance_api_accessed", at(DAY, 240), actor=a, status_code=403),
        activity("claude_file_exported", at(DAY, 300), actor=a, filename="pay.xlsx"),
        activity("claude_file_exported", at(DAY, 360), actor=a, filename="pay.pdf"),
        activity("org_sso_toggled", at(DAY, 420), actor=a, enabled=False),
        activity("claude_chat_created", at(DAY, 480), actor=a),
    ]
    with open_warehouse(tmp_path / "w.duckdb") as conn:
        load(conn, tmp_path, records, DAY, DAY + timedelta(days=1))
        run_monitors(conn, config, DAY, DAY + timedelta(days=1), now=DAY + timedelta(days=1))
        alerted = {(a["monitor"], i) for a in read_alerts(conn) for i in a["activity_ids"]}
        flagged = {(rule, i) for i, rules in conn.execute(f"""
            SELECT id, {_macro_sql(macro, 'x')} FROM (
                SELECT a.id, a.type AS event_type, a.actor_type, a.raw, false AS is_embargoed,
                       u.is_automated AS ua_is_automated
                FROM raw.activities a LEFT JOIN enrichment.user_agents u USING (user_agent)) x""").fetchall()
            for rule in rules}
    assert flagged == alerted
    assert {m for m, _ in flagged} == {"ip_restriction_deleted", "excessive_failed_auth",
                                       "excessive_unauthorized_compliance_api", "xlsx_exports"}
