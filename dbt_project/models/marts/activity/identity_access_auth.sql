-- Identity, Access and Authentication (dashboards.md #9): sign-in, roles and groups, SCIM, devices, keys.

with activities as (

    {{ dashboard_activities('identity_access_auth') }}

),

reconnaissance as (

    -- listing / viewing of users, groups, members and invites, by any actor, including the hour before the window
    select
        actor_identity,
        created_at
    from {{ ref('int_activities') }}
    -- (all history while reference changes are applied: rebuilt rows outside the range need their prior hour)
    where
        is_reconnaissance and actor_identity is not null
        {{ window_filter('created_at', lookback=var('reconnaissance_lookback'), all_history_on_reference_change=true) }}

),

typed as (

    select
        activities.*,
        {{ field('previous_role') }} as previous_role,
        {{ field('current_role') }} as "current_role",
        {{ field('role') }} as granted_role,
        (
            activities.event_type = 'primary_owner_transferred'
            or (
                activities.event_type = 'claude_user_role_updated'
                and lower({{ field('current_role') }}) in {{ sql_list(var('privileged_roles')) }}
                and lower(coalesce({{ field('previous_role') }}, '')) <> lower({{ field('current_role') }})
            )
            or (
                activities.event_type = 'role_assignment_granted'
                and lower({{ field('role') }}) in {{ sql_list(var('privileged_roles')) }}
            )
            -- a custom RBAC role is named only by its id: what it grants is unknown here, so every assignment counts
            or activities.event_type = 'rbac_role_assigned'
        ) as is_privileged_change
    from activities

),

recon_before_privileged_change as (

    select
        typed.activity_id,
        count(*) as recon_events_prior_1h
    from typed
    inner join reconnaissance
        on
            typed.actor_identity = reconnaissance.actor_identity
            and reconnaissance.created_at >= typed.created_at - interval '1 hour'
            and typed.created_at > reconnaissance.created_at
    where typed.is_privileged_change
    group by typed.activity_id

),

final as (

    select
        {{ activity_common_columns('typed') }},
        case
            when typed.event_type like 'scim\_user\_%' escape '\' then 'scim'
            when typed.event_type like 'trusted\_device\_%' escape '\' then 'device'
            when
                typed.event_type like 'rbac\_%' escape '\' or typed.event_type like 'role\_assignment\_%' escape '\'
                or typed.event_type like 'group\_%' escape '\'
                or typed.event_type in ('claude_user_role_updated', 'primary_owner_transferred') then 'roles_groups'
            when typed.event_type like '%key\_%' escape '\' then 'api_keys'
            else 'sign_in'
        end as auth_area,
        -- the events that end a sign-in, with their outcome (the catalog seed's, like every outcome)
        case
            when typed.event_type in (
                'sso_login_succeeded', 'magic_link_login_succeeded', 'social_login_succeeded',
                'step_up_authentication_succeeded', 'phone_code_verified',
                'sso_login_failed', 'magic_link_login_failed', 'step_up_authentication_failed'
            ) then typed.outcome
        end as login_result,
        {{ field('auth_method', 'typed') }} as auth_method,
        {{ field('mfa_method', 'typed') }} as mfa_method,
        {{ field('provider', 'typed') }} as login_provider,
        {{ field('method', 'typed') }} as step_up_method,
        {{ field('reason', 'typed') }} as failure_reason,
        typed.previous_role,
        typed."current_role",
        typed.granted_role,
        {{ field('role_id', 'typed') }} as role_id,
        {{ field('role_name', 'typed') }} as role_name,
        {{ field('principal_id', 'typed') }} as principal_id,
        {{ field('principal_type', 'typed') }} as principal_type,
        {{ field('group_id', 'typed') }} as group_id,
        {{ field('group_name', 'typed') }} as group_name,
        {{ list_field('member_ids', 'typed') }} as member_ids,
        coalesce(
            {{ field('user_id', 'typed') }}, {{ field('new_owner_id', 'typed') }}, {{ field('target_id', 'typed') }}
        )
            as target_user_id,
        {{ field('user_email', 'typed') }} as target_user_email,
        {{ field('previous_owner_id', 'typed') }} as previous_owner_id,
        {{ field('new_owner_id', 'typed') }} as new_owner_id,
        {{ field('trusted_device_id', 'typed') }} as trusted_device_id,
        typed.is_privileged_change,
        coalesce(recon_before_privileged_change.recon_events_prior_1h, 0) as recon_events_prior_1h,
        typed.is_privileged_change and coalesce(recon_before_privileged_change.recon_events_prior_1h, 0) > 0
            as is_recon_then_privileged_change
    from typed
    left join recon_before_privileged_change
        on typed.activity_id = recon_before_privileged_change.activity_id

)

select * from final
