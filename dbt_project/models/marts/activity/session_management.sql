-- Session Management (dashboards.md #13): sign-ins, sign-outs, revocations, shares, remote and agent sessions.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'session_management') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

final as (

    select
        {{ activity_common_columns('a') }},
        case
            when a.event_type = 'user_logged_out' then 'sign_out'
            when a.event_type = 'session_revoked' then 'revoked'
            when a.event_type like 'session\_share\_%' escape '\' then 'share'
            when a.event_type like 'ccr\_session\_%' escape '\' then 'remote_session'
            when a.event_type like 'platform\_agent\_session\_%' escape '\' then 'agent_session'
            when a.event_type = 'cowork_session_updated' then 'cowork_session'
            else 'sign_in'
        end                                                         as session_kind,
        coalesce({{ field('session_id') }}, {{ field('cowork_session_id') }})
                                                                    as session_id,
        {{ field('share_id') }}                                     as share_id,
        {{ field('access_level') }}                                 as access_level,
        case when a.event_type like 'session\_share\_%' escape '\' then a.action end
                                                                    as share_action,
        {{ field('reason') }}                                       as reason,
        {{ field('auth_method') }}                                  as auth_method
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

)

select * from final
