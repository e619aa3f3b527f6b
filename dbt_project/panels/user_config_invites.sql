-- name: users_with_most_configuration_changes
SELECT actor_identity, actor_user_id, count(*) AS changes
FROM user_config_invites
GROUP BY ALL
ORDER BY changes DESC, actor_identity
LIMIT 20;

-- name: invite_link_usage
-- Invite links generated / regenerated / disabled, and invites accepted.
SELECT invite_link_action, count(*) AS events
FROM user_config_invites
WHERE invite_link_action IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: geo_with_embargoed
SELECT geo_country_iso, geo_country_name, geo_latitude, geo_longitude, is_embargoed, count(*) AS events
FROM user_config_invites
WHERE geo_country_iso IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: role_changes
SELECT created_at, event_type, actor_identity, target_user_id, target_user_email, previous_role, current_role,
       granted_role
FROM user_config_invites
WHERE config_kind = 'role'
ORDER BY created_at DESC;

-- name: member_invites
SELECT created_at, event_type, invited_email, invited_role, invited_seat_tier, invite_id, actor_identity,
       organization_id
FROM user_config_invites
WHERE config_kind = 'invite'
ORDER BY created_at DESC;

-- name: user_settings_updates
SELECT created_at, event_type, actor_identity, updates
FROM user_config_invites
WHERE config_kind IN ('user_settings', 'seat_tier', 'consent')
ORDER BY created_at DESC;

-- name: recent_activity
SELECT created_at, event_type, config_kind, actor_identity, target_user_email, invited_email, ip_address,
       geo_country_name, outcome
FROM user_config_invites
ORDER BY created_at DESC
LIMIT 100;
