"""Monitor evaluation speed: the 9 monitors over 10M activities (30 days) in one DuckDB warehouse file.

The rows are built synthetically in DuckDB (range() + hash-based pseudo-random draws, deterministic) with the shapes
that matter for the monitors: a skewed user population (a few heavy users), ~60 activity types with realistic
weights, sign-in flows by unauthenticated actors, Compliance API calls by 20 keys with a few 401/403, deletions,
rare admin events, a trickle of embargoed IPs, and raw JSON objects of realistic size. Then:
  - all 9 monitors over the whole 30 days (one `run_monitors` call, alerts written) - target < 10 s;
  - each monitor alone over the 30 days;
  - what the checks do in production: one day as a ranged run, one 5-minute partition.
Same memory limit as the pipeline (COMPLIANCE_DUCKDB_MEMORY_LIMIT, default 256MB).

    .venv/bin/python -m bench.bench_monitors [--rows 10000000] [--keep PATH]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import peak_rss_mb, report
from pipeline.config import Settings
from pipeline.monitors import MONITOR_NAMES, load_config, run_monitors
from pipeline.monitors.config import SEED_MONITOR_NAMES
from pipeline.warehouse.connection import open_warehouse
from pipeline.warehouse.schema import ensure_schema

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
DAYS = 30
USERS = 5000

# (type, actor kind, weight per 100 000)
TYPES = [
    ("claude_chat_viewed", "user", 26000), ("claude_chat_created", "user", 12000),
    ("claude_chat_updated", "user", 6000), ("claude_project_viewed", "user", 7000),
    ("claude_file_uploaded", "user", 4000), ("claude_file_viewed", "user", 5000),
    ("claude_artifact_viewed", "user", 3000), ("claude_project_document_uploaded", "user", 1500),
    ("claude_code_session_started", "user", 2500), ("claude_user_settings_updated", "user", 800),
    ("claude_project_created", "user", 700), ("claude_artifact_created", "user", 2400),
    ("sso_login_initiated", "unauth", 3000), ("sso_login_succeeded", "user", 2800),
    ("magic_link_login_initiated", "unauth", 900), ("magic_link_login_succeeded", "user", 850),
    ("phone_code_sent", "unauth", 200), ("phone_code_verified", "unauth", 190),
    ("sso_login_failed", "unauth", 180), ("magic_link_login_failed", "unauth", 60),
    ("step_up_authentication_failed", "user", 30), ("user_signed_out", "user", 1500),
    ("compliance_api_accessed", "api", 5000), ("claude_chat_deleted", "user", 1200),
    ("claude_file_deleted", "user", 250), ("claude_project_deleted", "user", 60),
    ("claude_project_file_deleted", "user", 80), ("claude_project_document_deleted", "user", 90),
    ("claude_chat_deletion_failed", "user", 20), ("org_user_invited", "user", 40),
    ("org_user_role_updated", "user", 30), ("api_key_created", "user", 15),
    ("rbac_role_assigned", "admin", 25), ("org_compliance_api_settings_updated", "user", 3),
    ("admin_api_key_created", "user", 1), ("platform_api_key_created", "admin", 1),
    ("org_ip_restriction_deleted", "user", 1), ("org_user_deleted", "user", 4),
    ("anonymous_mobile_login_attempted", "unauth", 2), ("claude_chat_shared", "user", 1200),
    ("system_retention_applied", "system", 900), ("scim_user_provisioned", "system", 150),
]
TOTAL_WEIGHT = sum(w for _, _, w in TYPES)


def build(conn, rows: int) -> None:
    # range() keeps its order on insert (preserve_insertion_order), so rows land in time order as ingestion
    # writes them; bounded memory so that building 10M rows does not take the machine
    conn.execute("SET enable_progress_bar = false; SET memory_limit = '4GB'")
    ensure_schema(conn)
    conn.execute("CREATE OR REPLACE TEMP TABLE type_slots (slot INTEGER, type VARCHAR, kind VARCHAR)")
    slots, i = [], 0
    for t, kind, w in TYPES:
        slots.append((i, i + w, t, kind))
        i += w
    conn.execute("CREATE OR REPLACE TEMP TABLE type_ranges (lo INTEGER, hi INTEGER, type VARCHAR, kind VARCHAR)")
    conn.executemany("INSERT INTO type_ranges VALUES (?, ?, ?, ?)", slots)
    conn.execute(f"""
        INSERT INTO type_slots SELECT s.slot, r.type, r.kind
        FROM range({TOTAL_WEIGHT}) s(slot) JOIN type_ranges r ON s.slot >= r.lo AND s.slot < r.hi
    """)
    span_us = DAYS * 86_400_000_000
    # One pass: draws from hash(i, salt); users skewed (u = USERS * x^2); times increasing with i, as ingested.
    conn.execute(f"""
        INSERT INTO raw.activities
        WITH d AS (
            SELECT i,
                   $start::TIMESTAMPTZ
                       + to_microseconds(CAST(i * {span_us // rows} + hash(i, 1) % 1000000 AS BIGINT)) AS created_at,
                   hash(i, 2) % {TOTAL_WEIGHT} AS slot,
                   CAST(floor({USERS} * pow((hash(i, 3) % 1000000) / 1e6, 2)) AS INTEGER) AS u,
                   hash(i, 4) % 10000 AS r4,
                   hash(i, 5) % 20 AS key_n
            FROM range({rows}) t(i)
        ), t AS (
            SELECT d.*, s.type, s.kind,
                   -- embargoed (IR): ~50 a month
                   CASE WHEN hash(d.i, 7) % 200000 = 0 THEN '5.160.' || (d.u % 200) || '.9'
                        ELSE '23.' || (d.u // 250) || '.' || (d.u % 250) || '.17' END AS ip,
                   'user' || d.u || '@example.com' AS email
            FROM d JOIN type_slots s USING (slot)
        ), a AS (
            SELECT *,
                   CASE kind WHEN 'user' THEN 'user_actor' WHEN 'unauth' THEN 'unauthenticated_user_actor'
                             WHEN 'api' THEN 'api_actor' WHEN 'admin' THEN 'admin_api_key_actor'
                             ELSE 'system_actor' END AS actor_type,
                   'apikey_01bench' || key_n AS key_id,
                   CASE WHEN r4 < 40 THEN 401 WHEN r4 < 70 THEN 403 WHEN r4 < 200 THEN 404 ELSE 200 END AS status
            FROM t
        )
        SELECT 'activity_01' || lpad(i::VARCHAR, 12, '0') AS id, type, created_at, 'org_01bench', 'uuid-bench',
               actor_type,
               CASE WHEN kind = 'user' THEN 'user_01' || u END,
               CASE WHEN kind = 'user' THEN email END,
               CASE WHEN kind = 'api' THEN key_id END,
               CASE WHEN kind = 'admin' THEN 'adminkey_01bench' END,
               NULL,
               CASE WHEN kind <> 'system' THEN (CASE WHEN kind = 'api' THEN '34.1.' || key_n || '.2' ELSE ip END) END,
               CASE WHEN kind <> 'system' THEN 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1' END,
               ('{{"id":"activity_01' || lpad(i::VARCHAR, 12, '0') || '","created_at":"' ||
                strftime(created_at, '%Y-%m-%dT%H:%M:%S.%fZ') ||
                '","organization_id":"org_01bench","organization_uuid":"uuid-bench","type":"' || type || '",' ||
                CASE kind
                    WHEN 'user' THEN '"actor":{{"type":"user_actor","email_address":"' || email ||
                                     '","user_id":"user_01' || u || '","ip_address":"' || ip ||
                                     '","user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"}}'
                    WHEN 'unauth' THEN '"actor":{{"type":"unauthenticated_user_actor","ip_address":"' || ip ||
                                       '","user_agent":"Mozilla/5.0","unauthenticated_email_address":"' ||
                                       email || '"}}'
                    WHEN 'api' THEN '"actor":{{"type":"api_actor","api_key_id":"' || key_id ||
                                    '","ip_address":"34.1.' || key_n || '.2","user_agent":"python-httpx/0.28"}}'
                    WHEN 'admin' THEN '"actor":{{"type":"admin_api_key_actor","admin_api_key_id":"adminkey_01bench",'
                                      || '"ip_address":"' || ip || '","user_agent":"curl/8"}}'
                    ELSE '"actor":{{"type":"system_actor","service":"retention"}}' END ||
                CASE type
                    WHEN 'compliance_api_accessed' THEN ',"request_id":"req_' || i || '","request_method":"GET",' ||
                         '"status_code":' || status || ',"url":"https://api.anthropic.com/v1/compliance/activities"'
                    WHEN 'org_compliance_api_settings_updated' THEN
                         ',"compliance_api_enabled":true,"compliance_api_logging_enabled":' ||
                         CASE WHEN r4 < 3000 THEN 'false' ELSE 'true' END
                    ELSE ',"claude_chat_id":"claude_chat_01' || hash(i, 6) || '","claude_project_id":null' END ||
                '}}')::JSON,
               $start, $end, now(), 'bench', NULL
        FROM a
    """, {"start": START, "end": START + timedelta(days=DAYS)})
    conn.execute("""
        INSERT INTO enrichment.ip_geolocation (ip, ip_version, is_valid, is_private, is_reserved, found, country_iso,
                                               subdivision_iso, enriched_at)
        SELECT ip, 4, true, false, false, true,
               CASE WHEN ip LIKE '5.160.%' THEN 'IR' WHEN ip LIKE '34.%' THEN 'US'
                    ELSE ['US', 'GB', 'DE', 'FR', 'IN', 'JP', 'UA'][CAST(1 + hash(ip) % 7 AS BIGINT)] END,
               NULL, now()
        FROM (SELECT DISTINCT ip_address AS ip FROM raw.activities WHERE ip_address IS NOT NULL)
    """)
    conn.execute("CHECKPOINT")


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


CPU: dict[str, float] = {}


def timed(fn, label: str | None = None):
    """Wall seconds (and CPU seconds of this process under `label`): other load on the machine stretches the wall
    time, the CPU time tells how much work the evaluation itself is."""
    started, cpu = time.perf_counter(), _cpu()
    value = fn()
    if label:
        CPU[label] = _cpu() - cpu
    return time.perf_counter() - started, value


def main(argv: list[str] | None = None) -> None:
    # imported by the pipeline anyway (the warehouse load registers Arrow tables): keep their one-time import
    # (seconds here, where PYTHONDONTWRITEBYTECODE is set) out of the timings
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keep", help="build (or reuse) the warehouse at this path instead of a temporary one")
    args = parser.parse_args(argv if argv is not None else [])
    memory_limit = Settings.from_env().duckdb_memory_limit
    config = load_config(env={k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_MONITOR")})
    end = START + timedelta(days=DAYS)
    with tempfile.TemporaryDirectory(prefix="bench-monitors-") as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "warehouse.duckdb"
        build_s = 0.0
        if not path.exists():
            with open_warehouse(path) as conn:  # building is not what is measured
                build_s, _ = timed(lambda: build(conn, args.rows))
        size_mb = path.stat().st_size / 1e6
        with open_warehouse(path, memory_limit=memory_limit) as conn:
            rows = conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0]
            conn.execute("DROP SCHEMA IF EXISTS monitors CASCADE")
            load_before = os.getloadavg()[0]
            all_s, reports = timed(lambda: run_monitors(conn, config, START, end, run_id="bench"), "all")
            again_s, _ = timed(lambda: run_monitors(conn, config, START, end, run_id="bench-rerun"), "again")
            seed_s, _ = timed(lambda: run_monitors(conn, config, START, end, monitors=list(SEED_MONITOR_NAMES)))
            alerts = {n: len(r.alerts) for n, r in reports.items()}
            per_monitor = {}
            for name in MONITOR_NAMES:
                per_monitor[name], _ = timed(lambda: run_monitors(conn, config, START, end, monitors=[name]))
            day = START + timedelta(days=DAYS - 1)
            day_s, _ = timed(lambda: run_monitors(conn, config, day, end))
            part = end - timedelta(minutes=5)
            part_s, _ = timed(lambda: run_monitors(conn, config, part, end))
    rows_out = [("activities", rows), ("warehouse file (MB)", size_mb), ("build seconds", build_s),
                ("memory_limit", memory_limit),
                ("load average before (2 cores)", round(load_before, 2)),
                (f"ALL {len(config.enabled_rules)} ENABLED MONITORS, 30 days, seconds", f"{all_s:.2f}"),
                ("  CPU seconds (all threads)", f"{CPU['all']:.2f}"),
                ("activities per second", rows / all_s),
                ("same again (alerts exist, nothing written), seconds", f"{again_s:.2f}"),
                ("  CPU seconds", f"{CPU['again']:.2f}"),
                ("the 9 seed monitors alone (alerts exist), seconds", f"{seed_s:.2f}"),
                ("all enabled / 9 seed (same run, alerts exist)", f"{again_s / seed_s:.2f}")]
    rows_out += [(f"  {n} alone, seconds", f"{s:.2f}") for n, s in per_monitor.items()]
    rows_out += [("one day (ranged run check), seconds", f"{day_s:.2f}"),
                 ("one 5-minute partition check, seconds", f"{part_s:.2f}"),
                 ("alerts raised (all monitors)", sum(alerts.values())),
                 ("alerts by monitor", ", ".join(f"{k}={v}" for k, v in alerts.items())),
                 ("peak RSS MB", peak_rss_mb()), ("target: all monitors under 10 s", "met" if all_s < 10 else "MISSED")]
    report("bench_monitors", rows_out)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
