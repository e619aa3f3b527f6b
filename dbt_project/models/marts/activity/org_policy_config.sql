-- Organization and Policy Configuration (dashboards.md #11): org settings, management, hooks, domains.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'org_policy_config') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

final as (

    select
        {{ activity_common_columns('a') }},
        case
            when a.event_type like 'org\_cowork\_%' escape '\' then 'cowork'
            when a.event_type like 'org\_claude\_code\_%' escape '\' then 'claude_code'
            when a.event_type like 'org\_discoverability\_%' escape '\' then 'discoverability'
            when a.event_type like 'org\_member\_invites\_%' escape '\' then 'invites'
            when a.event_type like 'org\_magic\_link\_%' escape '\' then 'magic_link'
            when a.event_type like 'org\_model\_default\_%' escape '\' then 'model_default'
            when a.event_type like 'org\_data\_residency\_%' escape '\' then 'data_residency'
            when a.event_type like 'org\_hipaa\_%' escape '\' then 'hipaa'
            when a.event_type like 'org\_work\_across\_apps\_%' escape '\' then 'work_across_apps'
            when a.event_type like 'org\_capability\_grant\_%' escape '\' then 'capability_grants'
            when a.event_type like 'org\_ip\_restriction\_%' escape '\' then 'ip_restrictions'
            when a.event_type like 'org\_domain\_%' escape '\' or a.event_type = 'domain_claim_initiated' then 'domains'
            when a.event_type = 'org_compliance_api_settings_updated' then 'compliance_api'
            when a.event_type like 'org\_taint\_%' escape '\' then 'taints'
            when a.event_type like 'inference\_hooks\_%' escape '\' then 'inference_hooks'
            when a.event_type like 'org\_sync\_%' escape '\' then 'file_sync'
            when a.event_type like 'org\_analytics\_%' escape '\' then 'analytics_api'
            when a.event_type = 'org_connector_domain_guard_updated' then 'connectors'
            when a.event_type in ('org_deletion_requested', 'org_bulk_delete_initiated', 'org_deleted_via_bulk',
                                  'org_creation_blocked', 'org_parent_join_proposal_created',
                                  'org_parent_search_performed')
                 or a.event_type like 'organization\_%' escape '\' then 'org_management'
            when a.event_type = 'claude_organization_settings_updated' then 'org_settings'
            else 'other'
        end                                                         as config_area,
        (
            a.event_type like '%\_disabled' escape '\'
            or lower({{ field('current_value') }}) = 'false'
            or {{ bool_field('enabled') }} = false
            or {{ bool_field('compliance_api_enabled') }} = false
            or {{ bool_field('compliance_api_logging_enabled') }} = false
        )                                                           as is_disabled_event,
        a.event_type in ('org_model_default_updated', 'org_capability_grant_added', 'org_capability_grant_removed',
                         'org_member_invites_enabled', 'org_member_invites_disabled',
                         'org_work_across_apps_enabled', 'org_work_across_apps_disabled',
                         'claude_organization_settings_updated')
                                                                    as is_user_policy_change,
        {{ field('current_value') }}                                as current_value,
        {{ field('previous_value') }}                               as previous_value,
        {{ bool_field('enabled') }}                                 as enabled,
        {{ bool_field('compliance_api_enabled') }}                  as compliance_api_enabled,
        {{ bool_field('compliance_api_logging_enabled') }}          as compliance_api_logging_enabled,
        {{ field('domain') }}                                       as domain,
        {{ field('taint') }}                                        as taint,
        {{ field('grant_type') }}                                   as grant_type,
        {{ field('principal_type') }}                               as principal_type,
        {{ field('principal_id') }}                                 as principal_id,
        {{ field('default_model') }}                                as default_model,
        {{ field('reason') }}                                       as reason,
        {{ json_text_field('updates') }}                            as updates
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

)

select * from final
