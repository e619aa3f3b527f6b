"""Evaluate the monitors over an ingested range and record their alerts: what one Dagster check execution does,
as plain Python (the Dagster layer only turns the reports into AssetCheckResults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import duckdb

from pipeline.monitors.alerts import AlertChange, record_incidents
from pipeline.monitors.config import MonitorsConfig, Rule
from pipeline.monitors.evaluate import evaluate, sample_events


@dataclass
class MonitorReport:
    rule: Rule
    windows_evaluated: int = 0
    first_window_end: datetime | None = None
    last_window_end: datetime | None = None
    matching_events: int = 0
    alerts: list[AlertChange] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)

    @property
    def fired(self) -> bool:
        return bool(self.alerts)

    @property
    def new_alerts(self) -> list[AlertChange]:
        return [a for a in self.alerts if a.status == "new"]


def run_monitors(conn: duckdb.DuckDBPyConnection, config: MonitorsConfig, start: datetime, end: datetime, *,
                 run_id: str | None = None, now: datetime | None = None,
                 monitors: list[str] | None = None) -> dict[str, MonitorReport]:
    now = now or datetime.now(timezone.utc)
    results = evaluate(conn, config, start, end, monitors)
    changes = record_incidents(conn, results, severity=config.severity, now=now, run_id=run_id,
                               renotify_growth=config.renotify_growth)
    reports: dict[str, MonitorReport] = {}
    for name, res in results.items():
        report = MonitorReport(rule=res.rule, windows_evaluated=res.windows_evaluated,
                               first_window_end=res.first_window_end, last_window_end=res.last_window_end,
                               matching_events=res.matching_events,
                               alerts=[c for c in changes if c.monitor == name])
        report.sample = sample_events(conn, res.incidents, config.sample_size)
        reports[name] = report
    return reports


def latest_ingested_range(conn: duckdb.DuckDBPyConnection, lookback_minutes: int) -> tuple[datetime, datetime] | None:
    """For a check executed outside a partitioned run: the `lookback_minutes` before the newest attested window."""
    try:
        end = conn.execute("SELECT max(window_end) FROM raw.activity_attestations").fetchone()[0]
    except duckdb.CatalogException:
        return None
    if end is None:
        return None
    end = end.astimezone(timezone.utc)
    return end - timedelta(minutes=lookback_minutes), end
