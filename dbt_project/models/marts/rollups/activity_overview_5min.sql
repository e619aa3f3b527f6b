-- Activity Overview's counts by 5-minute window and the columns its panels group or filter by: the count panels
-- sum `events` here instead of counting a week of activities. Exact under every dashboard filter (time ranges start
-- and end on 5-minute boundaries; organization, actor type and event type are grouping columns).
{{ config(pre_hook="{{ delete_rollup_window() }}") }}
-- depends_on: {{ ref('int_activities') }}

with activities as (

    select * from {{ ref('activity_overview') }}
    where true {{ rollup_window_filter() }}

),

final as (

    select
        activities.created_5min,
        activities.created_hour,
        activities.organization_id,
        activities.organization_uuid,
        activities.actor_type,
        activities.event_type,
        activities.category,
        activities.outcome,
        activities.is_threat,
        activities.monitor_rules,
        activities.idp_connection_type,
        count(*) as events
    from activities
    group by all

)

select * from final
