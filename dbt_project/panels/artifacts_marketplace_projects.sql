-- name: lifecycle_events_over_time
-- Events per hour by resource kind (artifact, marketplace, project, design project).
SELECT created_hour, resource_group, count(*) AS events
FROM artifacts_marketplace_projects
GROUP BY ALL
ORDER BY created_hour, resource_group;

-- name: events_by_action
-- Created / viewed / shared / published / deleted / failed / updated.
SELECT lifecycle_action, resource_group, count(*) AS events
FROM artifacts_marketplace_projects
GROUP BY ALL
ORDER BY events DESC;

-- name: active_counts
SELECT count(DISTINCT artifact_id) AS active_artifacts,
       count(DISTINCT project_id) AS active_projects,
       count(DISTINCT design_project_id) AS active_design_projects,
       count(DISTINCT marketplace_id) AS active_marketplaces,
       count(DISTINCT actor_user_id) AS active_users
FROM artifacts_marketplace_projects;

-- name: publishing_and_sharing_changes
-- Public shares first (audience anyone_with_link / public), then the other sharing changes.
SELECT created_at, event_type, resource_group, resource_id, title, audience, sharing_mode, is_public,
       actor_identity, ip_address
FROM artifacts_marketplace_projects
WHERE is_publishing_or_sharing_change
ORDER BY is_public IS TRUE DESC, created_at DESC;

-- name: public_shares
-- Artifacts and projects opened to anyone with the link / the public (also the monitor resource_shared_publicly).
SELECT created_at, event_type, resource_group, resource_id, audience, sharing_mode, actor_identity, ip_address
FROM artifacts_marketplace_projects
WHERE is_public
ORDER BY created_at DESC;

-- name: artifact_detail
SELECT created_at, event_type, lifecycle_action, artifact_id, artifact_version_id, published_artifact_id, title,
       artifact_type, actor_identity, outcome
FROM artifacts_marketplace_projects
WHERE resource_group = 'artifact'
ORDER BY created_at DESC
LIMIT 500;

-- name: project_detail
SELECT created_at, event_type, lifecycle_action, project_id, filename, actor_identity, outcome
FROM artifacts_marketplace_projects
WHERE resource_group = 'project'
ORDER BY created_at DESC
LIMIT 500;

-- name: design_project_detail
SELECT created_at, event_type, lifecycle_action, design_project_id, sharing_mode, is_public, actor_identity
FROM artifacts_marketplace_projects
WHERE resource_group = 'design_project'
ORDER BY created_at DESC
LIMIT 500;

-- name: marketplace_detail
SELECT created_at, event_type, lifecycle_action, marketplace_id, actor_identity, outcome
FROM artifacts_marketplace_projects
WHERE resource_group = 'marketplace'
ORDER BY created_at DESC
LIMIT 500;
