{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        full_refresh=false,
        tags=['partitioned'],
    )
}}

-- The reference inputs the activity layer joins, fingerprinted per key: the activity catalog (as classified by
-- int_activity_types, per type), the embargo list (per country), IP geolocation (per IP) and parsed user agents (per
-- string). One row per change: a key whose fingerprint differs from the one last recorded (added, changed, or
-- removed with a null fingerprint). int_activities and the activity marts rebuild the rows of changed keys
-- (macros/reference_changes.sql), so this table is both what drives the rebuild and the record of what changed and
-- when. It is history: a full refresh keeps it (full_refresh=false).

with activity_types as (

    select * from {{ ref('int_activity_types') }}

),

embargoed_regions as (

    select * from {{ ref('embargoed_regions') }}

),

ip_geolocation as (

    select * from {{ ref('stg_ip_geolocation') }}

),

user_agents as (

    select * from {{ ref('stg_user_agents') }}

),

current_fingerprints as (

    -- md5 of a row cast to text: NULLs stay visible (concat_ws would skip them)
    select
        'activity_catalog' as reference,
        event_type as reference_key,
        md5((row(category, dashboards, resource_kind, action, outcome, is_reconnaissance, is_known_type))::varchar)
            as fingerprint
    from activity_types
    union all
    select
        'embargoed_regions' as reference,
        country_iso as reference_key,
        md5(string_agg(
            coalesce(subdivision_iso, '') || '@' || coalesce(effective_from::varchar, ''), ','
            order by coalesce(subdivision_iso, ''), effective_from
        )) as fingerprint
    from embargoed_regions
    group by country_iso
    union all
    select
        'ip_geolocation' as reference,
        ip_address as reference_key,
        md5((row(
            ip_is_private, geo_country_iso, geo_country_name, geo_subdivision_iso, geo_subdivision_name,
            geo_city, geo_latitude, geo_longitude
        ))::varchar) as fingerprint
    from ip_geolocation
    union all
    select
        'user_agents' as reference,
        user_agent as reference_key,
        md5((row(
            ua_browser_family, ua_os_family, ua_device_family, ua_platform, ua_client_category,
            ua_client_name, ua_is_automated
        ))::varchar) as fingerprint
    from user_agents

),

recorded as (

    {% if is_incremental() %}
        select
            reference,
            reference_key,
            arg_max(fingerprint, changed_at) as fingerprint
        from {{ this }}
        group by all
    {% else %}
        select
            null::varchar as reference,
            null::varchar as reference_key,
            null::varchar as fingerprint
        where false
    {% endif %}

),

changes as (

    select
        coalesce(current_fingerprints.reference, recorded.reference) as reference,
        coalesce(current_fingerprints.reference_key, recorded.reference_key) as reference_key,
        current_fingerprints.fingerprint,
        case
            when recorded.reference is null then 'added'
            when current_fingerprints.reference is null then 'removed'
            else 'changed'
        end as change_kind
    from current_fingerprints
    full outer join recorded
        on
            current_fingerprints.reference = recorded.reference
            and current_fingerprints.reference_key = recorded.reference_key
    where current_fingerprints.fingerprint is distinct from recorded.fingerprint

),

final as (

    select
        reference,
        reference_key,
        fingerprint,
        change_kind,
        '{{ run_started_at }}'::timestamptz as changed_at,
        '{{ invocation_id }}' as dbt_invocation_id
    from changes

)

select * from final
