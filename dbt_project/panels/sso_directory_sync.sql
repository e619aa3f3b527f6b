-- name: event_distribution
SELECT sso_area, event_type, count(*) AS events
FROM sso_directory_sync
GROUP BY ALL
ORDER BY events DESC;

-- name: sso_directory_trend
SELECT created_hour, sso_area, count(*) AS events
FROM sso_directory_sync
GROUP BY ALL
ORDER BY created_hour, sso_area;

-- name: connection_lifecycle
-- SSO connections activated / deactivated / deleted, with their connection type.
SELECT created_at, event_type, lifecycle_stage, connection_id, connection_type, organization_id, actor_identity
FROM sso_directory_sync
WHERE sso_area = 'sso_connection'
ORDER BY created_at DESC;

-- name: directory_sync_lifecycle
-- Directory sync and resync lifecycle, resync failures flagged.
SELECT event_type, lifecycle_stage, is_resync_failure, count(*) AS events
FROM sso_directory_sync
WHERE sso_area IN ('directory_sync', 'directory_resync')
GROUP BY ALL
ORDER BY events DESC;

-- name: actor_geo
SELECT geo_country_iso, geo_country_name, geo_latitude, geo_longitude, count(*) AS events
FROM sso_directory_sync
WHERE geo_country_iso IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: top_users
SELECT actor_identity, actor_type, count(*) AS events
FROM sso_directory_sync
GROUP BY ALL
ORDER BY events DESC, actor_identity
LIMIT 20;

-- name: sso_detail
SELECT created_at, event_type, sso_area, connection_type, organization_id, actor_identity, actor_type,
       idp_connection_type, ip_address, outcome
FROM sso_directory_sync
ORDER BY created_at DESC
LIMIT 500;
