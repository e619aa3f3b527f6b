-- Claude Usage (dashboards.md #6): chats, snapshots, commands, Claude Code, remote agents, cowork, platform agents.
-- A chat's model follows the chats data also after the window is built (post-hook, macros/reference_changes.sql).
{{ config(post_hook="{{ apply_chat_model_changes() }}") }}

-- Not the dashboard_activities macro: the mart of the most events keeps the flat three-way join (activities,
-- payloads, chats) the optimizer plans as one; nested in the macro's CTE it ran out of the dbt memory limit in 3
-- of 4 chunked builds of a 300k-activity day, the flat join in none of 3.
with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'claude_usage') {{ window_filter('created_at') }}

),

payloads as (

    select
        stg_activities.activity_id,
        stg_activities.raw
    from {{ ref('stg_activities') }} as stg_activities
    where
        true {{ window_filter('created_at') }}
        and stg_activities.activity_id in (select activities.activity_id from activities)

),

chats as (

    select
        chat_id,
        model
    from {{ ref('stg_chats') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type like 'claude\_chat\_snapshot\_%' escape '\' then 'chat_snapshot'
            when activities.event_type like 'claude\_chat\_%' escape '\' then 'chat'
            when activities.event_type like 'claude\_command\_%' escape '\' then 'command'
            when activities.event_type like 'claude\_code\_%' escape '\' then 'claude_code'
            when activities.event_type like 'ccr\_%' escape '\' then 'remote_agent'
            when activities.event_type like 'cowork\_%' escape '\' then 'cowork'
            when activities.event_type like 'platform\_agent\_%' escape '\' then 'platform_agent'
            else 'other'
        end as usage_area,
        coalesce({{ field('claude_chat_id', 'payloads') }}, {{ field('conversation_id', 'payloads') }}) as chat_id,
        {{ field('claude_project_id', 'payloads') }} as project_id,
        {{ field('claude_chat_snapshot_id', 'payloads') }} as chat_snapshot_id,
        {{ field('command_id', 'payloads') }} as command_id,
        {{ field('command_name', 'payloads') }} as command_name,
        -- the model of a chat comes from the chats data (by chat id), where that chat was ingested
        coalesce(chats.model, {{ field('model', 'payloads') }}) as model,
        {{ field('repo_owner', 'payloads') }} as repo_owner,
        {{ field('repo_name', 'payloads') }} as repo_name,
        coalesce(
            {{ field('repo_owner', 'payloads') }} || '/' || {{ field('repo_name', 'payloads') }},
            {{ field('repo', 'payloads') }}
        ) as repository,
        {{ field('trigger_mode', 'payloads') }} as trigger_mode,
        {{ field('status', 'payloads') }} as status,
        coalesce({{ field('session_id', 'payloads') }}, {{ field('cowork_session_id', 'payloads') }}) as session_id,
        {{ field('agent_id', 'payloads') }} as agent_id,
        activities.event_type in ('claude_chat_access_failed', 'claude_chat_deletion_failed')
            as is_failed_chat
    from activities
    inner join payloads on activities.activity_id = payloads.activity_id
    left join chats
        on chats.chat_id = coalesce(
            {{ field('claude_chat_id', 'payloads') }}, {{ field('conversation_id', 'payloads') }}
        )

)

select * from final
