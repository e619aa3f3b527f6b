-- name: login_success_vs_failure_trend
SELECT created_hour, login_result, count(*) AS logins
FROM identity_access_auth
WHERE login_result IS NOT NULL
GROUP BY ALL
ORDER BY created_hour, login_result;

-- name: users_with_failed_authentication
SELECT actor_identity, actor_type, count(*) AS failures, count(DISTINCT ip_address) AS ips
FROM identity_access_auth
WHERE login_result = 'failure'
GROUP BY ALL
ORDER BY failures DESC, actor_identity
LIMIT 20;

-- name: ips_with_failed_authentication
SELECT ip_address, geo_country_name, count(*) AS failures, count(DISTINCT actor_identity) AS identities
FROM identity_access_auth
WHERE login_result = 'failure'
GROUP BY ALL
ORDER BY failures DESC, ip_address
LIMIT 20;

-- name: geo_with_embargoed
SELECT geo_country_iso, geo_country_name, geo_latitude, geo_longitude, is_embargoed, count(*) AS events
FROM identity_access_auth
WHERE geo_country_iso IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: role_and_group_changes
SELECT created_at, event_type, actor_identity, target_user_id, target_user_email, previous_role, current_role,
       granted_role, role_id, group_id, group_name
FROM identity_access_auth
WHERE auth_area = 'roles_groups'
ORDER BY created_at DESC
LIMIT 500;

-- name: scim_provisioning_events
SELECT event_type, idp_connection_type, count(*) AS events
FROM identity_access_auth
WHERE auth_area = 'scim'
GROUP BY ALL
ORDER BY events DESC;

-- name: privilege_escalation
-- Grants of admin/owner-level roles, custom RBAC role assignments and primary owner transfers.
SELECT created_at, event_type, actor_identity, coalesce(target_user_id, principal_id) AS target_user_id,
       target_user_email, previous_role, coalesce(current_role, granted_role, role_name, role_id) AS new_role,
       previous_owner_id, new_owner_id, ip_address
FROM identity_access_auth
WHERE is_privileged_change
ORDER BY created_at DESC;

-- name: recon_then_exploit_summary
SELECT count(*) FILTER (WHERE is_privileged_change) AS privileged_changes,
       count(*) FILTER (WHERE is_recon_then_privileged_change) AS preceded_by_reconnaissance,
       count(DISTINCT actor_identity) FILTER (WHERE is_recon_then_privileged_change) AS actors
FROM identity_access_auth;

-- name: recon_then_exploit
-- Privileged changes by an actor who listed/viewed users, groups, members or invites in the hour before.
SELECT created_at, event_type, actor_identity, recon_events_prior_1h, target_user_id, previous_role,
       coalesce(current_role, granted_role) AS new_role, ip_address
FROM identity_access_auth
WHERE is_recon_then_privileged_change
ORDER BY created_at DESC;

-- name: identity_detail
SELECT created_at, event_type, auth_area, outcome, actor_identity, actor_type, ip_address, geo_country_name,
       is_embargoed, auth_method, mfa_method, user_agent
FROM identity_access_auth
ORDER BY created_at DESC
LIMIT 500;
