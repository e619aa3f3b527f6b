{#- Row-level logic shared by the activity models. Each is covered by a dbt unit test (models/**.yml). -#}

{#- Actor identity (product/dashboards.md): first non-null of email, unauthenticated email, admin API key id, API key
    id, service account id, federated subject, SCIM directory id, system:<service>, IP. Anthropic's own actor carries
    none of these (its email is always null): it is named `anthropic`; an attested device without IP is named by its
    client id (`device:<external_client_id>`), rather than left null. -#}
{% macro actor_identity(a) -%}
    coalesce(
        {{ a }}.actor_email,
        {{ a }}.actor_unauthenticated_email,
        {{ a }}.actor_admin_api_key_id,
        {{ a }}.actor_api_key_id,
        {{ a }}.actor_service_account_id,
        {{ a }}.actor_federated_subject,
        {{ a }}.actor_scim_directory_id,
        'system:' || {{ a }}.actor_system_service,
        {{ a }}.ip_address,
        case when {{ a }}.actor_type = 'anthropic_actor' then 'anthropic' end,
        'device:' || {{ a }}.actor_attested_client_id
    )
{%- endmacro %}

{#- success / failure / unknown. The catalog gives it per type; for `derived` types it comes from a field of the
    record (HTTP status of Compliance API calls, result enums, failure flags). Unknown types: failure when the name
    says so (`*_failed`, `*_denied`, `*_rejected`, `*_invalid`), otherwise unknown. -#}
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

{% macro unknown_type_outcome(event_type) -%}
    case when regexp_extract({{ event_type }}, '([^_]+)$', 1) in ('failed', 'denied', 'rejected', 'invalid')
         then 'failure' else 'unknown' end
{%- endmacro %}

{#- monitor_rules(a): generated from the monitors' configuration, see macros/monitor_rules.sql. -#}
