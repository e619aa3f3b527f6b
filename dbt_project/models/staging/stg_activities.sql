-- Typed activities, one row per id. The raw JSON stays here: the marts read type-specific fields from it
-- (macros/dashboard_activities.sql).

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
        deduplicated.id as activity_id,
        deduplicated.type as event_type,
        deduplicated.created_at,
        nullif(deduplicated.organization_id, '') as organization_id,
        nullif(deduplicated.organization_uuid, '') as organization_uuid,
        deduplicated.actor_type,
        nullif(deduplicated.actor_user_id, '') as actor_user_id,
        nullif(deduplicated.actor_email_address, '') as actor_email,
        nullif(deduplicated.raw ->> '$.actor.unauthenticated_email_address', '') as actor_unauthenticated_email,
        nullif(deduplicated.actor_admin_api_key_id, '') as actor_admin_api_key_id,
        nullif(deduplicated.actor_api_key_id, '') as actor_api_key_id,
        nullif(deduplicated.actor_service_account_id, '') as actor_service_account_id,
        nullif(deduplicated.raw ->> '$.actor.subject', '') as actor_federated_subject,
        nullif(deduplicated.raw ->> '$.actor.directory_id', '') as actor_scim_directory_id,
        nullif(deduplicated.raw ->> '$.actor.idp_connection_type', '') as actor_idp_connection_type,
        nullif(deduplicated.raw ->> '$.actor.external_client_id', '') as actor_attested_client_id,
        case
            when deduplicated.actor_type = 'system_actor'
                then coalesce(nullif(deduplicated.raw ->> '$.actor.service', ''), 'unknown')
        end
            as actor_system_service,
        nullif(deduplicated.ip_address, '') as ip_address,
        -- macros/actor_identity.sql: the same expression groups the monitors' events
        {{ actor_identity('deduplicated') }} as actor_identity,
        nullif(deduplicated.user_agent, '') as user_agent,
        deduplicated.raw,
        deduplicated.fetched_at,
        deduplicated.run_id as ingest_run_id,
        '{{ invocation_id }}' as dbt_invocation_id

    from deduplicated

)

select * from renamed
