-- One row per IP. Private and reserved addresses carry no location (never looked up), so they can never be embargoed.

with source as (

    select * from {{ source('enrichment', 'ip_geolocation') }}

),

latest as (

    select *
    from source
    qualify row_number() over (partition by ip order by enriched_at desc) = 1

),

renamed as (

    select
        ip as ip_address,
        coalesce(is_valid, false) as ip_is_valid,
        coalesce(is_private, false) or coalesce(is_reserved, false) as ip_is_private,
        coalesce(found, false) as geo_found,
        nullif(country_iso, '') as geo_country_iso,
        nullif(country_name, '') as geo_country_name,
        nullif(subdivision_iso, '') as geo_subdivision_iso,
        nullif(subdivision_name, '') as geo_subdivision_name,
        nullif(city, '') as geo_city,
        latitude as geo_latitude,
        longitude as geo_longitude,
        geo_database

    from latest

)

select * from renamed
