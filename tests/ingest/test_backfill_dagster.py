"""A 30-day backfill launched the way the UI launches it, on a real Dagster deployment (`dagster dev`: webserver,
daemon, the project's dagster.yaml, on SQLite and on a real PostgreSQL). The run queue is held
(max_concurrent_runs: 0) so the test measures what the backfill daemon submits without waiting for 30 runs to
execute; `bench/bench_backfill.py` executes them and reports the wall time. On PostgreSQL, a day's backfill also runs
through to the marts run the sensor launches after it (the production path: daemon, queue, pools, sensors).

The three deployments are mostly waiting (dagster dev's start, the daemons' intervals, run processes starting): they
run side by side, started together when the first test of the module needs them, each on its own instance,
warehouse, simulator and PostgreSQL database; each test then asserts on its own deployment's outcome."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import duckdb
import psycopg
import pytest

from simulator.process import SimulatorProcess
from pipeline.demo.dagster_dev import DagsterDev
from tests.support.postgres import instance_yaml
from tests.support.sim import FULL_KEY

FMT = "%Y-%m-%d-%H:%M"
EXPECTED = 30 * 288


def windows_of(runs: list[dict]) -> set[datetime]:
    """The 5-minute windows the runs' partition-range tags cover."""
    covered = set()
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        first = datetime.strptime(tags["dagster/asset_partition_range_start"], FMT)
        last = datetime.strptime(tags["dagster/asset_partition_range_end"], FMT)
        covered |= {first + timedelta(minutes=5 * i) for i in range(int((last - first).total_seconds() // 300) + 1)}
    return covered


class Scenario(threading.Thread):
    """One deployment's scenario run in the background; `outcome()` waits for it and returns its result or raises
    what it raised (an assertion of the scenario included)."""

    def __init__(self, name: str, target, *args):
        super().__init__(name=name, daemon=True)
        self._target_fn, self._args = target, args
        self.result, self.error = None, None

    def run(self) -> None:
        try:
            self.result = self._target_fn(*self._args)
        except BaseException as exc:  # re-raised in the test that asserts on this scenario
            self.error = exc

    def outcome(self, timeout: float):
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(f"scenario {self.name} still running after {timeout}s")
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory, postgres_server) -> dict[str, Scenario]:
    """The three deployments, started side by side (each on its own instance and PostgreSQL database)."""
    started = {
        "sqlite": Scenario("30 days on SQLite", submit_30_day_backfill, tmp_path_factory.mktemp("sqlite_30_days"), {}),
        "postgres": Scenario("30 days on PostgreSQL", submit_30_day_backfill, tmp_path_factory.mktemp("pg_30_days"),
                             {"DAGSTER_PG_URL": postgres_server.database("t_backfill_30_days")}),
        "marts": Scenario("to the marts on PostgreSQL", backfill_to_the_marts, tmp_path_factory.mktemp("pg_marts"),
                          postgres_server.database("t_backfill_to_the_marts")),
    }
    for scenario in started.values():
        scenario.start()
    yield started
    for scenario in started.values():
        scenario.join(900)


def submit_30_day_backfill(tmp_path, storage: dict[str, str]) -> list[dict]:
    """Launch a 30-day backfill on a held queue; the runs it submitted."""
    instance = instance_yaml(postgres=bool(storage), concurrency__runs__max_concurrent_runs=0)
    args = ["--start", "2026-10-01T00:00:00Z", "--days", "31", "--volume", "300", "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        env = {"COMPLIANCE_API_BASE_URL": sim.base_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
               "COMPLIANCE_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
               "COMPLIANCE_PARTITIONS_START": "2026-10-01T00:00:00Z", **storage}
        # stop_timeout: at the end the daemon is still writing the planned events of the run's 8,640 partitions,
        # which `dagster dev` would wait up to 60 s for; this instance is thrown away.
        with DagsterDev(tmp_path / "dagster_home", env, instance_yaml=instance, stop_timeout=5) as dagster:
            backfill_id = dagster.launch_backfill(["raw", "activities"], "2026-10-02-00:00", "2026-10-31-23:55")
            runs: list[dict] = []
            deadline = time.monotonic() + 720
            while time.monotonic() < deadline and len(windows_of(runs)) < EXPECTED:
                time.sleep(3)
                runs = dagster.runs("dagster/backfill", backfill_id)
            time.sleep(10)  # nothing more is submitted once every window is requested
            return dagster.runs("dagster/backfill", backfill_id)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_30_day_backfill_is_submitted_as_at_most_31_ranged_runs_covering_every_window(scenarios, storage):
    runs = scenarios[storage].outcome(1100)
    assert 1 <= len(runs) <= 31, len(runs)
    covered = windows_of(runs)
    assert sum(len(windows_of([run])) for run in runs) == len(covered), "two runs cover the same window"
    assert len(covered) == EXPECTED
    assert min(covered) == datetime(2026, 10, 2) and max(covered) == datetime(2026, 10, 31, 23, 55)


def marts_runs(dagster: DagsterDev) -> list[dict]:
    data = dagster.graphql("""{ runsOrError(filter: {pipelineName: "refresh_marts"}) {
        ... on Runs { results { runId status startTime } } } }""")
    return data["runsOrError"]["results"]


def backfill_to_the_marts(tmp_path, postgres_url: str) -> tuple[dict, tuple]:
    """A day's backfill on PostgreSQL through to the marts run the sensor launches; the runs per job in the
    instance's database and the warehouse's counts."""
    args = ["--start", "2026-10-01T00:00:00Z", "--days", "2", "--volume", "300", "--rate-limit", "0",
            "--chats-per-day", "0"]
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(args) as sim:
        env = {"COMPLIANCE_API_BASE_URL": sim.base_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
               "COMPLIANCE_WAREHOUSE_PATH": str(warehouse), "COMPLIANCE_SERVING_PATH": str(tmp_path / "marts.duckdb"),
               "COMPLIANCE_PARTITIONS_START": "2026-10-01T00:00:00Z", "DAGSTER_PG_URL": postgres_url}
        with DagsterDev(tmp_path / "dagster_home", env, instance_yaml=instance_yaml(postgres=True)) as dagster:
            backfill_id = dagster.launch_backfill(["raw", "activities"], "2026-10-01-00:00", "2026-10-01-23:55")
            assert dagster.wait_for_backfill(backfill_id, 600) in ("COMPLETED", "COMPLETED_SUCCESS")
            backfill_done = time.time()
            # The sensor launches a marts run after the backfill's run, or leaves it to a marts run already queued
            # (one the 5-minute schedule's runs triggered): either way a marts run starts after the backfill ended
            # and rebuilds its windows.
            succeeded, deadline = [], time.monotonic() + 600
            while not succeeded and time.monotonic() < deadline:
                time.sleep(3)
                succeeded = [r for r in marts_runs(dagster)
                             if r["status"] == "SUCCESS" and (r["startTime"] or 0) > backfill_done]
            assert succeeded, f"no marts run started after the backfill and succeeded: {marts_runs(dagster)}"
    with psycopg.connect(postgres_url.replace("+psycopg2", "")) as pg:  # the instance really lives in PostgreSQL
        jobs = dict(pg.execute("SELECT pipeline_name, count(*) FROM runs GROUP BY 1").fetchall())
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        backfilled = conn.execute("SELECT count(*) FROM raw.activities WHERE created_at < '2026-10-02'").fetchone()[0]
        raw, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM raw.activities").fetchone()
        mart, mart_ids = conn.execute(
            "SELECT count(*), count(DISTINCT activity_id) FROM marts.activity_overview").fetchone()
    return jobs, (backfilled, raw, distinct, mart, mart_ids)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_on_postgres_a_backfill_runs_through_to_the_marts_the_sensor_launches(scenarios):
    jobs, (backfilled, raw, distinct, mart, mart_ids) = scenarios["marts"].outcome(850)
    # (the 5-minute schedules also tick while dagster dev runs: more ingest and marts runs than the backfill's)
    assert jobs.get("refresh_marts", 0) >= 1 and jobs.get("__ASSET_JOB", 0) >= 1
    # every stored activity once in the mart (the schedules' runs may have stored more than the backfilled day)
    assert backfilled > 0 and raw == distinct and mart == mart_ids == raw, (backfilled, raw, distinct, mart, mart_ids)
