{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        tags=['partitioned'],
        pre_hook="{{ delete_window() }}",
        post_hook="{{ record_reference_applied() }}",
        meta={'rebuilds_on_reference_change': true},
    )
}}

-- depends_on: {{ ref('int_reference_versions') }}

-- One row per activity with everything every activity mart shares: time buckets, categorisation, outcome, actor
-- identity, geolocation and embargo, parsed user agent, the monitor rules the event can feed. Besides its window, a
-- run rebuilds the rows whose reference keys changed (macros/reference_changes.sql).

with activities as (

    select * from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }}

),

activity_types as (

    select * from {{ ref('int_activity_types') }}

),

ip_geolocation as (

    select * from {{ ref('stg_ip_geolocation') }}

),

user_agents as (

    select * from {{ ref('stg_user_agents') }}

),

embargoed_regions as (

    select * from {{ ref('embargoed_regions') }}

),

geolocated as (

    select
        a.*,
        coalesce(g.ip_is_private, false)                                    as ip_is_private,
        g.geo_country_iso,
        g.geo_country_name,
        g.geo_subdivision_iso,
        g.geo_subdivision_name,
        g.geo_city,
        g.geo_latitude,
        g.geo_longitude
    from activities as a
    left join ip_geolocation as g on g.ip_address = a.ip_address

),

embargo_matches as (

    -- a country listed without a region embargoes the whole country; a region row only that region. Private,
    -- reserved and unknown addresses have no country, so they never match.
    select
        a.activity_id,
        string_agg(coalesce(e.subdivision_iso, e.country_iso), ', ' order by coalesce(e.subdivision_iso, e.country_iso))
                                                                            as embargo_region
    from geolocated as a
    join embargoed_regions as e
        on e.country_iso = a.geo_country_iso
       and (nullif(e.subdivision_iso, '') is null or e.subdivision_iso = a.geo_subdivision_iso)
       and a.created_at >= coalesce(e.effective_from, date '1970-01-01')
    where not a.ip_is_private
    group by a.activity_id

),

enriched as (

    select
        a.activity_id,
        a.created_at,
        time_bucket(interval '5 minutes', a.created_at)                     as created_5min,
        date_trunc('hour', a.created_at)                                    as created_hour,
        cast(timezone('UTC', a.created_at) as date)                         as created_date,
        coalesce(a.event_type, '(none)')                                    as event_type,
        coalesce(t.category, 'uncategorized')                               as category,
        coalesce(t.dashboards, []::varchar[])                               as dashboards,
        t.resource_kind,
        t.action,
        {{ activity_outcome('t.outcome', 'a.event_type', 'a.raw') }}        as outcome,
        coalesce(t.is_known_type, false)                                    as is_known_type,
        coalesce(t.is_reconnaissance, false)                                as is_reconnaissance,
        a.organization_id,
        a.organization_uuid,
        a.actor_type,
        a.actor_identity,
        a.actor_user_id,
        a.actor_email,
        a.actor_api_key_id,
        a.actor_admin_api_key_id,
        a.actor_service_account_id,
        a.actor_idp_connection_type                                         as idp_connection_type,
        a.ip_address,
        a.ip_is_private,
        a.geo_country_iso,
        a.geo_country_name,
        a.geo_subdivision_iso,
        a.geo_subdivision_name,
        a.geo_city,
        a.geo_latitude,
        a.geo_longitude,
        e.activity_id is not null                                           as is_embargoed,
        e.embargo_region,
        a.user_agent,
        u.ua_browser_family,
        u.ua_os_family,
        u.ua_device_family,
        u.ua_platform,
        -- a user agent not (yet) parsed is `unknown`, never mistaken for human or automated
        case when a.user_agent is null then null
             else coalesce(u.ua_client_category, 'unknown') end             as ua_client_category,
        u.ua_client_name,
        case when a.user_agent is null then null else u.ua_is_automated end
                                                                            as ua_is_automated,
        try_cast(a.raw ->> '$.status_code' as integer)                      as http_status_code,
        '{{ invocation_id }}'                                               as dbt_invocation_id,
        a.raw
    from geolocated as a
    left join activity_types as t on t.event_type = a.event_type
    left join embargo_matches as e on e.activity_id = a.activity_id
    left join user_agents as u on u.user_agent = a.user_agent

),

final as (

    select
        * exclude (raw),
        {{ monitor_rules('enriched') }}                                     as monitor_rules
    from enriched

)

select * from final
