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

    select * from {{ ref('stg_activity_types') }}

),

known_types as (

    select
        event_type,
        category,
        list_filter(string_split(coalesce(dashboards, ''), ' '), lambda d: d <> '') as dashboards,
        resource_kind,
        action,
        outcome,
        coalesce(is_reconnaissance, false) as is_reconnaissance,
        description,
        true as is_known_type
    from catalog

),

unknown_types as (

    select observed.event_type
    from observed
    anti join catalog on observed.event_type = catalog.event_type

),

rule_matches as (

    select
        unknown_types.event_type,
        rules.rule_order,
        rules.dashboard,
        rules.category as rule_category,
        coalesce(rules.fallback, false) as is_fallback,
        dashboards.category as dashboard_category,
        dashboards.category_precedence
    from unknown_types
    inner join rules on unknown_types.event_type glob rules.pattern
    left join dashboards on rules.dashboard = dashboards.dashboard

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
        list(dashboard order by category_precedence, dashboard) as dashboards,
        arg_min(dashboard_category, category_precedence) as category
    from (
        select distinct
            dashboard_matches.event_type,
            dashboard_matches.dashboard,
            dashboard_matches.dashboard_category,
            dashboard_matches.category_precedence
        from dashboard_matches
    ) as distinct_dashboard_matches
    group by event_type

),

category_only as (

    select
        event_type,
        arg_min(rule_category, rule_order) as category
    from rule_matches
    where dashboard is null and rule_category is not null
    group by event_type

),

classified_unknown_types as (

    select
        unknown_types.event_type,
        coalesce(dashboards_per_type.category, category_only.category, 'uncategorized') as category,
        coalesce(dashboards_per_type.dashboards, []::varchar[]) as dashboards,
        {{ unknown_type_resource_kind('unknown_types.event_type') }} as resource_kind,
        {{ unknown_type_action('unknown_types.event_type') }} as action,
        coalesce(outcome_rules.outcome, 'unknown') as outcome,
        false as is_reconnaissance,
        null::varchar as description,
        false as is_known_type
    from unknown_types
    left join dashboards_per_type on unknown_types.event_type = dashboards_per_type.event_type
    left join category_only on unknown_types.event_type = category_only.event_type
    left join outcome_rules on {{ unknown_type_action('unknown_types.event_type') }} = outcome_rules.action

),

final as (

    select * from known_types
    union all by name
    select * from classified_unknown_types

)

select * from final
