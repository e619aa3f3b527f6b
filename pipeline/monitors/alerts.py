"""`monitors.alerts`: one row per incident, written idempotently.

An evaluation's incidents are merged into the stored alerts of the same monitor and group whose firing windows
overlap or touch (ends at most one step apart): the stored alert grows (late events, an incident that spans two
runs), keeping its id, `raised_at` and `delivered_at`. An incident that touches no stored alert is a new alert, with
`alert_id` derived from monitor + group + first activity id. Re-evaluating the same data finds every incident inside
an existing alert and writes nothing, so re-running partitions leaves the table unchanged. When new data joins two
stored alerts, the earlier one takes the events and the later one stays as it is (it may have been delivered).

Lifecycle: every alert is `open`, `acknowledged` or `resolved`, with who, when and a note (`set_status`, from
`python -m pipeline.monitors ack|resolve|reopen` or the Dagster job `alert_lifecycle`); every change is also a row of
`monitors.alert_history`. The table is the monitors' own (dbt never rebuilds it), so the state survives re-runs and
full refreshes. New events merged into a resolved alert reopen it; an alert is posted again (delivered_at cleared,
`notify_reason` set) when it reopens or has grown by `renotify_growth` events since it was last posted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from pipeline.monitors.evaluate import Incident, MonitorResult
from pipeline.sql_files import queries_beside

SQL = queries_beside(__file__)
DDL = SQL["ddl"]

STATUSES = ("open", "acknowledged", "resolved")
# action -> (statuses it applies to, resulting status)
ACTIONS = {"acknowledge": (("open",), "acknowledged"), "resolve": (("open", "acknowledged"), "resolved"),
           "reopen": (("resolved", "acknowledged"), "open")}

COLUMNS = ("alert_id", "monitor", "severity", "group_key", "first_event_at", "last_event_at", "event_count",
           "threshold", "activity_ids", "raised_at", "delivered_at", "first_window_end", "last_window_end",
           "peak_count", "details", "updated_at", "run_id", "status", "status_by", "status_at", "status_note",
           "reopened_count", "notified_event_count", "notify_reason")


def ensure_alerts_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(DDL)


def alert_id(monitor: str, group_key: str | None, first_activity_id: str) -> str:
    digest = hashlib.sha256(f"{monitor}\x1f{group_key or ''}\x1f{first_activity_id}".encode()).hexdigest()
    return "alert_" + digest[:24]


@dataclass
class AlertChange:
    alert_id: str
    monitor: str
    group_key: str | None
    status: str            # new | updated | unchanged
    event_count: int
    first_event_at: datetime
    last_event_at: datetime


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _ordered(conn: duckdb.DuckDBPyConnection, ids: list[str], first_at: datetime, last_at: datetime) -> list[str]:
    """Ids oldest first; ids no longer stored in raw.activities keep their place at the end."""
    ids = list(dict.fromkeys(ids))
    found = conn.execute(SQL["activity_order"], {"ids": ids, "lo": first_at, "hi": last_at}).fetchall()
    ordered = list(dict.fromkeys(r[0] for r in found))
    seen = set(ordered)
    return ordered + [i for i in ids if i not in seen]


@dataclass
class AlertMerge:
    """What merging incidents into the stored alerts changes: rows to (re)insert, stored ids they replace, history."""

    changes: list[AlertChange] = field(default_factory=list)
    written: dict[str, dict[str, Any]] = field(default_factory=dict)   # alert_id -> row to (re)insert
    replaced: set[str] = field(default_factory=set)                    # stored alerts that grew
    history: list[tuple] = field(default_factory=list)


OrderIds = Callable[[list[str], datetime, datetime], list[str]]


def new_alert_row(inc: Incident, *, severity: str, now: datetime, run_id: str | None) -> dict[str, Any]:
    return {"alert_id": alert_id(inc.monitor, inc.group_key, inc.activity_ids[0]), "monitor": inc.monitor,
            "severity": severity, "group_key": inc.group_key, "first_event_at": inc.first_event_at,
            "last_event_at": inc.last_event_at, "event_count": inc.event_count, "threshold": inc.threshold,
            "activity_ids": list(inc.activity_ids), "raised_at": now, "delivered_at": None,
            "first_window_end": inc.first_window_end, "last_window_end": inc.last_window_end,
            "peak_count": inc.peak_count, "details": json.dumps(inc.details) if inc.details else None,
            "updated_at": None, "run_id": run_id, "status": "open", "status_by": None, "status_at": None,
            "status_note": None, "reopened_count": 0, "notified_event_count": None, "notify_reason": None}


def merge_incidents(incidents: list[tuple[Incident, timedelta]], stored: dict[tuple[str, str | None], list[dict]],
                    *, severity: str, now: datetime, run_id: str | None, renotify_growth: int,
                    order_ids: OrderIds) -> AlertMerge:
    """Merge (incident, step) pairs into the stored alerts (by monitor and group; the lists grow with the new
    alerts). `order_ids(ids, first_at, last_at)` puts a grown alert's ids oldest first. No database access."""
    merge = AlertMerge()
    created: set[str] = set()  # new alerts of this call
    for inc, step in sorted(incidents, key=lambda x: (x[0].monitor, x[0].group_key or "", x[0].first_window_end)):
        rows = stored.setdefault((inc.monitor, inc.group_key), [])
        touching = [r for r in rows if r["first_window_end"] - step <= inc.last_window_end
                    and r["last_window_end"] + step >= inc.first_window_end]
        if not touching:
            row = new_alert_row(inc, severity=severity, now=now, run_id=run_id)
            rows.append(row)
            merge.written[row["alert_id"]] = row
            created.add(row["alert_id"])
            merge.changes.append(AlertChange(row["alert_id"], inc.monitor, inc.group_key, "new", inc.event_count,
                                             inc.first_event_at, inc.last_event_at))
            continue
        target = min(touching, key=lambda r: (r["first_window_end"], r["alert_id"]))
        known = set(target["activity_ids"])
        new_ids = [i for i in inc.activity_ids if i not in known]
        widened = (inc.first_window_end < target["first_window_end"]
                   or inc.last_window_end > target["last_window_end"] or inc.peak_count > target["peak_count"])
        if not new_ids and not widened:
            merge.changes.append(AlertChange(target["alert_id"], inc.monitor, inc.group_key,
                                             "new" if target["alert_id"] in created else "unchanged",
                                             target["event_count"], target["first_event_at"], target["last_event_at"]))
            continue
        first_at = min(target["first_event_at"], inc.first_event_at)
        last_at = max(target["last_event_at"], inc.last_event_at)
        ids = order_ids(list(target["activity_ids"]) + new_ids, first_at, last_at) if new_ids \
            else list(target["activity_ids"])
        target.update(activity_ids=ids, event_count=len(ids), first_event_at=first_at, last_event_at=last_at,
                      first_window_end=min(target["first_window_end"], inc.first_window_end),
                      last_window_end=max(target["last_window_end"], inc.last_window_end),
                      peak_count=max(target["peak_count"], inc.peak_count))
        if target["alert_id"] not in created:
            target["updated_at"] = now
            merge.replaced.add(target["alert_id"])
            merge.history.extend(_after_growth(target, len(new_ids), now, renotify_growth))
        merge.written[target["alert_id"]] = target
        merge.changes.append(AlertChange(target["alert_id"], inc.monitor, inc.group_key,
                                         "new" if target["alert_id"] in created else "updated",
                                         target["event_count"], first_at, last_at))
    return merge


