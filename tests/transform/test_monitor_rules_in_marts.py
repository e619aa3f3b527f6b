"""Marts and monitors agree (the marts' `monitor_rules` is generated from the monitors' configuration), and
`is_public` reads the API's audience object / list (issue #14), on the shared warehouse of tests/transform."""

from __future__ import annotations

import shutil
from datetime import timedelta, timezone

import duckdb

from pipeline.monitors import load_config
from pipeline.monitors.evaluate import evaluate
from pipeline.warehouse.connection import open_warehouse

PUBLIC = {"anyone_with_link", "public"}


def test_is_public_follows_the_audience_object_or_list(wh):
    rows = wh.execute("""
        SELECT m.audience, m.is_public, json_type(s.raw -> '$.audience') AS shape
        FROM marts.artifacts_marketplace_projects m JOIN staging.stg_activities s USING (activity_id)
        WHERE m.event_type IN ('claude_artifact_sharing_updated', 'claude_project_sharing_updated')""").fetchall()
    assert rows and {shape for _, _, shape in rows} >= {"OBJECT", "ARRAY"}   # background objects, a planted list
    for audience, is_public, _ in rows:
        assert audience and is_public is not None
        assert is_public == bool(set(audience.split(", ")) & PUBLIC)
    assert any(p for _, p, _ in rows) and not all(p for _, p, _ in rows)


def test_marts_flag_exactly_the_events_the_monitors_match(built, tmp_path):
    """Per rule with a per-event definition (threshold rules): the events activity_overview flags with the rule are
    the events the monitors count for it, over everything ingested."""
    copy = tmp_path / "w.duckdb"
    shutil.copy(built.warehouse, copy)
    config = load_config()
    rules = [r.name for r in config.enabled_rules if r.kind == "threshold"]
    with open_warehouse(copy) as conn:
        lo, hi = conn.execute("SELECT min(created_at), max(created_at) FROM raw.activities").fetchone()
        start = lo.astimezone(timezone.utc) - timedelta(days=1)
        results = evaluate(conn, config, start, hi.astimezone(timezone.utc) + timedelta(days=1), rules)
        flagged = dict(conn.execute("""
            SELECT rule, count(*) FROM (SELECT unnest(monitor_rules) AS rule FROM marts.activity_overview)
            GROUP BY 1""").fetchall())
    matched = {name: res.matching_events for name, res in results.items() if res.matching_events}
    assert {k: v for k, v in flagged.items() if k in rules} == matched
    assert len(matched) >= 10   # most rules have planted events in the day


def test_the_serving_file_shows_the_alert_lifecycle(built):
    conn = duckdb.connect(str(built.serving), read_only=True)
    try:
        rows = conn.execute("SELECT status, count(*) FROM alerts GROUP BY 1").fetchall()
        columns = {r[0] for r in conn.execute("DESCRIBE alerts").fetchall()}
    finally:
        conn.close()
    assert {"status", "status_by", "status_at", "status_note", "reopened_count"} <= columns
    assert rows and {s for s, _ in rows} <= {"open", "acknowledged", "resolved"}
