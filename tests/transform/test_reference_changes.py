"""Reference changes reach history (issue #16): an edit of the embargo seed, a catalog row for a type the catalog did
not know, and a changed geolocation (what the ingestion writes after GEOIP_CITY_DB points at a newer database)
propagate to the marts on the next ordinary
partitioned dbt run, only the affected rows are rewritten, the change is recorded, and marts and monitors agree.

One real `dbt build` (seed + partitioned models, a later empty window) on a private copy of the shared warehouse,
with a copy of the dbt project whose embargo and catalog seeds are edited."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.monitors import load_config
from pipeline.monitors.evaluate import evaluate
from tests.transform.marts_build import DAY, EXTRA_END, copy_warehouse

ACTIVITY_MARTS = ["activity_overview", "api_key_monitoring", "identity_access_auth", "compliance_api_access",
                  "data_access_exfiltration", "user_agent_analysis", "claude_usage", "org_policy_config"]
NEXT_WINDOW = {"min_date": "2026-11-04T00:00:00+00:00", "max_date": "2026-11-04T00:05:00+00:00"}


def _dbt(project: Path, warehouse: Path, *args: str) -> str:
    env = {**os.environ, "COMPLIANCE_WAREHOUSE_PATH": str(warehouse)}
    dbt = Path(sys.executable).parent / "dbt"
    done = subprocess.run([str(dbt), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def changed(built, tmp_path_factory):
    directory = tmp_path_factory.mktemp("reference-change")
    warehouse = copy_warehouse(built, directory)
    project = directory / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    with duckdb.connect(str(warehouse)) as conn:
        # a public country with a few events that is not embargoed becomes embargoed
        country = conn.execute("""
            SELECT geo_country_iso FROM marts.activity_overview
            WHERE geo_country_iso IS NOT NULL AND NOT is_embargoed AND NOT ip_is_private
            GROUP BY 1 HAVING count(*) >= 5 ORDER BY count(*), 1 LIMIT 1""").fetchone()[0]
        # one IP of yet another country now geolocates to North Korea (a newer GeoIP database's answer)
        moved_ip = conn.execute("""
            SELECT ip_address FROM marts.activity_overview
            WHERE geo_country_iso NOT IN (?, 'KP') AND NOT is_embargoed AND NOT ip_is_private
            GROUP BY 1 HAVING count(*) >= 3 ORDER BY count(*), 1 LIMIT 1""", [country]).fetchone()[0]
        conn.execute("""UPDATE enrichment.ip_geolocation SET country_iso = 'KP', country_name = 'North Korea',
                        subdivision_iso = NULL, subdivision_name = NULL, city = 'Pyongyang',
                        geo_database = 'GeoIP2-City-newer.mmdb', enriched_at = now() WHERE ip = ?""", [moved_ip])
        # the most frequent type the catalog does not know gets a catalog row: Claude Usage, a failure
        new_type = conn.execute("""SELECT event_type FROM marts.activity_overview WHERE NOT is_known_type
                                   GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""").fetchone()[0]
        before = {m: dict(conn.execute(f"SELECT activity_id, dbt_invocation_id FROM marts.{m}").fetchall())
                  for m in ACTIVITY_MARTS}
    seed = project / "seeds" / "embargoed_regions.csv"
    seed.write_text(seed.read_text() + f"{country},,Newly embargoed,2000-01-01\n")
    catalog = project / "seeds" / "activity_catalog.csv"
    catalog.write_text(catalog.read_text() + f"{new_type},usage,claude_usage,test_thing,tested,failure,false,test\n")
    _dbt(project, warehouse, "build", "--select", "embargoed_regions", "activity_catalog", "tag:partitioned",
         "--exclude", "test_type:unit", "--vars", json.dumps(NEXT_WINDOW))
    return {"warehouse": warehouse, "seed": seed, "country": country, "moved_ip": moved_ip, "before": before,
            "new_type": new_type}


@pytest.fixture(scope="module")
def wh(changed):
    conn = duckdb.connect(str(changed["warehouse"]))
    yield conn
    conn.close()


def test_the_marts_follow_the_edited_embargo_list_and_the_new_geolocation(wh, changed):
    country, ip = changed["country"], changed["moved_ip"]
    for mart in ACTIVITY_MARTS:
        wrong = wh.execute(f"""
            SELECT count(*) FILTER (WHERE geo_country_iso = ? AND NOT ip_is_private
                                          AND NOT (is_embargoed AND embargo_region LIKE '%' || ? || '%')),
                   count(*) FILTER (WHERE ip_address = ? AND NOT (geo_country_iso = 'KP' AND is_embargoed)),
                   count(*) FILTER (WHERE geo_country_iso = ?)
            FROM marts.{mart}""", [country, country, ip, country]).fetchone()
        assert wrong[:2] == (0, 0), (mart, wrong)
    assert wh.execute("SELECT count(*) FROM marts.activity_overview WHERE ip_address = ?", [ip]).fetchone()[0] > 0
    # int_activities' monitor rule column follows too
    assert wh.execute("""SELECT bool_and(list_contains(monitor_rules, 'embargoed_location'))
                         FROM intermediate.int_activities WHERE geo_country_iso = ? AND NOT ip_is_private""",
                      [country]).fetchone()[0]


def test_the_marts_follow_the_extended_catalog(wh, changed):
    new_type = changed["new_type"]
    assert wh.execute("SELECT DISTINCT category, is_known_type, outcome FROM marts.activity_overview "
                      "WHERE event_type = ?", [new_type]).fetchall() == [("usage", True, "failure")]
    rows = wh.execute("SELECT count(*) FROM marts.activity_overview WHERE event_type = ?", [new_type]).fetchone()[0]
    usage = wh.execute("SELECT count(*) FROM marts.claude_usage WHERE event_type = ?", [new_type]).fetchone()[0]
    assert rows > 0 and usage == rows


def test_only_the_affected_rows_are_rewritten(wh, changed):
    country, ip, new_type = changed["country"], changed["moved_ip"], changed["new_type"]
    for mart in ACTIVITY_MARTS:
        after = dict(wh.execute(f"SELECT activity_id, dbt_invocation_id FROM marts.{mart}").fetchall())
        before = changed["before"][mart]
        moved_in = {a for a in after if a not in before}
        assert not set(before) - set(after), mart
        assert not moved_in or mart == "claude_usage", mart
        rewritten = {a for a in after if after[a] != before.get(a)}
        affected = {r[0] for r in wh.execute(
            f"SELECT activity_id FROM marts.{mart} WHERE geo_country_iso = ? OR ip_address = ? OR event_type = ?",
            [country, ip, new_type]).fetchall()}
        assert rewritten == affected, (mart, len(rewritten), len(affected))
        if mart == "activity_overview":
            assert 0 < len(affected) < len(after) / 4


def test_the_change_is_recorded(wh, changed):
    recorded = wh.execute("""
        SELECT reference, reference_key, change_kind, changed_at FROM intermediate.int_reference_versions
        WHERE changed_at = (SELECT max(changed_at) FROM intermediate.int_reference_versions)
        ORDER BY 1, 2""").fetchall()
    assert [(r[0], r[1], r[2]) for r in recorded] == sorted(
        [("activity_catalog", changed["new_type"], "changed"), ("embargoed_regions", changed["country"], "added"),
         ("ip_geolocation", changed["moved_ip"], "changed")])
    applied = dict(wh.execute("SELECT model, applied_through FROM intermediate.reference_applied").fetchall())
    assert {"int_activities", *ACTIVITY_MARTS} <= set(applied)
    assert all(applied[m] == recorded[0][3] for m in ("int_activities", *ACTIVITY_MARTS))


def test_monitors_and_marts_agree_afterwards(wh, changed):
    """The embargo monitor (reading the edited seed and the geolocation table) flags exactly the events the marts
    flag as embargoed."""
    config = load_config(env={}, seed_path=changed["seed"])
    start = datetime.fromisoformat(f"{DAY}T00:00:00+00:00")
    results = evaluate(wh, config, start, EXTRA_END, monitors=["embargoed_location"])
    flagged = {i for inc in results["embargoed_location"].incidents for i in inc.activity_ids}
    marts = {r[0] for r in wh.execute(
        "SELECT activity_id FROM marts.activity_overview WHERE is_embargoed AND created_at >= ? AND created_at < ?",
        [start, EXTRA_END]).fetchall()}
    assert flagged == marts
    new = {r[0] for r in wh.execute("SELECT activity_id FROM marts.activity_overview WHERE geo_country_iso = ? "
                                    "OR ip_address = ?", [changed["country"], changed["moved_ip"]]).fetchall()}
    assert new and new <= flagged


def test_the_panel_rollups_follow_their_marts(wh, changed):
    """Each rollup (models/marts/rollups) equals its mart summed by its columns, in every 5-minute window: also where
    the reference change rewrote rows outside the built window, and where a type moved into claude_usage."""
    rollups = [r[0] for r in wh.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' "
                                        "AND table_name LIKE '%\\_5min' ESCAPE '\\'").fetchall()]
    assert len(rollups) == 3, rollups
    for rollup in rollups:
        mart = rollup.removesuffix("_5min").removesuffix("_chats")
        columns = [r[0] for r in wh.execute(f"DESCRIBE marts.{rollup}").fetchall() if r[0] != "events"]
        grouped = f"SELECT {', '.join(columns)}, count(*) AS events FROM marts.{mart} GROUP BY ALL"
        differ = wh.execute(f"SELECT count(*) FROM (({grouped}) EXCEPT ALL (SELECT * FROM marts.{rollup})) "
                            f"UNION ALL SELECT count(*) FROM ((SELECT * FROM marts.{rollup}) EXCEPT ALL ({grouped}))"
                            ).fetchall()
        assert differ == [(0,), (0,)], (rollup, differ)
    new_type = changed["new_type"]
    assert wh.execute("SELECT sum(events) FROM marts.claude_usage_5min WHERE event_type = ?",
                      [new_type]).fetchone()[0] == wh.execute(
        "SELECT count(*) FROM marts.claude_usage WHERE event_type = ?", [new_type]).fetchone()[0] > 0
