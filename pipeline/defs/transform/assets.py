"""dbt models as Dagster assets, in two groups of one manifest:

- `dbt_activity_marts`: everything tagged `partitioned` (staging and intermediate activities, the 15 activity marts,
  chats, alerts). *Unpartitioned* assets whose run rebuilds exactly the windows the ingestion changed since the last
  marts build (pipeline/warehouse/mart_windows.py), in chunks of at most `COMPLIANCE_MARTS_CHUNK_ACTIVITIES`
  activities, one dbt command per chunk (those before the last in one dbt process, chunk_runner.py), its range in
  the environment (dbt_environment): incremental models delete and rebuild that range only; the data tests run once
  per group of adjacent chunks (data_test_groups), over the group's range. One materialization per model per run,
  whatever the number of 5-minute windows (README: Marts, why). Late rows, re-pulls and backfills are all "changed
  windows"; `full_refresh` (launchpad config) recreates every table and rebuilds all windows, chunk by chunk.
- `dbt_reference`: seeds (catalog, rules, embargo list, endpoints) and views (dimensions, chats staging, type
  classification). They change with the code, not with the data: automation materializes them when missing or when
  their code version changes, and the marts step builds them itself on a fresh warehouse.

dbt data tests are asset checks (dagster-dbt), run on the range of their group of chunks; dbt unit tests, which dagster-dbt does
not surface, are asset checks of `dbt_unit_tests`. Every step that opens the warehouse runs in the pool "duckdb".
"""


import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg
import yaml
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets
from pydantic import Field

from pipeline.defs.resources import WarehouseResource
from pipeline.defs.transform.project import (
    DBT_PROJECT_DIR,
    PARTIAL_PARSE,
    dbt_environment,
    dbt_project,
    keep_parsed,
    keep_parsed_project,
    warehouse_environment,
    window_environment,
)
from pipeline.monitors.alerts import ensure_alerts_table
from pipeline.monitors.config import load_config
from pipeline.monitors.dbt_rules import write_macro
from pipeline.warehouse.chats import CHATS_DDL
from pipeline.warehouse.connection import open_warehouse
from pipeline.warehouse.directory import DIRECTORY_DDL
from pipeline.warehouse.mart_windows import ChangedWindows, plan_chunks, read_changes, record_build
from pipeline.settings import load_settings
from pipeline.warehouse.schema import ensure_schema

PARTITIONED = "tag:partitioned"
PARTITIONED_SOURCES = {("raw", "activities"), ("raw", "chats")}  # written by the 5-minute ingestion assets
UNIT_TESTS = "test_type:unit"
# COMPLIANCE_MARTS_CHUNK_ACTIVITIES (default 100k, pipeline.settings): 100k activities per dbt invocation keep the
# dbt process under 1 GB at the default COMPLIANCE_DBT_MEMORY_LIMIT
# (250k ran out of DuckDB memory in the marts that join raw payloads); a 5-minute tick or three demo-volume days
# are one invocation, a 1M-activity day about ten.
# The data tests run once per group of adjacent chunks of at most this many chunks' activities (data_test_groups):
# at the default budget a million activities, a column scan per test.
TEST_GROUP_CHUNKS = 10

MANIFEST: Mapping[str, Any] = json.loads(dbt_project.manifest_path.read_text())


# ---------------------------------------------------------------------------------------------------------- pure


class DbtRunConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Recreate every mart and rebuild all windows from raw data (chunk by chunk), instead of only the "
                    "windows ingested since the last build.",
    )


