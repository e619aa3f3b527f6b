"""Dagster side of the monitors: the asset checks on raw/activities and the alert delivery sensors."""

from pipeline.defs.monitors.checks import activity_monitors
from pipeline.defs.monitors.sensors import monitor_alerts_webhook, run_failure_webhook

__all__ = ["activity_monitors", "monitor_alerts_webhook", "run_failure_webhook"]
