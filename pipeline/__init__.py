"""Self-hosted compliance analytics pipeline for the Claude Compliance API (Dagster + dbt + DuckDB)."""
