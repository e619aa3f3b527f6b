-- Identity, Access and Authentication (dashboards.md #9): sign-in, roles and groups, SCIM, devices, keys.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'identity_access_auth') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

reconnaissance as (

    -- listing / viewing of users, groups, members and invites, by any actor, including the hour before the window
    select actor_identity, created_at
    from {{ ref('int_activities') }}
    -- (all history while reference changes are applied: rebuilt rows outside the range need their prior hour)
    where is_reconnaissance and actor_identity is not null
        {{ window_filter('created_at', lookback=var('reconnaissance_lookback'), all_history_on_reference_change=true) }}

),

typed as (

    select
        a.*,
        {{ field('previous_role') }}                                as previous_role,
        {{ field('current_role') }}                                 as current_role,
        {{ field('role') }}                                         as granted_role,
        (
            a.event_type = 'primary_owner_transferred'
            or (a.event_type = 'claude_user_role_updated'
                and lower({{ field('current_role') }}) in {{ sql_list(var('privileged_roles')) }}
                and lower(coalesce({{ field('previous_role') }}, '')) <> lower({{ field('current_role') }}))
            or (a.event_type = 'role_assignment_granted'
                and lower({{ field('role') }}) in {{ sql_list(var('privileged_roles')) }})
            -- a custom RBAC role is named only by its id: what it grants is unknown here, so every assignment counts
            or a.event_type = 'rbac_role_assigned'
        )                                                           as is_privileged_change
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

),

recon_before_privileged_change as (

    select t.activity_id, count(*) as recon_events_prior_1h
    from typed as t
    join reconnaissance as r
        on r.actor_identity = t.actor_identity
       and r.created_at >= t.created_at - interval '1 hour'
       and r.created_at < t.created_at
    where t.is_privileged_change
    group by t.activity_id

),

final as (

    select
        {{ activity_common_columns('t') }},
        case
            when t.event_type like 'scim\_user\_%' escape '\' then 'scim'
            when t.event_type like 'trusted\_device\_%' escape '\' then 'device'
            when t.event_type like 'rbac\_%' escape '\' or t.event_type like 'role\_assignment\_%' escape '\'
                 or t.event_type like 'group\_%' escape '\'
                 or t.event_type in ('claude_user_role_updated', 'primary_owner_transferred') then 'roles_groups'
            when t.event_type like '%key\_%' escape '\' then 'api_keys'
            else 'sign_in'
        end                                                         as auth_area,
        case
            when t.event_type in ('sso_login_succeeded', 'magic_link_login_succeeded', 'social_login_succeeded',
                                  'step_up_authentication_succeeded', 'phone_code_verified') then 'success'
            when t.event_type in ('sso_login_failed', 'magic_link_login_failed', 'step_up_authentication_failed')
                then 'failure'
        end                                                         as login_result,
        {{ field('auth_method') }}                                  as auth_method,
        {{ field('mfa_method') }}                                   as mfa_method,
        {{ field('provider') }}                                     as login_provider,
        {{ field('method') }}                                       as step_up_method,
        {{ field('reason') }}                                       as failure_reason,
        t.previous_role,
        t.current_role,
        t.granted_role,
        {{ field('role_id') }}                                      as role_id,
        {{ field('role_name') }}                                    as role_name,
        {{ field('principal_id') }}                                 as principal_id,
        {{ field('principal_type') }}                               as principal_type,
        {{ field('group_id') }}                                     as group_id,
        {{ field('group_name') }}                                   as group_name,
        {{ list_field('member_ids') }}                              as member_ids,
        coalesce({{ field('user_id') }}, {{ field('new_owner_id') }}, {{ field('target_id') }})
                                                                    as target_user_id,
        {{ field('user_email') }}                                   as target_user_email,
        {{ field('previous_owner_id') }}                            as previous_owner_id,
        {{ field('new_owner_id') }}                                 as new_owner_id,
        {{ field('trusted_device_id') }}                            as trusted_device_id,
        t.is_privileged_change,
        coalesce(r.recon_events_prior_1h, 0)                        as recon_events_prior_1h,
        t.is_privileged_change and coalesce(r.recon_events_prior_1h, 0) > 0
                                                                    as is_recon_then_privileged_change
    from typed as t
    join payloads as p on p.activity_id = t.activity_id
    left join recon_before_privileged_change as r on r.activity_id = t.activity_id

)

select * from final
