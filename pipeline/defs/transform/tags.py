"""Run tags of the marts job (light module: the live demo reads them without loading the Dagster definitions)."""

AFTER_RUN_TAG = "compliance/after_run"        # the ingestion run that triggered a marts run
FIRST_WINDOW_TAG = "compliance/first_window"  # its first and last 5-minute partition (for people and the demo: the
LAST_WINDOW_TAG = "compliance/last_window"    # marts run rebuilds every window changed since the last build)
