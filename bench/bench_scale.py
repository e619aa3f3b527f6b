"""Real scale: marts over 1M-activity days, and the 5-minute tick on top of 1, 3 and 7 days of such history.

Setup: the simulator serves BENCH_SCALE_DAYS (default 7) days of BENCH_SCALE_VOLUME (default 1,000,000) activities
a day, plus one more day for the ticks. History grows in steps (1 day, then to 3, then to 7): each step is one ranged
ingestion run of raw/activities with the monitors, then one marts run (dbt_activity_marts + serve/marts_file) that
rebuilds the days just ingested. After each step, the *tick* as production runs it every 5 minutes: the newest window
ingested with the monitors (one run), then the marts run (dbt + publish). Each phase is reported with its Dagster
overhead (run start to first step), event count and the peak resident memory of the Dagster process and of its dbt
subprocess (sampled every 0.2 s). Ratios, not absolute times: 7-day tick / 1-day tick (target <= 1.3).

    python -m bench bench_scale            (BENCH_SCALE_VOLUME, BENCH_SCALE_DAYS="1,3,7" to vary)

BENCH_SCALE_CACHE=dir keeps the warehouse and serving files of each history step (before its ticks) under
dir/<volume>x<days>d and reuses them on the next run instead of ingesting and building that history again (the
rows say which steps were reused). The per-model dbt timings of each tick's last invocation (run_results.json) are
kept in bench/results/scale_tick_<days>d_<kind>.json. BENCH_SCALE_BUILD_ONLY=1 (with a cache) builds the next
missing step only, from the largest cached one, one day per ingestion and marts run (as the daily schedule does),
and stops without ticks: a 7-day history is built in pieces that each fit a bench-lock hold (run it again for the
next step), and the ticks are measured in a run of their own. (A marts run over several 1M-activity days publishes
every day but the newest as one whole-day file: that publish ran out of the default 256MB when it sorted each day;
since big days are exported in the warehouse's order it passes, see BENCH_SCALE_WEEK_MARTS below. A marts run over
the whole week takes about 20 minutes on the shared 2 cores: longer than a bench-lock hold.)
BENCH_SCALE_COMPACTION=0 leaves out the closed day's compaction after the ticks (its own job, never part of a tick):
the ticks on 1, 3 and 7 days then fit one hold.
BENCH_SCALE_WEEK_MARTS=1 (with a cache) runs ONE marts run (dbt_activity_marts + serve/marts_file) over every day of
the largest cached step, on a copy of it, as after a ranged backfill of the whole week (the single-run backfill's
ingestion run is followed by one marts run): the marts' record of what they built is forgotten (mart_windows.
forget_builds), so every window counts as changed; BENCH_SCALE_WEEK_MARTS=full runs it with `full_refresh: true`
instead (the tables recreated by the first chunk); BENCH_SCALE_WEEK_MARTS=publish runs the publish step alone after
the record the dbt step leaves (its chunks; dbt itself not run: the marts already hold the rows), for a publish of the
whole week measured in a hold of its own; =publish-full the same after a full refresh's record (every day exported
whole). No simulator, no ticks. Reports success or the step's failure,
the chunk plan, dbt and publish seconds, the chunk runner's seconds per chunk, the peak RSS of this process (the step
runs in it) and of each dbt process (the chunk runner and the last chunk's dbt CLI, each on its own; peaks so far are
printed every minute), and the load average before and after:

    BENCH_SCALE_CACHE=/work/bench_cache/scale-s4 BENCH_SCALE_WEEK_MARTS=1 python -m bench bench_scale
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("COMPLIANCE_PARTITIONS_START", "2026-10-01T00:00:00Z")
os.environ.setdefault("COMPLIANCE_API_ALLOWED_HOSTS", "127.0.0.1")  # the simulator on loopback

import dagster as dg  # noqa: E402
import psutil  # noqa: E402
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG  # noqa: E402

from bench.common import FULL_KEY, RESULTS_DIR, report  # noqa: E402

os.environ.setdefault("ANTHROPIC_COMPLIANCE_ACCESS_KEY", FULL_KEY)  # the key is read from the environment only
from simulator.process import SimulatorProcess  # noqa: E402

VOLUME = int(os.environ.get("BENCH_SCALE_VOLUME", "1000000"))
STEPS = [int(d) for d in os.environ.get("BENCH_SCALE_DAYS", "1,3,7").split(",")]
FIRST_DAY = date(2026, 11, 2)  # a Monday
CACHE = os.environ.get("BENCH_SCALE_CACHE")
BUILD_ONLY = os.environ.get("BENCH_SCALE_BUILD_ONLY", "") not in ("", "0")
COMPACTION = os.environ.get("BENCH_SCALE_COMPACTION", "1") not in ("", "0")
WEEK_MARTS = os.environ.get("BENCH_SCALE_WEEK_MARTS", "").strip().lower()
assert WEEK_MARTS in ("", "0", "1", "full", "publish", "publish-full"), \
    f"BENCH_SCALE_WEEK_MARTS: 1, full, publish or publish-full, not {WEEK_MARTS!r}"
ORIGIN = "origin.txt"  # in a cached step: the directory it was built in


DBT_CHILD_MARKERS = ("pipeline.defs.transform.chunk_runner",)  # the marts' earlier chunks, one dbt process


def is_dbt(cmdline: list[str]) -> bool:
    """A dbt process: the `dbt` CLI (dagster-dbt) or the chunk runner (python -m ...chunk_runner: dbt in-process)."""
    return any(part.endswith("dbt") for part in cmdline[:2]) or any(m in cmdline for m in DBT_CHILD_MARKERS)


class PeakMemory:
    """Peak RSS of this process and of its largest dbt child while the block runs (the simulator, also a child,
    is not counted); `processes`: each dbt child's own peak (pid -> [command, MB]). With `live`, the peaks so far
    go to stderr every minute (a run stopped by a time limit still says how far it got)."""

    def __init__(self, live: bool = False):
        self.own = self.child = 0.0
        self.processes: dict[int, list] = {}
        self.live = live
        self._stop = threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        me = psutil.Process()
        started = last_print = time.monotonic()
        while not self._stop.is_set():
            try:
                self.own = max(self.own, me.memory_info().rss / 2**20)
                for child in me.children(recursive=True):
                    try:
                        cmdline = child.cmdline()
                        if not is_dbt(cmdline):
                            continue
                        rss = child.memory_info().rss / 2**20
                        self.child = max(self.child, rss)
                        name = "chunk_runner" if any(m in cmdline for m in DBT_CHILD_MARKERS) else \
                            " ".join(part for part in cmdline[1:3])
                        entry = self.processes.setdefault(child.pid, [name, 0.0])
                        entry[1] = max(entry[1], rss)
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            if self.live and time.monotonic() - last_print >= 60:
                last_print = time.monotonic()
                print(f"[peak RSS after {last_print - started:.0f} s] {self.summary()}, load {os.getloadavg()}",
                      file=sys.stderr, flush=True)
            time.sleep(0.2)

    def summary(self) -> str:
        children = ", ".join(f"{name} (pid {pid}) {mb:.0f}" for pid, (name, mb) in self.processes.items())
        return f"this process {self.own:.0f} MB; dbt: {children or 'none'}"

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_figures(instance: dg.DagsterInstance, result, seconds: float, memory: PeakMemory) -> dict:
    """Wall time, Dagster's time before the first step, step times, events recorded, peak memory."""
    from dagster._core.events import DagsterEventType

    records = instance.all_logs(result.run_id)

    def times(kind):
        return [r.timestamp for r in records if r.dagster_event and r.dagster_event.event_type == kind]

    start = min(times(DagsterEventType.RUN_START))
    first_step = min(times(DagsterEventType.STEP_START), default=start)
    steps = {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(result.run_id)}
    materializations = len(times(DagsterEventType.ASSET_MATERIALIZATION))
    return {"seconds": seconds, "before_first_step": first_step - start, "steps": steps, "events": len(records),
            "materializations": materializations, "rss": memory.own, "dbt_rss": memory.child}


