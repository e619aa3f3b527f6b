-- name: total_events
-- Total events: one row per activity id (the mart's unique test on activity_id), so rows, not distinct ids, are
-- counted, from the 5-minute rollup (activity_overview_5min: the count panels sum its `events`; same figures under
-- every filter the dashboard offers, a few rows per window instead of every activity).
SELECT coalesce(sum(events), 0)::BIGINT AS total_events
FROM activity_overview_5min;

-- name: events_over_time_by_type
-- Events per hour for the 10 most frequent types, everything else as "other". Filters go into `activities` only:
-- the top 10 are then ranked among the filtered rows too.
WITH activities AS (
    SELECT created_hour, event_type, events FROM activity_overview_5min
    WHERE true
), top_types AS (
    SELECT event_type FROM activities GROUP BY event_type ORDER BY sum(events) DESC, event_type LIMIT 10
)
SELECT
    created_hour,
    CASE WHEN event_type IN (SELECT event_type FROM top_types) THEN event_type ELSE 'other' END AS event_type,
    sum(events)::BIGINT AS events
FROM activities
GROUP BY ALL
ORDER BY created_hour, events DESC;

-- name: activity_type_distribution
-- Events by activity type, with its dashboard category.
SELECT event_type, category, sum(events)::BIGINT AS events
FROM activity_overview_5min
GROUP BY ALL
ORDER BY events DESC, event_type;

-- name: category_distribution
-- Events by dashboard category (unknown types without a rule are "uncategorized").
SELECT category, sum(events)::BIGINT AS events, count(DISTINCT event_type) AS event_types
FROM activity_overview_5min
GROUP BY ALL
ORDER BY events DESC;

-- name: threat_count
-- Events that a monitor rule matched, and alerts raised (alerts: the overview's companion table).
SELECT
    coalesce(sum(events) FILTER (WHERE is_threat), 0)::BIGINT AS threat_events,
    (SELECT count(*) FROM alerts) AS alerts_raised
FROM activity_overview_5min;

-- name: threats_by_monitor
-- Events per monitor rule they match.
SELECT rule AS monitor, sum(events)::BIGINT AS events
FROM (SELECT unnest(monitor_rules) AS rule, events FROM activity_overview_5min)
GROUP BY ALL
ORDER BY events DESC;

-- name: geo_map
-- Events by actor location (public IPs with a location).
SELECT geo_latitude, geo_longitude, geo_country_iso, geo_country_name, geo_city, count(*) AS events
FROM activity_overview
WHERE geo_latitude IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: embargoed_region_events
-- Events from embargoed countries and regions.
SELECT created_at, event_type, actor_type, actor_identity, ip_address, geo_country_iso, geo_country_name,
       geo_subdivision_iso, geo_subdivision_name, geo_city, embargo_region, organization_id
FROM activity_overview
WHERE is_embargoed
ORDER BY created_at DESC;

-- name: unauthenticated_actor_event_count
-- Events by unauthenticated actors.
SELECT count(*) AS unauthenticated_events, count(DISTINCT actor_identity) AS unauthenticated_actors
FROM activity_overview
WHERE is_unauthenticated;

-- name: unauthenticated_actor_events
-- Events by unauthenticated actors (table).
SELECT created_at, event_type, actor_identity, ip_address, geo_country_name, user_agent, outcome
FROM activity_overview
WHERE is_unauthenticated
ORDER BY created_at DESC;

-- name: failed_activity_count
-- Failed activities.
SELECT coalesce(sum(events), 0)::BIGINT AS failed_events, count(DISTINCT event_type) AS failed_event_types
FROM activity_overview_5min
WHERE outcome = 'failure';

-- name: failed_activity_trend
-- Failed activities per hour.
SELECT created_hour, sum(events)::BIGINT AS failed_events
FROM activity_overview_5min
WHERE outcome = 'failure'
GROUP BY ALL
ORDER BY created_hour;

-- name: failed_activities_by_type
-- Failed activities by type.
SELECT event_type, sum(events)::BIGINT AS failed_events
FROM activity_overview_5min
WHERE outcome = 'failure'
GROUP BY ALL
ORDER BY failed_events DESC, event_type;

-- name: events_by_organization
-- Events by organization (events not tied to an organization: null).
SELECT organization_id, organization_uuid, sum(events)::BIGINT AS events
FROM activity_overview_5min
GROUP BY ALL
ORDER BY events DESC;

-- name: events_by_actor_type
-- Events by actor type.
SELECT actor_type, count(*) AS events, count(DISTINCT actor_identity) AS actors
FROM activity_overview
GROUP BY ALL
ORDER BY events DESC;

-- name: events_by_idp_connection_type
-- Events by identity-provider connection type (SCIM directory sync actors).
SELECT idp_connection_type, sum(events)::BIGINT AS events
FROM activity_overview_5min
WHERE idp_connection_type IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;
