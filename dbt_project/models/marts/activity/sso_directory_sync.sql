-- SSO and Directory Sync (dashboards.md #12): SSO connections and settings, directory sync, SCIM users.

with activities as (

    {{ dashboard_activities('sso_directory_sync') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type like 'org\_sso\_connection\_%' escape '\' then 'sso_connection'
            when activities.event_type like 'org\_sso\_%' escape '\' then 'sso_settings'
            when activities.event_type like 'org\_directory\_resync\_%' escape '\' then 'directory_resync'
            when activities.event_type like 'org\_directory\_%' escape '\' then 'directory_sync'
            else 'scim_user'
        end as sso_area,
        {{ field('connection_id') }} as connection_id,
        coalesce({{ field('connection_type') }}, activities.idp_connection_type) as connection_type,
        activities.action as lifecycle_stage,
        activities.event_type = 'org_directory_resync_failed' as is_resync_failure,
        {{ field('resync_uuid') }} as resync_uuid,
        {{ field('new_mode') }} as new_mode,
        {{ field('previous_mode') }} as previous_mode,
        {{ bool_field('enabled') }} as enabled,
        {{ field('user_id') }} as target_user_id
    from activities

)

select * from final
