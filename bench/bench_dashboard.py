"""Dashboard page render time on a serving file of 7 days at 1M activities a day (target: every page < 3 s).

1. A small real warehouse: built by the pipeline from the simulator (tests/transform/marts_build.py: one simulated
   day through Dagster and dbt), or `--source PATH` (a warehouse).
2. Scaled by SQL into a 7-day warehouse: every row of every mart is copied N times (new ids, shifted by 0..6 whole
   days, so buckets stay consistent; in time order, as window-by-window builds write them), N chosen so
   activity_overview holds --per-day activities a day; chats scale alike. The panel rollups (dbt tag `rollup`) are
   not copied but built by dbt from the scaled marts (copies repeat the day's windows, so they compress more than
   real data would: the output gives their row counts). Then published by the pipeline's own `publish` (a catalog
   of views over per-day Parquet files, as production serves it).
3. The app (`streamlit run`, as `make dashboard` starts it) on that file, headless Chromium over the DevTools
   protocol: each page opened cold (first visit: every panel query runs) and warm (cached), timed from navigation to
   the page's last element with every chart drawn. The app's warmer (which fills the caches after each publish) is
off here: "warm" is a second visit, what a visitor gets once the warmer ran.
Peer measured in the same run: the same panel queries of the page run one after the other on a DuckDB connection (no
app, no browser); reported as the ratio page / queries (the app runs a page's queries concurrently: it can go below).

    .venv/bin/python -m bench.bench_dashboard [--per-day 1000000] [--days 7] [--source PATH] [--cache DIR]

`--cache DIR` (or BENCH_DASHBOARD_CACHE) keeps the scaled warehouse (step 2 before publish, ~400 s) and reuses it:
the next run costs the publish and the pages only; the output says which it did.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from bench.common import report
from pipeline.dashboard.charts import chart_kind
from pipeline.dashboard.source import Filters, open_serving
from pipeline.serving.panels import load_panels

TARGET_SECONDS = 3.0
# (id columns made unique per copy, time columns shifted by whole days) per table
ID_COLUMNS = ("activity_id", "message_id", "chat_id", "alert_id")
TIME_COLUMNS = ("created_at", "created_5min", "created_hour", "created_date", "message_created_at", "message_5min",
                "message_hour", "message_date", "chat_created_at", "chat_updated_at", "first_event_at",
                "last_event_at", "raised_at", "raised_hour", "raised_date")


def source_file(directory: Path) -> Path:
    """The warehouse of one simulated day, built and published by the pipeline (its marts are the rows we copy)."""

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("COMPLIANCE_PARTITIONS_START", "2026-10-01T00:00:00Z")
    # as tests/conftest.py: the simulator's demo key (not a secret), sent only to the loopback simulator
    os.environ.pop("COMPLIANCE_API_BASE_URL", None)
    os.environ["ANTHROPIC_COMPLIANCE_ACCESS_KEY"] = "sk-ant-api01-sim-full"
    os.environ["COMPLIANCE_API_ALLOWED_HOSTS"] = "127.0.0.1"
    from tests.transform.marts_build import build

    return build(directory / "build").warehouse


def rollup_tables() -> set[str]:
    """The panel rollups (dbt tag `rollup`): sums of a mart, rebuilt from the scaled marts, never copied (copies of
    a window's sums would be other rows than a build over the scaled activities gives)."""
    manifest = json.loads((Path(__file__).resolve().parents[1] / "dbt_project" / "target" / "manifest.json").read_text())
    return {n.get("alias") or n["name"] for n in manifest["nodes"].values()
            if n["resource_type"] == "model" and "rollup" in n.get("tags", [])}


def build_rollups(warehouse: Path) -> float:
    """The rollups built by dbt from the scaled marts (`dbt run --select tag:rollup --full-refresh`, the pipeline's
    own models and settings; the marts run builds them window by window in production)."""
    started = time.monotonic()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "COMPLIANCE_WAREHOUSE_PATH": str(warehouse.resolve())}
    subprocess.run([str(Path(sys.executable).with_name("dbt")), "run", "--select", "tag:rollup", "--full-refresh",
                    "--project-dir", str(root / "dbt_project"), "--profiles-dir", str(root / "dbt_project"),
                    "--quiet"], check=True, env=env, cwd=root / "dbt_project")
    return time.monotonic() - started


