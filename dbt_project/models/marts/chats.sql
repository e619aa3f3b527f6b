{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='chat_id',
        on_schema_change='fail',
        tags=['partitioned'],
    )
}}

-- Chats (dashboards.md #16): one row per chat message, with its chat's metadata and NO message text (lengths,
-- content types, tool names, file and artifact metadata only). Text is reachable only through search_messages(term).
--
-- Incremental by chat: a run rebuilds every chat whose stored row or messages changed since the last build
-- (ingestion watermark), whatever window the run is for: chats move between windows as they are updated, and hard
-- deletes are found by reconciliation outside any window.

with chats as (

    select * from {{ ref('stg_chats') }}

),

messages as (

    select * from {{ ref('stg_chat_messages') }}

),

{% if is_incremental() %}
    watermark as (

        select coalesce(greatest(max(chat_changed_at), max(message_fetched_at)), '-infinity'::timestamptz) as changed_at
        from {{ this }}

    ),

    changed_chats as (

        select chats.chat_id
        from chats
        where chats.chat_changed_at > (select watermark.changed_at from watermark)
        union
        select messages.chat_id
        from messages
        where messages.message_fetched_at > (select watermark.changed_at from watermark)

    ),
{% endif %}

joined as (

    select
        messages.message_id,
        messages.chat_id,
        chats.chat_name,
        chats.model,
        chats.project_id,
        chats.user_id,
        chats.user_email,
        chats.user_full_name,
        chats.organization_uuid,
        chats.organization_id,
        chats.chat_created_at,
        chats.chat_updated_at,
        chats.chat_deleted_at,
        chats.chat_hard_deleted_at,
        coalesce(chats.is_chat_deleted, false) as is_chat_deleted,
        -- when and how the chat went away (a soft delete later purged keeps its first time)
        least(chats.chat_deleted_at, chats.chat_hard_deleted_at) as chat_deletion_at,
        case
            when chats.chat_hard_deleted_at is not null then 'hard'
            when chats.chat_deleted_at is not null then 'soft'
        end as chat_deletion_kind,
        messages.message_position,
        messages.role,
        messages.message_created_at,
        time_bucket(interval '5 minutes', messages.message_created_at) as message_5min,
        date_trunc('hour', messages.message_created_at) as message_hour,
        (timezone('UTC', messages.message_created_at))::date as message_date,
        messages.content_types,
        messages.content_types[1] as primary_content_type,
        list_contains(messages.content_types, 'text') as has_text,
        list_contains(messages.content_types, 'tool_use') as has_tool_use,
        list_contains(messages.content_types, 'tool_result') as has_tool_result,
        messages.text_chars,
        messages.tool_names,
        array_to_string(messages.tool_names, ', ') as tool_names_text,
        messages.has_tool_error,
        messages.files,
        len(messages.files) as file_count,
        messages.generated_files,
        len(messages.generated_files) as generated_file_count,
        messages.artifacts,
        len(messages.artifacts) as artifact_count,
        chats.chat_changed_at,
        messages.message_fetched_at,
        '{{ invocation_id }}' as dbt_invocation_id
    from messages
    left join chats on messages.chat_id = chats.chat_id
    {% if is_incremental() %}
        where messages.chat_id in (select changed_chats.chat_id from changed_chats)
    {% endif %}

)

select * from joined
