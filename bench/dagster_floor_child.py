"""The Dagster floor of bench_ingest: the same ranged run (one day of 5-minute partitions, one run) of an asset that
does nothing, in a fresh process; prints its figures as JSON. What any ingest pays before and after its own work."""

from __future__ import annotations

import json
import sys
import time

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.defs.ingest.partitions import activity_partitions


@dg.asset(key=dg.AssetKey(["raw", "activities"]), partitions_def=activity_partitions,
          backfill_policy=dg.BackfillPolicy.single_run())
def nothing() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"records_stored": 0})


def main() -> None:
    first, last = sys.argv[1:3]
    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    result = dg.materialize([nothing], instance=instance,
                            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
    stamps = {e.dagster_event.event_type_value: e.timestamp for e in instance.all_logs(result.run_id)
              if e.dagster_event is not None and e.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS")}
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "step_seconds": stamps["STEP_SUCCESS"] - stamps["STEP_START"]}))


if __name__ == "__main__":
    main()
