"""Alert delivery beyond the Dagster UI: new rows of monitors.alerts and failed runs, posted to the webhook
COMPLIANCE_ALERT_WEBHOOK_URL as Slack-compatible JSON (logged only when it is unset). Logic and settings:
pipeline.monitors.delivery.

Sensors cannot take a pool slot, so the alert sensor opens the warehouse only for milliseconds and skips the tick
when another process holds the DuckDB lock (a run is writing); the next tick, 30 s later, catches up.
"""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from pipeline.defs.resources import WarehouseResource
from pipeline.monitors import nodata
from pipeline.monitors.config import load_config
from pipeline.monitors.delivery import (DeliverySettings, deliver_alerts_tick, post_or_queue,
                                        run_failure_message)
from pipeline.warehouse.connection import WarehouseLockedError, open_warehouse

INGEST_JOB = "ingest_activities"


@dg.sensor(
    name="monitor_alerts_webhook",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each new monitors.alerts row once to COMPLIANCE_ALERT_WEBHOOK_URL (Slack-compatible JSON) "
                "and sets its delivered_at; retries with backoff; logs only when no URL is set.",
)
def monitor_alerts_webhook(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
    out = deliver_alerts_tick(warehouse.path, DeliverySettings.from_env(), context.cursor, context.log)
    if out.skipped:
        reason = out.skipped
    else:
        reason = (f"delivered {len(out.delivered)}, failed {len(out.failed)}, logged {len(out.logged)}, "
                  f"queued notifications delivered {out.outbox_delivered}")
    return dg.SensorResult(skip_reason=reason, cursor=out.cursor)


@dg.run_failure_sensor(
    name="run_failure_webhook",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each failed run to COMPLIANCE_ALERT_WEBHOOK_URL (queued for retry by monitor_alerts_webhook "
                "when the webhook fails); logs only when no URL is set.",
)
def run_failure_webhook(context: dg.RunFailureSensorContext, warehouse: WarehouseResource) -> None:
    run = context.dagster_run
    error = context.failure_event.message or "run failed"
    steps = context.get_step_failure_events()
    if steps:
        data = steps[0].event_specific_data
        described = getattr(getattr(data, "user_failure_data", None), "description", None)
        err = getattr(data, "error", None)
        while err is not None and err.cause is not None:  # Dagster wraps the user's exception: show the cause
            err = err.cause
        message = described or (err.message if err is not None else "") or steps[0].message or ""
        error = f"step {steps[0].step_key}: {message.strip().splitlines()[0] if message.strip() else error}"
    payload = run_failure_message(run_id=run.run_id, job_name=run.job_name, error=error, tags=run.tags)
    post_or_queue(payload, warehouse.path, DeliverySettings.from_env(), context.log)


def recent_ingest_runs(instance: dg.DagsterInstance, since: datetime) -> list[nodata.IngestRun]:
    records = instance.get_run_records(dg.RunsFilter(job_name=INGEST_JOB, created_after=since), limit=500)
    done = {dg.DagsterRunStatus.SUCCESS: True, dg.DagsterRunStatus.FAILURE: False}
    return [nodata.IngestRun(r.create_timestamp.astimezone(timezone.utc), done.get(r.dagster_run.status))
            for r in records if r.dagster_run.status != dg.DagsterRunStatus.CANCELED]


def no_data_tick(instance: dg.DagsterInstance, warehouse_path: str, now: datetime | None = None) -> str:
    """One evaluation of the no-data monitor; returns what happened (the sensor's skip reason)."""
    settings = load_config().no_data
    if not settings.enabled:
        return "no-data monitor disabled by configuration"
    now = now or datetime.now(timezone.utc)
    runs = recent_ingest_runs(instance, now - timedelta(minutes=settings.after_minutes) - nodata.SCHEDULE_GRACE)
    if not Path(warehouse_path).exists():
        return "no warehouse yet"
    try:
        with open_warehouse(warehouse_path, lock_timeout=0.5) as conn:
            result = nodata.assess(now, settings, runs, nodata.last_ingested_at(conn))
            change = nodata.apply(conn, result, now)
    except WarehouseLockedError:
        return "warehouse busy (another process holds the DuckDB lock); next tick"
    state = f"firing ({result.reason})" if result.firing else "not firing"
    return f"{state}; alert {change}" if change else state


@dg.sensor(
    name="no_data_monitor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Raises a `no_data` alert in monitors.alerts when no activity was ingested for no_data.after_minutes "
                "(60) while the ingest schedule launches runs (reason api_erroring when they all failed); resolves "
                "it when records flow again.",
)
def no_data_monitor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SkipReason:
    return dg.SkipReason(no_data_tick(context.instance, warehouse.path))