def _stored_alerts(conn: duckdb.DuckDBPyConnection, incidents: list[tuple[Incident, timedelta]]
                   ) -> dict[tuple[str, str | None], list[dict[str, Any]]]:
    """The stored alerts the incidents can touch (their monitors, windows within an hour), by monitor and group."""
    lo = min(i.first_window_end - step for i, step in incidents)
    hi = max(i.last_window_end + step for i, step in incidents)
    stored: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for row in _rows(conn, SQL["touchable_alerts"], {"monitors": sorted({i.monitor for i, _ in incidents}),
                                                     "lo": lo - timedelta(hours=1), "hi": hi + timedelta(hours=1)}):
        stored.setdefault((row["monitor"], row["group_key"]), []).append(row)
    return stored


def record_incidents(conn: duckdb.DuckDBPyConnection, results: dict[str, MonitorResult], *, severity: str,
                     now: datetime, run_id: str | None, renotify_growth: int = 0) -> list[AlertChange]:
    """Merge the evaluation's incidents into monitors.alerts in one transaction; report each incident's alert.

    Set-based: the stored alerts the incidents can touch are read in one query, merged in Python, and the changed
    rows replaced in one delete + one insert (a query per incident costs milliseconds each)."""
    ensure_alerts_table(conn)
    incidents = [(inc, timedelta(minutes=res.rule.step_minutes)) for res in results.values() for inc in res.incidents]
    if not incidents:
        return []
    merge = merge_incidents(incidents, _stored_alerts(conn, incidents), severity=severity, now=now, run_id=run_id,
                            renotify_growth=renotify_growth,
                            order_ids=lambda ids, first_at, last_at: _ordered(conn, ids, first_at, last_at))
    apply_alert_merge(conn, merge)
    return merge.changes


