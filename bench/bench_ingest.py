"""Ingest throughput of raw/activities on one generated 1M-activity day, against dlt and the DuckDB ceiling.

pipeline: one ranged Dagster run over the whole day (fetch + spool + one-transaction load + enrichment), in a fresh
          process whose peak RSS is reported.
dlt:      dlt's REST API source into DuckDB (cursor paginator on last_id/after_id, merge on id), default
          normalisation and max_table_nesting=0. dlt's default normalisation is slow on this data: it runs on a
          100k-activity slice and its rate is reported as such.
ceiling:  DuckDB reading the same records from local JSON files in one statement (7 typed columns + raw JSON).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
import orjson

from bench.common import FULL_KEY, report, run_child
from simulator.process import SimulatorProcess

DAY = ("2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z")  # a Tuesday: full working-day volume
VOLUME = int(os.environ.get("BENCH_VOLUME", "1000000"))
DLT_SLICE = int(os.environ.get("BENCH_DLT_SLICE", "100000"))


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


def ceiling(files: list[str], db: Path) -> tuple[int, float]:
    with duckdb.connect(str(db)) as conn:
        conn.execute("SET preserve_insertion_order = false")
        started = time.perf_counter()
        conn.execute(f"""
            CREATE TABLE activities AS
            SELECT f[1] AS id, f[2] AS type, f[3]::TIMESTAMPTZ AS created_at, f[4] AS organization_id,
                   f[5] AS actor_type, f[6] AS ip_address, f[7] AS user_agent, json AS raw
            FROM (SELECT json, json_extract_string(json, ['$.id', '$.type', '$.created_at', '$.organization_id',
                         '$.actor.type', '$.actor.ip_address', '$.actor.user_agent']) AS f
                  FROM read_json_objects({files!r}, format = 'array'))""")
        elapsed = time.perf_counter() - started
        return conn.execute("SELECT count(*) FROM activities").fetchone()[0], elapsed


def slice_end(total: int) -> str:
    """End of the first part of the day holding about DLT_SLICE activities (volume is spread over the day)."""
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(DAY[0].replace("Z", "+00:00"))
    seconds = 86400 * min(1.0, DLT_SLICE / max(total, 1))
    return (start + timedelta(seconds=int(seconds))).isoformat().replace("+00:00", "Z")


def dlt_run(base_url: str, path: Path, end: str, nesting: str) -> dict:
    """dlt's figures, or its failure reported as such (a failed baseline is a finding, not a crash of the bench)."""
    try:
        return run_child("bench.dlt_child", base_url, str(path), DAY[0], end, nesting)
    except RuntimeError as exc:
        errors = [line for line in str(exc).splitlines() if "Error" in line or "Exception" in line]
        print(f"dlt ({nesting}) failed: {errors[-1] if errors else exc}")
        return {"stored": 0, "seconds": float("nan"), "peak_rss_mb": float("nan")}


def main() -> None:
    args = ["--start", DAY[0], "--days", "1", "--volume", str(VOLUME), "--rate-limit", "0", "--chats-per-day", "0"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp, \
            SimulatorProcess(args, startup_timeout=300) as sim:
        tmp = Path(tmp)
        (tmp / "pages").mkdir()
        files = save_pages(sim.base_url, tmp / "pages")  # also warms the simulator's cache
        ceiling_n, ceiling_s = ceiling(files, tmp / "ceiling.duckdb")
        ours = run_child("bench.ingest_child", sim.base_url, str(tmp / "warehouse.duckdb"), "2026-11-03-00:00",
                         "2026-11-03-23:55")
        end = slice_end(ceiling_n)
        dlt_default = dlt_run(sim.base_url, tmp / "dlt_default.duckdb", end, "default")
        dlt_flat = dlt_run(sim.base_url, tmp / "dlt_flat.duckdb", end, "0")
    ours_rate = ours["stored"] / ours["seconds"]
    dlt_rate = dlt_default["stored"] / dlt_default["seconds"] if dlt_default["stored"] else float("nan")
    flat_rate = dlt_flat["stored"] / dlt_flat["seconds"] if dlt_flat["stored"] else float("nan")
    ceiling_rate = ceiling_n / ceiling_s
    report("ingest_throughput", [
        ("activities in the day", ceiling_n),
        ("pipeline: one ranged run, activities/s", ours_rate),
        ("pipeline: wall s (fetch / load)", f"{ours['seconds']:.1f} ({ours['fetch_seconds']:.1f} / "
                                            f"{ours['load_seconds']:.1f})"),
        ("pipeline: peak RSS MB", ours["peak_rss_mb"]),
        ("dlt slice (activities)", dlt_default["stored"]),
        ("dlt default normalisation, activities/s", dlt_rate),
        ("dlt default peak RSS MB", dlt_default["peak_rss_mb"]),
        ("dlt max_table_nesting=0, activities/s", flat_rate),
        ("dlt nesting=0 peak RSS MB", dlt_flat["peak_rss_mb"]),
        ("ceiling: DuckDB read of local pages, activities/s", ceiling_rate),
        ("pipeline / best dlt", ours_rate / max(r for r in (dlt_rate, flat_rate, 1e-9) if r == r)),
        ("ceiling / pipeline", ceiling_rate / ours_rate),
    ])


if __name__ == "__main__":
    main()
