"""Peer rules with their own shape (first seen, impossible travel, sequence, automated client, list-valued
fields) and custom rules from the configuration file, on hand-made rows in a real DuckDB file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.monitors import load_config, run_monitors
from pipeline.monitors.alerts import read_alerts
from pipeline.monitors.config import MONITOR_NAMES, PEER_RULES
from pipeline.warehouse.connection import open_warehouse
from tests.monitors.rows import activity, at, ip_in, load, user

UTC = timezone.utc
DAY = datetime(2026, 3, 2, tzinfo=UTC)
NO_SEED = Path("/nonexistent/embargoed_regions.csv")


def config(tmp_path: Path, data: dict | None = None, env: dict | None = None):
    env = dict(env or {})
    if data is not None:
        path = tmp_path / "monitors.json"
        path.write_text(json.dumps(data))
        env["COMPLIANCE_MONITORS_CONFIG"] = str(path)
    return load_config(env=env, seed_path=NO_SEED)


@pytest.fixture
def conn(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as c:
        yield c


def fired(conn, monitor: str) -> list[set[str]]:
    alerts = sorted(read_alerts(conn, "monitor = $m", {"m": monitor}), key=lambda a: a["first_event_at"])
    return [set(a["activity_ids"]) for a in alerts]


def run(conn, tmp_path, records, cfg, monitors):
    load(conn, tmp_path, records, DAY, DAY + timedelta(days=1))
    run_monitors(conn, cfg, DAY, DAY + timedelta(days=1), monitors=monitors, now=DAY + timedelta(days=1))


def test_every_peer_rule_has_a_source_a_description_and_only_travel_is_off_by_default():
    assert {r.name for r in PEER_RULES} <= set(MONITOR_NAMES)
    assert all(r.source and r.description for r in PEER_RULES)
    assert [r.name for r in PEER_RULES if not r.enabled] == ["impossible_travel"]


def test_public_share_matches_an_object_or_a_list_audience(conn, tmp_path):
    a, b, c = user("a@example.com"), user("b@example.com"), user("c@example.com")
    obj = activity("claude_artifact_sharing_updated", at(DAY, 60), actor=a, audience={"type": "anyone_with_link"})
    lst = activity("claude_project_sharing_updated", at(DAY, 180), actor=b, audience=[{"type": "organization"},
                                                                                        {"type": "public"}])
    org = activity("claude_artifact_sharing_updated", at(DAY, 300), actor=c, audience={"type": "organization"})
    run(conn, tmp_path, [obj, lst, org], config(tmp_path), ["resource_shared_publicly"])
    assert fired(conn, "resource_shared_publicly") == [{obj["id"]}, {lst["id"]}]


def test_first_data_export_fires_once_per_actor_in_30_days(conn, tmp_path):
    a, b = user("a@example.com"), user("b@example.com")
    first = activity("org_data_export_started", at(DAY, 30), actor=a)
    again = activity("org_data_export_started", at(DAY, 400), actor=a)
    b_old = activity("org_data_export_started", at(DAY, -60 * 24 * 10), actor=b)   # 10 days before
    b_new = activity("org_data_export_started", at(DAY, 600), actor=b)
    load(conn, tmp_path, [b_old], DAY - timedelta(days=11), DAY)
    run(conn, tmp_path, [first, again, b_new], config(tmp_path), ["first_data_export"])
    assert fired(conn, "first_data_export") == [{first["id"]}]


def test_impossible_travel_pairs_and_plausible_trips(conn, tmp_path):
    cfg = config(tmp_path, {"monitors": {"impossible_travel": {"enabled": True}}})
    a, b = "a@example.com", "b@example.com"
    us = activity("sso_login_succeeded", at(DAY, 60), actor=user(a, ip_in("US", 3)))
    sg = activity("sso_login_succeeded", at(DAY, 120), actor=user(a, ip_in("SG", 3)))   # ~15,000 km in 1 h
    de1 = activity("sso_login_succeeded", at(DAY, 60), actor=user(b, ip_in("DE", 3)))
    de2 = activity("sso_login_succeeded", at(DAY, 20 * 60), actor=user(b, ip_in("US", 4)))  # 19 h later: plane
    run(conn, tmp_path, [us, sg, de1, de2], cfg, ["impossible_travel"])
    assert fired(conn, "impossible_travel") == [{us["id"], sg["id"]}]


def test_sequence_logging_off_then_privileged_change_within_the_hour(conn, tmp_path):
    a, b = user("a@example.com"), user("b@example.com")
    off = activity("org_compliance_api_settings_updated", at(DAY, 60), actor=a, compliance_api_logging_enabled=False)
    grant = activity("role_assignment_granted", at(DAY, 100), actor=a, role="user")
    off_b = activity("org_compliance_api_settings_updated", at(DAY, 300), actor=b, compliance_api_enabled=False)
    late_b = activity("mcp_server_created", at(DAY, 365), actor=b)           # 65 minutes later
    other = activity("mcp_server_created", at(DAY, 70), actor=b)             # another actor's change
    run(conn, tmp_path, [off, grant, off_b, late_b, other], config(tmp_path),
        ["logging_disabled_then_privileged_change"])
    assert fired(conn, "logging_disabled_then_privileged_change") == [{off["id"], grant["id"]}]


def test_automated_client_privileged_change(conn, tmp_path):
    script = user("bot@example.com") | {"user_agent": "python-requests/2.32.3"}
    browser = user("human@example.com")
    hit = activity("org_sso_toggled", at(DAY, 60), actor=script, enabled=True)
    human = activity("org_sso_toggled", at(DAY, 200), actor=browser, enabled=True)
    chat = activity("claude_chat_created", at(DAY, 300), actor=script)
    run(conn, tmp_path, [hit, human, chat], config(tmp_path), ["automated_privileged_action"])
    assert fired(conn, "automated_privileged_action") == [{hit["id"]}]


def test_a_custom_rule_from_the_configuration_file_fires_with_its_conditions_and_group(conn, tmp_path):
    cfg = config(tmp_path, {"custom_rules": {"bulk_file_exports": {
        "description": "More than 3 file exports of xlsx files by one actor in 15 minutes.",
        "types": ["claude_file_exported"], "actor_types": ["user_actor"], "group_by": "actor",
        "conditions": [{"field": "filename", "op": "matches", "value": r"\.xlsx$"}],
        "window_minutes": 15, "threshold": 3}}})
    rule = cfg.rule("bulk_file_exports")
    assert rule.custom and rule.source.startswith("custom")
    a, b = user("a@example.com"), user("b@example.com")
    burst = [activity("claude_file_exported", at(DAY, 60 + i), actor=a, filename=f"f{i}.xlsx") for i in range(4)]
    pdfs = [activity("claude_file_exported", at(DAY, 120 + i), actor=b, filename=f"f{i}.pdf") for i in range(6)]
    under = [activity("claude_file_exported", at(DAY, 300 + i), actor=b, filename=f"g{i}.xlsx") for i in range(3)]
    run(conn, tmp_path, burst + pdfs + under, cfg, ["bulk_file_exports"])
    alerts = read_alerts(conn, "monitor = 'bulk_file_exports'")
    assert [set(x["activity_ids"]) for x in alerts] == [{r["id"] for r in burst}]
    assert alerts[0]["group_key"] == "a@example.com"


@pytest.mark.parametrize(("rule", "message"), [
    ({"types": ["claude_file_exported"]}, "threshold is required"),
    ({"threshold": 1}, "needs at least one of types"),
    ({"types": ["claude_file_exportd"], "threshold": 1}, "unknown activity types ['claude_file_exportd']"),
    ({"types": ["claude_file_exported"], "threshold": 1, "window": 15}, "unknown settings ['window']"),
    ({"types": ["claude_file_exported"], "threshold": 1, "window_minutes": 7}, "step_minutes"),
    ({"types": ["claude_file_exported"], "threshold": 1, "conditions": [{"field": "a;drop", "op": "eq",
                                                                            "value": 1}]}, "not a field path"),
    ({"types": ["claude_file_exported"], "threshold": 1, "conditions": [{"field": "x", "op": "like",
                                                                            "value": 1}]}, "unknown op 'like'"),
    ({"types": ["claude_file_exported"], "threshold": 1, "conditions": [{"field": "x", "op": "in"}]},
     "non-empty list"),
    ({"types": ["claude_file_exported"], "threshold": 1, "group_by": "who?"}, "group_by"),
    ({"types": ["claude_file_exported"], "threshold": "many"}, "threshold must be a number"),
    ({"types": ["claude_file_exported"], "threshold": 1, "kind": "sequence"}, "unknown settings ['kind']"),
])
def test_invalid_custom_rules_are_refused_at_load_naming_the_rule(tmp_path, rule, message):
    with pytest.raises(ValueError) as err:
        config(tmp_path, {"custom_rules": {"my_rule": rule}})
    assert "my_rule" in str(err.value) and message in str(err.value)


def test_custom_rule_names_cannot_shadow_built_in_monitors(tmp_path):
    with pytest.raises(ValueError, match="built-in monitor"):
        config(tmp_path, {"custom_rules": {"sso_disabled": {"types": ["org_sso_toggled"], "threshold": 0}}})
    with pytest.raises(ValueError, match="unknown monitor 'my_rule'.*custom_rules"):
        config(tmp_path, {"monitors": {"my_rule": {"threshold": 1}}})
