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

    select chat_id from chats where chat_changed_at > (select changed_at from watermark)
    union
    select chat_id from messages where message_fetched_at > (select changed_at from watermark)

),
{% endif %}

joined as (

    select
        m.message_id,
        m.chat_id,
        c.chat_name,
        c.model,
        c.project_id,
        c.user_id,
        c.user_email,
        c.user_full_name,
        c.organization_uuid,
        c.organization_id,
        c.chat_created_at,
        c.chat_updated_at,
        c.chat_deleted_at,
        c.chat_hard_deleted_at,
        coalesce(c.is_chat_deleted, false)                          as is_chat_deleted,
        -- when and how the chat went away (a soft delete later purged keeps its first time)
        least(c.chat_deleted_at, c.chat_hard_deleted_at)            as chat_deletion_at,
        case when c.chat_hard_deleted_at is not null then 'hard'
             when c.chat_deleted_at is not null then 'soft' end     as chat_deletion_kind,
        m.message_position,
        m.role,
        m.message_created_at,
        time_bucket(interval '5 minutes', m.message_created_at)     as message_5min,
        date_trunc('hour', m.message_created_at)                    as message_hour,
        cast(timezone('UTC', m.message_created_at) as date)         as message_date,
        m.content_types,
        m.content_types[1]                                          as primary_content_type,
        list_contains(m.content_types, 'text')                      as has_text,
        list_contains(m.content_types, 'tool_use')                  as has_tool_use,
        list_contains(m.content_types, 'tool_result')               as has_tool_result,
        m.text_chars,
        m.tool_names,
        array_to_string(m.tool_names, ', ')                         as tool_names_text,
        m.has_tool_error,
        m.files,
        len(m.files)                                                as file_count,
        m.generated_files,
        len(m.generated_files)                                      as generated_file_count,
        m.artifacts,
        len(m.artifacts)                                            as artifact_count,
        c.chat_changed_at,
        m.message_fetched_at,
        '{{ invocation_id }}'                                       as dbt_invocation_id
    from messages as m
    left join chats as c on c.chat_id = m.chat_id
    {% if is_incremental() %}
    where m.chat_id in (select chat_id from changed_chats)
    {% endif %}

)

select * from joined
