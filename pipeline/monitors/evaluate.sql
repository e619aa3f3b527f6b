-- The monitors' evaluation: its work tables and the set-based steps that need no rule-specific SQL
-- (pipeline/monitors/evaluate.py loads these by name; the rules' event queries are built there from the config).

-- name: stored_tables
SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT temporary;

-- name: create_work_tables
CREATE OR REPLACE TEMP TABLE mon_rules (monitor VARCHAR, step_us BIGINT, span INTEGER,
                                        threshold DOUBLE, kmin BIGINT, kmax BIGINT);
CREATE OR REPLACE TEMP TABLE mon_events (monitor VARCHAR, group_key VARCHAR, id VARCHAR,
                                         created_at TIMESTAMPTZ, bucket BIGINT);

-- name: insert_rule
INSERT INTO mon_rules VALUES (?, ?, ?, ?, ?, ?);

-- name: create_embargo
CREATE OR REPLACE TEMP TABLE mon_embargo (code VARCHAR, effective_from TIMESTAMPTZ, effective_to TIMESTAMPTZ);

-- name: insert_embargo
INSERT INTO mon_embargo VALUES (?, ?, ?);

-- name: embargo_ips
-- Private, reserved, invalid and unknown addresses never match (monitors.md); `found` is false for all of them.
CREATE OR REPLACE TEMP TABLE mon_embargo_ips AS
SELECT DISTINCT g.ip, e.code, e.effective_from, e.effective_to, upper(g.country_iso) AS country
FROM enrichment.ip_geolocation g
JOIN mon_embargo e ON e.code = upper(g.country_iso) OR e.code = upper(g.subdivision_iso)
WHERE g.found AND coalesce(g.is_valid, true)
  AND NOT coalesce(g.is_private, false) AND NOT coalesce(g.is_reserved, false);

-- name: windows
-- Each bucket's count spread to the windows that contain it; per-group thresholds (monitor 8) come later.
CREATE OR REPLACE TEMP TABLE mon_windows AS
SELECT monitor, group_key, k, sum(n) AS cnt
FROM (SELECT b.monitor, b.group_key, b.n, b.bucket + unnest(range(1, r.span + 1)) AS k
      FROM (SELECT monitor, group_key, bucket, count(*) AS n FROM mon_events GROUP BY ALL) b
      JOIN mon_rules r USING (monitor))
GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE mon_thresholds (monitor VARCHAR, group_key VARCHAR, k BIGINT,
                                             threshold DOUBLE, mean DOUBLE, stddev DOUBLE, history_hours BIGINT);

-- name: matching_events
SELECT e.monitor, count(*) FROM mon_events e JOIN mon_rules r USING (monitor)
WHERE e.bucket >= r.kmin - r.span AND e.bucket <= r.kmax - 1 GROUP BY 1;

-- name: incidents
-- Firing windows, consecutive ones of a monitor and group joined into islands (gaps and islands), with their events.
WITH firing AS (
    SELECT w.monitor, w.group_key, w.k, w.cnt,
           coalesce(t.threshold, r.threshold) AS threshold, t.mean, t.stddev, t.history_hours
    FROM mon_windows w JOIN mon_rules r USING (monitor)
    LEFT JOIN mon_thresholds t USING (monitor, group_key, k)
    WHERE w.k BETWEEN r.kmin AND r.kmax AND w.cnt > coalesce(t.threshold, r.threshold)
), islands AS (
    SELECT *, k - row_number() OVER (PARTITION BY monitor, group_key ORDER BY k) AS island FROM firing
), incidents AS (
    SELECT monitor, group_key, island, min(k) AS k0, max(k) AS k1, max(cnt) AS peak,
           arg_min(threshold, k) AS threshold, arg_min(mean, k) AS mean, arg_min(stddev, k) AS stddev,
           arg_min(history_hours, k) AS history_hours
    FROM islands GROUP BY ALL
)
SELECT i.monitor, i.group_key, i.k0 * r.step_us, i.k1 * r.step_us, min(e.created_at), max(e.created_at),
       list(e.id ORDER BY e.created_at, e.id), i.peak, i.threshold, i.mean, i.stddev, i.history_hours
FROM incidents i JOIN mon_rules r USING (monitor)
JOIN mon_events e ON e.monitor = i.monitor AND e.group_key = i.group_key
                 AND e.bucket BETWEEN i.k0 - r.span AND i.k1 - 1
GROUP BY ALL
ORDER BY 1, 5, 2;

-- name: drop_work_tables
DROP TABLE IF EXISTS mon_rules; DROP TABLE IF EXISTS mon_events; DROP TABLE IF EXISTS mon_windows;
DROP TABLE IF EXISTS mon_thresholds; DROP TABLE IF EXISTS mon_embargo; DROP TABLE IF EXISTS mon_embargo_ips;

-- name: deletion_candidates
-- Monitor 8: the (actor, hour) windows whose count reaches the floor.
CREATE OR REPLACE TEMP TABLE m8_cand AS
SELECT w.group_key, w.k FROM mon_windows w JOIN mon_rules r USING (monitor)
WHERE w.monitor = $name AND w.k BETWEEN r.kmin AND r.kmax AND w.cnt >= $floor;

-- name: first_event_of
SELECT min(created_at) FROM mon_events WHERE monitor = $name;

-- name: deletion_thresholds
-- Monitor 8: mean and population stddev of each candidate's hourly counts over its history (zero hours included).
INSERT INTO mon_thresholds
WITH c AS (
    SELECT c.group_key, c.k,
           least($baseline, greatest(0, (c.k - 1) - epoch_us(f.first_seen) // $hour)) AS n_hours
    FROM m8_cand c JOIN m8_first f USING (group_key)
), s AS (
    SELECT c.group_key, c.k, c.n_hours, coalesce(sum(h.n), 0) AS s1, coalesce(sum(h.n * h.n), 0) AS s2
    FROM c LEFT JOIN m8_hist h
      ON h.group_key = c.group_key AND h.h >= c.k - 1 - c.n_hours AND h.h < c.k - 1
    GROUP BY ALL
), stats AS (
    SELECT group_key, k, n_hours, s1 / n_hours AS mean,
           sqrt(greatest(s2 / n_hours - (s1 / n_hours) ^ 2, 0)) AS stddev
    FROM s WHERE n_hours >= $min_hours AND n_hours > 0
)
SELECT $name, group_key, k, greatest($floor - 1, mean + $sigmas * stddev), mean, stddev, n_hours FROM stats;
