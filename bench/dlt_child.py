"""The same load done by dlt's REST API source into DuckDB, configured as a typical user would (used by
bench_ingest). Args: base_url, duckdb path, gte, lt, max_table_nesting ('default' or a number), loader file format
('default' = dlt's insert_values for DuckDB, or e.g. 'parquet')."""

from __future__ import annotations

import json
import sys
import time

import dlt
from dlt.sources.rest_api import rest_api_source

from bench.common import FULL_KEY, peak_rss_mb


def main() -> None:
    base_url, path, gte, lt, nesting, file_format = sys.argv[1:7]
    source = rest_api_source({
        "client": {
            "base_url": base_url,
            "auth": {"type": "api_key", "name": "x-api-key", "api_key": FULL_KEY, "location": "header"},
            "paginator": {"type": "cursor", "cursor_path": "last_id", "cursor_param": "after_id"},
        },
        "resources": [{
            "name": "activities",
            "endpoint": {"path": "/v1/compliance/activities", "data_selector": "data",
                         "params": {"created_at.gte": gte, "created_at.lt": lt, "limit": 5000}},
            "primary_key": "id",
            "write_disposition": "merge",
        }],
    })
    if nesting != "default":
        source.max_table_nesting = int(nesting)
    pipeline = dlt.pipeline(pipeline_name=f"bench_{nesting}", destination=dlt.destinations.duckdb(path),
                            dataset_name="raw", pipelines_dir=path + ".dlt")
    started = time.perf_counter()
    pipeline.run(source, loader_file_format=None if file_format == "default" else file_format)
    elapsed = time.perf_counter() - started
    import duckdb

    with duckdb.connect(path, read_only=True) as conn:
        rows = conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0]
    print(json.dumps({"seconds": elapsed, "stored": rows, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