def scale(source: Path, warehouse: Path, per_day: int, days: int) -> dict:
    """A warehouse whose marts hold `days` days of `per_day` activities (copies of the source's rows)."""
    started = time.monotonic()
    partial = warehouse.with_name(warehouse.name + ".partial")  # renamed when complete: a cache never half-built
    partial.unlink(missing_ok=True)
    conn = duckdb.connect(str(partial), config={"preserve_insertion_order": False})
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    rows_, span_days = conn.execute("SELECT count(*), greatest(1, (epoch(max(created_at)) - epoch(min(created_at))) "
                                    "/ 86400) FROM src.marts.activity_overview").fetchone()
    copies_per_day = max(1, math.ceil(per_day / (rows_ / span_days)))
    copies = copies_per_day * days
    tables = conn.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' "
                          "AND schema_name IN ('marts', 'restricted') ORDER BY 1, 2").fetchall()
    rows = {}
    rollups = rollup_tables()
    for schema, table in tables:
        if schema == "marts" and table in rollups:
            continue
        described = conn.execute(f"DESCRIBE src.{schema}.{table}").fetchall()
        columns, types = [r[0] for r in described], {r[0]: r[1] for r in described}
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        if schema != "marts" or table == "alerts":  # message text, alerts: as they are
            conn.execute(f"CREATE TABLE {schema}.{table} AS SELECT * FROM src.{schema}.{table}")
            continue
        replace = [f"{c} || '-' || i AS {c}" for c in columns if c in ID_COLUMNS]
        replace += [f"CAST({c} - to_days(CAST(i % {days} AS INTEGER)) AS {types[c]}) AS {c}"
                    for c in columns if c in TIME_COLUMNS]
        # in time order, as the pipeline's window-by-window builds append them
        order = next((f" ORDER BY {c}" for c in ("created_at", "message_created_at") if c in columns), "")
        conn.execute(f"CREATE TABLE {schema}.{table} AS SELECT * EXCLUDE (i) REPLACE ({', '.join(replace)}) "
                     f"FROM src.{schema}.{table}, range({copies}) r(i){order}")
        rows[table] = conn.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
    macro = conn.execute("SELECT schema_name, parameters, macro_definition FROM duckdb_functions() "
                         "WHERE database_name = 'src' AND function_name = 'search_messages'").fetchone()
    if macro:
        conn.execute(f"CREATE MACRO {macro[0]}.search_messages({', '.join(macro[1])}) AS TABLE {macro[2]}")
    conn.execute("DETACH src")
    conn.execute("CHECKPOINT")
    conn.close()
    partial.replace(warehouse)
    return {"copies": copies, "rows": rows, "seconds": time.monotonic() - started}


def query_floor(path: Path, dashboard: str) -> float:
    """Seconds to run the page's panel queries directly (what the page runs: a page of a table, else the rows)."""
    started = time.monotonic()
    with open_serving(path) as source:
        source.apply_filters(Filters())
        if dashboard == "alerts":
            source.alerts()
            return time.monotonic() - started
        for name, panel in load_panels()[dashboard].items():
            if name == "message_search":
                continue
            kind = chart_kind(source.describe(dashboard, name), panel.chart)
            if kind == "table":
                source.count(dashboard, name)
                source.run(dashboard, name, limit=50)
            else:
                source.run(dashboard, name, limit=20_000)
    return time.monotonic() - started


