"""Ingest throughput of raw/activities on one generated 1M-activity day, against dlt and the DuckDB ceiling.

pipeline: one ranged Dagster run over the whole day (fetch + spool + one-transaction load + enrichment), in a fresh
          process whose peak RSS is reported.
dlt:      dlt's REST API source into DuckDB (cursor paginator on last_id/after_id, merge on id): as configured by
          default, with max_table_nesting=0, and with max_table_nesting=0 plus the parquet loader. dlt is slow and
          memory-hungry on this data (its default DuckDB loader builds INSERT statements for a table of hundreds of
          columns): it runs on a 100k-activity slice, under a resident-memory cap; a variant that passes the cap is
          measured on a smaller slice, and the figure says which.
ceiling:  DuckDB reading the same records from local JSON files in one statement (7 typed columns + raw JSON), at
          DuckDB's default memory limit (80% of RAM: the ratios' reference) and, for context, at the pipeline's
          (COMPLIANCE_DUCKDB_MEMORY_LIMIT).
parts:    where the pipeline's time goes, each measured alone in the same run: the fetch (the client's traversal of
          the day over HTTP, pages dropped; and with each page screened and written to the spool as the pipeline
          does, kept until the end as when the load lags behind), the load (load_activity_range over the same local
          pages the ceiling reads, into a fresh warehouse) and the Dagster floor (the same ranged run of an asset that
          does nothing, whole process).
bound:    what any ingest could reach on this machine, from the same run's parts: the step has at least the ceiling's
          DuckDB work (its CPU: one thread costs as much), the client's receipt of the pages and the simulator's serving
          of them (same cores) to do, spread perfectly over the cores; the whole process adds the Dagster floor outside
          its step. Its ratios are the most the ingest step and the whole process could show against the ceiling here.

The pipeline is reported three ways against the ceiling: the ingest step alone (STEP_START to STEP_SUCCESS), the
Dagster run (`materialize`), and the whole child process (interpreter start-up and imports included).
BENCH_DLT=0 skips the dlt baselines (minutes each).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import duckdb
import httpx
import orjson
import psutil

from bench.common import FULL_KEY, RESULTS_DIR, report, run_child
from simulator.process import SimulatorProcess

DAY = ("2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z")  # a Tuesday: full working-day volume
VOLUME = int(os.environ.get("BENCH_VOLUME", "1000000"))
DLT_SLICE = int(os.environ.get("BENCH_DLT_SLICE", "100000"))
DLT_RSS_LIMIT_MB = float(os.environ.get("BENCH_DLT_RSS_LIMIT_MB", "6000"))
DLT_TIMEOUT = float(os.environ.get("BENCH_DLT_TIMEOUT", "900"))
WITH_DLT = os.environ.get("BENCH_DLT", "1") != "0"


def save_pages(base_url: str, directory: Path) -> list[str]:
    params = {"created_at.gte": DAY[0], "created_at.lt": DAY[1], "limit": "5000"}
    files = []
    with httpx.Client(base_url=base_url, headers={"x-api-key": FULL_KEY}, timeout=60) as http:
        while True:
            body = orjson.loads(http.get("/v1/compliance/activities", params=params).content)
            path = directory / f"page-{len(files):05d}.json"
            path.write_bytes(orjson.dumps(body["data"]))
            files.append(str(path))
            if not body["has_more"]:
                return files
            params["after_id"] = body["last_id"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ceiling(files: list[str], db: Path, memory_limit: str | None = None) -> tuple[int, float, float]:
    """Rows, wall seconds and CPU seconds (all DuckDB threads: robust to a busy machine) of the ceiling."""
    with duckdb.connect(str(db), config={"memory_limit": memory_limit} if memory_limit else {}) as conn:
        conn.execute("SET preserve_insertion_order = false")
        cpu = cpu_seconds()
        started = time.perf_counter()
        conn.execute(f"""
            CREATE TABLE activities AS
            SELECT f[1] AS id, f[2] AS type, f[3]::TIMESTAMPTZ AS created_at, f[4] AS organization_id,
                   f[5] AS actor_type, f[6] AS ip_address, f[7] AS user_agent, json AS raw
            FROM (SELECT json, json_extract_string(json, ['$.id', '$.type', '$.created_at', '$.organization_id',
                         '$.actor.type', '$.actor.ip_address', '$.actor.user_agent']) AS f
                  FROM read_json_objects({files!r}, format = 'array'))""")
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        return conn.execute("SELECT count(*) FROM activities").fetchone()[0], elapsed, cpu


def fetch_alone(base_url: str, spool_parent: Path | None = None) -> tuple[int, float, float]:
    """Pages, wall and CPU seconds of the client's traversal of the day (unparsed pages): dropped, or with
    `spool_parent` screened and written to a spool there as the pipeline does (kept until the end)."""
    os.environ.setdefault("ANTHROPIC_COMPLIANCE_ACCESS_KEY", FULL_KEY)
    os.environ.setdefault("COMPLIANCE_API_ALLOWED_HOSTS", "127.0.0.1")
    from pipeline.defs.resources import ComplianceAPIResource
    from pipeline.warehouse.activities import PageSpool, TraversalStats, _spool_page

    api = ComplianceAPIResource(base_url=base_url, requests_per_minute=100_000)
    with api.client() as client, PageSpool(spool_parent) if spool_parent else nullcontext() as spool:
        cpu, started, pages = cpu_seconds(), time.perf_counter(), 0
        for page in client.iter_activity_pages(DAY[0], DAY[1], parse_records=False):
            if spool is not None:
                _spool_page(page, spool, TraversalStats())
            pages += 1
        return pages, time.perf_counter() - started, cpu_seconds() - cpu


def attainable(ceiling_s: float, ceiling_cpu: float, fetch_cpu: float, simulator_cpu: float, cores: int,
               floor_wall_s: float, floor_step_s: float) -> tuple[float, float]:
    """The least wall seconds of the ingest step and of the whole process on `cores` cores (see `bound` above)."""
    step = max(ceiling_s, (ceiling_cpu + fetch_cpu + simulator_cpu) / cores)
    return step, step + (floor_wall_s - floor_step_s)


def load_alone(files: list[str], db: Path) -> tuple[int, float, float]:
    """Rows, wall and CPU seconds of load_activity_range over the local pages (no HTTP, no Dagster)."""
    from datetime import datetime

    from pipeline.warehouse.activities import TraversalStats, load_activity_range
    from pipeline.warehouse.connection import open_warehouse

    start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in DAY)
    with open_warehouse(db) as conn:
        cpu, started = cpu_seconds(), time.perf_counter()
        result = load_activity_range(conn, files, start, end, run_id="bench", fetched_at=datetime.now(start.tzinfo),
                                     traversal=TraversalStats(pages=len(files)))
        return result.stored, time.perf_counter() - started, cpu_seconds() - cpu


def slice_end(total: int, size: int) -> str:
    """End of the first part of the day holding about `size` activities (volume is spread over the day)."""
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(DAY[0].replace("Z", "+00:00"))
    seconds = 86400 * min(1.0, size / max(total, 1))
    return (start + timedelta(seconds=int(seconds))).isoformat().replace("+00:00", "Z")


DLT_VARIANTS = [  # (label, max_table_nesting, loader file format)
    ("dlt as configured by default (insert_values)", "default", "default"),
    ("dlt max_table_nesting=0", "0", "default"),
    ("dlt max_table_nesting=0 + parquet loader", "0", "parquet"),
]


def dlt_run(base_url: str, tmp: Path, total: int, nesting: str, file_format: str) -> dict:
    """dlt's figures on the largest slice it can load under DLT_RSS_LIMIT_MB (DLT_SLICE first, then smaller ones):
    a failed or runaway baseline is a finding, reported as such, not a crash of the bench."""
    notes = []
    for size in (DLT_SLICE, DLT_SLICE // 5, DLT_SLICE // 20):
        path = tmp / f"dlt-{nesting}-{file_format}-{size}.duckdb"
        try:
            result = run_child("bench.dlt_child", base_url, str(path), DAY[0], slice_end(total, size), nesting,
                               file_format, rss_limit_mb=DLT_RSS_LIMIT_MB, timeout=DLT_TIMEOUT)
            result["note"] = "; ".join(notes + [f"slice of {result['stored']:,} activities"])
            return result
        except RuntimeError as exc:
            first_line = str(exc).splitlines()[0]
            notes.append(f"~{size:,}-activity slice failed ({first_line.split(': ', 1)[-1]})")
            RESULTS_DIR.mkdir(exist_ok=True)
            (RESULTS_DIR / f"{path.stem}.stderr.txt").write_text(str(exc))
            print(f"{nesting}/{file_format}: {notes[-1]}", flush=True)
    return {"stored": 0, "seconds": float("nan"), "peak_rss_mb": float("nan"), "note": "; ".join(notes)}


def main() -> None:
    from pipeline.defs.resources import WarehouseResource

    pipeline_memory_limit = WarehouseResource(path="-").memory_limit  # what the ingest child runs with
    args = ["--start", DAY[0], "--days", "1", "--volume", str(VOLUME), "--rate-limit", "0", "--chats-per-day", "0"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp, \
            SimulatorProcess(args, startup_timeout=300) as sim:
        tmp = Path(tmp)
        (tmp / "pages").mkdir()
        files = save_pages(sim.base_url, tmp / "pages")  # also warms the simulator's cache
        ceiling_n, ceiling_s, ceiling_cpu = ceiling(files, tmp / "ceiling.duckdb")
        ceiling_limited = ceiling(files, tmp / "ceiling-limited.duckdb", pipeline_memory_limit)
        fetch_pages, fetch_s, fetch_cpu = fetch_alone(sim.base_url)
        _, spooled_s, spooled_cpu = fetch_alone(sim.base_url, tmp / "spool")
        load_n, load_s, load_cpu = load_alone(files, tmp / "load-alone.duckdb")
        floor = run_child("bench.dagster_floor_child", "2026-11-03-00:00", "2026-11-03-23:55")
        # The simulator shares the 2 cores: its CPU during our run is reported apart (test infrastructure).
        simulator = psutil.Process(sim.proc.pid)
        sim_cpu = sum(simulator.cpu_times()[:2])
        ours = run_child("bench.ingest_child", sim.base_url, str(tmp / "warehouse.duckdb"), "2026-11-03-00:00",
                         "2026-11-03-23:55")
        sim_cpu = sum(simulator.cpu_times()[:2]) - sim_cpu
        print(f"pipeline: {ours}", flush=True)
        dlts = [(label, dlt_run(sim.base_url, tmp, ceiling_n, nesting, fmt))
                for label, nesting, fmt in DLT_VARIANTS if WITH_DLT]
    ours_rate = ours["stored"] / ours["seconds"]
    cores = len(os.sched_getaffinity(0))
    bound_step, bound_process = attainable(ceiling_s, ceiling_cpu, fetch_cpu, sim_cpu, cores, floor["wall_seconds"],
                                           floor["step_seconds"])
    ceiling_rate = ceiling_n / ceiling_s
    dlt_rates = [r["stored"] / r["seconds"] for _, r in dlts if r["stored"]]
    rows = [
        ("activities in the day", ceiling_n),
        ("pipeline: one ranged run, activities/s", ours_rate),
        ("pipeline: ingest step s", ours["step_seconds"]),
        ("pipeline: whole process s", ours["wall_seconds"]),
        ("pipeline: wall s (fetch / load)", f"{ours['seconds']:.1f} ({ours['fetch_seconds']:.1f} / "
                                            f"{ours['load_seconds']:.1f})"),
        ("pipeline: peak RSS MB", ours["peak_rss_mb"]),
        ("pipeline: process CPU s (user + system, all threads)", ours["cpu_seconds"]),
        ("simulator: CPU s during the pipeline's run (same 2 cores)", sim_cpu),
        ("ceiling: DuckDB read of local pages, activities/s", ceiling_rate),
        ("ceiling: s", ceiling_s),
        ("ceiling / pipeline", ceiling_rate / ours_rate),
        ("ceiling: CPU s", ceiling_cpu),
        (f"ceiling at the pipeline's memory limit ({pipeline_memory_limit}): s / CPU s (context, not the reference)",
         f"{ceiling_limited[1]:.2f} / {ceiling_limited[2]:.2f}"),
        ("ingest step / ceiling (rate)", ceiling_s / ours["step_seconds"]),
        ("whole process / ceiling (CPU: ceiling CPU s / pipeline process CPU s)", ceiling_cpu / ours["cpu_seconds"]),
        ("whole process / ceiling (rate)", ceiling_s / ours["wall_seconds"]),
        ("part: fetch alone (client over HTTP, pages dropped) s / CPU s", f"{fetch_s:.2f} / {fetch_cpu:.2f} "
                                                                          f"({fetch_pages} pages)"),
        ("part: fetch alone, pages screened and written to the spool (kept) s / CPU s",
         f"{spooled_s:.2f} / {spooled_cpu:.2f}"),
        ("part: load alone (load_activity_range, same local pages) s / CPU s", f"{load_s:.2f} / {load_cpu:.2f} "
                                                                                f"({load_n:,} rows)"),
        ("part: load alone / ceiling (rate)", ceiling_s / load_s),
        ("part: Dagster floor, the same ranged run doing nothing: whole process s (step s)",
         f"{floor['wall_seconds']:.2f} ({floor['step_seconds']:.2f})"),
        (f"bound on {cores} cores: least ingest step s / whole process s", f"{bound_step:.2f} / {bound_process:.2f}"),
        ("bound: the most ingest step / ceiling (rate) attainable here", ceiling_s / bound_step),
        ("bound: the most whole process / ceiling (rate) attainable here", ceiling_s / bound_process),
        ("ingest step / bound (rate)", bound_step / ours["step_seconds"]),
        ("whole process / bound (rate)", bound_process / ours["wall_seconds"]),
    ]
    for label, r in dlts:
        rate = r["stored"] / r["seconds"] if r["stored"] else float("nan")
        rows += [(f"{label}: activities/s", rate), (f"{label}: peak RSS MB", r["peak_rss_mb"]),
                 (f"{label}: note", r["note"])]
    rows.append(("pipeline / fastest dlt variant", ours_rate / max(dlt_rates) if dlt_rates else float("nan")))
    report("ingest_throughput", rows)


if __name__ == "__main__":
    main()
