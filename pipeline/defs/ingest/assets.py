"""`raw/activities`: every activity of the organisation, once, in 5-minute windows."""

import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.compliance_api import AuthenticationError, PermissionDeniedError
from pipeline.compliance_api.progress import with_progress
from pipeline.compliance_api.resume import resumable_pages
from pipeline.defs.ingest.partitions import activity_partitions
from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
from pipeline.enrichment.geo import GeoIPLookup
from pipeline.enrichment.useragent import parse_user_agent
from pipeline.warehouse.activities import Enricher, PageSpool, fetch_and_load, load_activity_range

# Backfills run as ONE run over the whole selected range (a month from the UI is one run, not 8,640): one paged
# traversal, one load transaction (fed batch by batch as pages arrive). It is also what
# `dagster asset materialize --partition-range` requires of every asset it runs.
BACKFILL_POLICY = dg.BackfillPolicy.single_run()


@dg.asset(
    key=dg.AssetKey(["raw", "activities"]),
    partitions_def=activity_partitions,
    backfill_policy=BACKFILL_POLICY,
    pool="duckdb",
    group_name="ingest",
    kinds={"duckdb", "python"},
    description="Activity feed of the Compliance API, lossless (raw JSON + typed columns), one row per activity id. "
                "Each run replaces exactly its window range in one transaction.",
)
def raw_activities(context: dg.AssetExecutionContext, compliance_api: ComplianceAPIResource,
                   warehouse: WarehouseResource, geoip: GeoIPResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
    enricher = Enricher(GeoIPLookup(geoip.city_db_path or None), parse_user_agent)
    started = time.monotonic()
    fetched = started

    def timed(pages):
        nonlocal fetched
        yield from pages
        fetched = time.monotonic()

    with PageSpool(Path(warehouse.path).parent / ".spool") as spool, warehouse.connect() as conn:
        context.log.info(f"loading into {warehouse.path} in one transaction, batch by batch as pages arrive")

        def load(files, traversal):
            return load_activity_range(conn, files, start, end, run_id=context.run.run_id,
                                       fetched_at=datetime.now(timezone.utc), traversal=traversal, enricher=enricher)

        traversals = 0
        try:
            with compliance_api.client() as client:

                def traverse():
                    nonlocal traversals
                    traversals += 1
                    if traversals > 1:
                        context.log.info("the delivery holds records for quarantine or another version of an id: "
                                         "traversing the range again for the checked load")
                    # Records stay unparsed bytes until DuckDB reads them: the load deduplicates and quarantines.
                    pages = resumable_pages(lambda cursor: client.iter_activity_pages(
                        start, end, after_id=cursor, parse_records=False))
                    # A backfill shows how far it is (UI run logs, and the console of `dagster asset materialize`).
                    return timed(with_progress(pages, start, end,
                                               lambda p: context.log.info(f"progress: {p.describe()}")))

                # DuckDB loads each batch of pages while the next ones are fetched (one transaction throughout).
                traversal, result = fetch_and_load(traverse, spool, load)
        except (AuthenticationError, PermissionDeniedError) as exc:
            # Retrying cannot fix a key: fail at once with the client's message (which never contains the key).
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        except duckdb.Error:
            if spool.files:  # DuckDB's own error propagates; the delivered pages stay for inspection (owner-only)
                context.log.error(f"load failed: its {len(spool.files)} page file(s) are kept in {spool.keep()}")
            raise
    loaded = time.monotonic()
    if result.quarantined:
        context.log.warning(f"{result.quarantined} record(s) quarantined: {result.quarantine_reasons}")
    repull = context.run.tags.get("pipeline/repull")
    if repull:  # a re-pull stores only what the earlier runs missed: events indexed late
        context.log.info(f"re-pull ({'deep' if repull == 'deep' else 'trailing'}) found {result.inserted} late "
                         f"event(s) in {start.isoformat()} .. {end.isoformat()}")
    return dg.MaterializeResult(metadata={
        **({"late_events_found": result.inserted} if repull else {}),
        "conflicting_duplicates": result.conflicts,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "windows": len(context.partition_keys),
        "records_stored": result.stored,
        "records_inserted": result.inserted,
        "records_removed": result.removed,
        "quarantined": result.quarantined,
        "quarantine_reasons": dict(result.quarantine_reasons),
        "duplicates_dropped": result.duplicates,
        "pages": traversal.pages,
        "traversals": traversals,
        "first_cursor": traversal.first_cursor or "",
        "last_cursor": traversal.last_cursor or "",
        "final_request_id": traversal.final_request_id or "",
        "new_ips_enriched": result.new_ips,
        "new_user_agents_enriched": result.new_user_agents,
        "fetch_seconds": round(fetched - started, 3),  # the load runs beside the fetch:
        "load_seconds": round(loaded - fetched, 3),    # this is what remained of it after the last page
        "activities_per_second": round(result.stored / max(loaded - started, 1e-6), 1),
    })
