-- Current members of every organization of the tenant (the directory snapshot).

with source as (

    select * from {{ source('raw', 'organization_users') }}

),

renamed as (

    select
        organization_uuid,
        id as user_id,
        full_name,
        email,
        organization_role,
        created_at as user_created_at

    from source
    qualify row_number() over (partition by organization_uuid, id order by fetched_at desc) = 1

)

select * from renamed
