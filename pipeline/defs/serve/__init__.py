"""Serving: the marts published to a separate DuckDB file for BI tools (README: Serving the marts)."""
