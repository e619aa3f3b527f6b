-- Session Management (dashboards.md #13): sign-ins, sign-outs, revocations, shares, remote and agent sessions.

with activities as (

    {{ dashboard_activities('session_management') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type = 'user_logged_out' then 'sign_out'
            when activities.event_type = 'session_revoked' then 'revoked'
            when activities.event_type like 'session\_share\_%' escape '\' then 'share'
            when activities.event_type like 'ccr\_session\_%' escape '\' then 'remote_session'
            when activities.event_type like 'platform\_agent\_session\_%' escape '\' then 'agent_session'
            when activities.event_type = 'cowork_session_updated' then 'cowork_session'
            else 'sign_in'
        end as session_kind,
        coalesce({{ field('session_id') }}, {{ field('cowork_session_id') }}) as session_id,
        {{ field('share_id') }} as share_id,
        {{ field('access_level') }} as access_level,
        case when activities.event_type like 'session\_share\_%' escape '\' then activities.action end
            as share_action,
        {{ field('reason') }} as reason,
        {{ field('auth_method') }} as auth_method
    from activities

)

select * from final
