"""The live mode headless, for real: `python -m pipeline.demo` (simulator live, `dagster dev` with its daemon) runs for
a few minutes while the rest of the suite runs. New windows must land on schedule, the re-pull must pick up events
indexed late, the marts and the serving file must refresh, and Ctrl-C must stop everything cleanly."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb
import httpx
import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.defs.ingest.partitions import PARTITION_FORMAT
from pipeline.demo.dagster_dev import open_instance
from pipeline.demo.live import EXAMPLE_QUERIES
from pipeline.monitors.config import load_config
from tests.conftest import DEMO_KEY
from tests.support.sim import ground_truth
from tests.live.demo_process import LAG_MINUTES, DemoProcess

RAW = dg.AssetKey(["raw", "activities"])
GRACE = 7 * 60
TIMEOUT = 15 * 60  # from the demo's start: worst case, the first schedule tick comes 5 minutes after the UI is up


@pytest.fixture(scope="module")
def demo(request) -> DemoProcess:
    return request.config.stash[DEMO_KEY]


def runs(inst: dg.DagsterInstance, **tags) -> list[dg.DagsterRun]:
    return list(inst.get_runs(filters=dg.RunsFilter(tags=tags)))


def serving(demo: DemoProcess, sql: str):
    with duckdb.connect(str(demo.serving_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def published_at(demo: DemoProcess):
    try:
        return serving(demo, "SELECT max(published_at) FROM serving.published_tables")[0][0]
    except (duckdb.Error, OSError):
        return None


def wait_for(what: str, predicate, demo: DemoProcess):
    # The demo runs from the start of the suite: on a slow machine its deadline may have passed by the time this test
    # runs, so each wait still gets one schedule cycle and a marts run (GRACE) from when it is called.
    deadline = max(demo.started + TIMEOUT, time.time() + GRACE)
    while True:
        if demo.proc.poll() is not None:
            pytest.fail(f"the demo exited ({demo.proc.returncode}) while waiting for {what}:\n{demo.output()[-3000:]}")
        value = predicate()
        if value:
            return value
        if time.time() >= deadline:
            break
        time.sleep(5)
    pytest.fail(f"timed out waiting for {what}; demo output:\n{demo.output()[-3000:]}")


@pytest.mark.timeout(TIMEOUT + 4 * GRACE)
def test_live_mode_lands_windows_on_schedule_repulls_late_events_and_refreshes_the_marts(demo):
    # 1. The demo's own start: backfill, marts, summary with the example queries and the alerts found.
    wait_for("the demo's summary", lambda: "The pipeline is live." in demo.output(), demo)
    out = demo.output()
    inst = open_instance(demo.home)
    progress = re.compile(r"progress: fetched back to .* windows \(\d+%\), ~[\d,]+ activities .*/s, ETA")
    if "are already ingested" not in out:
        assert progress.search(out), out
    else:  # the re-pull schedule ticked first and ingested the hour: its ranged run logged the same progress lines
        logged = [e.user_message for r in runs(inst, **{"pipeline/repull": "true"}) for e in inst.all_logs(r.run_id)]
        assert any(progress.search(m) for m in logged), out
    assert str(demo.serving_path) in out
    assert httpx.get(f"{demo.ui_url}/server_info", timeout=30).status_code == 200  # the UI it printed answers
    first_publish = published_at(demo)
    assert first_publish is not None

    # 2. A window closes and the 5-minute schedule ingests it LAG minutes later; the marts follow.
    started = datetime.fromtimestamp(demo.started, timezone.utc)

    def scheduled_window_landed():
        # the first window the schedule landed after the demo started (runs come newest first)
        for run in reversed(runs(inst, **{"dagster/schedule_name": "activities_every_5_minutes"})):
            window = datetime.strptime(run.tags["dagster/partition"], PARTITION_FORMAT).replace(tzinfo=timezone.utc)
            if run.status == dg.DagsterRunStatus.SUCCESS and window + timedelta(minutes=5) > started:
                return run, window
        return None

    run, window = wait_for("a window ingested by the schedule", scheduled_window_landed, demo)
    record = inst.get_run_record_by_id(run.run_id)
    # on schedule: launched LAG minutes after the window closed (give the daemon's tick and the queue a minute)
    created = record.create_timestamp
    created = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
    delay = created - (window + timedelta(minutes=5))
    assert timedelta(minutes=LAG_MINUTES) <= delay < timedelta(minutes=LAG_MINUTES + 2), delay
    assert window.strftime(PARTITION_FORMAT) in inst.get_materialized_partitions(RAW)

    # The marts follow: the serving file is published again after that run landed the window, and holds it. (Not
    # "after the publish this test first saw": the test runs last, when the demo has long done all this, and that
    # comparison waited for one more schedule cycle and marts run, up to 6 minutes of the suite.)
    landed = datetime.fromtimestamp(record.end_time, timezone.utc)

    def marts_cover_window():
        newest = serving(demo, "SELECT max(created_at) FROM activity_overview")[0][0]
        published = published_at(demo)
        return published is not None and published > landed and newest is not None and newest >= window

    wait_for("the marts and the serving file to include the new window", marts_cover_window, demo)

    # 3. The re-pull of the trailing hour (every 5 minutes here) finds events indexed after their window was ingested.
    def repull_done():
        done = [r for r in runs(inst, **{"pipeline/repull": "true"}) if r.status == dg.DagsterRunStatus.SUCCESS]
        return done[0] if done else None

    repull = wait_for("a successful re-pull run", repull_done, demo)

    # 4. The README's queries run against the serving file from this separate client while the pipeline runs.
    readme = (PROJECT_ROOT / "README.md").read_text()
    for title, sql in EXAMPLE_QUERIES.items():
        assert sql in readme, f"README lacks the example query {title!r}"
        serving(demo, sql)
    assert serving(demo, "SELECT count(*) FROM activity_overview")[0][0] > 0
    sim = demo.simulator_url
    # incidents that fire under the default configuration (near misses never do; impossible travel is off)
    enabled = {r.name for r in load_config(env={}).enabled_rules}
    planted = [i for i in ground_truth(sim, (window - timedelta(minutes=50)).isoformat(),  # the backfilled hour
                                       (window - timedelta(minutes=5)).isoformat())["incidents"]
               if i["should_fire"] and i["monitor"] in enabled]

    # 5. Ctrl-C stops everything cleanly.
    assert demo.interrupt() == 0, demo.output()[-3000:]
    assert "Stopped." in demo.output()

    # The re-pull's rows: events of windows that an earlier run had already ingested (late-indexed events).
    with duckdb.connect(str(demo.warehouse_path), read_only=True) as conn:
        late = conn.execute("""
            SELECT count(*) FROM raw.activities a
            WHERE a.run_id = $repull AND EXISTS (
                SELECT 1 FROM raw.activities b WHERE b.run_id <> $repull
                  AND time_bucket(INTERVAL 5 MINUTE, b.created_at) = time_bucket(INTERVAL 5 MINUTE, a.created_at))
        """, {"repull": repull.run_id}).fetchone()[0]
        alerts = conn.execute("SELECT count(*) FROM monitors.alerts").fetchone()[0]
    assert late > 0, "the re-pull found no late-indexed event"
    assert alerts >= (1 if planted else 0), f"{len(planted)} incidents planted in the ingested hours, no alert"