def apply_alert_merge(conn: duckdb.DuckDBPyConnection, merge: AlertMerge) -> None:
    """Write a merge in one transaction: grown alerts deleted and reinserted with the new ones, history appended."""
    if not merge.written:
        return
    conn.execute("BEGIN TRANSACTION")
    try:
        if merge.replaced:
            # delete + insert rather than UPDATE: DuckDB rewrites list columns that way anyway
            conn.execute(SQL["delete_alerts"], {"ids": sorted(merge.replaced)})
        _insert(conn, list(merge.written.values()))
        if merge.history:
            conn.executemany(SQL["insert_history"], merge.history)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _insert(conn, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa

    table = pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in rows], schema=_ARROW_SCHEMA)
    conn.register("alerts_new", table)
    try:
        conn.execute(f"INSERT INTO monitors.alerts ({', '.join(COLUMNS)}) "
                     f"SELECT {', '.join(COLUMNS[:14])}, details::JSON, {', '.join(COLUMNS[15:])} FROM alerts_new")
    finally:
        conn.unregister("alerts_new")


def _arrow_schema():
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema([("alert_id", pa.string()), ("monitor", pa.string()), ("severity", pa.string()),
                      ("group_key", pa.string()), ("first_event_at", ts), ("last_event_at", ts),
                      ("event_count", pa.int64()), ("threshold", pa.float64()),
                      ("activity_ids", pa.list_(pa.string())), ("raised_at", ts), ("delivered_at", ts),
                      ("first_window_end", ts), ("last_window_end", ts), ("peak_count", pa.int64()),
                      ("details", pa.string()), ("updated_at", ts), ("run_id", pa.string()),
                      ("status", pa.string()), ("status_by", pa.string()), ("status_at", ts),
                      ("status_note", pa.string()), ("reopened_count", pa.int32()),
                      ("notified_event_count", pa.int64()), ("notify_reason", pa.string())])


_ARROW_SCHEMA = _arrow_schema()


def _after_growth(row: dict[str, Any], new_events: int, now: datetime, renotify_growth: int) -> list[tuple]:
    """A stored alert just grew by `new_events`: reopen it when it was resolved, and queue it for posting again
    when it reopened or grew by `renotify_growth` since it was last posted. Returns history rows."""
    out = []
    if new_events and row.get("status") == "resolved":
        note = f"{new_events} new event(s) after resolution"
        out.append((row["alert_id"], now, "reopened", "system", "resolved", "open", note))
        row.update(status="open", status_by="system", status_at=now, status_note=note,
                   reopened_count=(row.get("reopened_count") or 0) + 1)
        if row.get("delivered_at") is not None:
            row.update(delivered_at=None, notify_reason="reopened")
        return out
    notified = row.get("notified_event_count")
    if row.get("delivered_at") is not None and renotify_growth > 0 and notified is not None \
            and row["event_count"] - notified >= renotify_growth:
        row.update(delivered_at=None, notify_reason=f"grew by {row['event_count'] - notified} event(s)")
        out.append((row["alert_id"], now, "renotify", "system", row.get("status"), row.get("status"),
                    row["notify_reason"]))
    return out


