{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        tags=['partitioned'],
        pre_hook="{{ delete_window() }}",
    )
}}

-- Typed activities, one row per id. The raw JSON stays here (type-specific fields are read from it by the marts).

with source as (

    select * from {{ source('raw', 'activities') }}
    where true {{ window_filter('created_at') }}

),

deduplicated as (

    -- at-least-once delivery: the first stored copy of an id wins
    select *
    from source
    qualify row_number() over (partition by id order by fetched_at, run_id) = 1

),

renamed as (

    select
        id                                                          as activity_id,
        type                                                        as event_type,
        created_at,
        nullif(organization_id, '')                                 as organization_id,
        nullif(organization_uuid, '')                               as organization_uuid,
        actor_type,
        nullif(actor_user_id, '')                                   as actor_user_id,
        nullif(actor_email_address, '')                             as actor_email,
        nullif(raw ->> '$.actor.unauthenticated_email_address', '') as actor_unauthenticated_email,
        nullif(actor_admin_api_key_id, '')                          as actor_admin_api_key_id,
        nullif(actor_api_key_id, '')                                as actor_api_key_id,
        nullif(actor_service_account_id, '')                        as actor_service_account_id,
        nullif(raw ->> '$.actor.subject', '')                       as actor_federated_subject,
        nullif(raw ->> '$.actor.directory_id', '')                  as actor_scim_directory_id,
        nullif(raw ->> '$.actor.idp_connection_type', '')           as actor_idp_connection_type,
        nullif(raw ->> '$.actor.external_client_id', '')            as actor_attested_client_id,
        case when actor_type = 'system_actor'
             then coalesce(nullif(raw ->> '$.actor.service', ''), 'unknown') end
                                                                    as actor_system_service,
        nullif(ip_address, '')                                      as ip_address,
        -- macros/actor_identity.sql: the same expression groups the monitors' events
        {{ actor_identity('deduplicated') }}                        as actor_identity,
        nullif(user_agent, '')                                      as user_agent,
        raw,
        fetched_at,
        run_id                                                      as ingest_run_id,
        '{{ invocation_id }}'                                       as dbt_invocation_id

    from deduplicated

)

select * from renamed
