{#-
  The activities of one dashboard's mart in the window being rebuilt, each with its raw payload (the type-specific
  fields the mart reads with `field`, macros/mart_columns.sql). One definition for the 13 marts that read the payload.

  The payload stays in stg_activities (int_activities does not copy it): only this mart's activities of the window
  are read from there (a semi-join first), so a chunk never holds every raw payload of its range in memory.
  `materialized`: the plan the marts had with these CTEs inline (DuckDB materializes a top-level CTE read twice).
-#}
{% macro dashboard_activities(dashboard) -%}
    with dashboard_activities as materialized (

        select * from {{ ref('int_activities') }}
        where list_contains(dashboards, '{{ dashboard }}') {{ window_filter('created_at') }}

    ),

    payloads as (

        select
            activity_id,
            raw
        from {{ ref('stg_activities') }}
        where
            true {{ window_filter('created_at') }}
            and activity_id in (select dashboard_activities.activity_id from dashboard_activities)

    )

    select
        dashboard_activities.*,
        payloads.raw
    from dashboard_activities
    inner join payloads on dashboard_activities.activity_id = payloads.activity_id
{%- endmacro %}
