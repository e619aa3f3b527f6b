"""`serve/marts_file`: the marts published for BI tools (a catalog file of views over per-day Parquet files, replaced
atomically) after every marts build: only what the build changed is written."""

import dagster as dg
from pydantic import Field

from pipeline.config import Settings
from pipeline.defs.resources import WarehouseResource
from pipeline.defs.transform.assets import MART_ASSET_KEYS
from pipeline.serving.publish import publish


class PublishConfig(dg.Config):
    serving_path: str = Field(default="", description="Serving file; empty: COMPLIANCE_SERVING_PATH "
                                                      "(default data/marts.duckdb).")


@dg.asset(
    key=dg.AssetKey(["serve", "marts_file"]),
    deps=MART_ASSET_KEYS,
    pool="duckdb",  # reads the warehouse: never while a writer holds it
    group_name="serve",
    kinds={"duckdb"},
    description="The marts for BI tools: a DuckDB catalog file (DuckDB 1.x storage format) of views over per-day "
                "Parquet files, replaced atomically; a publish writes only the days the marts build changed. "
                "Readers never see half a publish and never block the pipeline.",
)
def marts_file(context: dg.AssetExecutionContext, config: PublishConfig,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = Settings.from_env()
    target = config.serving_path or str(settings.serving_path)
    result = publish(warehouse.path, target, include_message_text=settings.store_message_text,
                     memory_limit=warehouse.memory_limit)
    context.log.info(f"published {len(result.tables)} tables to {result.path} in {result.seconds:.2f} s")
    if result.unsorted_after_out_of_memory:
        context.log.info(f"exported again in the warehouse's order after running out of memory: "
                         f"{', '.join(result.unsorted_after_out_of_memory)}")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(result.path)),
        "tables": len(result.tables),
        "rows": dg.MetadataValue.json(result.tables),
        "copied": dg.MetadataValue.json(result.copied),
        "message_text_rows": result.message_text_rows if result.message_text_rows is not None else "not published",
        "size_bytes": result.size_bytes,
        "files_written": result.files_written,
        "bytes_written": result.bytes_written,
        "files_removed": result.files_removed,
        "storage_version": result.storage_version,
        "publish_seconds": round(result.seconds, 3),
    })
