"""`python -m pipeline.monitors config` prints the effective monitor configuration (and fails on a bad one);
`python -m pipeline.monitors evaluate --start ISO --end ISO` evaluates a range of the warehouse and records its
alerts, e.g. after changing a threshold (needs the warehouse lock: run it while the pipeline is idle)."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.config import Settings, parse_utc
from pipeline.monitors.config import describe, load_config
from pipeline.monitors.run import run_monitors
from pipeline.warehouse.connection import open_warehouse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.monitors", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("config", help="print the effective configuration as JSON")
    ev = sub.add_parser("evaluate", help="evaluate [start, end) and record alerts")
    ev.add_argument("--start", required=True)
    ev.add_argument("--end", required=True)
    ev.add_argument("--warehouse", help="DuckDB file (default: COMPLIANCE_WAREHOUSE_PATH)")
    args = parser.parse_args(argv)
    config = load_config()
    if args.command == "config":
        print(json.dumps(describe(config), indent=2, default=str))
        return 0
    settings = Settings.from_env()
    with open_warehouse(args.warehouse or settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as conn:
        reports = run_monitors(conn, config, parse_utc(args.start), parse_utc(args.end), run_id="cli")
    for name, report in reports.items():
        print(f"{name}: {len(report.alerts)} alert(s) ({len(report.new_alerts)} new), "
              f"{report.windows_evaluated} windows, {report.matching_events} matching events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
