{#-
  Window-by-window incremental models (the activity layer and its marts).

  Dagster passes the partition window as vars `min_date` / `max_date` (ISO timestamps, [min, max)). On an incremental
  run the model first deletes its rows of that window (pre-hook `delete_window`), then appends the window recomputed
  from the layer below (`window_filter` in its SQL). The window is thus made equal to its sources, also when the
  ingestion removed or re-added rows, and no row outside it is read or written. A full refresh rebuilds everything.
-#}

{% macro window_bounds() -%}
    '{{ var("min_date") }}'::TIMESTAMPTZ, '{{ var("max_date") }}'::TIMESTAMPTZ
{%- endmacro %}

{% macro window_filter(column, lookback=none) -%}
    {%- if is_incremental() %}
    and {{ column }} >= '{{ var("min_date") }}'::TIMESTAMPTZ {%- if lookback %} - INTERVAL '{{ lookback }}'{% endif %}
    and {{ column }} < '{{ var("max_date") }}'::TIMESTAMPTZ
    {%- endif -%}
{%- endmacro %}

{% macro delete_window(column='created_at') -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where {{ column }} >= '{{ var("min_date") }}'::TIMESTAMPTZ and {{ column }} < '{{ var("max_date") }}'::TIMESTAMPTZ
    {%- else -%}
    select 1 as no_window_to_delete
    {%- endif -%}
{%- endmacro %}