def main() -> None:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipeline.dashboard.app import dashboards
    from pipeline.dashboard.process import DashboardProcess
    from pipeline.demo.dagster_dev import free_port
    from pipeline.serving.publish import publish
    from tests.support.browser import Browser

    parser = argparse.ArgumentParser()
    parser.add_argument("--per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--source", type=Path)
    parser.add_argument("--cache", type=Path, default=os.environ.get("BENCH_DASHBOARD_CACHE") or None,
                        help="keep the scaled warehouse here and reuse it on the next run (env BENCH_DASHBOARD_CACHE):"
                             " a run then costs the publish and the pages only")
    parser.add_argument("--serving-dir", type=Path, help="publish here (default: beside the cache, or a temporary "
                        "folder); replaced on every run")
    args, _ = parser.parse_known_args(sys.argv[2:] if sys.argv[1:2] == ["dashboard"] else sys.argv[1:])
    directory = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        figures: list[tuple[str, object]] = []
        home = args.cache or directory
        warehouse = home / f"scaled-{args.per_day}x{args.days}.warehouse.duckdb"
        if args.cache and warehouse.exists():
            figures.append(("scaled warehouse", f"REUSED {warehouse} (scaling skipped)"))
        else:
            home.mkdir(parents=True, exist_ok=True)
            source = args.source or source_file(directory)
            scaled = scale(source, warehouse, args.per_day, args.days)
            figures += [("scaled warehouse", f"built {warehouse}" + (" (cached for the next run)" if args.cache
                                                                      else "")),
                        ("scaled copies of the simulated day", scaled["copies"]),
                        ("scaling time (s)", scaled["seconds"])]
            figures += [(f"rows {t}", n) for t, n in sorted(scaled["rows"].items(), key=lambda x: -x[1])[:4]]
        figures.append(("rollups built by dbt from the scaled marts (s)", build_rollups(warehouse)))
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            for rollup, mart in (("activity_overview_5min", "activity_overview"), ("claude_usage_5min", "claude_usage"),
                                 ("claude_usage_chats_5min", "claude_usage")):
                n, m = (conn.execute(f"SELECT count(*) FROM marts.{t}").fetchone()[0] for t in (rollup, mart))
                # the scaled day is the simulated day copied: windows repeat, so a rollup compresses more than on
                # real data (where a 5-minute window of a 1M day holds ~3,500 activities of many types)
                figures.append((f"rows {rollup} / {mart}", f"{n:,} / {m:,} ({m / max(n, 1):.0f}x fewer)"))
        # published afresh on every run, by the pipeline's own publish (kept beside a cache for inspection)
        served = args.serving_dir or (home if args.cache else directory) / "serving"
        shutil.rmtree(served, ignore_errors=True)
        served.mkdir(parents=True)
        big = served / "marts_7d.duckdb"
        published = publish(warehouse, big, include_message_text=True)
        figures += [("publish time (s)", published.seconds),
                    ("serving catalog + Parquet files (MB)", published.size_bytes / 1e6)]
        pages = [d["dashboard"] for d in dashboards()] + ["alerts"]
        # warming off: "cold" is a first visit that runs every query; "warm" is what the app's warmer gives visitors
        with DashboardProcess(port=free_port(), env={"COMPLIANCE_SERVING_PATH": str(big),
                                                     "COMPLIANCE_DASHBOARD_WARM": "false"},
                              log_path=directory / "streamlit.log") as app, Browser() as browser:
            browser.open_page(f"{app.url}/home")  # the app's own start-up (imports) is not a page's cost
            results = []
            for page in pages:
                cold = browser.open_page(f"{app.url}/{page}", timeout=180)
                warm = browser.open_page(f"{app.url}/{page}", timeout=180)
                floor = query_floor(big, page)
                results.append((page, cold, warm, floor))
        load = os.getloadavg()[0]
        for page, cold, warm, floor in results:
            figures.append((f"{page}: cold / warm / queries alone (s), ratio",
                            f"{cold:.2f} / {warm:.2f} / {floor:.2f}, {cold / floor:.1f}x"))
        worst = max(results, key=lambda r: r[1])
        figures += [("pages under the 3 s target (cold)", f"{sum(r[1] < TARGET_SECONDS for r in results)}/{len(results)}"),
                    ("slowest page (cold)", f"{worst[0]} {worst[1]:.2f} s"),
                    ("median page (cold)", f"{sorted(r[1] for r in results)[len(results) // 2]:.2f} s"),
                    ("load average during the run (1 min)", f"{load:.1f} on {os.cpu_count()} cores")]
        report("dashboard", figures)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
