-- Activity Overview (dashboards.md #1): every activity exactly once, whatever its type (unknown types included,
-- as `uncategorized`), with the monitor rules it can feed. Alerts raised are in marts.alerts.

with activities as (

    select * from {{ ref('int_activities') }}
    where true {{ window_filter('created_at') }}

),

final as (

    select
        {{ activity_common_columns('a') }},
        a.dashboards,
        a.monitor_rules,
        len(a.monitor_rules) > 0                                    as is_threat,
        a.actor_type = 'unauthenticated_user_actor'                 as is_unauthenticated,
        a.http_status_code
    from activities as a

)

select * from final
