-- SSO and Directory Sync (dashboards.md #12): SSO connections and settings, directory sync, SCIM users.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'sso_directory_sync') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

final as (

    select
        {{ activity_common_columns('a') }},
        case
            when a.event_type like 'org\_sso\_connection\_%' escape '\' then 'sso_connection'
            when a.event_type like 'org\_sso\_%' escape '\' then 'sso_settings'
            when a.event_type like 'org\_directory\_resync\_%' escape '\' then 'directory_resync'
            when a.event_type like 'org\_directory\_%' escape '\' then 'directory_sync'
            else 'scim_user'
        end                                                         as sso_area,
        {{ field('connection_id') }}                                as connection_id,
        coalesce({{ field('connection_type') }}, a.idp_connection_type)
                                                                    as connection_type,
        a.action                                                    as lifecycle_stage,
        a.event_type = 'org_directory_resync_failed'                as is_resync_failure,
        {{ field('resync_uuid') }}                                  as resync_uuid,
        {{ field('new_mode') }}                                     as new_mode,
        {{ field('previous_mode') }}                                as previous_mode,
        {{ bool_field('enabled') }}                                 as enabled,
        {{ field('user_id') }}                                      as target_user_id
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

)

select * from final
