"""Reference changes reach history (issue #16): an edit of the embargo seed, a catalog row for a type the catalog did
not know, another GeoIP database (GEOIP_CITY_DB pointing at a newer .mmdb file in which one network moved), another
user-agent parser and a chat fetched again with another model propagate to the marts on the next ordinary
partitioned dbt run, only the affected rows are rewritten, the change is recorded, and marts and monitors agree.

The newer database is a real .mmdb file: a copy of the bundled GeoLite2-City whose search tree sends one network to
another country's record; the ingestion's own Enricher looks every stored IP up again in it (its identity differs from
the one the IPs were stored with) and parses again the user agent an "older parser" stored. Then one real `dbt build`
(seed + partitioned models, a later empty window) on a private copy of the shared warehouse, with a copy of the dbt
project whose embargo and catalog seeds are edited."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.enrichment.geo import GeoIPLookup, bundled_database_path
from pipeline.enrichment.useragent import parse_user_agent
from pipeline.monitors import load_config
from pipeline.monitors.evaluate import evaluate
from pipeline.warehouse.activities import Enricher
from tests.transform.marts_build import DAY, EXTRA_END, copy_warehouse

ACTIVITY_MARTS = ["activity_overview", "api_key_monitoring", "identity_access_auth", "compliance_api_access",
                  "data_access_exfiltration", "user_agent_analysis", "claude_usage", "org_policy_config"]
NEXT_WINDOW = {"min_date": "2026-11-04T00:00:00+00:00", "max_date": "2026-11-04T00:05:00+00:00"}
NORTH_KOREA_IP = "175.45.176.1"  # in the bundled database: KP
GEO_COLUMNS = "country_iso, subdivision_iso, city, latitude, longitude"


def geoip_database_moving(source: Path, target: Path, network_of: str, answer_of: str) -> None:
    """Write at `target` a copy of the MaxMind DB `source` in which the network holding the IP `network_of` answers
    what `answer_of` answers: its leaf record in the search tree points at the other IP's data record."""
    from maxminddb.const import MODE_MEMORY
    from maxminddb.reader import Reader

    reader = Reader(str(source), mode=MODE_MEMORY)
    assert reader.metadata().record_size == 28  # the layout written below (GeoLite2-City)
    node_count = reader.metadata().node_count

    def walk(ip: str) -> tuple[tuple[int, int], int]:
        """(node, bit) of the last step of the lookup of `ip`, and the record it read (a data pointer)."""
        packed = ipaddress.ip_address(ip).packed
        node, step = reader._start_node(len(packed) * 8), None
        for i in range(len(packed) * 8):
            if node >= node_count:
                break
            step = (node, 1 & (packed[i >> 3] >> 7 - (i % 8)))
            node = reader._read_node(*step)
        assert node > node_count, ip  # found
        return step, node

    (node, bit), _ = walk(network_of)
    _, pointer = walk(answer_of)
    reader.close()
    data = bytearray(source.read_bytes())
    base = node * 7  # two 28-bit records: 3 bytes, a shared middle byte (left: high nibble), 3 bytes
    if bit == 0:
        data[base:base + 3] = (pointer & 0xFFFFFF).to_bytes(3, "big")
        data[base + 3] = (data[base + 3] & 0x0F) | ((pointer >> 24) & 0xF) << 4
    else:
        data[base + 3] = (data[base + 3] & 0xF0) | ((pointer >> 24) & 0xF)
        data[base + 4:base + 7] = (pointer & 0xFFFFFF).to_bytes(3, "big")
    target.write_bytes(data)


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
        # the marts were built while an older user-agent parser was current, which parsed one user agent otherwise
        user_agent = conn.execute("""SELECT user_agent FROM marts.activity_overview WHERE user_agent IS NOT NULL
                                     GROUP BY 1 HAVING count(*) >= 3 ORDER BY count(*), 1 LIMIT 1""").fetchone()[0]
        conn.execute("UPDATE enrichment.user_agents SET browser_family = 'Older parse', ua_parser = 'rules-older' "
                     "WHERE user_agent = ?", [user_agent])
    _dbt(project, warehouse, "build", "--select", "tag:partitioned", "--exclude", "test_type:unit",
         "--vars", json.dumps(NEXT_WINDOW))
    with duckdb.connect(str(warehouse)) as conn:
        assert conn.execute("SELECT DISTINCT ua_browser_family FROM marts.activity_overview WHERE user_agent = ?",
                            [user_agent]).fetchall() == [("Older parse",)]
        # a public country with a few events that is not embargoed becomes embargoed
        country = conn.execute("""
            SELECT geo_country_iso FROM marts.activity_overview
            WHERE geo_country_iso IS NOT NULL AND NOT is_embargoed AND NOT ip_is_private
            GROUP BY 1 HAVING count(*) >= 5 ORDER BY count(*), 1 LIMIT 1""").fetchone()[0]
        # GEOIP_CITY_DB now points at a newer database in which the network of one IP of yet another country
        # geolocates to North Korea: the ingestion's enrichment (which runs with every load) looks every IP up again
        # (and parses again the user agent stored by the older parser)
        moved_ip = conn.execute("""
            SELECT ip_address FROM marts.activity_overview
            WHERE geo_country_iso NOT IN (?, 'KP') AND NOT is_embargoed AND NOT ip_is_private
            GROUP BY 1 HAVING count(*) >= 3 ORDER BY count(*), 1 LIMIT 1""", [country]).fetchone()[0]
        newer = directory / "GeoLite2-City-newer.mmdb"
        geoip_database_moving(Path(bundled_database_path()), newer, network_of=moved_ip, answer_of=NORTH_KOREA_IP)
        geo_before = dict(conn.execute(f"SELECT ip, ({GEO_COLUMNS}) FROM enrichment.ip_geolocation").fetchall())
        enricher = Enricher(GeoIPLookup(str(newer)), parse_user_agent)
        conn.execute("CREATE TEMP TABLE staged_activities (ip_address VARCHAR, user_agent VARCHAR)")  # no new rows
        enricher.enrich_new_values(conn, datetime.now(timezone.utc))
        geo_after = dict(conn.execute(f"SELECT ip, ({GEO_COLUMNS}) FROM enrichment.ip_geolocation WHERE geo_database = ?",
                                      [enricher.geo_database]).fetchall())
        assert geo_after.keys() == geo_before.keys()  # every IP looked up again in the newer database
        moved_ips = sorted(ip for ip in geo_after if geo_after[ip] != geo_before[ip])
        # the most frequent type the catalog does not know gets a catalog row: Claude Usage, a failure
        new_type = conn.execute("""SELECT event_type FROM marts.activity_overview WHERE NOT is_known_type
                                   GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""").fetchone()[0]
        # the chats ingestion fetched again a chat whose events are built, with another model
        chat_id = conn.execute("""SELECT chat_id FROM marts.claude_usage WHERE chat_id IN (SELECT id FROM raw.chats)
                                  GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""").fetchone()[0]
        conn.execute("UPDATE raw.chats SET model = 'claude-test-model-9', fetched_at = now() WHERE id = ?", [chat_id])
        before = {m: dict(conn.execute(f"SELECT activity_id, dbt_invocation_id FROM marts.{m}").fetchall())
                  for m in ACTIVITY_MARTS}
    seed = project / "seeds" / "embargoed_regions.csv"
    seed.write_text(seed.read_text() + f"{country},,Newly embargoed,2000-01-01\n")
    catalog = project / "seeds" / "activity_catalog.csv"
    catalog.write_text(catalog.read_text() + f"{new_type},usage,claude_usage,test_thing,tested,failure,false,test\n")
    _dbt(project, warehouse, "build", "--select", "embargoed_regions", "activity_catalog", "tag:partitioned",
         "--exclude", "test_type:unit", "--vars", json.dumps(NEXT_WINDOW))
    return {"warehouse": warehouse, "seed": seed, "country": country, "moved_ip": moved_ip, "moved_ips": moved_ips,
            "before": before, "new_type": new_type, "looked_up_again": len(geo_after), "chat_id": chat_id,
            "user_agent": user_agent}


