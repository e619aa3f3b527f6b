-- Claude Usage's counts by 5-minute window and the columns its count panels group or filter by (trends, trigger
-- modes, repositories, statuses): they sum `events` here. Exact under every dashboard filter (time ranges start and
-- end on 5-minute boundaries; organization, actor type and event type are grouping columns).
{{ config(pre_hook="{{ delete_rollup_window() }}") }}
-- depends_on: {{ ref('int_activities') }}

with activities as (

    select * from {{ ref('claude_usage') }}
    where true {{ rollup_window_filter() }}

),

final as (

    select
        activities.created_5min,
        activities.created_hour,
        activities.organization_id,
        activities.actor_type,
        activities.event_type,
        activities.usage_area,
        activities.trigger_mode,
        activities.repository,
        activities.status,
        count(*) as events
    from activities
    group by all

)

select * from final
