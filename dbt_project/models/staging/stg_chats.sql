-- Chats (one row per chat id), with the owner's name from the directory where known.

with chats as (

    select * from {{ source('raw', 'chats') }}

),

users as (

    select * from {{ ref('stg_organization_users') }}

),

deduplicated as (

    select *
    from chats
    qualify row_number() over (partition by id order by fetched_at desc) = 1

),

joined as (

    select
        deduplicated.id as chat_id,
        deduplicated.name as chat_name,
        deduplicated.model,
        deduplicated.project_id,
        deduplicated.user_id,
        deduplicated.user_email,
        users.full_name as user_full_name,
        deduplicated.organization_uuid,
        deduplicated.organization_id,
        deduplicated.created_at as chat_created_at,
        deduplicated.updated_at as chat_updated_at,
        deduplicated.deleted_at as chat_deleted_at,
        deduplicated.hard_deleted_at as chat_hard_deleted_at,
        deduplicated.deleted_at is not null or deduplicated.hard_deleted_at is not null
            as is_chat_deleted,
        deduplicated.message_count as chat_message_count,
        -- when the stored row last changed (ingestion upsert or hard-delete marking): the chats mart's watermark
        greatest(deduplicated.fetched_at, coalesce(deduplicated.hard_deleted_at, deduplicated.fetched_at))
            as chat_changed_at

    from deduplicated
    left join users
        on
            deduplicated.user_id = users.user_id
            and deduplicated.organization_uuid = users.organization_uuid

)

select * from joined