def parse_interval(text: str) -> timedelta:
    """'1 hour', '30 minutes' (the dbt var's DuckDB interval literal) as a timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*(minute|hour|day)s?\s*", text)
    if not match:
        raise ValueError(f"dbt var reconnaissance_lookback: not an interval of minutes, hours or days: {text!r}")
    return timedelta(**{f"{match.group(2)}s": int(match.group(1))})


def _project_vars() -> dict[str, Any]:
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


# How far after a changed window the marts must be recomputed: identity_access_auth counts reconnaissance in the
# span before each privilege change (one value, in dbt_project.yml).
FORWARD_HORIZON = parse_interval(_project_vars()["reconnaissance_lookback"])


def chunk_activities() -> int:
    """COMPLIANCE_MARTS_CHUNK_ACTIVITIES, validated in pipeline.settings."""
    return load_settings().marts_chunk_activities


def dbt_vars(start: datetime, end: datetime) -> dict[str, str]:
    """The range [min_date, max_date) one dbt invocation rebuilds, as ISO timestamps in UTC."""
    return {"min_date": start.astimezone(timezone.utc).isoformat(),
            "max_date": end.astimezone(timezone.utc).isoformat()}


def build_dbt_args(*, full_refresh: bool = False, tests: bool = True) -> list[str]:
    """dbt CLI arguments of one chunk (dagster-dbt adds the selection; the range goes in the environment, so the
    command line is the same from run to run and dbt re-uses its parsed project). A full refresh recreates the tables
    from its first chunk (the window filter applies to a recreating run too); the later chunks append. A chunk that
    does not end a test group (`data_test_groups`) runs the models only."""
    return ["build" if tests else "run", *(["--full-refresh"] if full_refresh else [])]


def data_test_groups(chunks: list[tuple[datetime, datetime]], counts: Mapping[datetime, int],
                limit: int) -> dict[int, tuple[datetime, datetime]]:
    """Index of each chunk that ends a test group -> the range its data tests read. A group is a run of adjacent
    chunks holding at most `limit` activities in all (a chunk alone may hold more); the last chunk always ends one.
    The models are built chunk by chunk (memory), their tests once per group over the same rows: fewer dbt test
    invocations, each a column scan of the group's range."""
    groups: dict[int, tuple[datetime, datetime]] = {}
    start, rows = None, 0
    for index, (chunk_start, chunk_end) in enumerate(chunks):
        chunk_rows = sum(n for w, n in counts.items() if chunk_start <= w < chunk_end)
        if start is not None and (chunk_start != chunks[index - 1][1] or rows + chunk_rows > limit):
            groups[index - 1] = (start, chunks[index - 1][1])
            start, rows = None, 0
        if start is None:
            start = chunk_start
        rows += chunk_rows
    if chunks:
        groups[len(chunks) - 1] = (start, chunks[-1][1])
    return groups


def marts_chunks(changes: ChangedWindows, budget: int, now: datetime) -> list[tuple[datetime, datetime]]:
    """The chunks of a run; nothing changed: one empty range (dbt still refreshes chats and alerts, and a full refresh
    of an empty warehouse still creates the tables)."""
    chunks = plan_chunks(changes.windows, changes.counts, horizon=FORWARD_HORIZON, budget=budget)
    if not chunks:
        edge = now.replace(microsecond=0)
        chunks = [(edge, edge)]
    return chunks


# ---------------------------------------------------------------------------------------------------------- assets


