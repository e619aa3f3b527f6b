"""The no-data monitor: an alert when no activity has been ingested for `no_data.after_minutes` while the ingest
schedule keeps launching runs, reason `api_erroring` when those runs failed (the API answering errors) and `no_data`
when they succeeded without new records. Resolved automatically (by `system`) once records flow again.

`assess` is pure (inputs: the recent ingest runs and the time of the newest ingested record); `apply` writes the
result to monitors.alerts like any other alert (monitor `no_data`, group = reason), so delivery, the lifecycle and
the alerts mart treat it the same way. The Dagster sensor `no_data_monitor` feeds both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from pipeline.monitors.alerts import _insert, ensure_alerts_table, read_alerts
from pipeline.monitors.config import NoDataSettings

MONITOR = "no_data"
# the schedule counts as running when it launched a run this recently (it ticks every 5 minutes)
SCHEDULE_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class IngestRun:
    created_at: datetime
    succeeded: bool | None   # None while it runs


@dataclass(frozen=True)
class NoDataAssessment:
    firing: bool
    reason: str | None            # no_data | api_erroring
    silent_since: datetime | None  # newest ingested record (or the first run of the period when there is none)
    failed_runs: int = 0
    data_flowing: bool = False    # a record was ingested within after_minutes


def assess(now: datetime, settings: NoDataSettings, runs: list[IngestRun],
           last_ingested_at: datetime | None) -> NoDataAssessment:
    """`runs`: the ingest runs created in the last `after_minutes + 15` minutes."""
    after = timedelta(minutes=settings.after_minutes)
    flowing = last_ingested_at is not None and now - last_ingested_at < after
    if not settings.enabled or flowing:
        return NoDataAssessment(False, None, last_ingested_at, data_flowing=flowing)
    recent = [r for r in runs if r.created_at >= now - after - SCHEDULE_GRACE]
    if not recent or max(r.created_at for r in recent) < now - SCHEDULE_GRACE:
        return NoDataAssessment(False, None, last_ingested_at)   # nothing scheduled: nothing expected
    first = min(r.created_at for r in recent)
    if first > now - after:
        return NoDataAssessment(False, None, last_ingested_at)   # the schedule has not run that long yet
    in_period = [r for r in recent if r.created_at >= now - after]
    finished = [r for r in in_period if r.succeeded is not None]
    failed = sum(1 for r in finished if not r.succeeded)
    reason = "api_erroring" if finished and failed == len(finished) else "no_data"
    return NoDataAssessment(True, reason, last_ingested_at or first, failed_runs=failed)


def last_ingested_at(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    try:
        return conn.execute("SELECT max(fetched_at) FROM raw.activities").fetchone()[0]
    except duckdb.CatalogException:
        return None


def apply(conn: duckdb.DuckDBPyConnection, result: NoDataAssessment, now: datetime) -> str | None:
    """Open, extend or resolve the no-data alert; returns what changed (opened/extended/resolved) or None."""
    ensure_alerts_table(conn)
    current = read_alerts(conn, "monitor = $m AND status <> 'resolved'", {"m": MONITOR})
    if not result.firing:
        if not current or not result.data_flowing:
            return None
        note = f"data flowing again (newest record ingested at {result.silent_since:%Y-%m-%d %H:%M:%S} UTC)"
        conn.execute("BEGIN TRANSACTION")
        try:
            for a in current:
                conn.execute("UPDATE monitors.alerts SET status = 'resolved', status_by = 'system', status_at = ?, "
                             "status_note = ? WHERE alert_id = ?", [now, note, a["alert_id"]])
                conn.execute("INSERT INTO monitors.alert_history VALUES (?, ?, 'resolve', 'system', ?, 'resolved', ?)",
                             [a["alert_id"], now, a["status"], note])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return "resolved"
    details = json.dumps({"reason": result.reason, "failed_runs": result.failed_runs,
                          "silent_minutes": int((now - result.silent_since).total_seconds() // 60)})
    same = [a for a in current if a["group_key"] == result.reason]
    if same:
        conn.execute("UPDATE monitors.alerts SET last_event_at = ?, last_window_end = ?, details = ?::JSON, "
                     "updated_at = ? WHERE alert_id = ?", [now, now, details, now, same[0]["alert_id"]])
        return "extended"
    digest = hashlib.sha256(f"{MONITOR}\x1f{result.reason}\x1f{result.silent_since.isoformat()}".encode())
    row: dict[str, Any] = {
        "alert_id": "alert_" + digest.hexdigest()[:24], "monitor": MONITOR, "severity": "critical",
        "group_key": result.reason, "first_event_at": result.silent_since, "last_event_at": now, "event_count": 0,
        "threshold": 0.0, "activity_ids": [], "raised_at": now, "delivered_at": None,
        "first_window_end": result.silent_since, "last_window_end": now, "peak_count": 0, "details": details,
        "updated_at": None, "run_id": None, "status": "open", "status_by": None, "status_at": None,
        "status_note": None, "reopened_count": 0, "notified_event_count": None, "notify_reason": None}
    stored = read_alerts(conn, "alert_id = $id", {"id": row["alert_id"]})
    conn.execute("BEGIN TRANSACTION")
    try:
        if stored:   # the same outage, resolved by hand while it lasts: reopened and posted again
            conn.execute("""UPDATE monitors.alerts SET status = 'open', status_by = 'system', status_at = ?,
                            status_note = 'still no data', reopened_count = reopened_count + 1, last_event_at = ?,
                            last_window_end = ?, details = ?::JSON, updated_at = ?,
                            delivered_at = NULL, notify_reason = 'reopened' WHERE alert_id = ?""",
                         [now, now, now, details, now, row["alert_id"]])
            conn.execute("INSERT INTO monitors.alert_history VALUES (?, ?, 'reopened', 'system', ?, 'open', "
                         "'still no data')", [row["alert_id"], now, stored[0]["status"]])
        else:
            _insert(conn, [row])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return "reopened" if stored else "opened"