@pytest.fixture(scope="module")
def wh(changed):
    conn = duckdb.connect(str(changed["warehouse"]))
    yield conn
    conn.close()


def test_the_marts_follow_the_edited_embargo_list_and_the_new_geolocation(wh, changed):
    country, ips = changed["country"], changed["moved_ips"]
    assert changed["moved_ip"] in ips and len(ips) < changed["looked_up_again"] / 10  # one network moved, not all
    for mart in ACTIVITY_MARTS:
        wrong = wh.execute(f"""
            SELECT count(*) FILTER (WHERE geo_country_iso = ? AND NOT ip_is_private
                                          AND NOT (is_embargoed AND embargo_region LIKE '%' || ? || '%')),
                   count(*) FILTER (WHERE list_contains(?, ip_address)
                                          AND NOT (geo_country_iso = 'KP' AND is_embargoed)),
                   count(*) FILTER (WHERE geo_country_iso = ?)
            FROM marts.{mart}""", [country, country, ips, country]).fetchone()
        assert wrong[:2] == (0, 0), (mart, wrong)
    assert wh.execute("SELECT count(*) FROM marts.activity_overview WHERE list_contains(?, ip_address)",
                      [ips]).fetchone()[0] > 0
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


def test_the_marts_follow_the_new_user_agent_parse(wh, changed):
    parsed = wh.execute("SELECT browser_family, ua_parser FROM enrichment.user_agents WHERE user_agent = ?",
                        [changed["user_agent"]]).fetchall()
    assert len(parsed) == 1 and parsed[0][0] != "Older parse" and parsed[0][1] != "rules-older"
    for mart in ("activity_overview", "user_agent_analysis"):
        assert wh.execute(f"SELECT list(DISTINCT coalesce(ua_browser_family, '-')) FROM marts.{mart} "
                          "WHERE user_agent = ?", [changed["user_agent"]]).fetchone()[0] == [parsed[0][0] or "-"]


