"""The DuckDB warehouse: connections, schema and the transactional writes of the raw layer (no Dagster here)."""