class AlertStateError(ValueError):
    """An unknown alert or a transition its status does not allow (the message says which)."""


def set_status(conn: duckdb.DuckDBPyConnection, alert_id: str, action: str, *, by: str, note: str | None = None,
               now: datetime | None = None) -> dict[str, Any]:
    """acknowledge / resolve / reopen one alert, recording who, when and why; returns the updated alert."""
    from datetime import timezone

    if action not in ACTIONS:
        raise AlertStateError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    if not by or not by.strip():
        raise AlertStateError("who is changing the alert is required (--by / config `by`)")
    now = now or datetime.now(timezone.utc)
    ensure_alerts_table(conn)
    allowed, to_status = ACTIONS[action]
    conn.execute("BEGIN TRANSACTION")
    try:
        row = conn.execute(SQL["status_of"], [alert_id]).fetchall()
        if not row:
            raise AlertStateError(f"no alert {alert_id!r} in monitors.alerts")
        status = row[0][0] or "open"
        if status not in allowed:
            raise AlertStateError(f"alert {alert_id} is {status}: cannot {action} it "
                                  f"(allowed from: {', '.join(allowed)})")
        conn.execute(SQL["set_status"], [to_status, by.strip(), now, note, to_status, alert_id])
        conn.execute(SQL["insert_history"], [alert_id, now, action, by.strip(), status, to_status, note])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return read_alerts(conn, "alert_id = $id", {"id": alert_id})[0]


def alert_history(conn: duckdb.DuckDBPyConnection, alert_id: str) -> list[dict[str, Any]]:
    ensure_alerts_table(conn)
    return _rows(conn, SQL["alert_history"], {"id": alert_id})


def read_alerts(conn: duckdb.DuckDBPyConnection, where: str = "true", params: Any = None,
                limit: int | None = None) -> list[dict[str, Any]]:
    ensure_alerts_table(conn)
    sql = f"SELECT * FROM monitors.alerts WHERE {where} ORDER BY raised_at, alert_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return _rows(conn, sql, params)


def pending_alerts(conn: duckdb.DuckDBPyConnection, limit: int, exclude: Iterable[str] = ()) -> list[dict]:
    """Undelivered alerts, oldest first."""
    ensure_alerts_table(conn)
    return _rows(conn, SQL["pending_alerts"], {"exclude": list(exclude), "limit": int(limit)})


def alerts_raised_after(conn: duckdb.DuckDBPyConnection, raised_at: datetime, last_id: str, limit: int) -> list[dict]:
    """Alerts after (raised_at, alert_id) in (raised_at, alert_id) order: what a log-only tick has not logged yet."""
    ensure_alerts_table(conn)
    return _rows(conn, SQL["alerts_raised_after"], {"ts": raised_at, "id": last_id, "limit": int(limit)})


def mark_delivered(conn: duckdb.DuckDBPyConnection, delivered: dict[str, datetime]) -> int:
    """Set delivered_at once (a second marking of the same alert changes nothing)."""
    if not delivered:
        return 0
    ensure_alerts_table(conn)
    conn.register("delivered_now", _arrow(delivered))
    try:
        n = conn.execute(SQL["mark_delivered"]).fetchone()[0]
    finally:
        conn.unregister("delivered_now")
    return n


def _arrow(delivered: dict[str, datetime]):
    import pyarrow as pa

    return pa.table({"alert_id": pa.array(list(delivered), pa.string()),
                     "at": pa.array(list(delivered.values()), pa.timestamp("us", tz="UTC"))})
