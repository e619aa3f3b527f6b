{{ config(materialized='view') }}

-- Every activity type: the 514 of the catalog seed, plus every type seen in the data but unknown to the catalog,
-- classified by the rules seed (the same rules that generated the catalog) or `uncategorized`. Never dropped.

with catalog as (

    select * from {{ ref('activity_catalog') }}

),

rules as (

    select * from {{ ref('activity_type_rules') }}

),

dashboards as (

    select * from {{ ref('dashboards') }}

),

outcome_rules as (

    select * from {{ ref('activity_outcome_rules') }}

),

observed as (

    select distinct type as event_type
    from {{ source('raw', 'activities') }}
    where type is not null

),

known_types as (

    select
        event_type,
        category,
        list_filter(string_split(coalesce(dashboards, ''), ' '), lambda d: d <> '') as dashboards,
        resource_kind,
        action,
        outcome,
        coalesce(is_reconnaissance, false)          as is_reconnaissance,
        description,
        true                                        as is_known_type
    from catalog

),

unknown_types as (

    select o.event_type
    from observed as o
    anti join catalog as c on c.event_type = o.event_type

),

rule_matches as (

    select
        u.event_type,
        r.rule_order,
        r.dashboard,
        r.category                                  as rule_category,
        coalesce(r.fallback, false)                 as is_fallback,
        d.category                                  as dashboard_category,
        d.category_precedence
    from unknown_types as u
    join rules as r on u.event_type glob r.pattern
    left join dashboards as d on d.dashboard = r.dashboard

),

dashboard_matches as (

    -- a fallback rule (e.g. `org_*`) applies only when no specific rule named a dashboard
    select *
    from rule_matches
    where dashboard is not null
    qualify not is_fallback or not bool_or(not is_fallback) over (partition by event_type)

),

dashboards_per_type as (

    select
        event_type,
        list(dashboard order by category_precedence, dashboard)             as dashboards,
        arg_min(dashboard_category, category_precedence)                    as category
    from (select distinct event_type, dashboard, dashboard_category, category_precedence from dashboard_matches)
    group by event_type

),

category_only as (

    select event_type, arg_min(rule_category, rule_order) as category
    from rule_matches
    where dashboard is null and rule_category is not null
    group by event_type

),

classified_unknown_types as (

    select
        u.event_type,
        coalesce(d.category, c.category, 'uncategorized')                   as category,
        coalesce(d.dashboards, []::varchar[])                               as dashboards,
        {{ unknown_type_resource_kind('u.event_type') }}                    as resource_kind,
        {{ unknown_type_action('u.event_type') }}                           as action,
        coalesce(o.outcome, 'unknown')                                      as outcome,
        false                                                               as is_reconnaissance,
        cast(null as varchar)                                               as description,
        false                                                               as is_known_type
    from unknown_types as u
    left join dashboards_per_type as d on d.event_type = u.event_type
    left join category_only as c on c.event_type = u.event_type
    left join outcome_rules as o on o.action = {{ unknown_type_action('u.event_type') }}

),

final as (

    select * from known_types
    union all by name
    select * from classified_unknown_types

)

select * from final
