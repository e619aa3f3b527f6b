-- name: usage_trend_by_skill
SELECT created_hour, skill_name, count(*) AS events
FROM skills_plugins
WHERE skill_name IS NOT NULL
GROUP BY ALL
ORDER BY created_hour, events DESC;

-- name: usage_trend_by_plugin
SELECT created_hour, plugin_name, count(*) AS events
FROM skills_plugins
WHERE plugin_name IS NOT NULL
GROUP BY ALL
ORDER BY created_hour, events DESC;

-- name: event_distribution
SELECT extension_kind, event_type, count(*) AS events
FROM skills_plugins
GROUP BY ALL
ORDER BY events DESC;

-- name: top_skills
SELECT skill_name, count(*) AS events, count(DISTINCT actor_identity) AS users
FROM skills_plugins
WHERE skill_name IS NOT NULL
GROUP BY ALL
ORDER BY events DESC, skill_name
LIMIT 20;

-- name: top_plugins
SELECT plugin_name, count(*) AS events, count(DISTINCT actor_identity) AS users
FROM skills_plugins
WHERE plugin_name IS NOT NULL
GROUP BY ALL
ORDER BY events DESC, plugin_name
LIMIT 20;

-- name: unique_counts
SELECT count(DISTINCT coalesce(skill_id, skill_name)) AS unique_skills,
       count(DISTINCT coalesce(plugin_id, plugin_name)) AS unique_plugins,
       count(DISTINCT extension_id) AS unique_desktop_extensions
FROM skills_plugins;

-- name: enable_disable_delete_events
SELECT created_at, event_type, toggle_action, extension_kind, coalesce(skill_name, plugin_name, extension_id) AS name,
       actor_identity
FROM skills_plugins
WHERE toggle_action IS NOT NULL
ORDER BY created_at DESC;

-- name: security_scan_results
SELECT created_at, event_type, extension_kind, scan_id, outcome, actor_identity
FROM skills_plugins
WHERE is_security_scan
ORDER BY created_at DESC;

-- name: skills_plugins_detail
SELECT created_at, event_type, extension_kind, skill_name, plugin_name, marketplace_id, extension_id, version,
       actor_identity, ip_address, outcome
FROM skills_plugins
ORDER BY created_at DESC
LIMIT 500;
