"""`raw/activities` end to end: real simulator over HTTP, real Dagster execution, real DuckDB files."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
from simulator.process import SimulatorProcess
from tests.support.sim import FULL_KEY, ground_truth, set_clock, stats
from tests.unit.test_warehouse_load import snapshot

DAY = "2026-11-03"  # a Tuesday: working-day volume up to midnight UTC
FAULTS = "429=5%,5xx=5%,truncated=1%,slow=1%,repeated=2%"


def resources(base_url: str, warehouse: Path) -> dict:
    # client timeout below the simulator's slow-response delay, so "slow" faults are real timeouts
    return {"compliance_api": ComplianceAPIResource(base_url=base_url, timeout_seconds=1.0,
                                                    max_retries=10, requests_per_minute=100_000),
            "warehouse": WarehouseResource(path=str(warehouse)),
            "geoip": GeoIPResource()}


def materialize_range(res: dict, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([raw_activities], resources=res, raise_on_error=False,
                          tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})


def stored_ids(warehouse: Path) -> list[str]:
    if not warehouse.exists():
        return []
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM raw.activities").fetchall()]


@pytest.fixture(scope="module")
def faulty_day(tmp_path_factory):
    """A generated day served with faults and late arrivals, the clock frozen 90 s after the day's end."""
    args = ["--start", f"{DAY}T00:00:00Z", "--days", "1", "--volume", "20000", "--faults", FAULTS,
            "--fault-seed", "7", "--late-share", "0.2", "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        set_clock(sim.base_url, "2026-11-04T00:01:30Z")
        yield sim, tmp_path_factory.mktemp("faulty") / "warehouse.duckdb"


def test_backfill_then_repull_gives_exactly_the_ground_truth(faulty_day):
    sim, warehouse = faulty_day
    res = resources(sim.base_url, warehouse)
    # a backfill of the day as the backfill policy splits it (ranged runs), plus single windows
    for first, last in [(f"{DAY}-00:00", f"{DAY}-05:55"), (f"{DAY}-06:00", f"{DAY}-11:55"),
                        (f"{DAY}-12:00", f"{DAY}-23:40")]:
        assert materialize_range(res, first, last).success
    for key in (f"{DAY}-23:45", f"{DAY}-23:50", f"{DAY}-23:55"):
        assert dg.materialize([raw_activities], resources=res, partition_key=key).success

    # the simulator's ground truth is "as of its clock": once every late event is indexed, it is the whole day
    set_clock(sim.base_url, "2026-11-04T00:20:00Z")
    truth = set(ground_truth(sim.base_url, f"{DAY}T00:00:00Z", "2026-11-04T00:00:00Z")["activity_ids"])
    ids = stored_ids(warehouse)
    missing_before_repull = truth - set(ids)
    assert missing_before_repull, "late arrivals should be missing before the re-pull (test exercises late data)"

    assert materialize_range(res, f"{DAY}-23:00", f"{DAY}-23:55").success
    ids = stored_ids(warehouse)
    assert len(ids) == len(set(ids)), "duplicated activity ids"
    assert set(ids) == truth, f"missing {len(truth - set(ids))}, unexpected {len(set(ids) - truth)}"

    assert sum(stats(sim.base_url)["faults_injected"].values()) > 0  # the faults really happened


def test_rerunning_any_range_leaves_every_table_unchanged(faulty_day):
    sim, warehouse = faulty_day
    res = resources(sim.base_url, warehouse)
    if not stored_ids(warehouse):
        assert materialize_range(res, f"{DAY}-00:00", f"{DAY}-23:55").success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        before = snapshot(conn)
    assert materialize_range(res, f"{DAY}-03:00", f"{DAY}-07:55").success
    assert dg.materialize([raw_activities], resources=res, partition_key=f"{DAY}-12:05").success
    assert materialize_range(res, f"{DAY}-00:00", f"{DAY}-23:55").success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert snapshot(conn) == before


def test_malformed_records_are_quarantined_with_their_reasons(tmp_path):
    args = ["--start", f"{DAY}T00:00:00Z", "--days", "1", "--volume", "20000", "--malformed-rate", "0.01",
            "--rate-limit", "0", "--late-share", "0"]
    with SimulatorProcess(args) as sim:
        res = resources(sim.base_url, tmp_path / "w.duckdb")
        # two hours: the simulator shifts "outside the window" records by 3 to 30 hours, so they land outside
        result = materialize_range(res, f"{DAY}-09:00", f"{DAY}-10:55")
        assert result.success
        truth = ground_truth(sim.base_url, f"{DAY}T09:00:00Z", f"{DAY}T11:00:00Z")
    assert set(stored_ids(tmp_path / "w.duckdb")) == set(truth["activity_ids"])
    expected = {}
    for m in truth["malformed"]:
        expected[m["reason"]] = expected.get(m["reason"], 0) + 1
    assert len(expected) == 4, f"the simulator should produce all four reasons: {expected}"
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        got = dict(conn.execute("SELECT reason, count(*) FROM raw.activities_quarantine GROUP BY 1").fetchall())
    assert got == {reason: n for reason, n in expected.items()}
    meta = result.asset_materializations_for_node("raw__activities")[0].metadata
    assert meta["quarantined"].value == sum(expected.values())


@pytest.mark.parametrize("key, expected_text", [
    ("sk-ant-api01-not-a-key", "ANTHROPIC_COMPLIANCE_ACCESS_KEY"),
    ("sk-ant-api01-sim-userdata", "read:compliance_activities"),
])
def test_401_and_403_fail_at_once_with_what_to_fix(tmp_path, monkeypatch, key, expected_text):
    monkeypatch.setenv("ANTHROPIC_COMPLIANCE_ACCESS_KEY", key)
    args = ["--start", f"{DAY}T00:00:00Z", "--days", "1", "--volume", "2000", "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        res = resources(sim.base_url, tmp_path / "w.duckdb")
        result = materialize_range(res, f"{DAY}-00:00", f"{DAY}-00:55")
        counters = stats(sim.base_url)
    assert not result.success
    failure = result.failure_data_for_node("raw__activities")
    message = failure.user_failure_data.description if failure.user_failure_data else str(failure.error)
    assert expected_text in message
    assert key not in message
    assert counters["requests_total"] == 1, f"no retry storm: {counters}"


CHILD = textwrap.dedent("""
    import sys, time
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    import pipeline.warehouse.activities as activities
    from pipeline.defs.ingest.assets import raw_activities
    from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource

    original = activities._attest
    def attest_then_hang(*args, **kwargs):   # runs inside the load transaction, after the insert
        original(*args, **kwargs)
        print("IN_TRANSACTION", flush=True)
        time.sleep(600)
    activities._attest = attest_then_hang

    base_url, warehouse, first, last = sys.argv[1:5]
    res = {"compliance_api": ComplianceAPIResource(base_url=base_url),
           "warehouse": WarehouseResource(path=warehouse), "geoip": GeoIPResource()}
    dg.materialize([raw_activities], resources=res,
                   tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
""")


def test_sigkill_mid_run_leaves_no_rows_of_the_killed_window_and_rerun_completes(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    args = ["--start", f"{DAY}T00:00:00Z", "--days", "1", "--volume", "20000", "--rate-limit", "0",
            "--late-share", "0"]
    with SimulatorProcess(args) as sim:
        res = resources(sim.base_url, warehouse)
        assert materialize_range(res, f"{DAY}-00:00", f"{DAY}-01:55").success  # an earlier, committed range
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            before = snapshot(conn)

        child = subprocess.Popen([sys.executable, "-c", CHILD, sim.base_url, str(warehouse), f"{DAY}-02:00",
                                  f"{DAY}-05:55"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 env={**os.environ})
        ready, _, _ = select.select([child.stdout], [], [], 180)
        line = child.stdout.readline().decode() if ready else ""
        assert "IN_TRANSACTION" in line, f"child did not reach the transaction: {line!r}"
        child.send_signal(signal.SIGKILL)
        child.wait()

        with duckdb.connect(str(warehouse), read_only=True) as conn:
            assert snapshot(conn) == before  # nothing of 02:00-06:00, nothing else changed
        assert materialize_range(res, f"{DAY}-02:00", f"{DAY}-05:55").success
        truth = set(ground_truth(sim.base_url, f"{DAY}T00:00:00Z", f"{DAY}T06:00:00Z")["activity_ids"])
    ids = stored_ids(warehouse)
    assert len(ids) == len(set(ids)) and set(ids) == truth


def test_partition_range_from_the_shell(tmp_path):
    """The README's shell command: `dagster asset materialize --select raw/activities --partition-range A...B`."""
    args = ["--start", f"{DAY}T00:00:00Z", "--days", "1", "--volume", "5000", "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        env = {**os.environ, "COMPLIANCE_API_BASE_URL": sim.base_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
               "COMPLIANCE_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"), "DAGSTER_HOME": str(tmp_path)}
        out = subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "pipeline.definitions",
                              "--select", "raw/activities", "--partition-range",
                              f"{DAY}-06:00...{DAY}-07:55"], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        truth = ground_truth(sim.base_url, f"{DAY}T06:00:00Z", f"{DAY}T08:00:00Z")
    assert set(stored_ids(tmp_path / "w.duckdb")) == set(truth["activity_ids"])


def test_a_shell_backfill_is_queued_behind_warehouse_work(tmp_path):
    """The README's shell backfill goes through the run queue (`dagster job launch`): it waits its turn for the
    `duckdb` pool instead of colliding with the running work on the warehouse lock."""
    from dagster._core.instance.ref import InstanceRef

    (tmp_path / "dagster.yaml").write_text((Path(__file__).parents[2] / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "COMPLIANCE_WAREHOUSE_PATH": str(tmp_path / "w.duckdb")}
    tags = {"dagster/asset_partition_range_start": f"{DAY}-06:00", "dagster/asset_partition_range_end": f"{DAY}-07:55"}
    out = subprocess.run([sys.executable, "-m", "dagster", "job", "launch", "-m", "pipeline.definitions",
                          "-j", "ingest_activities", "--tags", json.dumps(tags)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path))) as instance:
        runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.QUEUED  # the daemon starts it when its turn comes
    assert all(runs[0].tags[k] == v for k, v in tags.items()) and not (tmp_path / "w.duckdb").exists()
