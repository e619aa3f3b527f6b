-- Claude Usage (dashboards.md #6): chats, snapshots, commands, Claude Code, remote agents, cowork, platform agents.

with activities as (

    {{ dashboard_activities('claude_usage') }}

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
        coalesce({{ field('claude_chat_id') }}, {{ field('conversation_id') }}) as chat_id,
        {{ field('claude_project_id') }} as project_id,
        {{ field('claude_chat_snapshot_id') }} as chat_snapshot_id,
        {{ field('command_id') }} as command_id,
        {{ field('command_name') }} as command_name,
        -- the model of a chat comes from the chats data (by chat id), where that chat was ingested
        coalesce(chats.model, {{ field('model') }}) as model,
        {{ field('repo_owner') }} as repo_owner,
        {{ field('repo_name') }} as repo_name,
        coalesce({{ field('repo_owner') }} || '/' || {{ field('repo_name') }}, {{ field('repo') }})
            as repository,
        {{ field('trigger_mode') }} as trigger_mode,
        {{ field('status') }} as status,
        coalesce({{ field('session_id') }}, {{ field('cowork_session_id') }}) as session_id,
        {{ field('agent_id') }} as agent_id,
        activities.event_type in ('claude_chat_access_failed', 'claude_chat_deletion_failed')
            as is_failed_chat
    from activities
    left join chats on chats.chat_id = coalesce({{ field('claude_chat_id') }}, {{ field('conversation_id') }})

)

select * from final
