-- name: billing_events_over_time
-- Billing events per hour by group.
SELECT created_hour, billing_group, count(*) AS events
FROM billing_monitoring
GROUP BY ALL
ORDER BY created_hour, billing_group;

-- name: billing_events_by_type
-- Events by group (subscription lifecycle, spend limits, prepaid, recharge, ...) and type.
SELECT billing_group, event_type, count(*) AS events
FROM billing_monitoring
GROUP BY ALL
ORDER BY billing_group, events DESC;

-- name: top_plan_types
-- Plan types named by billing events (plan_type, new_plan, old_plan).
SELECT plan, count(*) AS mentions
FROM (SELECT unnest([plan_type, new_plan, old_plan]) AS plan FROM billing_monitoring)
WHERE plan IS NOT NULL
GROUP BY ALL
ORDER BY mentions DESC, plan;

-- name: organizations_with_most_billing_activity
SELECT organization_id, organization_uuid, count(*) AS events
FROM billing_monitoring
GROUP BY ALL
ORDER BY events DESC
LIMIT 20;

-- name: users_with_most_spend_limit_changes
SELECT actor_identity, actor_user_id, count(*) AS spend_limit_changes
FROM billing_monitoring
WHERE billing_group = 'spend_limit'
GROUP BY ALL
ORDER BY spend_limit_changes DESC, actor_identity
LIMIT 20;

-- name: seat_changes
-- Seat counts and quantity changes.
SELECT created_at, event_type, organization_id, actor_identity, seat_count, added_seats, previous_quantity,
       new_quantity, plan
FROM billing_monitoring
WHERE seat_count IS NOT NULL OR added_seats IS NOT NULL OR new_quantity IS NOT NULL OR previous_quantity IS NOT NULL
ORDER BY created_at DESC;

-- name: spend_amounts
-- Spend limits and amounts by limit type.
SELECT coalesce(limit_type, billing_group) AS limit_type, count(*) AS events, sum(amount) AS total_amount,
       max(amount) AS max_amount, max(limit_usd) AS max_limit_usd
FROM billing_monitoring
WHERE amount IS NOT NULL OR limit_usd IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: billing_detail
SELECT created_at, event_type, billing_group, outcome, organization_id, actor_identity, ip_address,
       geo_country_name, plan, seat_count, amount, limit_type, limit_usd, target_user_id
FROM billing_monitoring
ORDER BY created_at DESC
LIMIT 500;
