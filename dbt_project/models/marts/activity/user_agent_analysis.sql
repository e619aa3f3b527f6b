-- User Agent Analysis (dashboards.md #14): every activity that carries a user agent.

with activities as (

    select * from {{ ref('int_activities') }}
    where user_agent is not null {{ window_filter('created_at') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        activities.http_status_code,
        activities.event_type = 'compliance_api_accessed' and activities.http_status_code is not null
        and not (activities.http_status_code between 200 and 299) as is_http_error
    from activities

)

select * from final
