"""`make run`: the whole pipeline live on the embedded simulator, in one command.

1. start the Compliance API simulator in live mode (activities keep arriving, some indexed late, incidents planted);
2. start Dagster (`dagster dev`: webserver + daemon) on $DAGSTER_HOME, so the ingest schedules, the late-data
   re-pull and the alert sensors run as they would in production;
3. build the dbt reference tables, then backfill the windows of the last DEMO_HOURS hours that are not ingested yet
   (a second `make run` resumes: only what is missing is fetched), showing the run's progress;
4. wait for the marts run the backfill triggers (dbt + monitors + serving publish), then print where to look: the UI,
   the dashboards (the Streamlit app on the serving file, started beside Dagster), the serving file, example queries
   with their results, the alerts found;
5. keep running, printing each new publish, until Ctrl-C (or DEMO_MINUTES), which stops everything cleanly.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from pipeline.config import PROJECT_ROOT, Settings
from pipeline.dashboard.process import DashboardProcess
from pipeline.defs.transform.tags import FIRST_WINDOW_TAG, LAST_WINDOW_TAG
from pipeline.demo.dagster_dev import DagsterDev, free_port, open_instance
from simulator.process import SimulatorProcess

SIMULATOR_KEY = "sk-ant-api01-sim-full"  # the simulator's built-in demo key, not a secret
WINDOW = timedelta(minutes=5)

# The README's example queries (README: "The two commands"); the demo runs them against the serving file.
EXAMPLE_QUERIES = {
    "Events per category": (
        "SELECT category, count(*) AS events FROM activity_overview GROUP BY ALL ORDER BY events DESC LIMIT 5"),
    "Failed logins by user": (
        "SELECT actor_identity, count(*) AS failures FROM identity_access_auth WHERE login_result = 'failure' "
        "GROUP BY ALL ORDER BY failures DESC LIMIT 5"),
    "Alerts by monitor": (
        "SELECT monitor, count(*) AS alerts, sum(activity_count) AS events FROM alerts GROUP BY ALL ORDER BY alerts DESC"),
}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def dashboard_port() -> int | None:
    """DEMO_DASHBOARD_PORT; unset: the dashboards' configured port (COMPLIANCE_DASHBOARD_PORT); 0: a free one, picked
    as the dashboards start (as DEMO_PORT=0 and DEMO_SIMULATOR_PORT=0 do for the UI and the simulator)."""
    value = env_int("DEMO_DASHBOARD_PORT", -1)
    return None if value < 0 else value or free_port()


def main() -> int:
    warnings.filterwarnings("ignore", message=".*currently in beta")  # Dagster's notes on its own APIs, not ours
    hours = env_int("DEMO_HOURS", 3)
    minutes = env_int("DEMO_MINUTES", 0)  # 0: until Ctrl-C
    ui_port = env_int("DEMO_PORT", 3000)
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))).resolve()
    os.environ.setdefault("ANTHROPIC_COMPLIANCE_ACCESS_KEY", SIMULATOR_KEY)
    # Ctrl-C and `kill` stop everything cleanly, even when started in the background (which ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sim_args = ["--live-hours", str(hours + 1), *os.environ.get("DEMO_SIMULATOR_ARGS", "").split()]
    try:
        with SimulatorProcess(sim_args, port=env_int("DEMO_SIMULATOR_PORT", 8765)) as sim:
            os.environ["COMPLIANCE_API_BASE_URL"] = sim.base_url
            settings = Settings.from_env()
            say(f"Simulator (live mode) on {sim.base_url}")
            say(f"Starting Dagster (webserver + daemon), DAGSTER_HOME={home} ...")
            with DagsterDev(home, {}, port=ui_port) as dagster, DashboardProcess(
                    port=dashboard_port(), log_path=home / "dashboard.log",
                    env={"COMPLIANCE_SERVING_PATH": str(settings.serving_path),
                         "COMPLIANCE_DAGSTER_URL": dagster.url}) as dashboard:
                say(f"Dagster UI: {dagster.url}  (log: {dagster.log_path})")
                say(f"Dashboards: {dashboard.url}  (log: {dashboard.log_path})")
                build_reference(dagster, home)
                first, last, backfilled = backfill_missing(dagster, home, hours)
                wait_for_marts(dagster, first, last, launch=not backfilled)
                summary(dagster, settings, dashboard.url)
                watch(settings, minutes)
    except KeyboardInterrupt:
        say("Stopping the dashboards, Dagster and the simulator ...")
    say("Stopped. Run `make run` again to resume where it left off.")
    return 0


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def build_reference(dagster: DagsterDev, home: Path, timeout: float = 900) -> None:
    """Seeds and views first: the marts read them. The dbt_reference_automation sensor builds them when missing (at
    the first start); wait for that, and build them ourselves only if nothing does."""
    from pipeline.defs.transform.assets import dbt_reference

    say("Building the dbt reference tables (activity catalog, rules) ...")
    started = time.monotonic()
    launched = None
    with open_instance(home) as instance:
        while time.monotonic() < started + timeout:
            if all(instance.get_latest_materialization_event(key) for key in dbt_reference.keys):
                return
            if launched is None and time.monotonic() > started + 60 and \
                    not dagster.runs("dagster/sensor_name", "dbt_reference_automation"):
                launched = dagster.launch_job("refresh_dbt_reference")
            if launched is not None and dagster.run_status(launched) in ("FAILURE", "CANCELED"):
                raise SystemExit(f"refresh_dbt_reference failed: see {dagster.url}/runs/{launched}")
            time.sleep(3)
    raise SystemExit(f"the dbt reference tables were not built after {timeout:.0f} s: see {dagster.url}")


def backfill_missing(dagster: DagsterDev, home: Path, hours: int) -> tuple[str, str, bool]:
    """Backfill from the first window of the last `hours` hours that is not ingested yet; return the range covered
    and whether anything was backfilled."""
    from pipeline.defs.ingest.partitions import PARTITION_FORMAT
    from pipeline.defs.ingest.schedules import LAG_MINUTES, last_closed_window_end

    end = last_closed_window_end(datetime.now(timezone.utc), timedelta(minutes=LAG_MINUTES))
    wanted = [(end - WINDOW * (i + 1)).strftime(PARTITION_FORMAT) for i in range(hours * 12)][::-1]
    done = materialized_windows(home)
    missing = [key for key in wanted if key not in done]
    if not missing:
        say(f"All {len(wanted)} windows of the last {hours} h are already ingested (by an earlier start or the "
            "re-pull schedule).")
        return wanted[0], wanted[-1], False
    first, last = missing[0], wanted[-1]
    todo = len(wanted) - wanted.index(first)
    say(f"Backfilling raw/activities {first} ... {last} ({todo} window{'s' * (todo != 1)}, "
        f"{len(wanted) - len(missing)} already ingested)")
    backfill_id = dagster.launch_backfill(["raw", "activities"], first, last)
    show_progress(dagster, backfill_id)
    return first, last, True


def materialized_windows(home: Path) -> set[str]:
    import dagster as dg

    with open_instance(home) as instance:
        return set(instance.get_materialized_partitions(dg.AssetKey(["raw", "activities"])))


def show_progress(dagster: DagsterDev, backfill_id: str, timeout: float = 3600) -> None:
    """Print the backfill run's own progress lines (windows, activities, rate, ETA) until it ends."""
    cursors: dict[str, str | None] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = dagster.backfill_status(backfill_id)
        for run in dagster.runs("dagster/backfill", backfill_id):
            messages, cursors[run["runId"]] = dagster.run_messages(run["runId"], cursors.get(run["runId"]))
            for message in messages:
                if message.startswith(("progress:", "loading ")):
                    say(f"  {message}")
        if status not in ("REQUESTED", "CANCELING", "FAILING"):
            if status != "COMPLETED_SUCCESS" and status != "COMPLETED":
                raise SystemExit(f"backfill {backfill_id} ended {status}: see {dagster.url}/overview/backfills")
            say("  backfill done")
            return
        time.sleep(2)
    raise SystemExit(f"backfill {backfill_id} still running after {timeout:.0f} s")


