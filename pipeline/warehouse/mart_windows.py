"""Which 5-minute windows the marts must rebuild: the windows the ingestion changed since the last marts build.

The ingestion's own bookkeeping says what changed: `raw.activity_attestations` holds one row per window, rewritten
(new `attested_at`) whenever the window's content count changes (new, late or removed rows), and every stored row
carries the `fetched_at` of the load that inserted it (a window whose rows were swapped at equal count). The marts
build keeps its own record of what it last built in `transform.mart_windows` (the attestation rows it consumed) and
`transform.mart_watermark` (the newest `fetched_at` it saw):

    changed = attestations that differ from mart_windows  UNION  windows of rows fetched after the watermark

A build reads that set *before* running dbt and records it only after dbt succeeded, in one transaction: a failed or
crashed build leaves the record untouched, so the next build redoes those windows (the dbt models rewrite a window
whole, so redoing one changes nothing). Changes that land while dbt runs differ from the recorded snapshot and are
picked up by the next build. Cost: two scans of small tables (one row per window) and a zone-map-pruned scan of
`raw.activities.fetched_at`; never the history.

`plan_chunks` (pure) turns the changed windows into the [start, end) ranges of dbt invocations: each changed window
widened by the models' forward horizon (a mart that looks back at earlier rows, e.g. reconnaissance in the hour before
a privilege change, must be recomputed after a late row), merged, and cut or joined so that each invocation holds at
most `budget` activities (memory stays bounded at any range: a 1M-activity day is split, three quiet days are one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

WINDOW = timedelta(minutes=5)

DDL = """
CREATE SCHEMA IF NOT EXISTS transform;
CREATE TABLE IF NOT EXISTS transform.mart_windows (
    window_start  TIMESTAMPTZ NOT NULL,
    record_count  BIGINT NOT NULL,
    attested_at   TIMESTAMPTZ NOT NULL,
    built_at      TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS transform.mart_watermark (
    fetched_at    TIMESTAMPTZ,
    built_at      TIMESTAMPTZ NOT NULL
);
-- Every range a build rewrote (what the serving publish re-exports; pipeline/serving/publish.py).
CREATE TABLE IF NOT EXISTS transform.mart_builds (
    range_start   TIMESTAMPTZ NOT NULL,
    range_end     TIMESTAMPTZ NOT NULL,
    full_refresh  BOOLEAN NOT NULL,
    built_at      TIMESTAMPTZ NOT NULL
);
"""


@dataclass
class ChangedWindows:
    """What a build is about to rebuild, as read from the warehouse before dbt runs."""
    windows: list[datetime] = field(default_factory=list)           # changed window starts, ascending
    counts: dict[datetime, int] = field(default_factory=dict)       # activities per attested window (all windows)
    attestations: list[tuple[datetime, int, datetime]] = field(default_factory=list)  # changed rows to record
    watermark: datetime | None = None                               # newest fetched_at seen
    full: bool = False


def ensure_state(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(DDL)


def read_changes(conn: duckdb.DuckDBPyConnection, *, full: bool = False) -> ChangedWindows:
    """The windows changed since the last recorded build (all attested windows when `full`)."""
    ensure_state(conn)
    has_raw = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                           "AND schema_name = 'raw' AND table_name IN ('activities', 'activity_attestations')"
                           ).fetchone()[0] == 2
    if not has_raw:
        return ChangedWindows(full=full)
    counts = dict(conn.execute("SELECT window_start, record_count FROM raw.activity_attestations").fetchall())
    condition = "true" if full else """b.window_start IS NULL OR b.record_count <> a.record_count
                                       OR b.attested_at <> a.attested_at"""
    attestations = conn.execute(f"""
        SELECT a.window_start, a.record_count, a.attested_at
        FROM raw.activity_attestations a LEFT JOIN transform.mart_windows b USING (window_start)
        WHERE {condition} ORDER BY 1""").fetchall()
    previous = conn.execute("SELECT max(fetched_at) FROM transform.mart_watermark").fetchone()[0]
    watermark = conn.execute("SELECT max(fetched_at) FROM raw.activities").fetchone()[0]
    fetched = []
    if previous is not None and not full:
        fetched = [r[0] for r in conn.execute(
            "SELECT DISTINCT time_bucket(INTERVAL 5 MINUTE, created_at) FROM raw.activities WHERE fetched_at > ?",
            [previous]).fetchall()]
    windows = sorted({r[0] for r in attestations} | set(fetched))
    return ChangedWindows(windows=windows, counts=counts, attestations=attestations, watermark=watermark, full=full)


def record_build(conn: duckdb.DuckDBPyConnection, changes: ChangedWindows,
                 chunks: list[tuple[datetime, datetime]], built_at: datetime) -> None:
    """Remember what a successful build consumed (the snapshot read before it ran) and the ranges it rewrote,
    atomically."""
    ensure_state(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        if changes.full:
            conn.execute("DELETE FROM transform.mart_windows")
        conn.execute("CREATE OR REPLACE TEMP TABLE built (window_start TIMESTAMPTZ, record_count BIGINT, "
                     "attested_at TIMESTAMPTZ)")
        if changes.attestations:
            conn.executemany("INSERT INTO built VALUES (?, ?, ?)", changes.attestations)
        conn.execute("DELETE FROM transform.mart_windows WHERE window_start IN (SELECT window_start FROM built)")
        conn.execute("INSERT INTO transform.mart_windows SELECT *, ? FROM built", [built_at])
        conn.execute("DROP TABLE built")
        conn.executemany("INSERT INTO transform.mart_builds VALUES (?, ?, ?, ?)",
                         [(start, end, changes.full, built_at) for start, end in chunks + rewritten_windows(conn)
                          if end > start] or [(built_at, built_at, changes.full, built_at)])
        if changes.watermark is not None:
            conn.execute("DELETE FROM transform.mart_watermark")
            conn.execute("INSERT INTO transform.mart_watermark VALUES (?, ?)", [changes.watermark, built_at])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def rewritten_windows(conn: duckdb.DuckDBPyConnection) -> list[tuple[datetime, datetime]]:
    """Windows a post-hook rewrote outside the built ranges (claude_usage: a chat's new model), listed by dbt in
    intermediate.rewritten_windows: taken (deleted) here, so that the build's record, and the serving publish that
    follows it, covers them. Call inside the recording transaction."""
    exists = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                          "AND schema_name = 'intermediate' AND table_name = 'rewritten_windows'").fetchone()[0]
    if not exists:
        return []
    windows = [r[0] for r in conn.execute("SELECT DISTINCT created_5min FROM intermediate.rewritten_windows "
                                          "WHERE created_5min IS NOT NULL ORDER BY 1").fetchall()]
    conn.execute("DELETE FROM intermediate.rewritten_windows")
    return _merge((w, w + WINDOW) for w in windows)


def forget_builds(conn: duckdb.DuckDBPyConnection) -> None:
    """Make every window count as changed (after the marts were dropped or rebuilt outside Dagster)."""
    ensure_state(conn)
    conn.execute("DELETE FROM transform.mart_windows")
    conn.execute("DELETE FROM transform.mart_watermark")


# ---------------------------------------------------------------------------------------------------------- pure


def _merge(ranges: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _rows(counts: Mapping[datetime, int], start: datetime, end: datetime) -> int:
    return sum(n for w, n in counts.items() if start <= w < end)


def plan_chunks(windows: Iterable[datetime], counts: Mapping[datetime, int], *, horizon: timedelta,
                budget: int) -> list[tuple[datetime, datetime]]:
    """[start, end) ranges to rebuild, ascending, each holding at most `budget` activities (a single window above
    the budget is a chunk of its own): changed windows widened by `horizon`, merged, split where a range is too big,
    joined (with the unchanged windows in between) where the union still fits."""
    ranges = _merge((w, w + WINDOW + horizon) for w in windows)
    pieces: list[tuple[datetime, datetime, int]] = []
    for start, end in ranges:
        inside = sorted((w, n) for w, n in counts.items() if start <= w < end)
        piece_start, rows = start, 0
        for w, n in inside:
            if rows and rows + n > budget:
                pieces.append((piece_start, w, rows))
                piece_start, rows = w, 0
            rows += n
        pieces.append((piece_start, end, rows))
    chunks: list[tuple[datetime, datetime, int]] = []
    for start, end, rows in pieces:
        if chunks:
            joined = chunks[-1][2] + _rows(counts, chunks[-1][1], start) + rows
            if joined <= budget:
                chunks[-1] = (chunks[-1][0], end, joined)
                continue
        chunks.append((start, end, rows))
    return [(start, end) for start, end, _ in chunks]
