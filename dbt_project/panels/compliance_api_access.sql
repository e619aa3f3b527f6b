-- name: requests_over_time_by_user_agent
SELECT created_hour, coalesce(ua_client_name, ua_browser_family, user_agent, 'none') AS client, count(*) AS requests
FROM compliance_api_access
GROUP BY ALL
ORDER BY created_hour, requests DESC;

-- name: http_status_distribution
SELECT status_code, status_class, count(*) AS requests
FROM compliance_api_access
GROUP BY ALL
ORDER BY status_code;

-- name: geo_origin
SELECT geo_country_iso, geo_country_name, geo_city, geo_latitude, geo_longitude, count(*) AS requests
FROM compliance_api_access
WHERE geo_country_iso IS NOT NULL
GROUP BY ALL
ORDER BY requests DESC;

-- name: non_2xx_trend
SELECT created_hour, status_class, count(*) AS requests
FROM compliance_api_access
WHERE is_error_status
GROUP BY ALL
ORDER BY created_hour, status_class;

-- name: top_actor_ips
SELECT ip_address, geo_country_name, count(*) AS requests, count(*) FILTER (WHERE is_error_status) AS errors,
       count(DISTINCT actor_api_key_id) AS api_keys
FROM compliance_api_access
GROUP BY ALL
ORDER BY requests DESC
LIMIT 20;

-- name: endpoint_types
SELECT endpoint_type, count(*) AS requests, count(*) FILTER (WHERE is_error_status) AS errors
FROM compliance_api_access
GROUP BY ALL
ORDER BY requests DESC;

-- name: request_methods
SELECT request_method, count(*) AS requests
FROM compliance_api_access
GROUP BY ALL
ORDER BY requests DESC;

-- name: embargoed_access
SELECT created_at, actor_api_key_id, ip_address, geo_country_name, geo_subdivision_name, embargo_region,
       request_method, url_path, status_code
FROM compliance_api_access
WHERE is_embargoed
ORDER BY created_at DESC;
