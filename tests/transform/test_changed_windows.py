"""Marts runs rebuild exactly the windows the ingestion changed since the last build: nothing when nothing changed,
a late row's window (plus the forward horizon) when a re-pull stored it, never a window twice in a mart, and a
failed run leaves the record untouched so the next run redoes its windows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb

from pipeline.defs.transform.assets import FORWARD_HORIZON, dbt_activity_marts
from pipeline.defs.transform.project import DBT_PROJECT_DIR
from pipeline.warehouse.connection import open_warehouse
from pipeline.warehouse.mart_windows import read_changes
from tests.transform.marts_build import copy_warehouse, resources

LATE_START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)  # a past window of the built day
LATE_END = LATE_START + timedelta(minutes=5)


def _invocations(warehouse) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return dict(conn.execute("SELECT dbt_invocation_id, count(*) FROM marts.activity_overview GROUP BY 1"
                                 ).fetchall())


def _repull_with_a_late_row(warehouse) -> str:
    """What the late re-pull does: the window's records again, plus one indexed late."""
    from pipeline.warehouse.activities import PageSpool, TraversalStats, load_activity_range

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        stored = [r[0] for r in conn.execute(
            "SELECT raw FROM raw.activities WHERE created_at >= ? AND created_at < ? ORDER BY id",
            [LATE_START, LATE_END]).fetchall()]
    late = {"id": "activity_01LateIndexedRow", "created_at": "2026-11-02T09:02:00.000000Z", "type": "sso_login_failed",
            "organization_id": "org_01TestOrg", "organization_uuid": "00000000-0000-4000-8000-000000000001",
            "actor": {"type": "unauthenticated_user_actor", "ip_address": "203.0.113.7"}}
    with PageSpool(warehouse.parent / ".late-spool") as spool, open_warehouse(warehouse) as conn:
        spool.add([json.loads(r) for r in stored] + [late])
        load_activity_range(conn, spool.files, LATE_START, LATE_END, run_id="test-late-repull",
                            fetched_at=datetime.now(timezone.utc), traversal=TraversalStats(pages=1))
    return late["id"]


def test_reruns_rebuild_nothing_and_a_late_row_rebuilds_only_its_window(built, tmp_path):
    warehouse = copy_warehouse(built, tmp_path)
    res = resources(built.base_url, warehouse)
    before = _invocations(warehouse)
    with open_warehouse(warehouse) as conn:
        assert read_changes(conn).windows == []  # the shared build consumed every change

    late_id = _repull_with_a_late_row(warehouse)
    with open_warehouse(warehouse) as conn:
        assert read_changes(conn).windows == [LATE_START]
    result = dg.materialize([dbt_activity_marts], resources=res)
    assert result.success
    # one materialization per model, however many windows
    assert len(result.asset_materializations_for_node("dbt_activity_marts")) == len(dbt_activity_marts.keys)
    after = _invocations(warehouse)
    new = set(after) - set(before)
    assert len(new) == 1
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        lo, hi = conn.execute("SELECT min(created_at), max(created_at) FROM marts.activity_overview "
                              "WHERE dbt_invocation_id = ?", [new.pop()]).fetchone()
        assert LATE_START <= lo and hi < LATE_END + FORWARD_HORIZON
        assert conn.execute("SELECT count(*) FROM marts.activity_overview WHERE activity_id = ?",
                            [late_id]).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) - count(DISTINCT activity_id) FROM marts.activity_overview"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM marts.activity_overview").fetchone()[0] == \
            conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0]
    with open_warehouse(warehouse) as conn:
        assert read_changes(conn).windows == []

    # nothing changed: the next run rewrites no activity row
    rerun = dg.materialize([dbt_activity_marts], resources=res)
    assert rerun.success
    assert _invocations(warehouse) == after
    # and it re-used the project the previous run parsed (the range is not a var): no full parse of the project.
    # Its own log (dagster-dbt's target path holds the run id): the live demo's marts runs write theirs beside it.
    [log] = (DBT_PROJECT_DIR / "target").glob(f"dbt_activity_marts-{rerun.run_id[:7]}-*/dbt.log")
    events = [json.loads(line)["info"]["name"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert "UnableToPartialParse" not in events and "FoundStats" in events


def test_a_failed_build_keeps_its_windows_for_the_next_run(built, tmp_path, monkeypatch):
    warehouse = copy_warehouse(built, tmp_path)
    _repull_with_a_late_row(warehouse)
    # dbt cannot even start (bad memory setting): the step fails after reading the changes
    monkeypatch.setenv("COMPLIANCE_DBT_MEMORY_LIMIT", "not-a-size")
    failed = dg.materialize([dbt_activity_marts], resources=resources(built.base_url, warehouse),
                            raise_on_error=False)
    assert not failed.success
    with open_warehouse(warehouse) as conn:
        assert read_changes(conn).windows == [LATE_START]


def test_a_run_in_chunks_rebuilds_every_window_once_and_logs_each_chunk(built, tmp_path, monkeypatch):
    """A run over more than one chunk (a backfill: every window changed): the chunks before the last run in one dbt
    process, which logs each chunk's time and its resident memory; every row is rebuilt once."""
    from pipeline.warehouse.mart_windows import forget_builds

    warehouse = copy_warehouse(built, tmp_path)
    with open_warehouse(warehouse) as conn:
        forget_builds(conn)
        activities = conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0]
    monkeypatch.setenv("COMPLIANCE_MARTS_CHUNK_ACTIVITIES", str(activities // 3))  # three chunks at least
    before = set(_invocations(warehouse))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([dbt_activity_marts], resources=resources(built.base_url, warehouse), instance=instance)
    assert result.success
    messages = [r.user_message or "" for r in instance.all_logs(result.run_id)]
    [plan] = [m for m in messages if "dbt invocation(s)" in m]
    chunks = int(plan.split(" -> ")[1].split(" ")[0])
    assert chunks >= 3
    logged = [m for m in messages if m.startswith("chunk ") and " nodes, " in m]
    assert len(logged) == chunks - 1  # one line per chunk of the chunk runner, each with its memory
    assert all(" ok, " in m and int(m.rsplit("RSS ", 1)[1].split(" ")[0]) > 0 for m in logged)
    after = _invocations(warehouse)
    assert not before & set(after) and len(after) == chunks  # every row rebuilt, by one invocation per chunk
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT activity_id) FROM marts.activity_overview"
                            ).fetchone() == (activities, activities)
    with open_warehouse(warehouse) as conn:
        assert read_changes(conn).windows == []
