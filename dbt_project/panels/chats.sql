-- name: active_users
SELECT count(DISTINCT user_id) AS active_users, count(DISTINCT chat_id) AS chats, count(*) AS messages
FROM chats
WHERE NOT is_chat_deleted;

-- name: models_in_use
SELECT count(DISTINCT model) AS models_in_use
FROM chats
WHERE NOT is_chat_deleted AND model IS NOT NULL;

-- name: project_distribution
SELECT coalesce(project_id, '(no project)') AS project_id, count(DISTINCT chat_id) AS chats, count(*) AS messages
FROM chats
WHERE NOT is_chat_deleted
GROUP BY ALL
ORDER BY chats DESC;

-- name: message_volume_trend
SELECT message_hour, count(*) AS messages
FROM chats
WHERE NOT is_chat_deleted
GROUP BY ALL
ORDER BY message_hour;

-- name: messages_by_role
SELECT role, count(*) AS messages
FROM chats
WHERE NOT is_chat_deleted
GROUP BY ALL
ORDER BY messages DESC;

-- name: messages_by_content_type
-- Messages containing each content block type (text, tool_use, tool_result).
SELECT content_type, count(*) AS messages
FROM (SELECT unnest(content_types) AS content_type FROM chats WHERE NOT is_chat_deleted)
GROUP BY ALL
ORDER BY messages DESC;

-- name: top_models
SELECT coalesce(model, 'unknown') AS model, count(DISTINCT chat_id) AS chats, count(*) AS messages
FROM chats
WHERE NOT is_chat_deleted
GROUP BY ALL
ORDER BY messages DESC;

-- name: top_users
SELECT user_email, user_full_name, count(DISTINCT chat_id) AS chats, count(*) AS messages
FROM chats
WHERE NOT is_chat_deleted
GROUP BY ALL
ORDER BY messages DESC, user_email
LIMIT 20;

-- name: generated_artifacts
-- Artifacts and generated files, one row each (the columns shown, not `*`: a week of messages is read for them).
SELECT message_created_at, chat_id, chat_name, user_email, 'artifact' AS kind, a.title AS name,
       a.artifact_type AS type, a.id, a.version_id, NULL::BIGINT AS size_bytes
FROM (SELECT message_created_at, chat_id, chat_name, user_email, unnest(artifacts) AS a FROM chats
      WHERE NOT is_chat_deleted)
UNION ALL
SELECT message_created_at, chat_id, chat_name, user_email, 'generated_file', g.filename, g.mime_type, g.id, NULL,
       g.size_bytes
FROM (SELECT message_created_at, chat_id, chat_name, user_email, unnest(generated_files) AS g FROM chats
      WHERE NOT is_chat_deleted)
ORDER BY message_created_at DESC;

-- name: file_uploads
SELECT message_created_at, chat_id, chat_name, user_email, f.filename, f.mime_type, f.size_bytes, f.id AS file_id
FROM (SELECT message_created_at, chat_id, chat_name, user_email, unnest(files) AS f FROM chats
      WHERE NOT is_chat_deleted)
ORDER BY message_created_at DESC;

-- name: conversation_summaries
-- One row per chat (deleted chats: panel deleted_chats).
SELECT chat_id, any_value(chat_name) AS name, any_value(user_email) AS user_email, any_value(model) AS model,
       any_value(project_id) AS project_id, count(*) AS messages, min(message_created_at) AS first_message_at,
       max(message_created_at) AS last_message_at, bool_or(is_chat_deleted) AS deleted,
       sum(text_chars) AS text_chars
FROM chats
WHERE NOT is_chat_deleted
GROUP BY chat_id
ORDER BY last_message_at DESC;

-- name: deleted_chats
-- Chats deleted by their users (soft) or purged (hard), newest deletion first. Every other panel leaves them out.
SELECT chat_id, any_value(chat_name) AS name, any_value(user_email) AS user_email, any_value(model) AS model,
       any_value(chat_deletion_kind) AS deletion_kind, any_value(chat_deletion_at) AS deleted_at,
       count(*) AS messages, min(message_created_at) AS first_message_at, max(message_created_at) AS last_message_at
FROM chats
WHERE is_chat_deleted
GROUP BY chat_id
ORDER BY deleted_at DESC, chat_id;

-- name: message_search
-- Privacy gated: message text only through search_messages(term), which refuses empty and wildcard terms.
-- Deleted chats are left out like everywhere else (search_messages(term) itself still finds them).
SELECT s.chat_id, s.message_id, s.block_type, s.text
FROM search_messages($term) AS s
WHERE NOT EXISTS (SELECT 1 FROM chats AS c WHERE c.chat_id = s.chat_id AND c.is_chat_deleted)
ORDER BY s.chat_id, s.message_id, s.block_index
LIMIT 500;
