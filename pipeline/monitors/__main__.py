"""`python -m pipeline.monitors config` prints the effective monitor configuration (and fails on a bad one);
`python -m pipeline.monitors evaluate --start ISO --end ISO` evaluates a range of the warehouse and records its
alerts, e.g. after changing a threshold; `python -m pipeline.monitors alerts [--status open]` lists alerts;
`python -m pipeline.monitors ack|resolve|reopen ALERT_ID --by NAME [--note TEXT]` moves an alert through its
lifecycle (open -> acknowledged -> resolved); `python -m pipeline.monitors dbt-rules` writes the dbt macro of the
rules' per-event conditions from the configuration. Commands that open the warehouse need its lock: run them while
the pipeline is idle, or use the Dagster job `alert_lifecycle`."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.config import Settings, parse_utc
from pipeline.monitors.alerts import ACTIONS, AlertStateError, read_alerts, set_status
from pipeline.monitors.config import describe, load_config
from pipeline.monitors.run import run_monitors
from pipeline.warehouse.connection import open_warehouse

COMMAND_ACTIONS = {"ack": "acknowledge", "acknowledge": "acknowledge", "resolve": "resolve", "reopen": "reopen"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.monitors", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("config", help="print the effective configuration as JSON")
    sub.add_parser("dbt-rules", help="write dbt_project/macros/monitor_rules.sql from the configuration")
    ev = sub.add_parser("evaluate", help="evaluate [start, end) and record alerts")
    ev.add_argument("--start", required=True)
    ev.add_argument("--end", required=True)
    ev.add_argument("--warehouse", help="DuckDB file (default: COMPLIANCE_WAREHOUSE_PATH)")
    ls = sub.add_parser("alerts", help="list alerts (newest first)")
    ls.add_argument("--status", choices=["open", "acknowledged", "resolved"])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--warehouse")
    for name in ("ack", "acknowledge", "resolve", "reopen"):
        p = sub.add_parser(name, help=f"{COMMAND_ACTIONS[name]} an alert")
        p.add_argument("alert_id")
        p.add_argument("--by", required=True, help="who (name or email)")
        p.add_argument("--note", help="why / what was done")
        p.add_argument("--warehouse")
    args = parser.parse_args(argv)
    config = load_config()
    if args.command == "config":
        print(json.dumps(describe(config), indent=2, default=str))
        return 0
    if args.command == "dbt-rules":
        from pipeline.monitors.dbt_rules import write_macro

        path, changed = write_macro(config)
        print(f"{path}: {'written' if changed else 'up to date'}")
        return 0
    settings = Settings.from_env()
    with open_warehouse(args.warehouse or settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as conn:
        if args.command == "evaluate":
            reports = run_monitors(conn, config, parse_utc(args.start), parse_utc(args.end), run_id="cli")
            for name, report in reports.items():
                print(f"{name}: {len(report.alerts)} alert(s) ({len(report.new_alerts)} new), "
                      f"{report.windows_evaluated} windows, {report.matching_events} matching events")
            return 0
        if args.command == "alerts":
            where, params = ("status = $s", {"s": args.status}) if args.status else ("true", None)
            rows = read_alerts(conn, where, params)[-args.limit:][::-1]
            for a in rows:
                print(f"{a['alert_id']}  {a['status']:<12} {a['monitor']:<40} {a['group_key'] or '-':<30} "
                      f"{a['event_count']:>5} events  raised {a['raised_at']:%Y-%m-%d %H:%M}"
                      + (f"  ({a['status_by']}: {a['status_note']})" if a["status_by"] else ""))
            return 0
        try:
            alert = set_status(conn, args.alert_id, COMMAND_ACTIONS[args.command], by=args.by, note=args.note)
        except AlertStateError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print(f"{alert['alert_id']}: {alert['status']} by {alert['status_by']} at {alert['status_at']:%Y-%m-%d %H:%M:%S}"
          + (f" ({alert['status_note']})" if alert["status_note"] else ""))
    return 0


assert set(COMMAND_ACTIONS.values()) == set(ACTIONS)

if __name__ == "__main__":
    sys.exit(main())
