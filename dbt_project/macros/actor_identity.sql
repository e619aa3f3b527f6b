{#-
  The actor identity: ONE definition, rendered by dbt (stg_activities -> actor_identity in every activity mart) and by
  the monitors (pipeline/monitors/identity.py renders this file with jinja2 and groups by it). Plain SQL over a row of
  raw.activities `a`; nothing dbt-specific may be used here.

  First non-null of: email, unauthenticated email, admin API key id, API key id, service account id, federated
  subject, SCIM directory id, `system:<service>` (system actors), IP address, `anthropic` (Anthropic's own actor,
  whose email is always null), `device:<external client id>` (an attested device without IP). The email must stay
  first: the monitors take it without reading the JSON when it is present.
-#}
{% macro actor_identity(a) -%}
coalesce(
        nullif({{ a }}.actor_email_address, ''),
        nullif({{ a }}.raw ->> '$.actor.unauthenticated_email_address', ''),
        nullif({{ a }}.actor_admin_api_key_id, ''),
        nullif({{ a }}.actor_api_key_id, ''),
        nullif({{ a }}.actor_service_account_id, ''),
        nullif({{ a }}.raw ->> '$.actor.subject', ''),
        nullif({{ a }}.raw ->> '$.actor.directory_id', ''),
        case when {{ a }}.actor_type = 'system_actor'
             then 'system:' || coalesce(nullif({{ a }}.raw ->> '$.actor.service', ''), 'unknown') end,
        nullif({{ a }}.ip_address, ''),
        case when {{ a }}.actor_type = 'anthropic_actor' then 'anthropic' end,
        'device:' || nullif({{ a }}.raw ->> '$.actor.external_client_id', '')
    )
{%- endmacro %}
