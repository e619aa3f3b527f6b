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
        activities.*,
        coalesce(ip_geolocation.ip_is_private, false) as ip_is_private,
        ip_geolocation.geo_country_iso,
        ip_geolocation.geo_country_name,
        ip_geolocation.geo_subdivision_iso,
        ip_geolocation.geo_subdivision_name,
        ip_geolocation.geo_city,
        ip_geolocation.geo_latitude,
        ip_geolocation.geo_longitude
    from activities
    left join ip_geolocation on activities.ip_address = ip_geolocation.ip_address

),

embargo_matches as (

    -- a country listed without a region embargoes the whole country; a region row only that region. Private,
    -- reserved and unknown addresses have no country, so they never match.
    select
        geolocated.activity_id,
        string_agg(
            coalesce(embargoed_regions.subdivision_iso, embargoed_regions.country_iso),
            ', ' order by coalesce(embargoed_regions.subdivision_iso, embargoed_regions.country_iso)
        )
            as embargo_region
    from geolocated
    inner join embargoed_regions
        on
            geolocated.geo_country_iso = embargoed_regions.country_iso
            and (
                nullif(embargoed_regions.subdivision_iso, '') is null
                or geolocated.geo_subdivision_iso = embargoed_regions.subdivision_iso
            )
            and geolocated.created_at >= coalesce(embargoed_regions.effective_from, date '1970-01-01')
    where not geolocated.ip_is_private
    group by geolocated.activity_id

),

enriched as (

    select
        geolocated.activity_id,
        geolocated.created_at,
        time_bucket(interval '5 minutes', geolocated.created_at) as created_5min,
        date_trunc('hour', geolocated.created_at) as created_hour,
        (timezone('UTC', geolocated.created_at))::date as created_date,
        coalesce(geolocated.event_type, '(none)') as event_type,
        coalesce(activity_types.category, 'uncategorized') as category,
        coalesce(activity_types.dashboards, []::varchar[]) as dashboards,
        activity_types.resource_kind,
        activity_types.action,
        {{ activity_outcome('activity_types.outcome', 'geolocated.event_type', 'geolocated.raw') }} as outcome,
        coalesce(activity_types.is_known_type, false) as is_known_type,
        coalesce(activity_types.is_reconnaissance, false) as is_reconnaissance,
        geolocated.organization_id,
        geolocated.organization_uuid,
        geolocated.actor_type,
        geolocated.actor_identity,
        geolocated.actor_user_id,
        geolocated.actor_email,
        geolocated.actor_api_key_id,
        geolocated.actor_admin_api_key_id,
        geolocated.actor_service_account_id,
        geolocated.actor_idp_connection_type as idp_connection_type,
        geolocated.ip_address,
        geolocated.ip_is_private,
        geolocated.geo_country_iso,
        geolocated.geo_country_name,
        geolocated.geo_subdivision_iso,
        geolocated.geo_subdivision_name,
        geolocated.geo_city,
        geolocated.geo_latitude,
        geolocated.geo_longitude,
        embargo_matches.activity_id is not null as is_embargoed,
        embargo_matches.embargo_region,
        geolocated.user_agent,
        user_agents.ua_browser_family,
        user_agents.ua_os_family,
        user_agents.ua_device_family,
        user_agents.ua_platform,
        -- a user agent not (yet) parsed is `unknown`, never mistaken for human or automated
        case
            when geolocated.user_agent is null then null
            else coalesce(user_agents.ua_client_category, 'unknown')
        end as ua_client_category,
        user_agents.ua_client_name,
        case when geolocated.user_agent is null then null else user_agents.ua_is_automated end
            as ua_is_automated,
        try_cast(geolocated.raw ->> '$.status_code' as integer) as http_status_code,
        '{{ invocation_id }}' as dbt_invocation_id,
        geolocated.raw
    from geolocated
    left join activity_types on geolocated.event_type = activity_types.event_type
    left join embargo_matches on geolocated.activity_id = embargo_matches.activity_id
    left join user_agents on geolocated.user_agent = user_agents.user_agent

),

with_monitor_rules as (

    select
        enriched.*,
        {{ monitor_rules('enriched') }} as monitor_rules
    from enriched

),

final as (

    -- the payload stays in stg_activities (macros/dashboard_activities.sql)
    select * exclude (raw)
    from with_monitor_rules

)

select * from final
