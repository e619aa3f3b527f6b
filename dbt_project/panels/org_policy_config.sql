-- name: configuration_events_trend
SELECT created_hour, config_area, count(*) AS events
FROM org_policy_config
GROUP BY ALL
ORDER BY created_hour, config_area;

-- name: discoverability_changes
SELECT created_at, event_type, organization_id, actor_identity, current_value, previous_value
FROM org_policy_config
WHERE config_area = 'discoverability'
ORDER BY created_at DESC;

-- name: org_management_actions
SELECT event_type, count(*) AS events
FROM org_policy_config
WHERE config_area = 'org_management'
GROUP BY ALL
ORDER BY events DESC;

-- name: disabled_events
-- Types ending in _disabled and toggles to false.
SELECT created_at, event_type, config_area, organization_id, actor_identity, previous_value, current_value
FROM org_policy_config
WHERE is_disabled_event
ORDER BY created_at DESC;

-- name: user_policy_changes
SELECT created_at, event_type, principal_type, principal_id, grant_type, default_model, actor_identity
FROM org_policy_config
WHERE is_user_policy_change
ORDER BY created_at DESC;

-- name: actor_geo
SELECT geo_country_iso, geo_country_name, geo_latitude, geo_longitude, count(*) AS events
FROM org_policy_config
WHERE geo_country_iso IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: top_users_making_changes
SELECT actor_identity, actor_type, count(*) AS changes
FROM org_policy_config
GROUP BY ALL
ORDER BY changes DESC, actor_identity
LIMIT 20;

-- name: org_policy_detail
SELECT created_at, event_type, config_area, is_disabled_event, organization_id, actor_identity, ip_address,
       geo_country_name, previous_value, current_value, updates
FROM org_policy_config
ORDER BY created_at DESC
LIMIT 500;
