{#-
  Window-by-window incremental models (the activity layer and its marts).

  Dagster passes the range to rebuild (ISO timestamps, [min, max); one chunk of the windows the ingestion changed,
  pipeline/warehouse/mart_windows.py) in the environment, MARTS_WINDOW_MIN_DATE / MARTS_WINDOW_MAX_DATE, read only
  when the SQL runs: the invocation's command line and vars then stay the same from run to run, so dbt re-uses the
  project it parsed before (with `--vars`, every 5-minute run re-parsed all of it: ~5 s). Without them, the vars
  `min_date` / `max_date` (an ad-hoc `dbt build --vars ...`; their defaults cover all time).

  On an incremental run the model first deletes its rows of that range (pre-hook `delete_window`), then appends the
  range recomputed from the layer below (`window_filter` in its SQL). The range is thus made equal to its sources, also when the ingestion removed or
  re-added rows, and no row outside it is read or written. The filter applies to a (re)creating run too: a full
  refresh recreates the tables with its first chunk and appends the others, so no run ever reads all of history at
  once (memory). The defaults of the vars cover all time (an ad-hoc `dbt build`).

  Models that carry reference columns (meta `rebuilds_on_reference_change`) also delete and recompute, outside the
  range, the rows whose activity type, IP, user agent or embargoed country changed since they last applied the
  reference changes (reference_changes.sql). A read that needs more than its rows (a lookback) can ask for all
  history then (`all_history_on_reference_change`).
-#}

{% macro window_min() -%}
    {{- return((env_var('MARTS_WINDOW_MIN_DATE', '') if execute else '') or var('min_date')) -}}
{%- endmacro %}

{% macro window_max() -%}
    {{- return((env_var('MARTS_WINDOW_MAX_DATE', '') if execute else '') or var('max_date')) -}}
{%- endmacro %}

{% macro window_bounds() -%}
    '{{ window_min() }}'::timestamptz, '{{ window_max() }}'::timestamptz
{%- endmacro %}

{#- The range the data tests read: MARTS_TEST_MIN_DATE / MARTS_TEST_MAX_DATE, else the window. A marts run of several
    chunks runs its models chunk by chunk and the tests once, after the last chunk of a group, over the group's range
    (pipeline/defs/transform/assets.py): 88 tests per chunk were ~2 s of each chunk. -#}
{% macro test_window_min() -%}
    {{- return((env_var('MARTS_TEST_MIN_DATE', '') if execute else '') or window_min()) -}}
{%- endmacro %}

{% macro test_window_max() -%}
    {{- return((env_var('MARTS_TEST_MAX_DATE', '') if execute else '') or window_max()) -}}
{%- endmacro %}

{#- Data tests of the window: their `where` (rendered when dbt parses the project, so no var or env var there) names
    the bounds as `__min_date__` / `__max_date__`, replaced by the tests' range when the test runs. -#}
{% macro duckdb__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
    {%- set where = where | replace('__min_date__', "'" ~ test_window_min() ~ "'::timestamptz")
                          | replace('__max_date__', "'" ~ test_window_max() ~ "'::timestamptz") -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
    {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{% macro window_filter(column, lookback=none, all_history_on_reference_change=false) -%}
    {%- set pending = pending_reference_changes() %}
    {%- if pending and all_history_on_reference_change %}
    -- reference changes to apply: all history
    {%- else %}
    and ({{ column }} >= '{{ window_min() }}'::timestamptz {%- if lookback %} - interval '{{ lookback }}'{% endif %}
    and {{ column }} < '{{ window_max() }}'::timestamptz
    {%- if pending %}
    or {{ reference_changed_rows(pending) }}
    {%- endif %})
    {%- endif -%}
{%- endmacro %}

{% macro delete_window(column='created_at') -%}
    {%- if is_incremental() -%}
    {%- set pending = pending_reference_changes() -%}
    delete from {{ this }}
    where {{ column }} >= '{{ window_min() }}'::timestamptz and {{ column }} < '{{ window_max() }}'::timestamptz
    {%- if pending %}
       or {{ reference_changed_rows(pending) }}
    {%- endif %}
    {%- else -%}
    select 1 as no_window_to_delete
    {%- endif -%}
{%- endmacro %}

{#-
  Panel rollups (models/marts/rollups): a mart's rows summed by 5-minute window (created_5min) and its filter
  columns. A run deletes and recomputes its range, like the marts; on reference changes it recomputes the whole
  5-minute windows holding changed activities, found in int_activities (a rollup has no IP or user-agent column, and
  an activity whose type left the mart is no longer in the mart). Each rollup declares
  `-- depends_on: {{ ref('int_activities') }}`.
-#}
{% macro rollup_changed_windows(pending) -%}
    select distinct created_5min from {{ ref('int_activities') }} where {{ reference_changed_rows(pending) }}
{%- endmacro %}

{#- The windows a rollup run recomputes, as a condition on created_5min (the same for the rows it deletes and the
    mart rows it reads; the range starts and ends on 5-minute boundaries): the range, the windows holding changed
    references, and with `rewritten_in` (a mart) the windows of the rows this dbt invocation rewrote there outside
    the range (a post-hook's update, e.g. claude_usage's apply_chat_model_changes), which the range and
    int_activities don't show: the post-hook lists them in intermediate.rewritten_windows. Each `or` is written only
    when it has windows to add: the range alone is a filter DuckDB prunes by zone maps, with an `or` the whole mart
    is read. -#}
{% macro rollup_windows(rewritten_in=none) -%}
    {%- set pending = pending_reference_changes() -%}
    {%- set rewritten -%}
        select created_5min from intermediate.rewritten_windows
        where model = '{{ rewritten_in.identifier if rewritten_in else '' }}' and dbt_invocation_id = '{{ invocation_id }}'
    {%- endset -%}
    {%- set has_rewritten = rewritten_in and execute and is_incremental()
                            and run_query("select exists (" ~ rewritten ~ ")").rows[0][0] -%}
    (created_5min >= '{{ window_min() }}'::timestamptz and created_5min < '{{ window_max() }}'::timestamptz
    {%- if pending %}
    or created_5min in ({{ rollup_changed_windows(pending) }})
    {%- endif %}
    {%- if has_rewritten %}
    or created_5min in ({{ rewritten }})
    {%- endif %})
{%- endmacro %}

{% macro rollup_window_filter(rewritten_in=none) -%}
    and {{ rollup_windows(rewritten_in) }}
{%- endmacro %}

{% macro delete_rollup_window(rewritten_in=none) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where {{ rollup_windows(rewritten_in) }}
    {%- else -%}
    select 1 as no_window_to_delete
    {%- endif -%}
{%- endmacro %}

{#- dbt's relationships test, except that a test with meta `parent_in_window` reads the parent over the tests' range only:
    for a child whose parent has the same created_at (a mart row and its int_activities row), so that a 5-minute
    run does not read the parent's whole history. -#}
{% macro duckdb__test_relationships(model, column_name, to, field) %}
{%- set in_window = (config.get('meta') or {}).get('parent_in_window', false) %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
    {%- if in_window %}
    where created_at >= '{{ test_window_min() }}'::timestamptz and created_at < '{{ test_window_max() }}'::timestamptz
    {%- endif %}
)

select
    from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null

{% endmacro %}
