-- User Agent Analysis (dashboards.md #14): every activity that carries a user agent.

with activities as (

    select * from {{ ref('int_activities') }}
    where user_agent is not null {{ window_filter('created_at') }}

),

final as (

    select
        {{ activity_common_columns('a') }},
        a.http_status_code,
        a.event_type = 'compliance_api_accessed' and a.http_status_code is not null
            and not (a.http_status_code between 200 and 299)        as is_http_error
    from activities as a

)

select * from final
