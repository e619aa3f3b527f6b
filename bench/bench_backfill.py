"""A backfill of raw/activities at the simulator's default volume (30 days; BENCH_BACKFILL_DAYS=90 for a quarter),
launched the way the UI launches it (GraphQL `launchPartitionBackfill` over the 5-minute partitions) on a real
`dagster dev` deployment (webserver + daemon + the project's dagster.yaml), through to the published marts (the
refresh_marts run the sensor launches after it). Instance on SQLite and on a real PostgreSQL (deploy/postgres.sh);
BENCH_BACKFILL_STORAGE=sqlite|postgres measures one of them only. Target: 30 days <= 5 minutes end to end.

Each phase from the instance's own records: the daemon submitting the run, the queue, Dagster before the first step,
the fetch and load of the asset (its metadata), the events recorded for the partitions, the monitors step, the sensor
and queue before the marts run, dbt, publish. Peak resident memory of the deployment's processes (sampled).

    python -m bench bench_backfill
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from bench.common import FULL_KEY, report
from pipeline.demo.dagster_dev import DagsterDev, open_instance
from simulator.process import SimulatorProcess

DAYS = int(os.environ.get("BENCH_BACKFILL_DAYS", "30"))
VOLUME = os.environ.get("BENCH_BACKFILL_VOLUME")  # activities per day; default: the simulator's default volume
STORAGES = os.environ.get("BENCH_BACKFILL_STORAGE", "sqlite,postgres").split(",")
# The backfilled days must be past partitions (they end at now): October, or earlier for a longer history
START = min(date(2026, 10, 1), date.today() - timedelta(days=DAYS + 3))


class ProcessGroupMemory:
    """Samples the resident memory of every process of a process group (dagster dev: webserver, daemon, code
    servers, run workers): the peak of their sum, and the largest peak of one process (VmHWM) with its command."""

    def __init__(self, pgid: int):
        self.pgid, self.peak_sum_mb, self.peak_one_mb, self.peak_one = pgid, 0.0, 0.0, ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ProcessGroupMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            total = 0.0
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/stat") as stat:
                        if int(stat.read().rsplit(")", 1)[1].split()[2]) != self.pgid:
                            continue
                    fields = {}
                    with open(f"/proc/{entry.name}/status") as status:
                        for line in status:
                            if line.startswith(("VmRSS:", "VmHWM:")):
                                fields[line[:5]] = int(line.split()[1]) / 1024
                    with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                        command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
                except (OSError, ValueError, IndexError):
                    continue
                total += fields.get("VmRSS", 0.0)
                if fields.get("VmHWM", 0.0) > self.peak_one_mb:
                    self.peak_one_mb, self.peak_one = fields["VmHWM"], _role(command)
            self.peak_sum_mb = max(self.peak_sum_mb, total)


def _role(command: str) -> str:
    for marker, role in (("execute_run", "run worker"), ("spawn_main", "run worker"), ("api grpc", "code server"),
                         ("dagster-daemon", "daemon"),
                         ("dagster-webserver", "webserver"), ("dagster_webserver", "webserver")):
        if marker in command:
            return role
    return command[:60]


def phases(instance, backfill_id: str, runs: list[str], marts_run: str, launched: float) -> dict:
    """The phases of the backfill from the instance's records (seconds; sums over the backfill's runs)."""
    from dagster._core.events import DagsterEventType as T

    backfill = instance.get_backfill(backfill_id)
    p = {"submit": 0.0, "queue": 0.0, "before_step": 0.0, "fetch": 0.0, "load": 0.0, "asset_step": 0.0,
         "events_recorded": 0.0, "monitors": 0.0, "materializations": 0, "events": 0, "windows": 0}
    ends = []
    for run_id in runs:
        records = instance.all_logs(run_id)
        by_type: dict = {}
        for r in records:
            if r.dagster_event:
                by_type.setdefault(r.dagster_event.event_type, []).append(r)
        record = instance.get_run_record_by_id(run_id)
        # the daemon creates the run, records its plan, then enqueues it: submitted = enqueued
        enqueued = by_type[T.RUN_ENQUEUED][0].timestamp if T.RUN_ENQUEUED in by_type \
            else record.create_timestamp.timestamp()
        start = by_type[T.RUN_START][0].timestamp
        p["submit"] = max(p["submit"], enqueued - backfill.backfill_timestamp)
        p["queue"] += start - enqueued
        p["before_step"] += by_type[T.STEP_START][0].timestamp - start
        materializations = by_type.get(T.ASSET_MATERIALIZATION, [])
        p["materializations"] += len(materializations)
        p["events"] += len(records)
        metadata = materializations[-1].dagster_event.event_specific_data.materialization.metadata
        p["fetch"] += metadata["fetch_seconds"].value
        p["load"] += metadata["load_seconds"].value
        p["windows"] += metadata["windows"].value
        p["events_recorded"] += materializations[-1].timestamp - materializations[0].timestamp
        for step in instance.get_run_step_stats(run_id):
            seconds = (step.end_time or 0) - (step.start_time or 0)
            p["monitors" if "monitors" in step.step_key else "asset_step"] += seconds
        ends.append(by_type[T.RUN_SUCCESS][-1].timestamp if T.RUN_SUCCESS in by_type else record.end_time)
    marts = instance.get_run_record_by_id(marts_run)
    marts_steps = {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(marts_run)}
    p["until_marts_run"] = marts.start_time - max(ends)
    p["dbt"] = next(v for k, v in marts_steps.items() if "dbt_activity_marts" in k)
    p["publish"] = next(v for k, v in marts_steps.items() if "marts_file" in k)
    p["marts_run"] = marts.end_time - marts.start_time
    p["end_to_end"] = marts.end_time - launched
    p["backfill"] = max(ends) - launched
    return p


def settle(dagster: DagsterDev, timeout: float = 600) -> float:
    """Wait for what a fresh deployment does first (the dbt reference build, the schedules' first runs) to finish, so
    the backfill is measured as a user launches it on a running deployment. Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        data = dagster.graphql("""{ runsOrError { ... on Runs { results { status } } } }""")
        statuses = [r["status"] for r in data["runsOrError"]["results"]]
        if "SUCCESS" in statuses and not {"QUEUED", "NOT_STARTED", "STARTING", "STARTED"} & set(statuses):
            break
        time.sleep(2)
    return time.monotonic() - started


def measure(sim_url: str, tmp: Path, storage_env: dict[str, str]) -> dict:
    import duckdb

    from tests.support.postgres import instance_yaml

    env = {"COMPLIANCE_API_BASE_URL": sim_url, "ANTHROPIC_COMPLIANCE_ACCESS_KEY": FULL_KEY,
           "COMPLIANCE_WAREHOUSE_PATH": str(tmp / "warehouse.duckdb"),
           "COMPLIANCE_SERVING_PATH": str(tmp / "marts.duckdb"),
           "COMPLIANCE_PARTITIONS_START": f"{START}T00:00:00Z", **storage_env}
    home = tmp / "home"
    first_day, last = START + timedelta(days=1), START + timedelta(days=DAYS)
    with DagsterDev(home, env, instance_yaml=instance_yaml(postgres=bool(storage_env))) as dagster, \
            ProcessGroupMemory(dagster.proc.pid) as memory:
        settled = settle(dagster)
        launched = time.time()
        backfill_id = dagster.launch_backfill(["raw", "activities"], f"{first_day}-00:00", f"{last}-23:55")
        status = dagster.wait_for_backfill(backfill_id, timeout=6 * 3600)
        done = time.time()
        runs = [r["runId"] for r in dagster.runs("dagster/backfill", backfill_id)]
        marts_run, deadline = None, time.monotonic() + 1800
        while marts_run is None and time.monotonic() < deadline:  # the marts run the sensor launches after it
            data = dagster.graphql("""{ runsOrError(filter: {pipelineName: "refresh_marts"}) {
                ... on Runs { results { runId status startTime } } } }""")
            marts_run = next((r["runId"] for r in data["runsOrError"]["results"]
                              if r["status"] == "SUCCESS" and (r["startTime"] or 0) > done - 30), None)
            time.sleep(1)
        os.environ.update(storage_env)
        try:
            result = phases(open_instance(home), backfill_id, runs, marts_run, launched)
        finally:
            for key in storage_env:
                os.environ.pop(key, None)
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as conn:
        result["stored"] = conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0]
    result.update(settled=settled, status=status, runs=len(runs), peak_sum_mb=memory.peak_sum_mb, peak_one_mb=memory.peak_one_mb,
                  peak_one=memory.peak_one)
    return result


