-- API Key Monitoring (dashboards.md #3): API, admin, scoped, platform, service, signing and external keys.

with activities as (

    {{ dashboard_activities('api_key_monitoring') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type like 'admin\_api\_key\_%' escape '\' then 'admin'
            when activities.event_type like 'service\_key\_%' escape '\' then 'service'
            when activities.event_type like 'platform\_signing\_key\_%' escape '\' then 'signing'
            when activities.event_type like 'org\_external\_key\_%' escape '\' then 'external'
            else 'api'
        end as key_kind,
        case
            when activities.action = 'created' then 'created'
            when activities.action in ('deleted', 'revoked') then 'deleted'
            else 'updated'
        end as key_lifecycle,
        coalesce(
            {{ field('api_key_id') }}, {{ field('admin_api_key_id') }}, {{ field('service_key_id') }},
            {{ field('signing_key_id') }}, {{ field('new_signing_key_id') }}, {{ field('external_key_id') }})
            as key_id,
        coalesce({{ field('api_key_name') }}, {{ field('key_name') }}) as key_name,
        {{ list_field('scopes') }} as scopes,
        {{ field('service_name') }} as service_name,
        {{ field('provider') }} as provider,
        {{ field('algorithm') }} as algorithm,
        {{ field('validation_result') }} as validation_result,
        {{ bool_field('restricted_to_organization') }} as restricted_to_organization,
        {{ json_text_field('updates') }} as updates
    from activities

)

select * from final
