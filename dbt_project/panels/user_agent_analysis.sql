-- name: by_browser
SELECT coalesce(ua_browser_family, 'unknown') AS browser, count(*) AS events
FROM user_agent_analysis
GROUP BY ALL
ORDER BY events DESC;

-- name: by_os
SELECT coalesce(ua_os_family, 'unknown') AS os, count(*) AS events
FROM user_agent_analysis
GROUP BY ALL
ORDER BY events DESC;

-- name: by_device_platform
SELECT coalesce(ua_platform, 'unknown') AS platform, coalesce(ua_device_family, 'unknown') AS device,
       count(*) AS events
FROM user_agent_analysis
GROUP BY ALL
ORDER BY events DESC;

-- name: automated_vs_human
SELECT CASE ua_is_automated WHEN true THEN 'automated' WHEN false THEN 'human' ELSE 'unknown' END AS origin,
       count(*) AS events
FROM user_agent_analysis
GROUP BY ALL
ORDER BY events DESC;

-- name: user_agent_trend
SELECT created_hour, coalesce(ua_client_name, ua_browser_family, 'unknown') AS client, count(*) AS events
FROM user_agent_analysis
GROUP BY ALL
ORDER BY created_hour, events DESC;

-- name: top_user_agents_in_failed_activities
SELECT user_agent, ua_client_category, count(*) AS failed_events
FROM user_agent_analysis
WHERE outcome = 'failure'
GROUP BY ALL
ORDER BY failed_events DESC, user_agent
LIMIT 20;

-- name: http_errors_by_client_category
-- Non-2xx Compliance API calls by client category.
SELECT ua_client_category, http_status_code, count(*) AS errors
FROM user_agent_analysis
WHERE is_http_error
GROUP BY ALL
ORDER BY errors DESC;

-- name: client_category_trend
SELECT created_hour, ua_client_category, count(*) AS events
FROM user_agent_analysis
GROUP BY ALL
ORDER BY created_hour, ua_client_category;
