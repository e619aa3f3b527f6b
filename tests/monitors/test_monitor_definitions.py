"""The monitors are wired into the code location the way the issue asks (names, severity, blocking, pool, jobs)."""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline.definitions import defs as load_defs
from pipeline.defs.monitors.checks import activity_monitors
from pipeline.monitors.config import MONITOR_NAMES

RAW = dg.AssetKey(["raw", "activities"])


@pytest.fixture(scope="module")
def defs():
    return load_defs()


def test_one_non_blocking_check_per_monitor_on_raw_activities_in_pool_duckdb(defs):
    graph = defs.get_repository_def().asset_graph
    keys = {k for k in graph.asset_check_keys if k.asset_key == RAW}
    assert {k.name for k in keys} == set(MONITOR_NAMES)
    assert not any(graph.get_check_spec(k).blocking for k in keys)
    assert activity_monitors.op.pool == "duckdb"


def test_checks_run_in_every_job_that_ingests_activities(defs):
    job = defs.resolve_job_def("ingest_activities")
    assert "activity_monitors" in {n.name for n in job.nodes}


def test_delivery_sensors_are_defined_and_running_by_default(defs):
    sensors = {s.name: s for s in defs.sensors}
    assert {"monitor_alerts_webhook", "run_failure_webhook"} <= set(sensors)
    assert sensors["monitor_alerts_webhook"].default_status == dg.DefaultSensorStatus.RUNNING
