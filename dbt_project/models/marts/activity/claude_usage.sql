-- Claude Usage (dashboards.md #6): chats, snapshots, commands, Claude Code, remote agents, cowork, platform agents.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'claude_usage') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

chats as (

    select chat_id, model from {{ ref('stg_chats') }}

),

final as (

    select
        {{ activity_common_columns('a') }},
        case
            when a.event_type like 'claude\_chat\_snapshot\_%' escape '\' then 'chat_snapshot'
            when a.event_type like 'claude\_chat\_%' escape '\' then 'chat'
            when a.event_type like 'claude\_command\_%' escape '\' then 'command'
            when a.event_type like 'claude\_code\_%' escape '\' then 'claude_code'
            when a.event_type like 'ccr\_%' escape '\' then 'remote_agent'
            when a.event_type like 'cowork\_%' escape '\' then 'cowork'
            when a.event_type like 'platform\_agent\_%' escape '\' then 'platform_agent'
            else 'other'
        end                                                         as usage_area,
        coalesce({{ field('claude_chat_id') }}, {{ field('conversation_id') }})
                                                                    as chat_id,
        {{ field('claude_project_id') }}                            as project_id,
        {{ field('claude_chat_snapshot_id') }}                      as chat_snapshot_id,
        {{ field('command_id') }}                                   as command_id,
        {{ field('command_name') }}                                 as command_name,
        -- the model of a chat comes from the chats data (by chat id), where that chat was ingested
        coalesce(c.model, {{ field('model') }})                     as model,
        {{ field('repo_owner') }}                                   as repo_owner,
        {{ field('repo_name') }}                                    as repo_name,
        coalesce({{ field('repo_owner') }} || '/' || {{ field('repo_name') }}, {{ field('repo') }})
                                                                    as repository,
        {{ field('trigger_mode') }}                                 as trigger_mode,
        {{ field('status') }}                                       as status,
        coalesce({{ field('session_id') }}, {{ field('cowork_session_id') }})
                                                                    as session_id,
        {{ field('agent_id') }}                                     as agent_id,
        a.event_type in ('claude_chat_access_failed', 'claude_chat_deletion_failed')
                                                                    as is_failed_chat
    from activities as a
    join payloads as p on p.activity_id = a.activity_id
    left join chats as c on c.chat_id = coalesce({{ field('claude_chat_id') }}, {{ field('conversation_id') }})

)

select * from final
