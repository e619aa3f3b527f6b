-- name: session_event_distribution
SELECT session_kind, event_type, count(*) AS events
FROM session_management
GROUP BY ALL
ORDER BY events DESC;

-- name: session_trend
SELECT created_hour, session_kind, count(*) AS events
FROM session_management
GROUP BY ALL
ORDER BY created_hour, session_kind;

-- name: geo_with_embargoed
SELECT geo_country_iso, geo_country_name, geo_latitude, geo_longitude, is_embargoed, count(*) AS events
FROM session_management
WHERE geo_country_iso IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: top_users
SELECT actor_identity, count(*) AS session_events, count(DISTINCT ip_address) AS ips
FROM session_management
GROUP BY ALL
ORDER BY session_events DESC, actor_identity
LIMIT 20;

-- name: shares
-- Session shares created / accessed / revoked, by access level.
SELECT share_action, coalesce(access_level, 'unspecified') AS access_level, count(*) AS events
FROM session_management
WHERE session_kind = 'share'
GROUP BY ALL
ORDER BY events DESC;

-- name: session_detail
SELECT created_at, event_type, session_kind, session_id, share_id, actor_identity, ip_address, geo_country_name,
       is_embargoed, user_agent
FROM session_management
ORDER BY created_at DESC
LIMIT 500;
