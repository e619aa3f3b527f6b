-- Claude Skills and Plugins (dashboards.md #5): skills, plugins and desktop extensions.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'skills_plugins') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

final as (

    select
        {{ activity_common_columns('a') }},
        case
            when a.event_type like '%skill%' then 'skill'
            when a.event_type like 'desktop\_extension\_%' escape '\' then 'desktop_extension'
            else 'plugin'
        end                                                         as extension_kind,
        {{ field('skill_id') }}                                     as skill_id,
        {{ field('skill_name') }}                                   as skill_name,
        {{ field('plugin_id') }}                                    as plugin_id,
        {{ field('plugin_name') }}                                  as plugin_name,
        {{ field('marketplace_id') }}                               as marketplace_id,
        {{ field('extension_id') }}                                 as extension_id,
        {{ field('version') }}                                      as version,
        {{ field('scan_id') }}                                      as scan_id,
        a.event_type like '%security\_scan\_completed' escape '\'  as is_security_scan,
        case when a.action in ('enabled', 'disabled', 'deleted', 'allowlisted', 'blocklisted', 'unblocked',
                               'removed_from_allowlist')
             then a.action end                                      as toggle_action,
        {{ field('installation_preference') }}                      as installation_preference,
        {{ field('max_permission') }}                               as max_permission,
        {{ field('group_name') }}                                   as group_name,
        {{ field('cli_name') }}                                     as cli_name
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

)

select * from final