def wait_for_marts(dagster: DagsterDev, first: str, last: str, *, launch: bool, timeout: float = 900) -> None:
    """The marts run of this range: launched by the marts_after_ingestion sensor after a backfill, by us otherwise
    (a resumed demo with nothing to ingest still refreshes the marts and the serving file)."""
    say("Building the marts, evaluating the monitors, publishing the serving file ...")
    tags = {FIRST_WINDOW_TAG: first, LAST_WINDOW_TAG: last}
    if launch:
        run_id = dagster.launch_job("refresh_marts", tags)
    else:
        run_id, deadline = None, time.monotonic() + 120  # the sensor ticks every 15-30 s
        while run_id is None:
            runs = [r for r in dagster.runs(FIRST_WINDOW_TAG, first)
                    if r["jobName"] == "refresh_marts" and {"key": LAST_WINDOW_TAG, "value": last} in r["tags"]]
            if runs:
                run_id = runs[-1]["runId"]
            elif time.monotonic() > deadline:
                run_id = dagster.launch_job("refresh_marts", tags)
            else:
                time.sleep(3)
    status = dagster.wait_for_run(run_id, timeout)
    if status != "SUCCESS":
        raise SystemExit(f"marts run {run_id} ended {status}: see {dagster.url}/runs/{run_id}")


