-- One row per distinct user-agent string, parsed by pipeline/enrichment/useragent.py.

with source as (

    select * from {{ source('enrichment', 'user_agents') }}

),

latest as (

    select *
    from source
    qualify row_number() over (partition by user_agent order by enriched_at desc) = 1

),

renamed as (

    select
        user_agent,
        browser_family as ua_browser_family,
        browser_version as ua_browser_version,
        os_family as ua_os_family,
        os_version as ua_os_version,
        device_family as ua_device_family,
        platform as ua_platform,
        client_category as ua_client_category,
        client_name as ua_client_name,
        is_automated as ua_is_automated

    from latest

)

select * from renamed
