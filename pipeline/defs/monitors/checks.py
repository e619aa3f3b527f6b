"""The monitors (9 seed, the peers' rules, custom rules of the configuration file) as asset checks on `raw/activities`
(one @multi_asset_check op, one check per monitor).

Why one unpartitioned multi-asset check: it runs as a step of every run that materializes `raw/activities` (the
5-minute schedule, the late re-pull, ranged backfills) right after the ingest step, and reads that run's
`partition_time_window`, which for a ranged run spans the whole range, so every window ending in the range is
evaluated (pipeline.monitors.evaluate). Partitioned checks (new in 1.13, preview) would record one result per
partition but are not needed for that. A check executed on its own (UI "Execute") evaluates the last hour before the
newest ingested window.

Non-blocking, severity ERROR: a monitor that fires marks its check failed without failing the run, so dashboards
keep refreshing during an incident. The step opens DuckDB, hence pool "duckdb".
"""

from datetime import timezone

import dagster as dg

from pipeline.defs.resources import WarehouseResource
from pipeline.monitors import MonitorReport, load_config, run_monitors
from pipeline.monitors.config import describe
from pipeline.monitors.run import latest_ingested_range

RAW_ACTIVITIES = dg.AssetKey(["raw", "activities"])

# One check per configured rule, custom rules included: the configuration is read (and validated: a bad custom
# rule stops the code location from loading, with the message naming it) when the definitions load.
CONFIGURED_RULES = load_config().rules
MONITOR_CHECK_NAMES = tuple(rule.name for rule in CONFIGURED_RULES)
MONITOR_CHECK_SPECS = [
    dg.AssetCheckSpec(name=rule.name, asset=RAW_ACTIVITIES, blocking=False, description=rule.description,
                      metadata={"severity": "critical", "source": rule.source})
    for rule in CONFIGURED_RULES
]


def _alerts_markdown(report: MonitorReport) -> str:
    if not report.alerts:
        return "No alert."
    lines = ["| alert | status | group | events | first event | last event |", "|---|---|---|---|---|---|"]
    for a in report.alerts:
        lines.append(f"| `{a.alert_id}` | {a.status} | {a.group_key or '—'} | {a.event_count} | "
                     f"{a.first_event_at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} | "
                     f"{a.last_event_at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} |")
    return "\n".join(lines)


def _result(report: MonitorReport, start, end) -> dg.AssetCheckResult:
    rule = report.rule
    if rule.name == "resource_deletion_outlier":
        condition = f"hour count >= {rule.floor} and > mean + {rule.sigmas:g} sigma (baseline {rule.baseline_days} d)"
    elif rule.kind == "threshold":
        condition = f"count > {rule.threshold} in {rule.window_minutes} min"
    else:
        condition = rule.description
    if report.fired:
        names = ", ".join(f"{a.alert_id} ({a.status}, {a.event_count} events"
                          f"{', ' + a.group_key if a.group_key else ''})" for a in report.alerts[:5])
        more = f" and {len(report.alerts) - 5} more" if len(report.alerts) > 5 else ""
        description = f"{len(report.alerts)} alert(s): {names}{more}"
    else:
        description = f"No incident in {report.windows_evaluated} window(s)."
    return dg.AssetCheckResult(
        asset_key=RAW_ACTIVITIES,
        check_name=rule.name,
        passed=not report.fired,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "alerts": dg.MetadataValue.md(_alerts_markdown(report)),
            "alert_ids": dg.MetadataValue.json([a.alert_id for a in report.alerts]),
            "alert_count": len(report.alerts),
            "new_alert_count": len(report.new_alerts),
            "sample_events": dg.MetadataValue.json(report.sample),
            "matching_events": report.matching_events,
            "windows_evaluated": report.windows_evaluated,
            "first_window_end": report.first_window_end.isoformat() if report.first_window_end else "",
            "last_window_end": report.last_window_end.isoformat() if report.last_window_end else "",
            "evaluated_data_start": start.isoformat(),
            "evaluated_data_end": end.isoformat(),
            "condition": condition,
        },
    )


@dg.multi_asset_check(
    specs=MONITOR_CHECK_SPECS,
    name="activity_monitors",
    description="The compliance monitors (monitors.md seed, peers' rules, custom rules) over every window of the "
                "newly ingested activities; incidents are written to monitors.alerts.",
    can_subset=True,
    pool="duckdb",
)
def activity_monitors(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    config = load_config()
    names = {r.name for r in config.rules}
    selected = [k.name for k in context.selected_asset_check_keys if k.name in names]
    op = context.op_execution_context
    with warehouse.connect() as conn:
        if op.has_partition_key or op.has_partition_key_range:
            window = op.partition_time_window
            span = (window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc))
        else:
            span = latest_ingested_range(conn, config.adhoc_lookback_minutes)
        reports = {} if span is None else run_monitors(
            conn, config, span[0], span[1], run_id=op.run_id,
            monitors=[n for n in selected if config.rule(n).enabled])
    new = sum(len(r.new_alerts) for r in reports.values())
    if new:
        context.log.warning(f"{new} new alert(s) in monitors.alerts")
    for name in selected:
        if name in reports:
            yield _result(reports[name], *span)
            continue
        why = "disabled by configuration" if not config.rule(name).enabled else "no ingested activity yet"
        yield dg.AssetCheckResult(asset_key=RAW_ACTIVITIES, check_name=name, passed=True,
                                  severity=dg.AssetCheckSeverity.ERROR, description=f"Not evaluated: {why}.",
                                  metadata={"configuration": dg.MetadataValue.json(
                                      describe(config)["rules"][name])})
