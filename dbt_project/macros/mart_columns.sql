{#- The columns every activity mart starts with, identical in all 15 (product/dashboards.md, "Common columns"). -#}
{% macro activity_common_columns(a) -%}
        {{ a }}.activity_id,
        {{ a }}.created_at,
        {{ a }}.created_5min,
        {{ a }}.created_hour,
        {{ a }}.created_date,
        {{ a }}.event_type,
        {{ a }}.category,
        {{ a }}.resource_kind,
        {{ a }}.action,
        {{ a }}.outcome,
        {{ a }}.is_known_type,
        {{ a }}.organization_id,
        {{ a }}.organization_uuid,
        {{ a }}.actor_type,
        {{ a }}.actor_identity,
        {{ a }}.actor_user_id,
        {{ a }}.actor_email,
        {{ a }}.actor_api_key_id,
        {{ a }}.actor_admin_api_key_id,
        {{ a }}.actor_service_account_id,
        {{ a }}.ip_address,
        {{ a }}.ip_is_private,
        {{ a }}.geo_country_iso,
        {{ a }}.geo_country_name,
        {{ a }}.geo_subdivision_iso,
        {{ a }}.geo_subdivision_name,
        {{ a }}.geo_city,
        {{ a }}.geo_latitude,
        {{ a }}.geo_longitude,
        {{ a }}.is_embargoed,
        {{ a }}.embargo_region,
        {{ a }}.user_agent,
        {{ a }}.ua_browser_family,
        {{ a }}.ua_os_family,
        {{ a }}.ua_device_family,
        {{ a }}.ua_platform,
        {{ a }}.ua_client_category,
        {{ a }}.ua_client_name,
        {{ a }}.ua_is_automated,
        {{ a }}.idp_connection_type,
        -- which dbt run wrote the row: an incremental run rewrites only its window
        '{{ invocation_id }}' as dbt_invocation_id
{%- endmacro %}

{#- Type-specific field of the raw activity as text / number / boolean / comma-joined list. -#}
{% macro field(name, p='activities') -%}nullif({{ p }}.raw ->> '$.{{ name }}', ''){%- endmacro %}
{% macro num_field(name, p='activities') -%}try_cast({{ p }}.raw ->> '$.{{ name }}' as double){%- endmacro %}
{% macro int_field(name, p='activities') -%}try_cast({{ p }}.raw ->> '$.{{ name }}' as bigint){%- endmacro %}
{% macro bool_field(name, p='activities') -%}try_cast({{ p }}.raw ->> '$.{{ name }}' as boolean){%- endmacro %}
{% macro list_field(name, p='activities') -%}
    case when json_type(({{ p }}.raw -> '$.{{ name }}')) = 'ARRAY'
         then array_to_string(from_json(({{ p }}.raw -> '$.{{ name }}'), '["VARCHAR"]'), ', ')
         else nullif({{ p }}.raw ->> '$.{{ name }}', '') end
{%- endmacro %}
{#- A nested object or array kept as JSON text, for display only (panels never parse it). -#}
{% macro json_text_field(name, p='activities') -%}
    case when ({{ p }}.raw -> '$.{{ name }}') is null or json_type(({{ p }}.raw -> '$.{{ name }}')) = 'NULL' then null
         else ({{ p }}.raw -> '$.{{ name }}')::varchar end
{%- endmacro %}

{#- ('a', 'b') from a list var. -#}
{% macro sql_list(values) -%}
    ({%- for v in values -%}'{{ v | replace("'", "''") }}'{{ ", " if not loop.last }}{%- endfor -%})
{%- endmacro %}
