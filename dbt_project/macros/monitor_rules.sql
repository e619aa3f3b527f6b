{#- GENERATED from the monitors' configuration by `python -m pipeline.monitors dbt-rules`
    (pipeline/monitors/dbt_rules.py): do not edit. The per-event conditions of the enabled monitors, without
    their thresholds and windows: which rules an event can feed. The alerts are in marts.alerts. -#}
{% macro monitor_rules(a) -%}
    list_filter([
        case when {{ a }}.event_type in ('admin_api_key_created', 'platform_api_key_created')
             then 'admin_or_platform_api_key_created' end,
        case when {{ a }}.event_type in ('org_compliance_api_settings_updated') and (lower({{ a }}.raw ->> '$.compliance_api_logging_enabled') = 'false' or lower({{ a }}.raw ->> '$.compliance_api_enabled') = 'false')
             then 'compliance_logging_disabled' end,
        case when {{ a }}.event_type in ('org_ip_restriction_deleted')
             then 'ip_restriction_deleted' end,
        case when coalesce({{ a }}.is_embargoed, false)
             then 'embargoed_location' end,
        case when {{ a }}.event_type in ('sso_login_failed', 'magic_link_login_failed', 'step_up_authentication_failed')
             then 'excessive_failed_auth' end,
        case when {{ a }}.event_type in ('compliance_api_accessed') and try_cast({{ a }}.raw ->> '$.status_code' as double) in (401, 403)
             then 'excessive_unauthorized_compliance_api' end,
        case when {{ a }}.event_type in ('org_deletion_requested', 'org_bulk_delete_initiated', 'org_deleted_via_bulk', 'org_user_deleted', 'org_taint_added')
             then 'org_destructive_activity' end,
        case when {{ a }}.event_type in ('claude_chat_deleted', 'claude_project_deleted', 'claude_file_deleted', 'claude_project_file_deleted', 'claude_project_document_deleted')
             then 'resource_deletion_outlier' end,
        case when coalesce({{ a }}.event_type not in ('sso_login_initiated', 'sso_login_failed', 'sso_login_succeeded', 'magic_link_login_initiated', 'magic_link_login_failed', 'magic_link_login_succeeded', 'phone_code_sent', 'phone_code_verified', 'sso_second_factor_magic_link', 'social_login_succeeded'), true) and {{ a }}.actor_type in ('unauthenticated_user_actor')
             then 'unauthenticated_activity' end,
        case when {{ a }}.event_type in ('role_assignment_granted') and (coalesce(regexp_matches(json_extract_string({{ a }}.raw, '$.role'), '(^|[:/.])(admin|owner|primary_owner|membership_admin)$'), false))
             then 'admin_role_granted' end,
        case when {{ a }}.event_type in ('primary_owner_transferred')
             then 'primary_owner_transferred' end,
        case when {{ a }}.event_type in ('org_sso_toggled') and (coalesce(lower(json_extract_string({{ a }}.raw, '$.enabled')) = 'false', false))
             then 'sso_disabled' end,
        case when {{ a }}.event_type in ('org_sso_connection_deactivated', 'org_sso_connection_deleted')
             then 'sso_connection_removed' end,
        case when {{ a }}.event_type in ('org_magic_link_second_factor_toggled') and (coalesce(lower(json_extract_string({{ a }}.raw, '$.enabled')) = 'false', false))
             then 'magic_link_second_factor_disabled' end,
        case when {{ a }}.event_type in ('claude_artifact_sharing_updated', 'claude_project_sharing_updated') and ((coalesce(json_extract_string({{ a }}.raw, '$.audience.type') IN ('anyone_with_link', 'public'), false) OR coalesce(list_bool_or(list_transform(json_extract_string({{ a }}.raw, '$.audience[*].type'), lambda x: x IN ('anyone_with_link', 'public'))), false)))
             then 'resource_shared_publicly' end,
        case when {{ a }}.event_type in ('service_key_created', 'service_key_revoked', 'admin_api_key_deleted')
             then 'access_key_changed' end,
        case when {{ a }}.event_type in ('mcp_server_created')
             then 'mcp_server_created' end,
        case when {{ a }}.event_type in ('org_data_export_started')
             then 'first_data_export' end,
        case when {{ a }}.event_type in ('role_assignment_granted', 'primary_owner_transferred', 'org_sso_toggled', 'org_sso_connection_deactivated', 'org_sso_connection_deleted', 'org_magic_link_second_factor_toggled', 'admin_api_key_deleted', 'service_key_created', 'service_key_revoked', 'mcp_server_created', 'org_data_export_started') and coalesce({{ a }}.ua_is_automated, false)
             then 'automated_privileged_action' end,
        case when {{ a }}.event_type in ('claude_chat_deleted')
             then 'excessive_chat_deletions' end,
        case when {{ a }}.event_type in ('claude_chat_access_failed')
             then 'excessive_chat_access_failures' end,
        case when {{ a }}.event_type in ('org_compliance_api_settings_updated') and (coalesce(lower(json_extract_string({{ a }}.raw, '$.compliance_api_logging_enabled')) = 'false', false) OR coalesce(lower(json_extract_string({{ a }}.raw, '$.compliance_api_enabled')) = 'false', false))
             then 'logging_disabled_then_privileged_change' end
    ]::varchar[], lambda rule: rule is not null)
{%- endmacro %}