def test_claude_usage_follows_a_chat_s_new_model(wh, changed):
    got = wh.execute("SELECT list(DISTINCT model), count(*) FROM marts.claude_usage WHERE chat_id = ?",
                     [changed["chat_id"]]).fetchone()
    assert got[0] == ["claude-test-model-9"] and got[1] > 0
    # the windows of the rewritten rows are listed for the rollup and the serving publish (not found by a scan)
    listed = wh.execute("SELECT list(DISTINCT created_5min ORDER BY created_5min) FROM intermediate.rewritten_windows "
                        "WHERE model = 'claude_usage' AND dbt_invocation_id = (SELECT dbt_invocation_id FROM "
                        "intermediate.reference_applied WHERE model = 'claude_usage:chat_model')").fetchone()[0]
    assert listed == wh.execute("SELECT list(DISTINCT created_5min ORDER BY created_5min) FROM marts.claude_usage "
                                "WHERE chat_id = ?", [changed["chat_id"]]).fetchone()[0]
    assert wh.execute("SELECT list(DISTINCT model) FROM marts.chats WHERE chat_id = ?",
                      [changed["chat_id"]]).fetchone()[0] == ["claude-test-model-9"]


def test_only_the_affected_rows_are_rewritten(wh, changed):
    country, ips, new_type = changed["country"], changed["moved_ips"], changed["new_type"]
    for mart in ACTIVITY_MARTS:
        after = dict(wh.execute(f"SELECT activity_id, dbt_invocation_id FROM marts.{mart}").fetchall())
        before = changed["before"][mart]
        moved_in = {a for a in after if a not in before}
        assert not set(before) - set(after), mart
        assert not moved_in or mart == "claude_usage", mart
        rewritten = {a for a in after if after[a] != before.get(a)}
        affected = {r[0] for r in wh.execute(
            f"SELECT activity_id FROM marts.{mart} WHERE geo_country_iso = ? OR list_contains(?, ip_address) "
            "OR event_type = ? OR user_agent = ?", [country, ips, new_type, changed["user_agent"]]).fetchall()}
        if mart == "claude_usage":
            affected |= {r[0] for r in wh.execute("SELECT activity_id FROM marts.claude_usage WHERE chat_id = ?",
                                                  [changed["chat_id"]]).fetchall()}
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
         *[("ip_geolocation", ip, "changed") for ip in changed["moved_ips"]],
         ("user_agents", changed["user_agent"], "changed")])
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
                                    "OR list_contains(?, ip_address)", [changed["country"], changed["moved_ips"]]).fetchall()}
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
