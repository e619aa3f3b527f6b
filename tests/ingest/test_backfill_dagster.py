"""A 30-day backfill launched the way the UI launches it, on a real Dagster deployment (`dagster dev`: webserver,
daemon, the project's dagster.yaml, on SQLite and on a real PostgreSQL). The run queue is held
(max_concurrent_runs: 0) so the test measures what the backfill daemon submits without waiting for 30 runs to
execute; `bench/bench_backfill.py` executes them and reports the wall time. On PostgreSQL, a day's backfill also runs
through to the marts run the sensor launches after it (the production path: daemon, queue, pools, sensors).

The deployments run in the background from the start of the suite (tests/ingest/dagster_scenarios.py, started at
collection by tests/conftest.py); each test asserts on its own deployment's outcome."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import SCENARIOS_KEY
from tests.ingest.dagster_scenarios import EXPECTED, Scenarios, windows_of


@pytest.fixture(scope="module")
def scenarios(request) -> Scenarios:
    """The scenarios started at collection, or (PostgreSQL not available then) started now on the session's server."""
    started = request.config.stash.get(SCENARIOS_KEY, None)
    if started is not None:
        return started
    started = Scenarios(request.getfixturevalue("postgres_server"))
    request.addfinalizer(started.close)
    return started


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_30_day_backfill_is_submitted_as_at_most_31_ranged_runs_covering_every_window(scenarios, storage):
    runs, planned = scenarios[storage].outcome(1100)
    # the daemon recorded each run's plan as its partition range, not one event per window (pipeline/dagster_instance.py)
    assert planned == [1] * len(runs), planned
    assert 1 <= len(runs) <= 31, len(runs)
    covered = windows_of(runs)
    assert sum(len(windows_of([run])) for run in runs) == len(covered), "two runs cover the same window"
    assert len(covered) == EXPECTED
    assert min(covered) == datetime(2026, 10, 2) and max(covered) == datetime(2026, 10, 31, 23, 55)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_on_postgres_a_backfill_runs_through_to_the_marts_the_sensor_launches(scenarios):
    jobs, (backfilled, raw, distinct, mart, mart_ids) = scenarios["marts"].outcome(850)
    # (the 5-minute schedules also tick while dagster dev runs: more ingest and marts runs than the backfill's)
    assert jobs.get("refresh_marts", 0) >= 1 and jobs.get("__ASSET_JOB", 0) >= 1
    # every stored activity once in the mart (the schedules' runs may have stored more than the backfilled day)
    assert backfilled > 0 and raw == distinct and mart == mart_ids == raw, (backfilled, raw, distinct, mart, mart_ids)
