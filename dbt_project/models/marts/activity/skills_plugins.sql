-- Claude Skills and Plugins (dashboards.md #5): skills, plugins and desktop extensions.

with activities as (

    {{ dashboard_activities('skills_plugins') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type like '%skill%' then 'skill'
            when activities.event_type like 'desktop\_extension\_%' escape '\' then 'desktop_extension'
            else 'plugin'
        end as extension_kind,
        {{ field('skill_id') }} as skill_id,
        {{ field('skill_name') }} as skill_name,
        {{ field('plugin_id') }} as plugin_id,
        {{ field('plugin_name') }} as plugin_name,
        {{ field('marketplace_id') }} as marketplace_id,
        {{ field('extension_id') }} as extension_id,
        {{ field('version') }} as version,
        {{ field('scan_id') }} as scan_id,
        activities.event_type like '%security\_scan\_completed' escape '\' as is_security_scan,
        case
            when
                activities.action in (
                    'enabled', 'disabled', 'deleted', 'allowlisted', 'blocklisted', 'unblocked',
                    'removed_from_allowlist'
                )
                then activities.action
        end as toggle_action,
        {{ field('installation_preference') }} as installation_preference,
        {{ field('max_permission') }} as max_permission,
        {{ field('group_name') }} as group_name,
        {{ field('cli_name') }} as cli_name
    from activities

)

select * from final
