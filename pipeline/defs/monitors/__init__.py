"""Dagster side of the monitors: the asset checks on raw/activities, the alert delivery and no-data sensors and the
alert lifecycle job."""

from pipeline.defs.monitors.checks import activity_monitors
from pipeline.defs.monitors.lifecycle import alert_lifecycle
from pipeline.defs.monitors.sensors import monitor_alerts_webhook, no_data_monitor, run_failure_webhook

__all__ = ["activity_monitors", "alert_lifecycle", "monitor_alerts_webhook", "no_data_monitor", "run_failure_webhook"]
