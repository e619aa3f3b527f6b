"""dbt: staging -> intermediate -> one panel-ready mart per dashboard, as Dagster assets (README: Marts)."""
