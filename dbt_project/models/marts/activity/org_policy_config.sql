-- Organization and Policy Configuration (dashboards.md #11): org settings, management, hooks, domains.

with activities as (

    {{ dashboard_activities('org_policy_config') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type like 'org\_cowork\_%' escape '\' then 'cowork'
            when activities.event_type like 'org\_claude\_code\_%' escape '\' then 'claude_code'
            when activities.event_type like 'org\_discoverability\_%' escape '\' then 'discoverability'
            when activities.event_type like 'org\_member\_invites\_%' escape '\' then 'invites'
            when activities.event_type like 'org\_magic\_link\_%' escape '\' then 'magic_link'
            when activities.event_type like 'org\_model\_default\_%' escape '\' then 'model_default'
            when activities.event_type like 'org\_data\_residency\_%' escape '\' then 'data_residency'
            when activities.event_type like 'org\_hipaa\_%' escape '\' then 'hipaa'
            when activities.event_type like 'org\_work\_across\_apps\_%' escape '\' then 'work_across_apps'
            when activities.event_type like 'org\_capability\_grant\_%' escape '\' then 'capability_grants'
            when activities.event_type like 'org\_ip\_restriction\_%' escape '\' then 'ip_restrictions'
            when
                activities.event_type like 'org\_domain\_%' escape '\'
                or activities.event_type = 'domain_claim_initiated'
                then 'domains'
            when activities.event_type = 'org_compliance_api_settings_updated' then 'compliance_api'
            when activities.event_type like 'org\_taint\_%' escape '\' then 'taints'
            when activities.event_type like 'inference\_hooks\_%' escape '\' then 'inference_hooks'
            when activities.event_type like 'org\_sync\_%' escape '\' then 'file_sync'
            when activities.event_type like 'org\_analytics\_%' escape '\' then 'analytics_api'
            when activities.event_type = 'org_connector_domain_guard_updated' then 'connectors'
            when activities.event_type in (
                'org_deletion_requested', 'org_bulk_delete_initiated', 'org_deleted_via_bulk',
                'org_creation_blocked', 'org_parent_join_proposal_created',
                'org_parent_search_performed'
            )
            or activities.event_type like 'organization\_%' escape '\' then 'org_management'
            when activities.event_type = 'claude_organization_settings_updated' then 'org_settings'
            else 'other'
        end as config_area,
        (
            activities.event_type like '%\_disabled' escape '\'
            or lower({{ field('current_value') }}) = 'false'
            or {{ bool_field('enabled') }} = false
            or {{ bool_field('compliance_api_enabled') }} = false
            or {{ bool_field('compliance_api_logging_enabled') }} = false
        ) as is_disabled_event,
        activities.event_type in (
            'org_model_default_updated', 'org_capability_grant_added', 'org_capability_grant_removed',
            'org_member_invites_enabled', 'org_member_invites_disabled',
            'org_work_across_apps_enabled', 'org_work_across_apps_disabled',
            'claude_organization_settings_updated'
        ) as is_user_policy_change,
        {{ field('current_value') }} as current_value,
        {{ field('previous_value') }} as previous_value,
        {{ bool_field('enabled') }} as enabled,
        {{ bool_field('compliance_api_enabled') }} as compliance_api_enabled,
        {{ bool_field('compliance_api_logging_enabled') }} as compliance_api_logging_enabled,
        {{ field('domain') }} as domain,
        {{ field('taint') }} as taint,
        {{ field('grant_type') }} as grant_type,
        {{ field('principal_type') }} as principal_type,
        {{ field('principal_id') }} as principal_id,
        {{ field('default_model') }} as default_model,
        {{ field('reason') }} as reason,
        {{ json_text_field('updates') }} as updates
    from activities

)

select * from final