def main() -> None:
    from tests.support import postgres

    args = ["--start", f"{START}T00:00:00Z", "--days", str(DAYS + 1), "--rate-limit", "0", "--chats-per-day", "0",
            *(["--volume", VOLUME] if VOLUME else [])]
    results = {}
    with SimulatorProcess(args, startup_timeout=900) as sim:
        if "sqlite" in STORAGES:
            # ignore_cleanup_errors: a run the schedules launched may still be writing its logs when we leave
            with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
                results["sqlite"] = measure(sim.base_url, Path(tmp), {})
        if "postgres" in STORAGES and postgres.available():
            with postgres.postgres_server() as server, \
                    tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
                results["postgres"] = measure(sim.base_url, Path(tmp), {"DAGSTER_PG_URL": server.database()})
    rows: list[tuple[str, object]] = [("days", DAYS), ("load average (1, 5, 15 min) at the end",
                                                       ", ".join(f"{x:.1f}" for x in os.getloadavg()))]
    for s, r in results.items():
        dagster_part = r["submit"] + r["queue"] + r["before_step"] + r["events_recorded"] + r["until_marts_run"]
        rows += [
            (f"{s}: deployment start-up work waited for before the launch s (not counted)", r["settled"]),
            (f"{s}: status, runs, windows", f"{r['status']}, {r['runs']}, {r['windows']:,}"),
            (f"{s}: activities stored", r["stored"]),
            (f"{s}: END TO END s, launch to published marts (target 30 days <= 300)", r["end_to_end"]),
            (f"{s}:   launch to backfill runs done s", r["backfill"]),
            (f"{s}:   daemon submitting the run(s) s (launch to enqueued)", r["submit"]),
            (f"{s}:   queue (duckdb pool, schedule runs) s / Dagster before first step s",
             f"{r['queue']:.1f} / {r['before_step']:.1f}"),
            (f"{s}:   fetch s / load after last page s (asset metadata)", f"{r['fetch']:.1f} / {r['load']:.1f}"),
            (f"{s}:   asset step s (incl. events recorded)", r["asset_step"]),
            (f"{s}:   events recorded s (first to last materialization)", r["events_recorded"]),
            (f"{s}:   monitors step s", r["monitors"]),
            (f"{s}:   sensor + queue until the marts run s", r["until_marts_run"]),
            (f"{s}:   marts run s: dbt step s / publish step s",
             f"{r['marts_run']:.1f}: {r['dbt']:.1f} / {r['publish']:.1f}"),
            (f"{s}: Dagster bookkeeping s (submit + queue + before step + events + sensor)", dagster_part),
            (f"{s}: events / materializations recorded (backfill runs)", f"{r['events']:,} / {r['materializations']:,}"),
            (f"{s}: peak RSS MB: all dagster processes together / largest one",
             f"{r['peak_sum_mb']:,.0f} / {r['peak_one_mb']:,.0f} ({r['peak_one']})"),
            (f"{s}: activities/s end to end", r["stored"] / r["end_to_end"]),
        ]
    report(f"backfill_{DAYS}_days", rows)


if __name__ == "__main__":
    main()