class ComplianceDbtTranslator(DagsterDbtTranslator):
    """Keys are [schema, name] (`marts/billing_monitoring`), sources take `meta.dagster.asset_key` (`raw/activities`),
    groups follow the schema. Code-defined nodes (seeds, views) materialize when missing or changed."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = dbt_resource_props.get("config", {}).get("schema")
        return schema or super().get_group_name(dbt_resource_props)

    def get_partition_mapping(self, dbt_resource_props: Mapping[str, Any],
                              dbt_parent_resource_props: Mapping[str, Any]) -> dg.PartitionMapping | None:
        # Every dbt asset is unpartitioned and reads the newest state of the 5-minute-partitioned sources; depending
        # on all of their partitions would make Dagster enumerate tens of thousands of them at every run.
        partitioned_parent = tuple(dbt_parent_resource_props.get("meta", {}).get("dagster", {}).get("asset_key", [])) \
            in PARTITIONED_SOURCES
        return dg.LastPartitionMapping() if partitioned_parent else None

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        if dbt_resource_props["resource_type"] in ("model", "seed") and \
                "partitioned" not in dbt_resource_props.get("tags", []):
            # Not while a run of it is queued or in progress: the sensor would launch one per tick until it lands.
            return (dg.AutomationCondition.missing() | dg.AutomationCondition.code_version_changed()) \
                & ~dg.AutomationCondition.in_progress()
        return None


translator = ComplianceDbtTranslator(settings=DagsterDbtTranslatorSettings(
    enable_asset_checks=True, enable_duplicate_source_asset_keys=True))


def _reference_relations(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(schema, name) of every seed and model built by `dbt_reference`."""
    return sorted(
        (node["schema"], node.get("alias") or node["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("seed", "model") and "partitioned" not in node.get("tags", [])
        and node.get("config", {}).get("materialized") != "ephemeral"
    )


REFERENCE_RELATIONS = _reference_relations(MANIFEST)
# The tables dbt_activity_marts builds (activity layer, marts): if one is missing, every window is rebuilt.
MART_RELATIONS = sorted(
    (node["schema"], node.get("alias") or node["name"])
    for node in MANIFEST["nodes"].values()
    if node["resource_type"] == "model" and "partitioned" in node.get("tags", []))


def prepare_warehouse(warehouse: WarehouseResource) -> list[tuple[str, str]]:
    """Create the raw tables dbt reads if no ingestion created them yet (the ingestion's own DDL); return the
    reference relations that are missing (and, as the last item, `("*", "marts")` when a marts table is missing).
    Also: the marts' rule matching follows the monitors' configuration (pipeline/monitors/dbt_rules.py) and
    monitors.alerts has its current columns (the alerts mart reads them)."""
    write_macro(load_config())
    with open_warehouse(warehouse.path, memory_limit=warehouse.memory_limit) as conn:
        ensure_schema(conn)
        ensure_alerts_table(conn)
        conn.execute(CHATS_DDL)
        conn.execute(DIRECTORY_DDL)
        existing = set(conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = current_database()"
        ).fetchall())
    missing = [rel for rel in REFERENCE_RELATIONS if rel not in existing]
    return missing + ([MARTS_MISSING] if any(rel not in existing for rel in MART_RELATIONS) else [])


MARTS_MISSING = ("*", "marts")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select="fqn:*",
    exclude=f"{PARTITIONED} {UNIT_TESTS}",
    name="dbt_reference",
    dagster_dbt_translator=translator,
    pool="duckdb",
)
def dbt_reference(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    prepare_warehouse(warehouse)
    with dbt_environment(warehouse.path):
        yield from dbt.cli(["build"], context=context).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=PARTITIONED,
    exclude=UNIT_TESTS,
    name="dbt_activity_marts",
    dagster_dbt_translator=translator,
    pool="duckdb",
)
def dbt_activity_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
                       config: DbtRunConfig):
    budget = chunk_activities()
    missing = prepare_warehouse(warehouse)
    # A marts table missing (fresh warehouse, dropped by hand): what was recorded as built is gone, rebuild it all.
    full = config.full_refresh or MARTS_MISSING in missing
    missing = [rel for rel in missing if rel != MARTS_MISSING]
    with open_warehouse(warehouse.path, memory_limit=warehouse.memory_limit) as conn:
        changes = read_changes(conn, full=full)
    started = datetime.now(timezone.utc)
    chunks = marts_chunks(changes, budget, started)
    rows = sum(n for w, n in changes.counts.items() if any(s <= w < e for s, e in chunks))
    context.log.info(f"{len(changes.windows)} changed 5-minute windows -> {len(chunks)} dbt invocation(s), "
                     f"{rows:,} activities, {chunks[0][0].isoformat()} .. {chunks[-1][1].isoformat()}")
    with dbt_environment(warehouse.path):
        if missing:
            # A fresh warehouse: the seeds and views this step reads are built first (their own assets will be
            # materialized by automation later; this only makes the step independent of that ordering).
            context.log.info(f"building the reference layer first, missing: {missing}")
            keep_parsed_project(dbt.cli(["build", "--exclude", f"{PARTITIONED} {UNIT_TESTS}"],
                                        raise_on_error=True).wait())
    groups = data_test_groups(chunks, changes.counts, TEST_GROUP_CHUNKS * budget)
    plan = [(chunk, build_dbt_args(full_refresh=full and number == 0, tests=number in groups), groups.get(number))
            for number, chunk in enumerate(chunks)]
    subset = set(context.selected_asset_keys) != set(context.assets_def.keys)
    if len(plan) > 1:
        # Earlier chunks: built (and tested where a group ends: a failing test fails the step); only the last one
        # reports to Dagster, so each model records one materialization per run.
        if subset:  # dagster-dbt's own selection of the picked models, one dbt process per chunk
            for number, (chunk, args, tests) in enumerate(plan[:-1], start=1):
                context.log.info(f"chunk {number}/{len(plan)}: dbt {' '.join(args)} over {dbt_vars(*chunk)}")
                with dbt_environment(warehouse.path, window=dbt_vars(*chunk),
                                     tests=dbt_vars(*tests) if tests else None):
                    invocation = dbt.cli(args, context=context)
                    invocation.wait()
                keep_parsed_project(invocation)
        else:
            run_chunks_in_one_process(context, warehouse, plan[:-1])
    chunk, args, tests = plan[-1]
    context.log.info(f"chunk {len(plan)}/{len(plan)}: dbt {' '.join(args)} over {dbt_vars(*chunk)}, "
                     f"tests over {dbt_vars(*tests)}")
    with dbt_environment(warehouse.path, window=dbt_vars(*chunk), tests=dbt_vars(*tests)):
        invocation = dbt.cli(args, context=context)
        yield from invocation.stream()
    keep_parsed_project(invocation)
    if subset:
        # A subset (some models picked in the UI): the other models did not see these windows; the next full run
        # rebuilds them for all.
        context.log.info("subset of the dbt models: the changed windows stay pending for the next full marts run")
        return
    with open_warehouse(warehouse.path, memory_limit=warehouse.memory_limit) as conn:
        record_build(conn, changes, chunks, started)


