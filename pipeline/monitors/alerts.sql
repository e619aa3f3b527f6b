-- The monitors' alerts (pipeline/monitors/alerts.py loads these by name).

-- name: ddl
CREATE SCHEMA IF NOT EXISTS monitors;
CREATE TABLE IF NOT EXISTS monitors.alerts (
    alert_id          VARCHAR NOT NULL,      -- 'alert_' + hash(monitor, group_key, first activity id)
    monitor           VARCHAR NOT NULL,      -- the check name of monitors.md
    severity          VARCHAR NOT NULL,      -- 'critical' for all 9 (Dagster severity ERROR)
    group_key         VARCHAR,               -- actor identity, api key id / ip, 'ip|country'; NULL when ungrouped
    first_event_at    TIMESTAMPTZ NOT NULL,
    last_event_at     TIMESTAMPTZ NOT NULL,
    event_count       BIGINT NOT NULL,
    threshold         DOUBLE NOT NULL,       -- a window fires when its count is > threshold
    activity_ids      VARCHAR[] NOT NULL,    -- oldest first
    raised_at         TIMESTAMPTZ NOT NULL,
    delivered_at      TIMESTAMPTZ,           -- set by the webhook sensor after a 2xx
    first_window_end  TIMESTAMPTZ NOT NULL,  -- firing windows of the incident (their ends)
    last_window_end   TIMESTAMPTZ NOT NULL,
    peak_count        BIGINT NOT NULL,       -- largest count of one window
    details           JSON,                  -- monitor 8 baseline (mean, stddev, history hours)
    updated_at        TIMESTAMPTZ,           -- last time late events were merged in
    run_id            VARCHAR                -- the Dagster run that raised it
);
ALTER TABLE monitors.alerts ADD COLUMN IF NOT EXISTS status VARCHAR DEFAULT 'open';  -- open|acknowledged|resolved
ALTER TABLE monitors.alerts ADD COLUMN IF NOT EXISTS status_by VARCHAR;         -- who set the status ('system')
ALTER TABLE monitors.alerts ADD COLUMN IF NOT EXISTS status_at TIMESTAMPTZ;
ALTER TABLE monitors.alerts ADD COLUMN IF NOT EXISTS status_note VARCHAR;
ALTER TABLE monitors.alerts ADD COLUMN IF NOT EXISTS reopened_count INTEGER DEFAULT 0;
ALTER TABLE monitors.alerts ADD COLUMN IF NOT EXISTS notified_event_count BIGINT;  -- event_count when last posted
ALTER TABLE monitors.alerts ADD COLUMN IF NOT EXISTS notify_reason VARCHAR;      -- why it is pending again
CREATE TABLE IF NOT EXISTS monitors.alert_history (
    alert_id     VARCHAR NOT NULL,
    changed_at   TIMESTAMPTZ NOT NULL,
    action       VARCHAR NOT NULL,   -- acknowledge | resolve | reopen | reopened (new events) | renotify
    actor        VARCHAR NOT NULL,   -- a person, or 'system'
    from_status  VARCHAR,
    to_status    VARCHAR,
    note         VARCHAR
);

-- name: activity_order
SELECT id FROM raw.activities
WHERE created_at >= $lo AND created_at <= $hi AND id IN (SELECT unnest($ids)) ORDER BY created_at, id;

-- name: touchable_alerts
SELECT * FROM monitors.alerts
WHERE monitor IN (SELECT unnest($monitors)) AND last_window_end >= $lo AND first_window_end <= $hi
ORDER BY first_window_end, alert_id;

-- name: delete_alerts
DELETE FROM monitors.alerts WHERE alert_id IN (SELECT unnest($ids));

-- name: insert_history
INSERT INTO monitors.alert_history VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: status_of
SELECT status FROM monitors.alerts WHERE alert_id = ?;

-- name: set_status
UPDATE monitors.alerts SET status = ?, status_by = ?, status_at = ?, status_note = ?,
    reopened_count = reopened_count + CASE WHEN ? = 'open' THEN 1 ELSE 0 END
WHERE alert_id = ?;

-- name: alert_history
SELECT * FROM monitors.alert_history WHERE alert_id = $id ORDER BY changed_at;

-- name: pending_alerts
SELECT * FROM monitors.alerts
WHERE delivered_at IS NULL AND alert_id NOT IN (SELECT unnest($exclude::VARCHAR[]))
ORDER BY raised_at, alert_id
LIMIT $limit;

-- name: alerts_raised_after
SELECT * FROM monitors.alerts
WHERE raised_at > $ts OR (raised_at = $ts AND alert_id > $id)
ORDER BY raised_at, alert_id
LIMIT $limit;

-- name: mark_delivered
UPDATE monitors.alerts a SET delivered_at = d.at, notified_event_count = a.event_count, notify_reason = NULL
FROM delivered_now d WHERE a.alert_id = d.alert_id AND a.delivered_at IS NULL;
