-- name: file_access_trend
SELECT created_hour, access_kind, count(*) AS events
FROM data_access_exfiltration
WHERE access_kind IN ('file', 'project_file', 'project_document', 'platform_file')
GROUP BY ALL
ORDER BY created_hour, access_kind;

-- name: reconnaissance_by_actor_hour
-- Listing / viewing of users, groups, members and invites, per actor and hour.
SELECT actor_identity, created_hour, count(*) AS recon_events, count(DISTINCT event_type) AS recon_types
FROM data_access_exfiltration
WHERE is_reconnaissance
GROUP BY ALL
ORDER BY recon_events DESC, created_hour
LIMIT 100;

-- name: artifact_sharing
SELECT created_at, event_type, artifact_id, audience, actor_identity, ip_address
FROM data_access_exfiltration
WHERE access_kind = 'artifact_sharing'
ORDER BY created_at DESC;

-- name: platform_file_activity
SELECT event_type, count(*) AS events, count(DISTINCT file_id) AS files
FROM data_access_exfiltration
WHERE access_kind = 'platform_file'
GROUP BY ALL
ORDER BY events DESC;

-- name: group_and_project_views
SELECT event_type, count(*) AS views, count(DISTINCT actor_identity) AS viewers
FROM data_access_exfiltration
WHERE is_group_or_project_view
GROUP BY ALL
ORDER BY views DESC;

-- name: most_uploaded_files
SELECT filename, count(*) AS uploads, count(DISTINCT actor_identity) AS uploaders
FROM data_access_exfiltration
WHERE is_upload AND filename IS NOT NULL
GROUP BY ALL
ORDER BY uploads DESC, filename
LIMIT 20;

-- name: most_viewed_files
SELECT filename, count(*) AS views, count(DISTINCT actor_identity) AS viewers
FROM data_access_exfiltration
WHERE is_view AND filename IS NOT NULL
GROUP BY ALL
ORDER BY views DESC, filename
LIMIT 20;

-- name: exports
SELECT event_type, coalesce(export_type, export_destination, 'unspecified') AS export, count(*) AS events
FROM data_access_exfiltration
WHERE access_kind = 'export' OR export_destination IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: data_access_detail
SELECT created_at, event_type, access_kind, filename, file_id, project_id, actor_identity, ip_address,
       geo_country_name, outcome
FROM data_access_exfiltration
ORDER BY created_at DESC
LIMIT 500;
