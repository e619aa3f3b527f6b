"""One ranged Dagster run of raw/activities in this process; prints its figures as JSON (used by bench_ingest)."""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from bench.common import FULL_KEY, peak_rss_mb
from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource


def main() -> None:
    os.environ.setdefault("ANTHROPIC_COMPLIANCE_ACCESS_KEY", FULL_KEY)  # the key is read from the environment only
    os.environ.setdefault("COMPLIANCE_API_ALLOWED_HOSTS", "127.0.0.1")
    base_url, warehouse, first, last = sys.argv[1:5]
    resources = {"compliance_api": ComplianceAPIResource(base_url=base_url,
                                                         requests_per_minute=100_000),
                 "warehouse": WarehouseResource(path=warehouse), "geoip": GeoIPResource()}
    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    result = dg.materialize([raw_activities], resources=resources, instance=instance,
                            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
    elapsed = time.perf_counter() - started
    # The step alone (STEP_START to STEP_SUCCESS in the run's event log): without Dagster's run set-up.
    stamps = {e.dagster_event.event_type_value: e.timestamp for e in instance.all_logs(result.run_id)
              if e.dagster_event is not None and e.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS")}
    meta = {k: v.value for k, v in result.asset_materializations_for_node("raw__activities")[-1].metadata.items()}
    print(json.dumps({"seconds": elapsed, "step_seconds": stamps["STEP_SUCCESS"] - stamps["STEP_START"],
                      "stored": meta["records_stored"], "fetch_seconds": meta["fetch_seconds"],
                      "load_seconds": meta["load_seconds"], "peak_rss_mb": peak_rss_mb(),
                      "cpu_seconds": (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_SELF))}))


if __name__ == "__main__":
    main()
