-- User Configuration and Invite Lifecycle (dashboards.md #15): invites, invite links, joins, roles, settings, consent.

with activities as (

    {{ dashboard_activities('user_config_invites') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type like 'org\_invite\_link\_%' escape '\' then 'invite_link'
            when
                activities.event_type like 'org\_user\_invite\_%' escape '\'
                or activities.event_type like 'org\_invite%' escape '\'
                or activities.event_type = 'end_user_invite_requested' then 'invite'
            when activities.event_type like 'org\_join\_%' escape '\' then 'join_request'
            when
                activities.event_type = 'claude_user_role_updated'
                or activities.event_type like 'role\_assignment\_%' escape '\'
                then 'role'
            when activities.event_type = 'claude_user_seat_tier_updated' then 'seat_tier'
            when activities.event_type = 'claude_user_settings_updated' then 'user_settings'
            when activities.event_type like 'user\_consent\_%' escape '\' then 'consent'
            else 'membership'
        end as config_kind,
        case
            when activities.event_type like 'org\_invite\_link\_%' escape '\' then activities.action
            when activities.event_type = 'org_user_invite_accepted' then 'accepted'
        end as invite_link_action,
        {{ field('invite_id') }} as invite_id,
        coalesce({{ field('invited_email') }}, {{ field('invitee_email') }}) as invited_email,
        {{ field('invited_role') }} as invited_role,
        {{ field('invited_seat_tier') }} as invited_seat_tier,
        coalesce({{ field('user_id') }}, {{ field('deleted_user_id') }}, {{ field('target_id') }})
            as target_user_id,
        coalesce({{ field('user_email') }}, {{ field('deleted_user_email') }}) as target_user_email,
        {{ field('previous_role') }} as previous_role,
        {{ field('current_role') }} as "current_role",
        {{ field('role') }} as granted_role,
        {{ field('current_seat_tier') }} as current_seat_tier,
        {{ field('previous_seat_tier') }} as previous_seat_tier,
        {{ field('consent_type') }} as consent_type,
        {{ json_text_field('updates') }} as updates
    from activities

)

select * from final
