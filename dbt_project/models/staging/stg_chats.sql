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
        c.id                                                    as chat_id,
        c.name                                                  as chat_name,
        c.model,
        c.project_id,
        c.user_id,
        c.user_email,
        u.full_name                                             as user_full_name,
        c.organization_uuid,
        c.organization_id,
        c.created_at                                            as chat_created_at,
        c.updated_at                                            as chat_updated_at,
        c.deleted_at                                            as chat_deleted_at,
        c.hard_deleted_at                                       as chat_hard_deleted_at,
        c.deleted_at is not null or c.hard_deleted_at is not null
                                                                as is_chat_deleted,
        c.message_count                                         as chat_message_count,
        -- when the stored row last changed (ingestion upsert or hard-delete marking): the chats mart's watermark
        greatest(c.fetched_at, coalesce(c.hard_deleted_at, c.fetched_at))
                                                                as chat_changed_at

    from deduplicated as c
    left join users as u
        on u.user_id = c.user_id and u.organization_uuid = c.organization_uuid

)

select * from joined
