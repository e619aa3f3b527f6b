"""The backfill tests' three Dagster deployments (tests/ingest/test_backfill_dagster.py), each run as a background
scenario: they are mostly waiting (dagster dev's start, the daemons' 30-second passes, run processes starting), so
they run side by side, started at collection (tests/conftest.py) so that the wait overlaps the rest of the suite, each
on its own instance, warehouse, simulator and PostgreSQL database. The tests assert on their outcomes. (A `dagster dev`
starting re-parses the dbt project; the parse replaces the manifest atomically, pipeline/defs/transform/project.py,
so the other tests' processes never read it half-written.)"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import psycopg

from simulator.process import SimulatorProcess
from pipeline.demo.dagster_dev import DagsterDev
from tests.support import postgres
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
        self.spawned = threading.Event()  # its processes are started (they copied the environment as it was then)

    def run(self) -> None:
        try:
            self.result = self._target_fn(self, *self._args)
        except BaseException as exc:  # re-raised in the test that asserts on this scenario
            self.error = exc
        finally:
            self.spawned.set()

    def outcome(self, timeout: float):
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(f"scenario {self.name} still running after {timeout}s")
        if self.error is not None:
            raise self.error
        return self.result


def submit_30_day_backfill(scenario: Scenario, tmp_path, storage: dict[str, str]) -> list[dict]:
    """Launch a 30-day backfill on a held queue; the runs it submitted and the planned events of each."""
    instance = instance_yaml(postgres=bool(storage), concurrency__runs__max_concurrent_runs=0)
    args = ["--start", "2026-10-01T00:00:00Z", "--days", "31", "--volume", "300", "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        env = {"COMPLIANCE_API_BASE_URL": sim.base_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
               "COMPLIANCE_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
               "COMPLIANCE_PARTITIONS_START": "2026-10-01T00:00:00Z", **storage}
        # stop_timeout: this instance is thrown away (without the project's instance class, the daemon would still be
        # writing the planned events of the run's 8,640 partitions at the end, which `dagster dev` waits 60 s for).
        with SpawnedDagsterDev(scenario, tmp_path / "dagster_home", env, instance_yaml=instance, stop_timeout=5) as dagster:
            backfill_id = dagster.launch_backfill(["raw", "activities"], "2026-10-02-00:00", "2026-10-31-23:55")
            runs: list[dict] = []
            deadline = time.monotonic() + 720
            while time.monotonic() < deadline and len(windows_of(runs)) < EXPECTED:
                time.sleep(3)
                runs = dagster.runs("dagster/backfill", backfill_id)
            time.sleep(10)  # nothing more is submitted once every window is requested
            runs = dagster.runs("dagster/backfill", backfill_id)
            return runs, [planned_events(dagster, run["runId"]) for run in runs]


def planned_events(dagster: DagsterDev, run_id: str) -> int:
    """How many "materialization planned" events the run's log holds."""
    data = dagster.graphql("""query($runId: ID!) { logsForRun(runId: $runId) {
        ... on EventConnection { events { __typename } } } }""", {"runId": run_id})
    return sum(event["__typename"] == "AssetMaterializationPlannedEvent" for event in data["logsForRun"]["events"])


def marts_runs(dagster: DagsterDev) -> list[dict]:
    data = dagster.graphql("""{ runsOrError(filter: {pipelineName: "refresh_marts"}) {
        ... on Runs { results { runId status startTime } } } }""")
    return data["runsOrError"]["results"]


def backfill_to_the_marts(scenario: Scenario, tmp_path, postgres_url: str) -> tuple[dict, tuple]:
    """A day's backfill on PostgreSQL through to the marts run the sensor launches; the runs per job in the
    instance's database and the warehouse's counts."""
    args = ["--start", "2026-10-01T00:00:00Z", "--days", "2", "--volume", "300", "--rate-limit", "0",
            "--chats-per-day", "0"]
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(args) as sim:
        env = {"COMPLIANCE_API_BASE_URL": sim.base_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
               "COMPLIANCE_WAREHOUSE_PATH": str(warehouse), "COMPLIANCE_SERVING_PATH": str(tmp_path / "marts.duckdb"),
               "COMPLIANCE_PARTITIONS_START": "2026-10-01T00:00:00Z", "DAGSTER_PG_URL": postgres_url}
        with SpawnedDagsterDev(scenario, tmp_path / "dagster_home", env, instance_yaml=instance_yaml(postgres=True)) as dagster:
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


class SpawnedDagsterDev(DagsterDev):
    """DagsterDev telling its scenario when `dagster dev` is started (its first request follows the start)."""

    def __init__(self, scenario: Scenario, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scenario = scenario

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        self.scenario.spawned.set()
        return super().graphql(query, variables)


class Scenarios:
    """The three scenarios, started together on one PostgreSQL server (`server`, None: one of its own)."""

    def __init__(self, server: postgres.PostgresServer | None = None):
        self._stack = ExitStack()
        self._root = Path(tempfile.mkdtemp(prefix="backfill-scenarios-"))
        self.server = server or self._stack.enter_context(postgres.postgres_server())
        self.by_name = {
            "sqlite": Scenario("30 days on SQLite", submit_30_day_backfill, self._dir("sqlite_30_days"), {}),
            "postgres": Scenario("30 days on PostgreSQL", submit_30_day_backfill, self._dir("pg_30_days"),
                                 {"DAGSTER_PG_URL": self.server.database("t_backfill_30_days")}),
            "marts": Scenario("to the marts on PostgreSQL", backfill_to_the_marts, self._dir("pg_marts"),
                              self.server.database("t_backfill_to_the_marts")),
        }
        for scenario in self.by_name.values():
            scenario.start()
        # The processes copy the environment when they start: before the first test may change it (monkeypatch).
        for scenario in self.by_name.values():
            scenario.spawned.wait(120)

    def _dir(self, name: str) -> Path:
        path = self._root / name
        path.mkdir()
        return path

    def __getitem__(self, name: str) -> "Scenario":
        return self.by_name[name]

    def close(self) -> None:
        for scenario in self.by_name.values():
            scenario.join(900)
        self._stack.close()
        shutil.rmtree(self._root, ignore_errors=True)
