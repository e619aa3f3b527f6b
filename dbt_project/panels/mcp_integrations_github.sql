-- name: active_mcp_servers
-- MCP servers created minus deleted, by name.
SELECT mcp_server_name, sum(mcp_server_delta) AS active_servers,
       count(*) FILTER (WHERE mcp_server_delta = 1) AS created,
       count(*) FILTER (WHERE mcp_server_delta = -1) AS deleted
FROM mcp_integrations_github
WHERE mcp_server_name IS NOT NULL
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
