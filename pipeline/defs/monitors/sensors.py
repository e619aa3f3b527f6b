"""Alert delivery beyond the Dagster UI: new rows of monitors.alerts and failed runs, posted to the webhook
COMPLIANCE_ALERT_WEBHOOK_URL as Slack-compatible JSON (logged only when it is unset). Logic and settings:
pipeline.monitors.delivery.

Sensors cannot take a pool slot, so the alert sensor opens the warehouse only for milliseconds and skips the tick
when another process holds the DuckDB lock (a run is writing); the next tick, 30 s later, catches up.
"""

import dagster as dg

from pipeline.defs.resources import WarehouseResource
from pipeline.monitors.delivery import (DeliverySettings, deliver_alerts_tick, post_or_queue,
                                        run_failure_message)


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
