{#- Row-level logic shared by the activity models. Each is covered by a dbt unit test (models/**.yml). -#}

{#- success / failure / unknown. The catalog seed gives it per type (docs/outcomes.md); for `derived` types it comes
    from a field of the record (HTTP status of Compliance API calls, result enums, failure flags, the `approved` flag
    of a decision). Types unknown to the catalog get it from seeds/activity_outcome_rules.csv by their action
    (model int_activity_types), `unknown` when no rule names it. -#}
{% macro activity_outcome(catalog_outcome, event_type, raw) -%}
    case
        when {{ catalog_outcome }} in ('success', 'failure', 'unknown') then {{ catalog_outcome }}
        when {{ event_type }} = 'compliance_api_accessed' then
            case when try_cast({{ raw }} ->> '$.status_code' as integer) between 200 and 299 then 'success'
                 when try_cast({{ raw }} ->> '$.status_code' as integer) is not null then 'failure'
                 else 'unknown' end
        when {{ event_type }} = 'github_token_import' then
            case when {{ raw }} ->> '$.result' = 'imported' then 'success'
                 when {{ raw }} ->> '$.result' like 'rejected%' or {{ raw }} ->> '$.result' like 'failed%' then 'failure'
                 else 'unknown' end
        when {{ event_type }} = 'org_external_key_validated' then
            case {{ raw }} ->> '$.validation_result' when 'success' then 'success' when 'failure' then 'failure'
                 else 'unknown' end
        when {{ event_type }} = 'ccr_agent_proxy_network_events_listed' then
            case try_cast({{ raw }} ->> '$.failed' as boolean) when true then 'failure' when false then 'success'
                 else 'unknown' end
        when {{ event_type }} = 'org_join_proposal_decided' then
            case try_cast({{ raw }} ->> '$.approved' as boolean) when true then 'success' when false then 'failure'
                 else 'unknown' end
        when {{ event_type }} = 'mcp_server_managed_auth_token_exchanged' then
            case when nullif({{ raw }} ->> '$.error_type', '') is not null
                      or lower({{ raw }} ->> '$.outcome') in ('failure', 'failed', 'error') then 'failure'
                 when lower({{ raw }} ->> '$.outcome') = 'success' then 'success'
                 else 'unknown' end
        else 'unknown'
    end
{%- endmacro %}

{#- Generic split of an unknown type name into resource kind and action (mirrors scripts/build_activity_catalog.py
    without its per-type overrides): the last token is the action, qualifiers before it are dropped
    (`*_access_failed` -> failed), `claude_` / `org_` prefixes are dropped. -#}
{% macro unknown_type_resource_kind(event_type) -%}
    regexp_replace(
        regexp_replace({{ event_type }}, '(_(access|deletion|addition|removal|sharing|instant|bulk))*_[^_]+$', ''),
        '^(claude|org)_(.+)$', '\2')
{%- endmacro %}

{% macro unknown_type_action(event_type) -%}
    case when {{ event_type }} like '%\_sharing\_updated' escape '\' then 'shared'
         else regexp_extract({{ event_type }}, '([^_]+)$', 1) end
{%- endmacro %}


{#- The per-event conditions of the 9 monitors (product/monitors.md, default type lists), without their thresholds and
    windows: which rules an event can feed. The alerts themselves (thresholds met) are in marts.alerts. -#}
{% macro monitor_rules(a) -%}
    list_filter([
        case when {{ a }}.event_type in ('admin_api_key_created', 'platform_api_key_created')
             then 'admin_or_platform_api_key_created' end,
        case when {{ a }}.event_type = 'org_compliance_api_settings_updated'
                  and (try_cast({{ a }}.raw ->> '$.compliance_api_logging_enabled' as boolean) = false
                       or try_cast({{ a }}.raw ->> '$.compliance_api_enabled' as boolean) = false)
             then 'compliance_logging_disabled' end,
        case when {{ a }}.event_type = 'org_ip_restriction_deleted' then 'ip_restriction_deleted' end,
        case when {{ a }}.is_embargoed then 'embargoed_location' end,
        case when {{ a }}.event_type in ('sso_login_failed', 'magic_link_login_failed', 'step_up_authentication_failed')
             then 'excessive_failed_auth' end,
        case when {{ a }}.event_type = 'compliance_api_accessed'
                  and try_cast({{ a }}.raw ->> '$.status_code' as integer) in (401, 403)
             then 'excessive_unauthorized_compliance_api' end,
        case when {{ a }}.event_type in ('org_deletion_requested', 'org_bulk_delete_initiated', 'org_deleted_via_bulk',
                                         'org_user_deleted', 'org_taint_added')
             then 'org_destructive_activity' end,
        case when {{ a }}.event_type in ('claude_chat_deleted', 'claude_project_deleted', 'claude_file_deleted',
                                         'claude_project_file_deleted', 'claude_project_document_deleted')
             then 'resource_deletion_outlier' end,
        case when {{ a }}.actor_type = 'unauthenticated_user_actor'
                  and {{ a }}.event_type not in ('sso_login_initiated', 'sso_login_failed', 'sso_login_succeeded',
                        'magic_link_login_initiated', 'magic_link_login_failed', 'magic_link_login_succeeded',
                        'phone_code_sent', 'phone_code_verified', 'sso_second_factor_magic_link',
                        'social_login_succeeded')
             then 'unauthenticated_activity' end
    ], lambda rule: rule is not null)
{%- endmacro %}
