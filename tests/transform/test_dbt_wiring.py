"""Dagster wiring of the dbt project: changed windows to dbt chunks, lineage, checks, the seed's freshness."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.config import PROJECT_ROOT
from pipeline.defs.transform.assets import (
    MART_ASSET_KEYS,
    UNIT_TEST_SPECS,
    FORWARD_HORIZON,
    build_dbt_args,
    dbt_activity_marts,
    dbt_reference,
    dbt_unit_tests,
    dbt_vars,
    data_test_groups,
)
from pipeline.defs.transform.automation import marts_request_for
from pipeline.defs.transform.project import dbt_environment
from pipeline.defs.transform.tags import FIRST_WINDOW_TAG, LAST_WINDOW_TAG
from pipeline.warehouse.mart_windows import ChangedWindows, plan_chunks, record_build
from tests.transform.marts_build import copy_warehouse, resources

UTC = timezone.utc
START, END = datetime(2026, 11, 3, 10, 5, tzinfo=UTC), datetime(2026, 11, 3, 10, 10, tzinfo=UTC)


def W(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 3, hour, minute, tzinfo=UTC)


def test_changed_windows_become_chunks_widened_by_the_horizon_and_merged():
    counts = {W(10, m): 10 for m in range(0, 60, 5)}
    # the newest window and a late row 20 minutes earlier: one range up to the newest window + horizon
    assert plan_chunks([W(10, 40), W(10, 20)], counts, horizon=timedelta(minutes=30), budget=1000) == \
        [(W(10, 20), W(11, 15))]
    # no horizon, far apart, within budget: joined with the (unchanged) windows in between
    assert plan_chunks([W(10, 0), W(10, 50)], counts, horizon=timedelta(0), budget=1000) == [(W(10, 0), W(10, 55))]
    # same, but the union exceeds the budget: two chunks, the windows in between are not rebuilt
    assert plan_chunks([W(10, 0), W(10, 50)], counts, horizon=timedelta(0), budget=15) == \
        [(W(10, 0), W(10, 5)), (W(10, 50), W(10, 55))]
    assert plan_chunks([], counts, horizon=timedelta(hours=1), budget=10) == []


def test_a_range_above_the_budget_is_split_and_a_big_window_stays_whole():
    counts = {W(10, 0): 30, W(10, 5): 30, W(10, 10): 30, W(10, 15): 500}
    chunks = plan_chunks(list(counts), counts, horizon=timedelta(0), budget=60)
    assert chunks == [(W(10, 0), W(10, 10)), (W(10, 10), W(10, 15)), (W(10, 15), W(10, 20))]
    covered = [w for w in counts if any(s <= w < e for s, e in chunks)]
    assert covered == list(counts)  # never a window missed


def test_a_build_records_the_windows_a_post_hook_rewrote_outside_its_range():
    """claude_usage's post-hook lists the windows it rewrote (a chat's new model, anywhere in history): the build's
    record takes them as rewritten ranges (the serving publish exports their days again) and empties the list."""
    at = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA intermediate; CREATE TABLE intermediate.rewritten_windows "
                     "(model VARCHAR, dbt_invocation_id VARCHAR, created_5min TIMESTAMPTZ)")
        conn.executemany("INSERT INTO intermediate.rewritten_windows VALUES ('claude_usage', 'i', ?)",
                         [[at], [at + timedelta(minutes=5)], [at + timedelta(days=1)]])
        chunk = (at + timedelta(days=2), at + timedelta(days=2, minutes=5))
        record_build(conn, ChangedWindows(), [chunk], at + timedelta(days=3))
        assert conn.execute("SELECT range_start, range_end FROM transform.mart_builds ORDER BY 1").fetchall() == [
            (at, at + timedelta(minutes=10)), (at + timedelta(days=1), at + timedelta(days=1, minutes=5)), chunk]
        assert conn.execute("SELECT count(*) FROM intermediate.rewritten_windows").fetchone()[0] == 0


def test_data_tests_run_once_per_group_of_adjacent_chunks_within_the_limit():
    counts = {W(10, m): 30 for m in range(0, 60, 5)}
    adjacent = [(W(10, 0), W(10, 10)), (W(10, 10), W(10, 20)), (W(10, 20), W(10, 30))]
    # models chunk by chunk, tests once after the last chunk, over the three chunks' range
    assert data_test_groups(adjacent, counts, limit=1000) == {2: (W(10, 0), W(10, 30))}
    # a group holds at most `limit` activities: 60 per chunk, 130 allowed -> two chunks, then one
    assert data_test_groups(adjacent, counts, limit=130) == {1: (W(10, 0), W(10, 20)), 2: (W(10, 20), W(10, 30))}
    # chunks that are not adjacent never share a group (their tests would read the windows in between)
    apart = [(W(10, 0), W(10, 5)), (W(10, 50), W(10, 55))]
    assert data_test_groups(apart, counts, limit=1000) == {0: (W(10, 0), W(10, 5)), 1: (W(10, 50), W(10, 55))}
    # every chunk's range is tested, the last chunk always ends a group, a chunk above the limit is a group alone
    assert data_test_groups(adjacent, counts, limit=10) == {0: adjacent[0], 1: adjacent[1], 2: adjacent[2]}
    assert data_test_groups([], counts, limit=10) == {}


def test_chunk_goes_to_the_environment_and_only_a_full_refresh_recreates():
    assert dbt_vars(START, END) == {"min_date": "2026-11-03T10:05:00+00:00", "max_date": "2026-11-03T10:10:00+00:00"}
    # the range is not on the command line: the same arguments every run, so dbt re-uses its parsed project
    assert build_dbt_args() == ["build"]
    assert build_dbt_args(full_refresh=True) == ["build", "--full-refresh"]
    assert build_dbt_args(full_refresh=True, tests=False) == ["run", "--full-refresh"]  # a chunk inside a test group
    with dbt_environment("w.duckdb", window=dbt_vars(START, END)):
        assert os.environ["MARTS_WINDOW_MIN_DATE"] == "2026-11-03T10:05:00+00:00"
        assert os.environ["MARTS_WINDOW_MAX_DATE"] == "2026-11-03T10:10:00+00:00"
        with dbt_environment("w.duckdb"):  # no window: all time (the vars' defaults), whatever the caller set
            assert "MARTS_WINDOW_MIN_DATE" not in os.environ
        assert os.environ["MARTS_WINDOW_MIN_DATE"] == "2026-11-03T10:05:00+00:00"
        assert "MARTS_TEST_MIN_DATE" not in os.environ  # the tests read the window
        with dbt_environment("w.duckdb", window=dbt_vars(START, END), tests=dbt_vars(W(9, 0), END)):
            assert os.environ["MARTS_TEST_MIN_DATE"] == "2026-11-03T09:00:00+00:00"
        assert "MARTS_TEST_MIN_DATE" not in os.environ
    assert "MARTS_WINDOW_MIN_DATE" not in os.environ


def test_dbt_project_declares_the_var_defaults():
    text = (PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text()
    assert 'min_date: "2000-01-01T00:00:00+00:00"' in text and 'max_date: "9999-12-31T00:00:00+00:00"' in text
    assert FORWARD_HORIZON == timedelta(hours=1)  # reconnaissance_lookback, read from dbt_project.yml


def test_marts_run_follows_ingestion_runs_of_activity_windows():
    single = dg.DagsterRun(job_name="ingest_activities", run_id="r1", tags={"dagster/partition": "2026-11-03-10:05"})
    request = marts_request_for(single)
    assert request.partition_key is None and request.tags[LAST_WINDOW_TAG] == "2026-11-03-10:05"
    ranged = dg.DagsterRun(job_name="ingest_activities", run_id="r2",
                           tags={ASSET_PARTITION_RANGE_START_TAG: "2026-11-03-09:00",
                                 ASSET_PARTITION_RANGE_END_TAG: "2026-11-03-09:55"})
    request = marts_request_for(ranged)
    assert request.tags[FIRST_WINDOW_TAG] == "2026-11-03-09:00" and request.run_key == "marts-after-r2"
    assert ASSET_PARTITION_RANGE_START_TAG not in request.tags  # the marts job is not partitioned
    assert marts_request_for(dg.DagsterRun(job_name="x", run_id="r3", tags={})) is None


def test_marts_run_follows_ui_backfills_but_not_other_asset_runs():
    backfill = dg.DagsterRun(job_name="__ASSET_JOB", run_id="b1", asset_selection={dg.AssetKey(["raw", "activities"])},
                             tags={ASSET_PARTITION_RANGE_START_TAG: "2026-11-03-00:00",
                                   ASSET_PARTITION_RANGE_END_TAG: "2026-11-03-23:55"})
    assert marts_request_for(backfill).tags[LAST_WINDOW_TAG] == "2026-11-03-23:55"
    marts = dg.DagsterRun(job_name="refresh_marts", run_id="m1", asset_selection={dg.AssetKey(["serve", "marts_file"])},
                          tags={})
    assert marts_request_for(marts) is None


def test_marts_run_follows_a_rebuild_of_the_seeds_and_views():
    """An edited embargo list or catalog, reloaded: automation rebuilds the seed (its code version changed), and a
    marts run follows at once to rewrite the affected rows (no window tags: no ingestion window triggered it)."""
    from pipeline.defs.transform.assets import dbt_reference

    embargo = next(k for k in dbt_reference.keys if k.path[-1] == "embargoed_regions")
    automation = dg.DagsterRun(job_name="__ASSET_JOB", run_id="s1", asset_selection={embargo}, tags={})
    request = marts_request_for(automation)
    assert request.run_key == "marts-after-s1" and FIRST_WINDOW_TAG not in request.tags
    assert marts_request_for(dg.DagsterRun(job_name="refresh_dbt_reference", run_id="s2", tags={})) is not None


def test_dbt_assets_are_unpartitioned_and_run_in_pool_duckdb():
    assert dbt_activity_marts.partitions_def is None
    assert dbt_activity_marts.op.pool == dbt_reference.op.pool == "duckdb"
    assert len(MART_ASSET_KEYS) == 20  # the 16 dashboards' marts, alerts and the 3 panel rollups
    assert set(MART_ASSET_KEYS) <= set(dbt_activity_marts.keys)


def test_one_lineage_from_raw_assets_to_every_mart():
    from pipeline.definitions import defs

    graph = defs().resolve_asset_graph()

    def ancestors(key):
        seen, todo = set(), [key]
        while todo:
            for parent in graph.get(todo.pop()).parent_keys:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    raw_activities, raw_chats = dg.AssetKey(["raw", "activities"]), dg.AssetKey(["raw", "chats"])
    chats = dg.AssetKey(["marts", "chats"])
    for mart in MART_ASSET_KEYS:
        assert (raw_chats if mart == chats else raw_activities) in ancestors(mart), mart
    serve = dg.AssetKey(["serve", "marts_file"])
    assert set(MART_ASSET_KEYS) <= graph.get(serve).parent_keys


def test_dbt_tests_are_asset_checks():
    checks = {(k.asset_key.to_user_string(), k.name) for k in dbt_activity_marts.check_keys | dbt_reference.check_keys}
    assert ("marts/activity_overview", "unique_activity_overview_activity_id") in checks
    assert ("marts/activity_overview", "relationships_activity_overview_activity_id__activity_id__ref_int_activities_") \
        in checks
    assert ("intermediate/int_activities", "accepted_values_int_activities_outcome__success__failure__unknown") in checks
    assert ("intermediate/int_activity_types", "not_null_int_activity_types_category") in checks
    names = {spec.name for spec in UNIT_TEST_SPECS.values()}
    assert {"categorisation_of_known_unknown_and_uncategorized_types",
            "actor_identity_takes_the_first_known_identifier", "outcome_from_catalog_status_code_and_result_fields",
            "embargo_by_country_region_and_effective_date_never_for_private_ips",
            "user_agent_parsed_fields_and_unknown_clients"} <= names


def test_dbt_unit_tests_run_as_asset_checks(built, tmp_path):
    warehouse = copy_warehouse(built, tmp_path)
    result = dg.materialize([dbt_activity_marts, dbt_reference, dbt_unit_tests],
                            resources=resources(built.base_url, warehouse),
                            selection=dg.AssetSelection.checks(dbt_unit_tests))
    assert result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {spec.name: True for spec in UNIT_TEST_SPECS.values()}


def test_activity_catalog_seed_is_generated_from_the_tsv_and_rules():
    out = subprocess.run([sys.executable, str(PROJECT_ROOT / "dbt_project" / "scripts" / "build_activity_catalog.py"),
                          "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with open(PROJECT_ROOT / "simulator" / "data" / "activity_types.tsv") as fh:
        known = {r["type"] for r in csv.DictReader(fh, delimiter="\t")}
    with open(PROJECT_ROOT / "dbt_project" / "seeds" / "activity_catalog.csv") as fh:
        rows = {r["event_type"]: r for r in csv.DictReader(fh)}
    assert set(rows) == known and len(known) == 514
    assert "uncategorized" not in {r["category"] for r in rows.values()}
    assert rows["compliance_api_accessed"]["dashboards"] == "compliance_api_access"
    assert rows["sso_login_failed"]["outcome"] == "failure"
    assert set(rows["session_share_created"]["dashboards"].split()) == {"session_management",
                                                                         "data_access_exfiltration"}
    assert rows["org_ip_restriction_deleted"]["dashboards"] == "org_policy_config"  # org_* fallback
    assert rows["org_sso_toggled"]["dashboards"] == "sso_directory_sync"             # specific beats fallback


def test_dbt_exposures_name_the_16_dashboards():
    import json

    from pipeline.defs.transform.project import dbt_project

    manifest = json.loads(dbt_project.manifest_path.read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert len(exposures) == 16
    for exposure in exposures.values():
        assert exposure["type"] == "dashboard" and exposure["depends_on"]["nodes"]


def test_fresh_warehouse_builds_before_any_alert_or_chat_exists(tmp_path):
    """dbt builds on a warehouse with no data at all (no monitors.alerts, no chats): empty marts, no failure."""
    warehouse = tmp_path / "empty.duckdb"
    result = dg.materialize([dbt_activity_marts], resources=resources("http://127.0.0.1:9", warehouse))
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM marts.alerts").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM marts.chats").fetchone()[0] == 0


def test_a_parse_renames_the_new_manifest_into_place(tmp_path):
    """`dagster dev` re-parses on start while other processes may be loading the definitions: the new manifest is
    renamed into target/ (a new file, never the old one rewritten in place) and no scratch folder is left."""
    import json
    import shutil

    from dagster_dbt import DbtProject

    from pipeline.defs.transform.project import DBT_PROJECT_DIR, prepare

    project_dir = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    (project_dir / "target").mkdir()
    old = project_dir / "target" / "manifest.json"
    shutil.copyfile(DBT_PROJECT_DIR / "target" / "manifest.json", old)
    before = old.stat().st_ino
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir, target="local")
    with dbt_environment(str(tmp_path / "warehouse.duckdb")):
        prepare(project)
    assert old.stat().st_ino != before
    assert json.loads(old.read_text())["metadata"]["dbt_schema_version"]
    assert [p.name for p in (project_dir / "target").iterdir() if p.name.startswith(".parse-")] == []
