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


{#- monitor_rules(a): generated from the monitors' configuration, see macros/monitor_rules.sql. -#}