def read_serving(settings: Settings, sql: str) -> tuple[list[str], list[tuple]]:
    """A separate, read-only DuckDB client on the serving file, as a BI tool would be (never the warehouse)."""
    with duckdb.connect(str(settings.serving_path), read_only=True) as conn:
        cursor = conn.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()


def summary(dagster: DagsterDev, settings: Settings, dashboard_url: str) -> None:
    print(f"""
The pipeline is live.
  Dagster UI      {dagster.url}   (Assets > raw/activities: partitions; Automation: schedules and sensors)
  Dashboards      {dashboard_url}   (the 16 dashboards and the alerts, on the serving file)
  Warehouse       {settings.warehouse_path}   (the pipeline's own file: do not open it while Dagster runs)
  Serving file    {settings.serving_path}   (open it from any DuckDB client or BI tool)

Example queries (duckdb {settings.serving_path} -readonly):""", flush=True)
    for title, sql in EXAMPLE_QUERIES.items():
        columns, rows = read_serving(settings, sql)
        print(f"\n  -- {title}\n  {sql};")
        for row in rows:
            print("    " + " | ".join(f"{c}={v}" for c, v in zip(columns, row)))
    _, alerts = read_serving(settings, "SELECT monitor, group_key, first_event_at, activity_count FROM alerts "
                                       "ORDER BY first_event_at DESC LIMIT 5")
    _, [(total,)] = read_serving(settings, "SELECT count(*) FROM alerts")
    print(f"\nAlerts found: {total}" + "".join(f"\n  {m}: {g} at {t:%Y-%m-%d %H:%M}, {n} events"
                                               for m, g, t, n in alerts))
    print("\nNew windows land every 5 minutes; Ctrl-C stops everything.\n", flush=True)


def watch(settings: Settings, minutes: int) -> None:
    """Print each new publish of the serving file (a new window landed) until Ctrl-C or `minutes`."""
    stop = time.monotonic() + minutes * 60 if minutes else None
    last_seen = None
    while stop is None or time.monotonic() < stop:
        try:
            _, [(published, newest, events, alerts)] = read_serving(settings, """
                SELECT (SELECT max(published_at) FROM serving.published_tables),
                       (SELECT max(created_at) FROM activity_overview), (SELECT count(*) FROM activity_overview),
                       (SELECT count(*) FROM alerts)""")
        except duckdb.Error:
            published = None  # replaced while opening: read again on the next tick
        if published is not None and published != last_seen:
            if last_seen is not None:
                say(f"published: activities up to {newest:%H:%M:%S} UTC, {events:,} in the marts, {alerts} alerts")
            last_seen = published
        time.sleep(10)


if __name__ == "__main__":
    sys.exit(main())
