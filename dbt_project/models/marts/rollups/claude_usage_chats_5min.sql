-- Claude Usage's events by 5-minute window, actor and chat: the panels counting distinct chats or users (top users,
-- unique counts, models, commands) count them here, over one row per chat and window instead of every event. Exact
-- under every dashboard filter (time ranges start and end on 5-minute boundaries; organization, actor type and
-- event type are grouping columns).
-- A chat's model can change on rows outside the range (claude_usage's post-hook apply_chat_model_changes): their
-- windows are recomputed too.
{{ config(pre_hook="{{ delete_rollup_window(rewritten_in=ref('claude_usage')) }}") }}
-- depends_on: {{ ref('int_activities') }}

with activities as (

    select * from {{ ref('claude_usage') }}
    where true {{ rollup_window_filter(rewritten_in=ref('claude_usage')) }}

),

final as (

    select
        activities.created_5min,
        activities.organization_id,
        activities.actor_type,
        activities.event_type,
        activities.usage_area,
        activities.model,
        activities.command_name,
        activities.actor_identity,
        activities.actor_user_id,
        activities.chat_id,
        count(*) as events
    from activities
    group by all

)

select * from final
