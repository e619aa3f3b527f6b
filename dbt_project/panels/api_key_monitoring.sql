-- name: key_events_over_time_by_kind
SELECT created_hour, key_kind, count(*) AS events
FROM api_key_monitoring
GROUP BY ALL
ORDER BY created_hour, key_kind;

-- name: created_vs_deleted_vs_updated
SELECT key_kind, key_lifecycle, count(*) AS events
FROM api_key_monitoring
GROUP BY ALL
ORDER BY key_kind, key_lifecycle;

-- name: most_active_users
SELECT actor_identity, actor_type, count(*) AS key_events, count(DISTINCT key_id) AS keys
FROM api_key_monitoring
GROUP BY ALL
ORDER BY key_events DESC, actor_identity
LIMIT 20;

-- name: keys_created_with_scopes
SELECT created_at, key_kind, key_id, key_name, scopes, actor_identity, ip_address, geo_country_name
FROM api_key_monitoring
WHERE key_lifecycle = 'created'
ORDER BY created_at DESC;

-- name: key_detail
SELECT created_at, key_id, key_kind, action, event_type, scopes, actor_identity, ip_address, geo_country_iso,
       geo_country_name, outcome
FROM api_key_monitoring
ORDER BY created_at DESC
LIMIT 500;
