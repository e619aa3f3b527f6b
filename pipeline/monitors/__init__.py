"""The 9 monitors of monitors.md as plain Python + DuckDB SQL (no Dagster): configuration (`config`), evaluation
over `raw.activities` (`evaluate`), incident merging into `monitors.alerts` (`alerts`) and webhook delivery
(`delivery`). README.md in this folder documents the settings."""

from pipeline.monitors.config import MONITOR_NAMES, MonitorsConfig, Rule, load_config
from pipeline.monitors.run import MonitorReport, run_monitors

__all__ = ["MONITOR_NAMES", "MonitorsConfig", "MonitorReport", "Rule", "load_config", "run_monitors"]
