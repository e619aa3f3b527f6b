-- Message shapes. `raw.chat_messages` holds no text at all (only lengths, block types, tool names, file and artifact
-- metadata): text lives in restricted.chat_message_text and is not read by any model.

with source as (

    select * from {{ source('raw', 'chat_messages') }}

),

deduplicated as (

    select *
    from source
    qualify row_number() over (partition by id order by fetched_at desc) = 1

),

renamed as (

    select
        id as message_id,
        chat_id,
        position as message_position,
        role,
        created_at as message_created_at,
        coalesce(block_types, []::varchar[]) as content_types,
        coalesce(text_chars, 0) as text_chars,
        coalesce(tool_names, []::varchar[]) as tool_names,
        coalesce(has_error, false) as has_tool_error,
        -- file and artifact metadata as typed lists (no JSON left for the marts' readers)
        coalesce(
            from_json(
                files,
                '[{"id": "VARCHAR", "filename": "VARCHAR", "mime_type": "VARCHAR", "size_bytes": "BIGINT", '
                || '"md5": "VARCHAR", "created_at": "VARCHAR"}]'
            ),
            []
        ) as files,
        coalesce(
            from_json(
                generated_files,
                '[{"id": "VARCHAR", "filename": "VARCHAR", "mime_type": "VARCHAR", "size_bytes": "BIGINT", '
                || '"md5": "VARCHAR"}]'
            ),
            []
        ) as generated_files,
        coalesce(
            from_json(
                artifacts,
                '[{"id": "VARCHAR", "version_id": "VARCHAR", "title": "VARCHAR", '
                || '"artifact_type": "VARCHAR"}]'
            ),
            []
        ) as artifacts,
        fetched_at as message_fetched_at

    from deduplicated

)

select * from renamed
