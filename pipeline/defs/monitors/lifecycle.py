"""The alert lifecycle from the Dagster UI: launch the job `alert_lifecycle` with its config (alert id, action,
who, note). Same code as `python -m pipeline.monitors ack|resolve|reopen` (pipeline.monitors.alerts.set_status)."""

from typing import Literal

import dagster as dg

from pipeline.defs.resources import WarehouseResource
from pipeline.monitors.alerts import set_status


class AlertLifecycleConfig(dg.Config):
    alert_id: str
    action: Literal["acknowledge", "resolve", "reopen"]
    by: str
    note: str = ""


@dg.op(pool="duckdb", description="Acknowledge, resolve or reopen one alert of monitors.alerts (who, when, note).")
def change_alert_status(context: dg.OpExecutionContext, config: AlertLifecycleConfig,
                        warehouse: WarehouseResource) -> None:
    with warehouse.connect() as conn:
        alert = set_status(conn, config.alert_id, config.action, by=config.by, note=config.note or None)
    context.log.info(f"{alert['alert_id']} ({alert['monitor']}) is now {alert['status']} by {alert['status_by']}")


@dg.job(description="Change an alert's status: config {alert_id, action: acknowledge|resolve|reopen, by, note}. "
                    "The state is kept in monitors.alerts (re-runs and full refreshes keep it) and shown in the "
                    "alerts mart and the serving file.")
def alert_lifecycle():
    change_alert_status()
