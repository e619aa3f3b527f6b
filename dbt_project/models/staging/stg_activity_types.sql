-- Every activity type seen in the raw activities, once (int_activity_types classifies those the catalog lacks).

with source as (

    select * from {{ source('raw', 'activities') }}

),

renamed as (

    select distinct source.type as event_type
    from source
    where source.type is not null

)

select * from renamed
