-- User Configuration and Invite Lifecycle (dashboards.md #15): invites, invite links, joins, roles, settings, consent.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'user_config_invites') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

final as (

    select
        {{ activity_common_columns('a') }},
        case
            when a.event_type like 'org\_invite\_link\_%' escape '\' then 'invite_link'
            when a.event_type like 'org\_user\_invite\_%' escape '\' or a.event_type like 'org\_invite%' escape '\'
                 or a.event_type = 'end_user_invite_requested' then 'invite'
            when a.event_type like 'org\_join\_%' escape '\' then 'join_request'
            when a.event_type = 'claude_user_role_updated' or a.event_type like 'role\_assignment\_%' escape '\'
                then 'role'
            when a.event_type = 'claude_user_seat_tier_updated' then 'seat_tier'
            when a.event_type = 'claude_user_settings_updated' then 'user_settings'
            when a.event_type like 'user\_consent\_%' escape '\' then 'consent'
            else 'membership'
        end                                                         as config_kind,
        case
            when a.event_type like 'org\_invite\_link\_%' escape '\' then a.action
            when a.event_type = 'org_user_invite_accepted' then 'accepted'
        end                                                         as invite_link_action,
        {{ field('invite_id') }}                                    as invite_id,
        coalesce({{ field('invited_email') }}, {{ field('invitee_email') }})
                                                                    as invited_email,
        {{ field('invited_role') }}                                 as invited_role,
        {{ field('invited_seat_tier') }}                            as invited_seat_tier,
        coalesce({{ field('user_id') }}, {{ field('deleted_user_id') }}, {{ field('target_id') }})
                                                                    as target_user_id,
        coalesce({{ field('user_email') }}, {{ field('deleted_user_email') }})
                                                                    as target_user_email,
        {{ field('previous_role') }}                                as previous_role,
        {{ field('current_role') }}                                 as current_role,
        {{ field('role') }}                                         as granted_role,
        {{ field('current_seat_tier') }}                            as current_seat_tier,
        {{ field('previous_seat_tier') }}                           as previous_seat_tier,
        {{ field('consent_type') }}                                 as consent_type,
        {{ json_text_field('updates') }}                            as updates
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

)

select * from final