def timed(instance, assets, resources, **kwargs) -> dict:
    with PeakMemory() as memory:
        started = time.perf_counter()
        result = dg.materialize(assets, resources=resources, instance=instance, **kwargs)
        seconds = time.perf_counter() - started
    assert result.success
    figures = run_figures(instance, result, seconds, memory)
    figures["result"] = result
    return figures


def combined(runs: list[dict]) -> dict:
    """The figures of consecutive runs as one: times and counts added, peak memory the highest."""
    total = {k: sum(r[k] for r in runs) for k in ("seconds", "before_first_step", "events", "materializations")}
    total.update(rss=max(r["rss"] for r in runs), dbt_rss=max(r["dbt_rss"] for r in runs), steps={})
    for r in runs:
        for key, seconds in r["steps"].items():
            total["steps"][key] = total["steps"].get(key, 0.0) + seconds
    return total


def step(figures: dict, name: str) -> float:
    return next((v for k, v in figures["steps"].items() if name in k), 0.0)


def newest_run_results() -> Path | None:
    """run_results.json of the newest dbt invocation (dagster-dbt gives each its own target directory)."""
    from pipeline.defs.transform.project import DBT_PROJECT_DIR

    found = sorted((DBT_PROJECT_DIR / "target").glob("*/run_results.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def keep_model_timings(name: str) -> None:
    """Per node of the last dbt invocation: execution seconds and status, slowest first."""
    path = newest_run_results()
    if path is None:
        return
    results = json.loads(path.read_text())
    nodes = sorted(((r["execution_time"], r["unique_id"], r["status"]) for r in results["results"]), reverse=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(
        {"elapsed_time": results.get("elapsed_time"), "nodes": [{"seconds": round(t, 3), "node": u, "status": s}
                                                               for t, u, s in nodes]}, indent=1))


def cached_step(history: int) -> Path | None:
    return Path(CACHE) / f"{VOLUME}x{history}d" if CACHE else None


def restore_step(cached: Path, tmp: Path) -> None:
    """A cached history step's files copied into `tmp` (emptied first)."""
    for path in tmp.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in cached.iterdir():
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, tmp / path.name)
    # the publisher's record names its files by absolute path: the cached run's directory -> this one
    state = tmp / ".marts.duckdb.state.json"
    origin = (cached / ORIGIN).read_text()
    state.write_text(state.read_text().replace(origin, str(tmp)))


def steps_to_run() -> list[int]:
    """All steps; with BUILD_ONLY the largest cached step (reused) and the next missing one (built)."""
    if not BUILD_ONLY:
        return STEPS
    assert CACHE, "BENCH_SCALE_BUILD_ONLY needs BENCH_SCALE_CACHE"
    cached = [h for h in STEPS if cached_step(h).exists()]
    missing = [h for h in STEPS if h > max(cached, default=0) and not cached_step(h).exists()]
    return cached[-1:] + missing[:1]


def week_marts() -> None:
    """BENCH_SCALE_WEEK_MARTS: one marts run over every day of the largest cached history step, on a copy of it."""
    from dagster._core.events import DagsterEventType

    from pipeline.defs.resources import WarehouseResource
    from pipeline.defs.serve.assets import marts_file
    from pipeline.defs.transform.assets import chunk_activities, dbt_activity_marts, marts_chunks
    from pipeline.defs.transform.project import dbt_resource
    from pipeline.warehouse.connection import open_warehouse
    from pipeline.warehouse.mart_windows import forget_builds, read_changes, record_build

    assert CACHE, "BENCH_SCALE_WEEK_MARTS needs BENCH_SCALE_CACHE"
    cached = [h for h in STEPS if cached_step(h).exists()]
    assert cached, f"no cached history step under {CACHE} for {VOLUME} activities a day"
    history, full, publish_only = max(cached), WEEK_MARTS == "full", WEEK_MARTS.startswith("publish")
    full_record = WEEK_MARTS == "publish-full"
    kind = "full_refresh: true" if full or full_record else "every window changed"
    kind += ": the publish step alone, after the dbt step's record" if publish_only else ""
    rows: list[tuple[str, object]] = [("activities per day", VOLUME), ("history reused from", str(cached_step(history))),
                                      ("marts run", kind)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        restore_step(cached_step(history), tmp)
        rows.append(("copy of the cached step s (not part of the run)", time.perf_counter() - started))
        os.environ["COMPLIANCE_SERVING_PATH"] = str(tmp / "marts.duckdb")
        warehouse = WarehouseResource(path=str(tmp / "warehouse.duckdb"))
        if not full:  # the state after a ranged backfill of the whole history: every window counts as changed
            with open_warehouse(warehouse.path, memory_limit=warehouse.memory_limit) as conn:
                forget_builds(conn)
                if publish_only:  # what the dbt step records after rebuilding every window (the marts hold them)
                    changes, now = read_changes(conn, full=full_record), datetime.now(timezone.utc)
                    chunks = marts_chunks(changes, chunk_activities(), now)
                    record_build(conn, changes, chunks, now)
                    rows.append(("plan recorded (dbt not run)", f"{len(chunks)} chunks, {len(changes.windows)} "
                                                                "changed windows"))
        instance = dg.DagsterInstance.ephemeral()
        load_before = os.getloadavg()
        with PeakMemory(live=True) as memory:
            started = time.perf_counter()
            result = dg.materialize(
                [marts_file] if publish_only else [dbt_activity_marts, marts_file],
                resources={"warehouse": warehouse, "dbt": dbt_resource()},
                instance=instance, raise_on_error=False,
                run_config={"ops": {"dbt_activity_marts": {"config": {"full_refresh": True}}}} if full else None)
            seconds = time.perf_counter() - started
        load_after = os.getloadavg()
        figures = run_figures(instance, result, seconds, memory)
        messages = [r.user_message or "" for r in instance.all_logs(result.run_id)]
        plan = next((m for m in messages if "dbt invocation(s)" in m), "no plan logged")
        done = [re.search(r" nodes, ([\d.]+) s(?:, RSS (\d+) MB)?$", m) for m in messages if m.startswith("chunk ")]
        chunk_seconds = [float(d.group(1)) for d in done if d]
        chunk_rss = [int(d.group(2)) for d in done if d and d.group(2)]
        failures = [e.step_failure_data.error.message.strip().splitlines()[0] for e in result.all_events
                    if e.event_type == DagsterEventType.STEP_FAILURE]
        rows += [
            ("success", str(result.success)),
            *((f"failure of {i + 1}", message) for i, message in enumerate(failures)),
            *((("plan", plan.split(" -> ", 1)[-1]), ("changed windows", plan.split(" ", 1)[0]))
              if not publish_only else ()),
            ("run seconds", seconds),
            ("dbt step s", step(figures, "dbt_activity_marts")),
            ("publish step s", step(figures, "marts_file")),
            ("chunks of the chunk runner: seconds min / mean / max",
             f"{min(chunk_seconds):.1f} / {sum(chunk_seconds) / len(chunk_seconds):.1f} / {max(chunk_seconds):.1f}"
             if chunk_seconds else "none"),
            ("chunk runner RSS MB after its first / 10th / last chunk",
             " / ".join(str(chunk_rss[i]) for i in (0, min(9, len(chunk_rss) - 1), -1)) if chunk_rss else "none"),
            ("peak RSS MB of this process (Dagster, the step in-process)", memory.own),
            *((f"peak RSS MB of dbt process {name} (pid {pid})", mb) for pid, (name, mb) in memory.processes.items()),
            ("load average before (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in load_before)),
            ("load average after (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in load_after)),
        ]
        again = next((m.split(": ", 1)[1] for m in messages if m.startswith("exported again")), "")
        rows.append(("publish: exports again unsorted after out of memory", len(again.split(", ")) if again else 0))
        if result.success:
            meta = result.asset_materializations_for_node("serve__marts_file")[0].metadata
            rows.append(("publish files / MB written",
                         f"{meta['files_written'].value} / {meta['bytes_written'].value / 2**20:.1f}"))
    report(f"scale_marts_{history}d_{'full' if full else WEEK_MARTS if publish_only else 'changed'}", rows)


def main() -> None:
    from pipeline.defs.ingest.assets import raw_activities
    from pipeline.defs.monitors import activity_monitors
    from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
    from pipeline.defs.serve.assets import marts_file
    from pipeline.defs.serve.compaction import compact_serving_files_job
    from pipeline.defs.transform.assets import dbt_activity_marts, dbt_reference
    from pipeline.defs.transform.project import dbt_resource

    if WEEK_MARTS not in ("", "0"):
        week_marts()
        return
    steps = steps_to_run()
    if not steps:
        return
    days = max(steps)
    args = ["--start", f"{FIRST_DAY}T00:00:00Z", "--days", str(days + 1), "--volume", str(VOLUME),
            "--rate-limit", "0", "--late-share", "0", "--chats-per-day", "0"]
    rows: list[tuple[str, object]] = [("activities per day (simulator volume)", VOLUME)]
    ticks: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(args, startup_timeout=900) as sim:
        tmp = Path(tmp)
        os.environ["COMPLIANCE_SERVING_PATH"] = str(tmp / "marts.duckdb")
        resources = {
            "compliance_api": ComplianceAPIResource(base_url=sim.base_url,
                                                    requests_per_minute=1_000_000),
            "warehouse": WarehouseResource(path=str(tmp / "warehouse.duckdb")), "geoip": GeoIPResource(),
            "dbt": dbt_resource()}
        instance = dg.DagsterInstance.ephemeral()
        assert dg.materialize([dbt_reference], resources=resources, instance=instance).success
        done = 0
        for history in steps:
            first, last = FIRST_DAY + timedelta(days=done), FIRST_DAY + timedelta(days=history - 1)
            label = f"history {history} d: +{history - done} d"
            cached = cached_step(history)
            if cached and cached.exists():
                restore_step(cached, tmp)
                rows.append((f"{label}: history reused from", str(cached)))
            else:
                # BUILD_ONLY: a day per ingestion and marts run, as the daily schedule builds history (each run
                # fits a bench-lock hold: see the docstring)
                days_of_step = [(FIRST_DAY + timedelta(days=d),) * 2 for d in range(done, history)] if BUILD_ONLY \
                    else [(first, last)]
                ingests, martses = [], []
                for day_first, day_last in days_of_step:
                    ingests.append(timed(instance, [raw_activities, activity_monitors], resources, tags={
                        ASSET_PARTITION_RANGE_START_TAG: f"{day_first}-00:00",
                        ASSET_PARTITION_RANGE_END_TAG: f"{day_last}-23:55"}))
                    martses.append(timed(instance, [dbt_activity_marts, marts_file], resources))
                ingest, marts = combined(ingests), combined(martses)
                if cached:
                    cached.mkdir(parents=True)
                    for path in tmp.iterdir():
                        (shutil.copytree if path.is_dir() else shutil.copy2)(path, cached / path.name)
                    (cached / ORIGIN).write_text(str(tmp))
                rows += [
                    (f"{label} ingest run seconds (with monitors)", ingest["seconds"]),
                    (f"{label} ingest peak RSS MB", ingest["rss"]),
                    (f"{label} marts run seconds", marts["seconds"]),
                    (f"{label} marts: Dagster before first step s", marts["before_first_step"]),
                    (f"{label} marts: dbt step s", step(marts, "dbt_activity_marts")),
                    (f"{label} marts: publish step s", step(marts, "marts_file")),
                    (f"{label} marts: events / materializations", f"{marts['events']} / {marts['materializations']}"),
                    (f"{label} marts peak RSS MB (Dagster / dbt)", f"{marts['rss']:.0f} / {marts['dbt_rss']:.0f}"),
                ]
            done = history
            if BUILD_ONLY:
                continue
            # Two ticks: the first window of the next day (the previous day's hour files stay: their compaction is a
            # job of its own, measured after the ticks) and the next window (the steady state of the others).
            for minute, kind in (("00:00", "first of day"), ("00:05", "steady")):
                window = f"{FIRST_DAY + timedelta(days=history)}-{minute}"
                tick_ingest = timed(instance, [raw_activities, activity_monitors], resources, partition_key=window)
                tick_marts = timed(instance, [dbt_activity_marts, marts_file], resources)
                keep_model_timings(f"scale_tick_{history}d_{kind.replace(' ', '_')}")
                total = tick_ingest["seconds"] + tick_marts["seconds"]
                ticks.setdefault(kind, {})[history] = total
                meta = tick_marts["result"].asset_materializations_for_node("serve__marts_file")[0].metadata
                name = f"tick ({kind}) on {history} d"
                rows += [
                    (f"{name}: seconds end to end (target <= 30)", total),
                    (f"{name}: ingest + monitors run s (Dagster before first step)",
                     f"{tick_ingest['seconds']:.1f} ({tick_ingest['before_first_step']:.1f})"),
                    (f"{name}: monitors step s", step(tick_ingest, "activity_monitors")),
                    (f"{name}: marts run s (Dagster before first step)",
                     f"{tick_marts['seconds']:.1f} ({tick_marts['before_first_step']:.1f})"),
                    (f"{name}: dbt step s / publish step s",
                     f"{step(tick_marts, 'dbt_activity_marts'):.1f} / {step(tick_marts, 'marts_file'):.1f}"),
                    (f"{name}: publish files / MB written",
                     f"{meta['files_written'].value} / {meta['bytes_written'].value / 2**20:.1f}"),
                    (f"{name}: events (ingest + marts)", tick_ingest["events"] + tick_marts["events"]),
                    (f"{name}: peak RSS MB (Dagster / dbt)",
                     f"{max(tick_ingest['rss'], tick_marts['rss']):.0f} / {tick_marts['dbt_rss']:.0f}"),
                ]
            if not COMPACTION:
                continue
            # The closed day's compaction: its own run (hourly job), never part of a tick; readers never wait for it.
            with PeakMemory() as memory:
                started = time.perf_counter()
                compaction = compact_serving_files_job.execute_in_process(instance=instance)
                seconds = time.perf_counter() - started
            assert compaction.success
            rows.append((f"compaction of the closed day after the ticks on {history} d: run s / peak RSS MB",
                         f"{seconds:.1f} / {memory.own:.0f}"))
    for kind, by_history in ticks.items():
        if len(by_history) > 1:
            rows.append((f"tick ({kind}) ratio {max(by_history)} d / {min(by_history)} d (target <= 1.3)",
                         by_history[max(by_history)] / by_history[min(by_history)]))
    report("scale_build" if BUILD_ONLY else "scale", rows)


if __name__ == "__main__":
    main()
