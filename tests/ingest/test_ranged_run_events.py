"""The project's Dagster instance (dagster.yaml `instance_class`, pipeline/dagster_instance.py) records a ranged run
(what a backfill from the UI submits) with one planned event for its partition range and its materializations in
batches, on SQLite and on a real PostgreSQL: every partition still materialized once, nothing recorded twice."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.dagster_instance import EVENT_BATCH_SIZE, PLANNED_EVENTS_AS_RANGE, BatchedSqliteEventLogStorage
from pipeline.defs.ingest.partitions import PARTITION_FORMAT
from tests.support.postgres import instance_yaml

WINDOWS = 2 * 288 + 1  # two days and one window: more than one batch of the SQLite storage is not needed

windows = dg.TimeWindowPartitionsDefinition(cron_schedule="*/5 * * * *", start="2026-10-01-00:00",
                                            fmt=PARTITION_FORMAT, timezone="UTC")


@dg.asset(partitions_def=windows, backfill_policy=dg.BackfillPolicy.single_run())
def ranged(context) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"windows": len(context.partition_keys)})


@dg.asset_check(asset=ranged)
def whole_range(context) -> dg.AssetCheckResult:
    """Unpartitioned, like the monitors: one result for the run's whole range."""
    return dg.AssetCheckResult(passed=True)


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request, tmp_path, monkeypatch):
    """The project's instance in a fresh $DAGSTER_HOME, on SQLite or on a real PostgreSQL."""
    for name in (PLANNED_EVENTS_AS_RANGE, EVENT_BATCH_SIZE):  # the instance sets them: restored after the test
        monkeypatch.delenv(name, raising=False)
    postgres = request.param == "postgres"
    if postgres:
        monkeypatch.setenv("DAGSTER_PG_URL", request.getfixturevalue("postgres_url"))
    (tmp_path / "dagster.yaml").write_text(instance_yaml(postgres=postgres))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance).__name__ == "ComplianceInstance"
        assert postgres or isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        yield instance


def test_a_ranged_run_is_planned_once_and_materializes_every_window_once(instance):
    keys = windows.get_partition_keys_in_range(dg.PartitionKeyRange("2026-10-02-00:00", "2026-10-04-00:00"))
    assert len(keys) == WINDOWS
    result = dg.materialize([ranged, whole_range], instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: keys[0],
                                                               ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
    assert result.success
    records = instance.all_logs(result.run_id)
    kinds = [r.dagster_event.event_type for r in records if r.dagster_event]
    assert kinds.count(DagsterEventType.ASSET_MATERIALIZATION_PLANNED) == 1  # was one per window
    materialized = [r.dagster_event.partition for r in records
                    if r.dagster_event and r.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION]
    assert sorted(materialized) == keys  # every window once, in the run's log
    # ... and once in the cross-run index the UI and the backfill daemon read
    stored = instance.fetch_materializations(ranged.key, limit=10_000).records
    assert sorted(r.partition_key for r in stored) == keys
    assert set(instance.get_materialized_partitions(ranged.key)) == set(keys)
    latest = instance.get_asset_records([ranged.key])[0].asset_entry.last_materialization
    assert latest.dagster_event.partition == keys[-1] and latest.run_id == result.run_id
    # the unpartitioned check: one record for the run (was one per window), completed by its result
    executions = instance.event_log_storage.get_asset_check_execution_history(whole_range.check_key, limit=10_000)
    assert [(e.run_id, e.partition, e.status.value) for e in executions] == [(result.run_id, None, "SUCCEEDED")]


def test_no_asset_check_of_the_project_is_partitioned():
    """The instance plans every check without partitions (pipeline/dagster_instance.py): a partitioned check would
    need that rule changed."""
    from pipeline.definitions import defs

    repository = defs().get_repository_def()
    checks = [spec for assets_def in repository.asset_graph.assets_defs for spec in assets_def.check_specs]
    assert checks and all(spec.partitions_def is None for spec in checks)
