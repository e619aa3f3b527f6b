"""dbt models as Dagster assets, in two groups of one manifest (the DOP "partitioned vs unpartitioned" split):

- `dbt_activity_marts`: everything tagged `partitioned` (staging and intermediate activities, the 15 activity marts,
  chats, alerts), on the same 5-minute partitions as `raw/activities`. A run passes its partition window to dbt as
  vars `min_date` / `max_date` (minus a lookback for late rows): incremental models delete and rebuild that window
  only, so a new 5-minute window never rebuilds history. `full_refresh` (launchpad config) rebuilds everything.
- `dbt_reference`: seeds (catalog, rules, embargo list, endpoints) and views (dimensions, chats staging, type
  classification). They change with the code, not with the data: automation materializes them when missing or when
  their code version changes, and the partitioned step builds them itself on a fresh warehouse.

dbt data tests are asset checks (dagster-dbt); dbt unit tests, which dagster-dbt does not surface, are asset checks of
`dbt_unit_tests`. Every step that opens the warehouse runs in the pool "duckdb".
"""


import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets
from pydantic import Field

from pipeline.defs.ingest.partitions import activity_partitions
from pipeline.defs.resources import WarehouseResource
from pipeline.defs.transform.project import dbt_environment, dbt_project
from pipeline.monitors.alerts import ensure_alerts_table
from pipeline.monitors.config import load_config
from pipeline.monitors.dbt_rules import write_macro
from pipeline.warehouse.chats import CHATS_DDL
from pipeline.warehouse.connection import open_warehouse
from pipeline.warehouse.directory import DIRECTORY_DDL
from pipeline.warehouse.schema import ensure_schema

PARTITIONED = "tag:partitioned"
PARTITIONED_SOURCES = {("raw", "activities"), ("raw", "chats")}  # written by the 5-minute ingestion assets
UNIT_TESTS = "test_type:unit"
DEFAULT_LOOKBACK_MINUTES = 60

MANIFEST: Mapping[str, Any] = json.loads(dbt_project.manifest_path.read_text())


# ---------------------------------------------------------------------------------------------------------- pure


class DbtRunConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Rebuild every model from all raw data (`dbt build --full-refresh`) instead of the run's window.",
    )
    lookback_minutes: int = Field(
        default=DEFAULT_LOOKBACK_MINUTES,
        description="Minutes before the partition window that are rebuilt too: rows indexed late are re-pulled by "
                    "the ingestion for an hour (COMPLIANCE_REPULL_MINUTES), and a run for the newest window then "
                    "picks them up.",
    )


def dbt_vars(start: datetime, end: datetime, lookback: timedelta) -> dict[str, str]:
    """The window [min_date, max_date) a partitioned run rebuilds, as ISO timestamps in UTC."""
    return {"min_date": (start - lookback).astimezone(timezone.utc).isoformat(),
            "max_date": end.astimezone(timezone.utc).isoformat()}


def build_dbt_args(window: tuple[datetime, datetime] | None, *, full_refresh: bool = False,
                   lookback: timedelta = timedelta(minutes=DEFAULT_LOOKBACK_MINUTES)) -> list[str]:
    """dbt CLI arguments of one run (dagster-dbt adds the selection). A full refresh drops the window: dbt then uses
    the all-time defaults of dbt_project.yml."""
    if full_refresh:
        return ["build", "--full-refresh"]
    if window is None:
        return ["build"]
    return ["build", "--vars", json.dumps(dbt_vars(window[0], window[1], lookback), sort_keys=True)]


# ---------------------------------------------------------------------------------------------------------- assets


class ComplianceDbtTranslator(DagsterDbtTranslator):
    """Keys are [schema, name] (`marts/billing_monitoring`), sources take `meta.dagster.asset_key` (`raw/activities`),
    groups follow the schema. Code-defined nodes (seeds, views) materialize when missing or changed."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = dbt_resource_props.get("config", {}).get("schema")
        return schema or super().get_group_name(dbt_resource_props)

    def get_partition_mapping(self, dbt_resource_props: Mapping[str, Any],
                              dbt_parent_resource_props: Mapping[str, Any]) -> dg.PartitionMapping | None:
        # An unpartitioned view over a 5-minute-partitioned source reads its newest state; depending on all of its
        # partitions would make Dagster enumerate tens of thousands of them at every run.
        partitioned_parent = tuple(dbt_parent_resource_props.get("meta", {}).get("dagster", {}).get("asset_key", [])) \
            in PARTITIONED_SOURCES
        if partitioned_parent and "partitioned" not in dbt_resource_props.get("tags", []):
            return dg.LastPartitionMapping()
        return None

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


def prepare_warehouse(warehouse: WarehouseResource) -> list[tuple[str, str]]:
    """Create the raw tables dbt reads if no ingestion created them yet (the ingestion's own DDL); return the
    reference relations that are missing. Also: the marts' rule matching follows the monitors' configuration
    (pipeline/monitors/dbt_rules.py) and monitors.alerts has its current columns (the alerts mart reads them)."""
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
    return [rel for rel in REFERENCE_RELATIONS if rel not in existing]


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
    partitions_def=activity_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=translator,
    pool="duckdb",
)
def dbt_activity_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
                       config: DbtRunConfig):
    window = context.partition_time_window
    args = build_dbt_args((window.start, window.end), full_refresh=config.full_refresh,
                          lookback=timedelta(minutes=config.lookback_minutes))
    missing = prepare_warehouse(warehouse)
    with dbt_environment(warehouse.path):
        if missing:
            # A fresh warehouse: the seeds and views this step reads are built first (their own assets will be
            # materialized by automation later; this only makes the step independent of that ordering).
            context.log.info(f"building the reference layer first, missing: {missing}")
            dbt.cli(["build", "--exclude", f"{PARTITIONED} {UNIT_TESTS}"], raise_on_error=True).wait()
        context.log.info(f"dbt {' '.join(args)}")
        yield from dbt.cli(args, context=context).stream()


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
