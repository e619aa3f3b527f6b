-- name: active_mcp_servers
-- MCP servers active at the end of the range, by name: a server (its id, else its name) is active when its latest
-- creation or deletion is a creation, so a deletion of a server created before the range is never a negative count.
-- created / deleted: lifecycle events in the rows read.
WITH servers AS (
    SELECT coalesce(mcp_server_id, mcp_server_name) AS server, mcp_server_name, mcp_server_delta,
           last_value(nullif(mcp_server_delta, 0) IGNORE NULLS) OVER (
               PARTITION BY coalesce(mcp_server_id, mcp_server_name) ORDER BY created_at, activity_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_delta
    FROM mcp_integrations_github
    WHERE mcp_server_name IS NOT NULL
)
SELECT mcp_server_name,
       count(DISTINCT server) FILTER (WHERE last_delta = 1) AS active_servers,
       count(*) FILTER (WHERE mcp_server_delta = 1) AS created,
       count(*) FILTER (WHERE mcp_server_delta = -1) AS deleted
FROM servers
GROUP BY ALL
ORDER BY active_servers DESC, mcp_server_name;

-- name: integration_types
SELECT coalesce(integration_type, integration_kind) AS integration_type, count(*) AS events
FROM mcp_integrations_github
GROUP BY ALL
ORDER BY events DESC;

-- name: top_github_repositories
SELECT repository_name, count(*) AS events
FROM mcp_integrations_github
WHERE repository_name IS NOT NULL
GROUP BY ALL
ORDER BY events DESC, repository_name
LIMIT 20;

-- name: actor_geo
SELECT geo_country_iso, geo_country_name, geo_latitude, geo_longitude, count(*) AS events
FROM mcp_integrations_github
WHERE geo_country_iso IS NOT NULL
GROUP BY ALL
ORDER BY events DESC;

-- name: event_distribution
SELECT integration_kind, event_type, count(*) AS events
FROM mcp_integrations_github
GROUP BY ALL
ORDER BY events DESC;

-- name: integrations_detail
SELECT created_at, event_type, integration_kind, mcp_server_name, integration_type, repository_name, hostname,
       actor_identity, ip_address, outcome
FROM mcp_integrations_github
ORDER BY created_at DESC
LIMIT 500;
