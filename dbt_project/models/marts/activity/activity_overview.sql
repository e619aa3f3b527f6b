-- Activity Overview (dashboards.md #1): every activity exactly once, whatever its type (unknown types included,
-- as `uncategorized`), with the monitor rules it can feed. Alerts raised are in marts.alerts.

with activities as (

    select * from {{ ref('int_activities') }}
    where true {{ window_filter('created_at') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        activities.dashboards,
        activities.monitor_rules,
        len(activities.monitor_rules) > 0 as is_threat,
        activities.actor_type = 'unauthenticated_user_actor' as is_unauthenticated,
        activities.http_status_code
    from activities

)

select * from final
