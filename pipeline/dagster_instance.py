"""The Dagster instance of the project (`instance_class` in dagster.yaml, so every Dagster process uses it: webserver,
daemon, run workers, the CLI): Dagster's bookkeeping of a ranged run follows the data, not its number of partitions.

A month's backfill is one run over 8,640 five-minute partitions. Out of the box Dagster records such a run one
partition at a time, one database transaction each (SQLite: ~30 ms each on a loaded machine): 8,640 "planned" events
written by the daemon before the run is even submitted, then 8,640 materializations written by the run after its
step. This instance records the run's plan as one event (the partition range) and its materializations in batches
(one transaction per batch, on SQLite as on PostgreSQL). Partitions still show as materialized one by one in the UI;
a failed ranged run shows its partitions as missing rather than failed (the run and the backfill show the failure).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster import DagsterInstance
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._record import copy
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

# Dagster's own switches (read from the environment by the process that records the events, at each event):
# one planned event with the partition range per asset of a ranged run, instead of one per partition ...
PLANNED_EVENTS_AS_RANGE = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
# ... and the materializations of a ranged step stored in batches of this size instead of one by one.
EVENT_BATCH_SIZE = "DAGSTER_EVENT_BATCH_SIZE"
# The most rows of one batched insert: SQLite binds ~10 values per event row (limit 32,766 per statement).
BATCH_SIZE = 1000


class ComplianceInstance(DagsterInstance):
    # Dagster's hooks for an `instance_class`: no settings of its own in dagster.yaml, Dagster's default storages
    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @staticmethod
    def config_defaults(base_dir: str):
        return InstanceRef.config_defaults(base_dir)

    def __init__(self, *args, event_storage, **kwargs):
        os.environ.setdefault(PLANNED_EVENTS_AS_RANGE, "true")
        os.environ.setdefault(EVENT_BATCH_SIZE, str(BATCH_SIZE))
        if type(event_storage) is SqliteEventLogStorage:  # Dagster's SQLite storage stores a batch event by event
            event_storage = BatchedSqliteEventLogStorage(event_storage._base_dir, inst_data=event_storage.inst_data)  # noqa: SLF001
        super().__init__(*args, event_storage=event_storage, **kwargs)

    def handle_new_event(self, event: EventLogEntry, *, batch_metadata=None) -> None:
        super().handle_new_event(unpartitioned_check_plan(event), batch_metadata=batch_metadata)


def unpartitioned_check_plan(event: EventLogEntry) -> EventLogEntry:
    """The project's asset checks are unpartitioned (the monitors evaluate a run's whole range at once; a test keeps
    it so), but Dagster plans a check of a partitioned run with the run's partitions: one check record per check and
    partition (23 monitors x 8,640 windows of a month: 198,720 rows, written by the daemon before it submits the run),
    and the check's result, which has no partition, never updates them. Planned without partitions, a check has one
    record per run, which its result completes."""
    dagster_event = event.dagster_event
    if (dagster_event is None or dagster_event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
            or dagster_event.event_specific_data.partitions_subset is None):
        return event
    planned = copy(dagster_event.event_specific_data, partitions_subset=None)
    return event._replace(dagster_event=dagster_event._replace(event_specific_data=planned))


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, storing a batch of asset events of one run in one transaction per database (the
    run's shard and the cross-run index) as the PostgreSQL storage does; any other batch as Dagster does."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        kinds = {event.dagster_event_type for event in events}
        if (len(events) < 2 or len(kinds) != 1 or kinds - {DagsterEventType.ASSET_MATERIALIZATION,
                                                            DagsterEventType.ASSET_OBSERVATION}
                or len({event.run_id for event in events}) != 1
                or not all(event.get_dagster_event().asset_key for event in events)):
            return super().store_event_batch(events)
        insert = self.prepare_insert_event_batch(events)
        # The index first: if it fails nothing is stored and Dagster stores the events one by one instead.
        with self.index_transaction() as conn:
            event_ids = sorted(row[0] for row in conn.execute(insert.returning(SqlEventLogStorageTable.c.id)))
            self._store_asset_event_tags(conn, events, event_ids)
            self._store_asset_event(conn, events[-1], event_ids[-1])  # the asset's latest event
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(insert)
