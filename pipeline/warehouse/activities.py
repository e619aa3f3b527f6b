"""Transactional, idempotent writes of activity windows into `raw.activities`.

A run spools the delivered records to files (one JSON array per page) and DuckDB parses them in one statement:
the commit size is the main throughput lever, and no Python code touches individual records on this path. The stored range is then made equal to what the API
returned for `[start, end)`, in one transaction: rows of new ids are inserted, rows the API no longer returns are
removed and everything else is left untouched, so re-running a range changes nothing and a crash (even SIGKILL)
leaves the previous state of the range.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from pipeline.warehouse.schema import GEO_COLUMNS, UA_COLUMNS, ensure_schema

WINDOW = "INTERVAL 5 MINUTE"

# One JSON parse per record: the typed columns come from a single multi-path extraction.
_PATHS = [
    "$.id", "$.type", "$.created_at", "$.organization_id", "$.organization_uuid", "$.actor.type",
    "$.actor.user_id", "$.actor.email_address", "$.actor.api_key_id", "$.actor.admin_api_key_id",
    "$.actor.service_account_id", "$.actor.ip_address", "$.actor.user_agent",
]


@dataclass
class TraversalStats:
    pages: int = 0
    records: int = 0
    duplicates_dropped: int = 0
    first_cursor: str | None = None
    last_cursor: str | None = None
    final_request_id: str | None = None


@dataclass
class LoadResult:
    stored: int = 0            # rows of the range after the load
    inserted: int = 0
    removed: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0        # repeated ids inside the delivered pages
    new_ips: int = 0
    new_user_agents: int = 0


class PageSpool:
    """Delivered records on local disk, beside the warehouse, until the load statement has read them."""

    def __init__(self, parent: Path):
        parent.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix=".spool-", dir=parent))
        self.files: list[str] = []

    def add(self, records: list | bytes) -> None:
        """One JSON array of records per page (DuckDB reads arrays faster than the API's envelope): the parsed
        records, or the bytes of the page's `data` array as received."""
        path = self.directory / f"page-{len(self.files):06d}.json"
        path.write_bytes(records if isinstance(records, bytes) else orjson.dumps(records))
        self.files.append(str(path))

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "PageSpool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stage(conn: duckdb.DuckDBPyConnection, files: list[str], start: datetime, end: datetime) -> None:
    conn.execute("DROP TABLE IF EXISTS staged_records")
    if not files:
        conn.execute("""CREATE TEMP TABLE staged_records (rec JSON, kind VARCHAR, f VARCHAR[],
                        created_at TIMESTAMPTZ, reason VARCHAR)""")
        return
    paths = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    conn.execute(f"""
        CREATE TEMP TABLE staged_records AS
        WITH typed AS (
            SELECT json AS rec, json_type(json) AS kind, json_extract_string(json, {_PATHS!r}) AS f
            FROM read_json_objects([{paths}], format = 'array')
        ), timed AS (
            SELECT rec, kind, f, TRY_CAST(f[3] AS TIMESTAMPTZ) AS created_at FROM typed
        )
        SELECT rec, kind, f, created_at,
               CASE WHEN kind <> 'OBJECT' THEN 'not_an_object'
                    WHEN f[1] IS NULL OR f[1] = '' THEN 'missing_id'
                    WHEN created_at IS NULL THEN 'bad_created_at'
                    WHEN created_at < $start OR created_at >= $end THEN 'outside_window'
               END AS reason
        FROM timed
    """, {"start": start, "end": end})


def load_activity_range(conn: duckdb.DuckDBPyConnection, files: list[str], start: datetime, end: datetime, *,
                        run_id: str, fetched_at: datetime, traversal: TraversalStats,
                        enricher: "Enricher | None" = None) -> LoadResult:
    """Make `[start, end)` of the warehouse equal to the delivered records, atomically.

    `files` hold JSON arrays of records (the spool's page files).
    """
    ensure_schema(conn)
    conn.execute("SET preserve_insertion_order = false")  # lets large loads stream within the memory limit
    result = LoadResult()
    params = {"start": start, "end": end}
    conn.execute("BEGIN TRANSACTION")
    try:
        _stage(conn, files, start, end)
        # At-least-once delivery: keep the first copy of a repeated id (ids are rarely repeated, so only their
        # rows are grouped, never the payloads).
        conn.execute("""
            CREATE OR REPLACE TEMP TABLE staged_repeats AS
            SELECT f[1] AS id, min(rowid) AS keep_rowid, count(*) - 1 AS extra
            FROM staged_records WHERE reason IS NULL GROUP BY 1 HAVING count(*) > 1
        """)
        conn.execute("""
            CREATE OR REPLACE TEMP VIEW staged_activities AS
            SELECT f[1] AS id, f[2] AS type, created_at, f[4] AS organization_id, f[5] AS organization_uuid,
                   f[6] AS actor_type, f[7] AS actor_user_id, f[8] AS actor_email_address, f[9] AS actor_api_key_id,
                   f[10] AS actor_admin_api_key_id, f[11] AS actor_service_account_id, f[12] AS ip_address,
                   f[13] AS user_agent, rec AS raw
            FROM staged_records s LEFT JOIN staged_repeats r ON r.id = s.f[1]
            WHERE s.reason IS NULL AND (r.id IS NULL OR r.keep_rowid = s.rowid)
        """)
        result.duplicates = conn.execute("SELECT coalesce(sum(extra), 0) FROM staged_repeats").fetchone()[0]
        result.removed = conn.execute("""
            DELETE FROM raw.activities a
            WHERE a.created_at >= $start AND a.created_at < $end
              AND NOT EXISTS (SELECT 1 FROM staged_records s WHERE s.reason IS NULL AND s.f[1] = a.id)
        """, params).fetchone()[0]
        result.inserted = conn.execute("""
            INSERT INTO raw.activities
            SELECT s.*, $start, $end, $fetched_at, $run_id FROM staged_activities s
            WHERE NOT EXISTS (SELECT 1 FROM raw.activities a
                              WHERE a.id = s.id AND a.created_at >= $start AND a.created_at < $end)
        """, {**params, "fetched_at": fetched_at, "run_id": run_id}).fetchone()[0]
        result.stored = conn.execute(
            "SELECT count(*) FROM raw.activities WHERE created_at >= $start AND created_at < $end", params
        ).fetchone()[0]
        _merge_quarantine(conn, start, end, fetched_at, run_id, result)
        # What this load received, whether or not the client parsed it: every delivered item and every repeat.
        delivered = conn.execute("SELECT count(*) FROM staged_records").fetchone()[0]
        _attest(conn, start, end, fetched_at, run_id,
                replace(traversal, records=delivered, duplicates_dropped=traversal.duplicates_dropped + result.duplicates))
        if enricher is not None:
            result.new_ips, result.new_user_agents = enricher.enrich_new_values(conn, fetched_at)
        conn.execute("DROP VIEW staged_activities")
        conn.execute("DROP TABLE staged_repeats")
        conn.execute("DROP TABLE staged_records")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return result


def _merge_quarantine(conn, start, end, fetched_at, run_id, result: LoadResult) -> None:
    """Identical bad payloads (e.g. two `null`s) are distinct deliveries: they are keyed by occurrence."""
    conn.execute("""
        CREATE OR REPLACE TEMP TABLE staged_quarantine AS
        SELECT reason, f[1] AS record_id, rec AS payload, hash(rec::VARCHAR) AS payload_hash,
               row_number() OVER (PARTITION BY reason, hash(rec::VARCHAR) ORDER BY rowid) AS occurrence
        FROM staged_records WHERE reason IS NOT NULL
    """)
    params = {"start": start, "end": end}
    match = "s.payload_hash = q.payload_hash AND s.reason = q.reason AND s.occurrence = q.occurrence"
    conn.execute(f"""
        DELETE FROM raw.activities_quarantine q
        WHERE q.window_start >= $start AND q.window_end <= $end
          AND NOT EXISTS (SELECT 1 FROM staged_quarantine s WHERE {match})
    """, params)
    conn.execute(f"""
        INSERT INTO raw.activities_quarantine
        SELECT $start, $end, s.reason, s.record_id, s.payload, s.payload_hash, s.occurrence, $fetched_at, $run_id
        FROM staged_quarantine s
        WHERE NOT EXISTS (SELECT 1 FROM raw.activities_quarantine q
                          WHERE {match} AND q.window_start >= $start AND q.window_end <= $end)
    """, {**params, "fetched_at": fetched_at, "run_id": run_id})
    rows = conn.execute("SELECT reason, count(*) FROM staged_quarantine GROUP BY ALL ORDER BY 1").fetchall()
    result.quarantine_reasons = dict(rows)
    result.quarantined = sum(result.quarantine_reasons.values())
    conn.execute("DROP TABLE staged_quarantine")


def _attest(conn, start, end, fetched_at, run_id, t: TraversalStats) -> None:
    """One row per 5-minute window; rewritten only when the window's content changed, so reruns change nothing."""
    conn.execute(f"""
        CREATE OR REPLACE TEMP TABLE new_attestations AS
        WITH windows AS (
            SELECT unnest(generate_series($start::TIMESTAMPTZ, $end::TIMESTAMPTZ - {WINDOW}, {WINDOW})) AS window_start
        ), counts AS (
            SELECT time_bucket({WINDOW}, created_at, $start::TIMESTAMPTZ) AS window_start, count(*) AS n
            FROM raw.activities WHERE created_at >= $start AND created_at < $end GROUP BY 1
        )
        SELECT w.window_start, w.window_start + {WINDOW} AS window_end, coalesce(c.n, 0) AS record_count
        FROM windows w LEFT JOIN counts c USING (window_start)
    """, {"start": start, "end": end})
    quarantined = conn.execute(
        "SELECT count(*) FROM raw.activities_quarantine WHERE window_start >= $start AND window_end <= $end",
        {"start": start, "end": end}).fetchone()[0]
    single_window = conn.execute("SELECT count(*) = 1 FROM new_attestations").fetchone()[0]
    # Quarantined records belong to the traversal, not to one 5-minute window: attributed to a window only when the
    # traversal covered exactly one.
    conn.execute("""
        DELETE FROM raw.activity_attestations a USING new_attestations n
        WHERE a.window_start = n.window_start
          AND (a.record_count <> n.record_count OR a.quarantined_count <> $q)
    """, {"q": quarantined if single_window else 0})
    conn.execute("""
        INSERT INTO raw.activity_attestations
        SELECT n.window_start, n.window_end, n.record_count, $q, $start, $end, $pages, $records, $dups,
               $first_cursor, $last_cursor, $request_id, $fetched_at, $run_id
        FROM new_attestations n
        WHERE NOT EXISTS (SELECT 1 FROM raw.activity_attestations a WHERE a.window_start = n.window_start)
    """, {"q": quarantined if single_window else 0, "start": start, "end": end, "pages": t.pages,
          "records": t.records, "dups": t.duplicates_dropped, "first_cursor": t.first_cursor,
          "last_cursor": t.last_cursor, "request_id": t.final_request_id, "fetched_at": fetched_at,
          "run_id": run_id})
    conn.execute("DROP TABLE new_attestations")


class Enricher:
    """Adds geolocation and parsed user agents for values not yet in the enrichment dimensions."""

    def __init__(self, geo_lookup, parse_user_agent):
        self.geo = geo_lookup
        self.parse_user_agent = parse_user_agent
        info = geo_lookup.database_info()
        self.geo_database = f"{Path(str(info.get('path'))).name}@{info.get('build_epoch')}"

    def enrich_new_values(self, conn: duckdb.DuckDBPyConnection, now: datetime) -> tuple[int, int]:
        ips = [r[0] for r in conn.execute("""
            SELECT DISTINCT ip_address FROM staged_activities s
            WHERE ip_address IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM enrichment.ip_geolocation g WHERE g.ip = s.ip_address)
        """).fetchall()]
        if ips:
            infos = self.geo.lookup_many(ips)
            table = pa.Table.from_pylist([
                {**{c: getattr(i, c) for c in GEO_COLUMNS}, "geo_database": self.geo_database, "enriched_at": now}
                for i in infos])
            conn.register("new_geo", table)
            conn.execute(f"INSERT INTO enrichment.ip_geolocation BY NAME SELECT * FROM new_geo")
            conn.unregister("new_geo")
        uas = [r[0] for r in conn.execute("""
            SELECT DISTINCT user_agent FROM staged_activities s
            WHERE user_agent IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM enrichment.user_agents u WHERE u.user_agent = s.user_agent)
        """).fetchall()]
        if uas:
            rows = []
            for ua in uas:
                info = self.parse_user_agent(ua)
                row = {c: getattr(info, c) for c in UA_COLUMNS[1:]}
                rows.append({"user_agent": ua, **row, "enriched_at": now})
            table = pa.Table.from_pylist(rows)
            conn.register("new_ua", table)
            conn.execute("INSERT INTO enrichment.user_agents BY NAME SELECT * FROM new_ua")
            conn.unregister("new_ua")
        return len(ips), len(uas)


def spool_pages(pages, spool: PageSpool) -> TraversalStats:
    """Write each page body to the spool as it arrives (memory stays bounded) and keep the attestation facts.

    `pages` are the client's ActivityPage objects: either parsed `records` (repeats across the page boundary already
    dropped, malformed items kept) or, unparsed, the `data_json` bytes; first_id, last_id, request_id.
    """
    stats = TraversalStats()
    for page in pages:
        if page.records is None:  # unparsed page: the load parses and deduplicates
            spool.add(page.data_json)
        else:
            spool.add(page.records)
            stats.records += page.raw_count - page.duplicates_dropped
            stats.duplicates_dropped += page.duplicates_dropped
        stats.pages += 1
        if stats.pages == 1:
            stats.first_cursor = page.first_id
        if page.last_id is not None:
            stats.last_cursor = page.last_id
        stats.final_request_id = page.request_id
    return stats
