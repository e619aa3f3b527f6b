-- name: chat_events_trend
-- The count panels read claude_usage_5min (claude_usage summed by 5-minute window and their columns), the
-- distinct-chat and distinct-user panels claude_usage_chats_5min (by window, actor and chat): the same figures under
-- every filter the dashboard offers.
SELECT created_hour, event_type, sum(events)::BIGINT AS events
FROM claude_usage_5min
WHERE usage_area = 'chat'
GROUP BY ALL
ORDER BY created_hour, events DESC;

-- name: chat_snapshot_events
SELECT created_at, event_type, chat_snapshot_id, chat_id, actor_identity
FROM claude_usage
WHERE usage_area = 'chat_snapshot'
ORDER BY created_at DESC;

-- name: claude_code_activity_trend
SELECT created_hour, usage_area, sum(events)::BIGINT AS events
FROM claude_usage_5min
WHERE usage_area IN ('claude_code', 'remote_agent', 'cowork', 'platform_agent')
GROUP BY ALL
ORDER BY created_hour, usage_area;

-- name: command_events
SELECT command_name, event_type, sum(events)::BIGINT AS events, count(DISTINCT actor_identity) AS users
FROM claude_usage_chats_5min
WHERE usage_area = 'command'
GROUP BY ALL
ORDER BY events DESC;

-- name: top_active_users
SELECT actor_identity, actor_user_id, sum(events)::BIGINT AS events, count(DISTINCT chat_id) AS chats
FROM claude_usage_chats_5min
GROUP BY ALL
ORDER BY events DESC, actor_identity
LIMIT 20;

-- name: unique_counts
-- Unique chats, users and interactions (events).
SELECT count(DISTINCT chat_id) AS unique_chats, count(DISTINCT actor_user_id) AS unique_users,
       coalesce(sum(events), 0)::BIGINT AS interactions
FROM claude_usage_chats_5min;

-- name: failed_chats
SELECT created_at, event_type, chat_id, actor_identity, ip_address
FROM claude_usage
WHERE is_failed_chat
ORDER BY created_at DESC;

-- name: model_usage_distribution
-- Chat events by model (model from the chats data by chat id, where known).
SELECT coalesce(model, 'unknown') AS model, sum(events)::BIGINT AS events, count(DISTINCT chat_id) AS chats
FROM claude_usage_chats_5min
WHERE usage_area = 'chat'
GROUP BY ALL
ORDER BY events DESC;

-- name: claude_code_trigger_modes
SELECT trigger_mode, sum(events)::BIGINT AS events
FROM claude_usage_5min
WHERE trigger_mode IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: claude_code_top_repositories
SELECT repository, sum(events)::BIGINT AS events
FROM claude_usage_5min
WHERE repository IS NOT NULL
GROUP BY ALL
ORDER BY events DESC, repository
LIMIT 20;

-- name: claude_code_event_statuses
SELECT status, event_type, sum(events)::BIGINT AS events
FROM claude_usage_5min
WHERE status IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;