def run_chunks_in_one_process(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                              plan: list[tuple[tuple[datetime, datetime], list[str], tuple | None]]) -> None:
    """The chunks before the last, in one dbt process (pipeline/defs/transform/chunk_runner.py: dbt imported and the
    project parsed once, not once per chunk), with the step's selection (all of `dbt_activity_marts`)."""
    target = DBT_PROJECT_DIR / "target" / f"{context.op.name}-{context.run_id[:7]}-chunks-{uuid.uuid4().hex[:7]}"
    target.mkdir(parents=True)
    if (DBT_PROJECT_DIR / "target" / PARTIAL_PARSE).exists():  # start from the last parse, as dagster-dbt does
        (target / PARTIAL_PARSE).write_bytes((DBT_PROJECT_DIR / "target" / PARTIAL_PARSE).read_bytes())
    spec = {"flags": ["--target", "local"], "selection": ["--select", PARTITIONED, "--exclude", UNIT_TESTS],
            "chunks": [{"args": args, "env": window_environment(dbt_vars(*chunk), dbt_vars(*tests) if tests else None)}
                       for chunk, args, tests in plan]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=target, delete=False) as file:
        json.dump(spec, file)
    context.log.info(f"chunks 1-{len(plan)}: {len(plan)} dbt commands in one process, artifacts in {target}")
    env = {**os.environ, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(target),
           "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_QUIET": "true", "PYTHONUNBUFFERED": "1",
           **warehouse_environment(warehouse.path)}
    process = subprocess.Popen([sys.executable, "-m", "pipeline.defs.transform.chunk_runner", file.name],
                               cwd=DBT_PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output = []
    for line in process.stdout:
        output.append(line.rstrip())
        if line.startswith('{"chunk"'):
            done = json.loads(line)
            context.log.info(f"chunk {done['chunk']}/{len(plan) + 1}: dbt {' '.join(done['args'])} over "
                             f"{done['env']['MARTS_WINDOW_MIN_DATE']} .. {done['env']['MARTS_WINDOW_MAX_DATE']}: "
                             f"{'ok' if done['success'] else 'FAILED ' + ', '.join(done['failed'])}, "
                             f"{done['nodes']} nodes, {done['seconds']} s"
                             + (f", RSS {done['rss_mb']} MB" if done.get("rss_mb") is not None else ""))
    if process.wait() != 0:
        tail = "\n".join(output[-40:])
        raise dg.Failure(f"dbt failed on a chunk of the marts run (artifacts in {target}):\n{tail}")
    keep_parsed(target)


# ------------------------------------------------------------------------------------------------ unit tests


def _unit_test_specs(manifest: Mapping[str, Any]) -> dict[str, dg.AssetCheckSpec]:
    specs = {}
    for unique_id, test in sorted(manifest.get("unit_tests", {}).items()):
        model = manifest["nodes"][test["depends_on"]["nodes"][0]]
        specs[unique_id] = dg.AssetCheckSpec(
            name=test["name"], asset=translator.get_asset_key(model),
            description=(test.get("description") or f"dbt unit test of {test['model']}").strip(),
            blocking=False)
    return specs


UNIT_TEST_SPECS = _unit_test_specs(MANIFEST)


@dg.multi_asset_check(specs=list(UNIT_TEST_SPECS.values()), name="dbt_unit_tests", can_subset=True, pool="duckdb",
                      description="dbt unit tests (categorisation, actor identity, outcome, embargo, user agent, "
                                  "deduplication) on fixed inputs: logic checks, independent of the data.")
def dbt_unit_tests(context: dg.AssetCheckExecutionContext, dbt: DbtCliResource,
                   warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:
    prepare_warehouse(warehouse)
    with dbt_environment(warehouse.path):
        invocation = dbt.cli(["test", "--select", UNIT_TESTS], raise_on_error=False)
        invocation.wait()
    results = {r["unique_id"]: r for r in invocation.get_artifact("run_results.json")["results"]}
    for unique_id, spec in UNIT_TEST_SPECS.items():
        if spec.key not in context.selected_asset_check_keys:
            continue
        result = results.get(unique_id)
        status = result["status"] if result else "not run"
        yield dg.AssetCheckResult(
            asset_key=spec.asset_key, check_name=spec.name, passed=status == "pass",
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"status": status, "message": (result or {}).get("message") or "",
                      "execution_seconds": round((result or {}).get("execution_time") or 0.0, 3)})


# ------------------------------------------------------------------------------------------------ selections

MART_ASSET_KEYS = sorted(
    (translator.get_asset_key(node) for node in MANIFEST["nodes"].values()
     if node["resource_type"] == "model" and node["config"].get("schema") == "marts"),
    key=lambda k: k.to_user_string())
