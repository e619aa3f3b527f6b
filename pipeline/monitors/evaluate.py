"""SQL evaluation of the monitors over `raw.activities` (+ `enrichment.ip_geolocation`), plain DuckDB.

Windows. A rule's windows have length W and end on a UTC grid of step S (15 min every 5 min; monitor 8: 1-hour
buckets, W = S = 60 min). Window k covers [k*S - W, k*S). Evaluating the ingested range [start, end) means evaluating
every window that overlaps it: ends in (start, end + W). For a single 5-minute partition that is the window ending at
the partition's end (the monitors.md rule) plus the two later windows that also contain its data; those can only add
firings when later data is already stored (partitions ingested out of order). A ranged backfill run evaluates every
window of its range.

Incidents. A window fires when its count for one group is > the threshold. Consecutive firing windows of the same
monitor and group (ends one step apart, so overlapping or, for 1-hour buckets, adjacent) form one incident whose
events are all matching events of that group inside those windows. A window that does not fire ends the incident:
a later burst is a new incident.

Everything set-based runs in DuckDB: matching events are extracted once per monitor (one filtered pass over
`raw.activities`; monitor 8 also reads its candidates' 30-day history), counted per step bucket, spread to the
windows that contain each bucket (W/S windows) and grouped into incidents with the gaps-and-islands trick. Python
only sees incidents. The raw JSON (status codes, settings flags, unauthenticated emails) is read only for rows that
already passed the typed-column filters: reading it is most of the cost (bench/bench_monitors.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from pipeline.monitors.config import SEED_MONITOR_NAMES, Condition, MonitorsConfig, Rule
from pipeline.monitors.identity import email_first, identity_sql
from pipeline.sql_files import queries_beside

SQL = queries_beside(__file__)

US_PER_MINUTE = 60_000_000

# The actor identity (monitors 5 and 8): dbt_project/macros/actor_identity.sql, the definition the marts'
# `actor_identity` is built from. The JSON is read only for rows without an email (the identity's first field). An
# actor without any identifier is the empty group (its alerts have a NULL group, as its mart rows a NULL identity).
IDENTITY_SQL = identity_sql("a")
EMAIL_SQL = email_first("a")

# Ungrouped monitors use the empty group internally (join keys stay non-null); alerts store NULL.
NO_GROUP = "''"


@dataclass
class Incident:
    monitor: str
    group_key: str | None
    first_window_end: datetime
    last_window_end: datetime
    first_event_at: datetime
    last_event_at: datetime
    activity_ids: list[str]
    peak_count: int
    threshold: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def event_count(self) -> int:
        return len(self.activity_ids)


@dataclass
class MonitorResult:
    rule: Rule
    first_window_end: datetime | None = None   # range of evaluated window ends
    last_window_end: datetime | None = None
    windows_evaluated: int = 0
    matching_events: int = 0                   # in the evaluated windows, any group
    incidents: list[Incident] = field(default_factory=list)


def _sql_in(values) -> str:
    """A literal IN list: DuckDB pushes it into the scan as a filter (a subquery would be a join)."""
    return "(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"


def _span(rule: Rule, start: datetime, end: datetime) -> tuple[int, int]:
    """First and last window index (end = k * step) of the windows overlapping [start, end)."""
    step = rule.step_minutes * US_PER_MINUTE
    width = rule.window_minutes * US_PER_MINUTE
    start_us, end_us = _to_us(start), _to_us(end)
    kmin = start_us // step + 1
    kmax = -((-(end_us + width)) // step) - 1  # ceil((end + W) / S) - 1
    return kmin, kmax


def _to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)


def _match_sql(rule: Rule) -> str:
    """SELECT group_key, id, created_at of the rule's matching events with created_at in [$lo, $hi).

    Two phases: the typed columns (time, type, actor type) select row ids, then only those rows are fetched by row
    id - DuckDB turns `rowid IN (subquery)` into point fetches, so the wide columns (ids, the raw JSON) are read for
    the matching rows only instead of for every vector that holds one."""
    cheap = "a.created_at >= $lo AND a.created_at < $hi"
    if rule.types:
        cheap += f" AND a.type IN {_sql_in(rule.types)}"
    if rule.exclude_types:
        cheap += f" AND (a.type IS NULL OR a.type NOT IN {_sql_in(rule.exclude_types)})"
    if rule.actor_types:
        cheap += f" AND a.actor_type IN {_sql_in(rule.actor_types)}"

    def fetch(select: str, where: str = cheap, extra: str = "") -> str:
        return (f"SELECT {select}, a.id, a.created_at FROM raw.activities a "
                f"WHERE a.rowid IN (SELECT a.rowid FROM raw.activities a WHERE {where}){extra}")

    name = rule.name
    if name == "compliance_logging_disabled":
        flags = " OR ".join(f"lower(json_extract_string(a.raw, '$.{f}')) = 'false'" for f in rule.disabled_flags)
        return fetch(f"{NO_GROUP} AS group_key", extra=f" AND ({flags or 'false'})")
    if name == "embargoed_location":
        # grouped by IP and its country (monitors.md); one row per activity even when two entries match
        return f"""
            SELECT DISTINCT ON (a.id) a.ip_address || '|' || x.country AS group_key, a.id, a.created_at
            FROM raw.activities a JOIN mon_embargo_ips x ON a.ip_address = x.ip
            WHERE {cheap}
              AND (x.effective_from IS NULL OR a.created_at >= x.effective_from)
              AND (x.effective_to IS NULL OR a.created_at < x.effective_to)
            ORDER BY a.id, length(x.code) DESC, x.code"""
    if name == "excessive_unauthorized_compliance_api":
        # The JSON of every API call must be read, so the filter goes into the first phase. A number, its text
        # or 401.0 all match.
        codes = ", ".join(str(int(c)) for c in rule.status_codes) or "NULL"
        return fetch(f"coalesce(a.actor_api_key_id, a.ip_address, {NO_GROUP}) AS group_key",
                     where=f"{cheap} AND TRY_CAST(a.raw->>'$.status_code' AS DOUBLE) IN ({codes})")
    if name in ("excessive_failed_auth", "resource_deletion_outlier"):
        return _identity_rows(cheap)
    # admin_or_platform_api_key_created, ip_restriction_deleted, org_destructive_activity, unauthenticated_activity
    return fetch(f"{NO_GROUP} AS group_key")


def _identity_rows(where: str, columns: str = "a.id, a.created_at", extra: str = "") -> str:
    """`ident AS group_key, <columns>` of the rows matching `where` (then `extra`, on the fetched rows only); the raw
    JSON is read only for rows without an email (for the others the identity is the email)."""
    return f"""
        SELECT {EMAIL_SQL} AS group_key, {columns} FROM raw.activities a
        WHERE a.rowid IN (SELECT a.rowid FROM raw.activities a WHERE {where} AND {EMAIL_SQL} IS NOT NULL){extra}
        UNION ALL
        SELECT coalesce({IDENTITY_SQL}, {NO_GROUP}) AS group_key, {columns} FROM raw.activities a
        WHERE a.rowid IN (SELECT a.rowid FROM raw.activities a WHERE {where} AND {EMAIL_SQL} IS NULL){extra}"""


# ---------------------------------------------------------------------------------------------------------------
# peer and custom rules: field conditions, group by, and the kinds with their own shape

def _sql_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "'true'" if v else "'false'"
    return "'" + str(v).replace("'", "''") + "'"


def _field_values(path: str, raw: str = "a.raw") -> tuple[str, str | None]:
    """SQL of a field's text value, and of the list of values when a step of the path is a list of objects
    (`audience` may be one object or a list of them)."""
    scalar = f"json_extract_string({raw}, '$.{path}')"
    parts = path.split(".")
    if len(parts) == 1:
        return scalar, None
    return scalar, f"json_extract_string({raw}, '$.{parts[0]}[*].{'.'.join(parts[1:])}')"


def condition_sql(c: Condition, raw: str = "a.raw", literal=None) -> str:
    """One field condition as a SQL predicate over the record's JSON `raw` (config.CONDITION_OPS). Field paths and
    ops are validated at load; values are quoted literals (`literal` renders them, e.g. escaped for Jinja)."""
    _literal = literal or _sql_literal
    scalar, listed = _field_values(c.field, raw)

    def test(x: str) -> str:
        if c.op in ("eq", "in"):
            return f"{x} IN ({', '.join(_literal(v) for v in c.values)})"
        if c.op in ("ne", "not_in"):
            return f"{x} NOT IN ({', '.join(_literal(v) for v in c.values)})"
        if c.op == "is_true":
            return f"lower({x}) = 'true'"
        if c.op == "is_false":
            return f"lower({x}) = 'false'"
        if c.op == "matches":
            return f"regexp_matches({x}, {_literal(c.values[0])})"
        if c.op in ("gt", "gte", "lt", "lte"):
            sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[c.op]
            return f"TRY_CAST({x} AS DOUBLE) {sign} {float(c.values[0])!r}"
        raise AssertionError(c.op)

    if c.op == "exists":
        return f"({scalar} IS NOT NULL" + (f" OR len({listed}) > 0)" if listed else ")")
    if c.op == "missing":
        return f"({scalar} IS NULL" + (f" AND coalesce(len({listed}), 0) = 0)" if listed else ")")
    if c.op in ("ne", "not_in"):  # a missing field is not "different"
        return f"coalesce({test(scalar)}, false)"
    out = f"coalesce({test(scalar)}, false)"
    if listed:
        out = f"({out} OR coalesce(list_bool_or(list_transform({listed}, lambda x: {test('x')})), false))"
    return out


def conditions_sql(rule: Rule, raw: str = "a.raw", literal=None) -> str:
    if not rule.conditions:
        return "true"
    joiner = " AND " if rule.match == "all" else " OR "
    return "(" + joiner.join(condition_sql(c, raw, literal) for c in rule.conditions) + ")"


def _group_sql(rule: Rule) -> str:
    g = rule.group_by
    if g == "none":
        return NO_GROUP
    if g == "ip":
        return f"coalesce(a.ip_address, {NO_GROUP})"
    if g == "api_key":
        return f"coalesce(a.actor_api_key_id, a.actor_admin_api_key_id, a.ip_address, {NO_GROUP})"
    if g == "actor_type":
        return f"coalesce(a.actor_type, {NO_GROUP})"
    return f"coalesce(json_extract_string(a.raw, '$.{g}'), {NO_GROUP})"


def _generic_rows(rule: Rule, cheap: str, types: tuple[str, ...] | None = None, with_conditions: bool = True) -> str:
    """group_key, id, created_at, ip_address of the rows of a peer / custom rule: the typed filters select row ids,
    the rows are fetched by id and materialized, and only then are the field conditions and the user-agent test
    applied (left in one query, the optimizer pushes the JSON conditions into the full scan: 10x slower)."""
    types = rule.types if types is None else types
    where = cheap
    if types:
        where += f" AND a.type IN {_sql_in(types)}"
    extra = ""
    if with_conditions and rule.conditions:
        extra += f" AND {conditions_sql(rule)}"
    if rule.automated_user_agent:
        extra += " AND a.user_agent IN (SELECT user_agent FROM enrichment.user_agents WHERE is_automated)"
    columns = "a.id, a.created_at, a.ip_address, a.user_agent, a.raw"
    if rule.group_by == "actor":
        fetched = _identity_rows(where, columns=columns)
    else:
        fetched = (f"SELECT {_group_sql(rule)} AS group_key, {columns} FROM raw.activities a "
                   f"WHERE a.rowid IN (SELECT a.rowid FROM raw.activities a WHERE {where})")
    if not extra:
        return f"SELECT group_key, id, created_at, ip_address FROM ({fetched})"
    return (f"SELECT a.group_key, a.id, a.created_at, a.ip_address FROM "
            f"(WITH f AS MATERIALIZED ({fetched}) SELECT * FROM f) a WHERE true{extra}")


def _base_filter(rule: Rule, lo: str = "$lo", hi: str = "$hi") -> str:
    cheap = f"a.created_at >= {lo} AND a.created_at < {hi}"
    if rule.exclude_types:
        cheap += f" AND (a.type IS NULL OR a.type NOT IN {_sql_in(rule.exclude_types)})"
    if rule.actor_types:
        cheap += f" AND a.actor_type IN {_sql_in(rule.actor_types)}"
    return cheap


def _peer_sql(rule: Rule) -> str:
    """group_key, id, created_at, anchor_at of a peer / custom rule's events with anchor_at in [$lo, $hi). The anchor
    is the time the event counts at: its own for threshold rules; for pairs and sequences, the event that completes
    them, so that all events of one finding fall in the same window."""
    if rule.kind == "threshold":
        return f"SELECT group_key, id, created_at, created_at AS anchor_at FROM ({_generic_rows(rule, _base_filter(rule))})"
    if rule.kind == "first_seen":
        # the first matching event of a group with none in the `lookback_days` before it
        return f"""
            SELECT m.group_key, m.id, m.created_at, m.created_at AS anchor_at
            FROM ({_generic_rows(rule, _base_filter(rule))}) m
            WHERE NOT EXISTS (SELECT 1 FROM ({_generic_rows(rule, _base_filter(rule, "$plo"))}) p
                              WHERE p.group_key = m.group_key AND p.created_at < m.created_at
                                AND p.created_at >= m.created_at - INTERVAL ({int(rule.lookback_days)}) DAY
                                AND p.id <> m.id)"""
    if rule.kind == "impossible_travel":
        # consecutive events of one actor from public, geolocated IPs; the pair fires when it is at least
        # min_distance_km apart and the implied speed is above speed_kmh
        rows = _generic_rows(rule, _base_filter(rule, "$plo"))
        return f"""
            WITH ev AS (
                SELECT e.group_key, e.id, e.created_at, g.latitude AS lat, g.longitude AS lon
                FROM ({rows}) e
                JOIN (SELECT ip, any_value(latitude) AS latitude, any_value(longitude) AS longitude
                      FROM enrichment.ip_geolocation
                      WHERE found AND coalesce(is_valid, true) AND NOT coalesce(is_private, false)
                        AND NOT coalesce(is_reserved, false) AND latitude IS NOT NULL AND longitude IS NOT NULL
                      GROUP BY ip) g ON g.ip = e.ip_address
            ), seq AS (
                SELECT *, lag(id) OVER w AS pid, lag(created_at) OVER w AS pat, lag(lat) OVER w AS plat,
                       lag(lon) OVER w AS plon
                FROM ev WINDOW w AS (PARTITION BY group_key ORDER BY created_at, id)
            ), pairs AS (
                SELECT *, 2 * 6371 * asin(sqrt(pow(sin(radians(lat - plat) / 2), 2)
                          + cos(radians(plat)) * cos(radians(lat)) * pow(sin(radians(lon - plon) / 2), 2))) AS km,
                       greatest(epoch_us(created_at) - epoch_us(pat), 1) / 3.6e9 AS hours
                FROM seq WHERE pid IS NOT NULL AND created_at >= $lo AND created_at < $hi
                  AND created_at - pat <= INTERVAL ({int(rule.max_gap_minutes)}) MINUTE
            ), fired AS (
                SELECT * FROM pairs WHERE km >= {float(rule.min_distance_km)!r}
                                      AND km / hours > {float(rule.speed_kmh)!r}
            )
            -- an event in two pairs counts at both anchors (the incident's id list is deduplicated), so that any
            -- evaluation range finds the same events for a pair
            SELECT group_key, id, created_at, created_at AS anchor_at FROM fired
            UNION ALL SELECT group_key, pid, pat, created_at FROM fired"""
    if rule.kind == "sequence":
        # step 1 (types + conditions) followed within max_gap_minutes by step 2 (follow_types), same actor
        first = _generic_rows(rule, _base_filter(rule, "$plo"))
        second = _generic_rows(rule, _base_filter(rule), types=rule.follow_types, with_conditions=False)
        return f"""
            WITH s1 AS ({first}), s2 AS ({second}),
            pairs AS (SELECT s1.group_key, s1.id AS id1, s1.created_at AS at1, s2.id AS id2, s2.created_at AS at2
                      FROM s1 JOIN s2 ON s1.group_key = s2.group_key AND s2.created_at > s1.created_at
                       AND s2.created_at <= s1.created_at + INTERVAL ({int(rule.max_gap_minutes)}) MINUTE)
            -- the first step counts with each follow-up (at its time); ids are deduplicated per incident
            SELECT group_key, id1 AS id, at1 AS created_at, at2 AS anchor_at FROM pairs
            UNION ALL
            SELECT DISTINCT group_key, id2, at2, at2 FROM pairs"""
    raise AssertionError(rule.kind)


def _extra_params(rule: Rule, lo: datetime) -> dict[str, Any]:
    if rule.kind == "first_seen":
        return {"plo": lo - timedelta(days=rule.lookback_days)}
    if rule.kind in ("impossible_travel", "sequence"):
        return {"plo": lo - timedelta(minutes=rule.max_gap_minutes)}
    return {}


def _prepare_embargo(conn: duckdb.DuckDBPyConnection, config: MonitorsConfig) -> None:
    conn.execute(SQL["create_embargo"])
    if config.embargo:
        conn.executemany(SQL["insert_embargo"], [(e.code, e.effective_from, e.effective_to) for e in config.embargo])
    conn.execute(SQL["embargo_ips"])


def _tables_exist(conn: duckdb.DuckDBPyConnection) -> bool:
    names = {r[0] for r in conn.execute(SQL["stored_tables"]).fetchall()}
    return {"raw.activities", "enrichment.ip_geolocation"} <= names


@dataclass(frozen=True)
class RuleSpan:
    """The windows of one rule to evaluate: indexes kmin..kmax (window k ends at k * step), and the events' range."""

    rule: Rule
    kmin: int
    kmax: int
    step_us: int
    threshold: float   # a window fires when its count is > threshold (before any per-group baseline)
    lo: datetime       # events read: created_at in [lo, hi)
    hi: datetime

    def result(self) -> MonitorResult:
        return MonitorResult(rule=self.rule, first_window_end=_from_us(self.kmin * self.step_us),
                             last_window_end=_from_us(self.kmax * self.step_us),
                             windows_evaluated=self.kmax - self.kmin + 1)


def rule_span(rule: Rule, start: datetime, end: datetime) -> RuleSpan:
    """The windows overlapping [start, end) of one rule, and the events they contain."""
    kmin, kmax = _span(rule, start, end)
    step = rule.step_minutes * US_PER_MINUTE
    width = rule.window_minutes * US_PER_MINUTE
    # monitor 8: the floor (count >= floor) is count > floor - 1; the baseline raises it per actor and hour
    base = rule.floor - 1 if rule.name == "resource_deletion_outlier" else rule.threshold
    return RuleSpan(rule, kmin, kmax, step, base, _from_us(kmin * step - width), _from_us(kmax * step))


def incident_from_row(row: tuple, rule: Rule) -> Incident:
    """An incident from a row of the `incidents` query (window ends in microseconds, the baseline when there is one)."""
    (name, group, w0, w1, first, last, ids, peak, threshold, mean, stddev, history) = row
    details: dict[str, Any] = {}
    if mean is not None:
        details = {"baseline_mean": round(mean, 4), "baseline_stddev": round(stddev, 4),
                   "history_hours": int(history)}
    elif name == "resource_deletion_outlier":
        details = {"history_hours_below": rule.min_history_hours, "floor_only": True}
    return Incident(monitor=name, group_key=group or None, first_window_end=_from_us(w0), last_window_end=_from_us(w1),
                    first_event_at=first, last_event_at=last, activity_ids=list(dict.fromkeys(ids)),
                    peak_count=int(peak), threshold=float(threshold), details=details)


def evaluate(conn: duckdb.DuckDBPyConnection, config: MonitorsConfig, start: datetime, end: datetime,
             monitors: list[str] | None = None) -> dict[str, MonitorResult]:
    """Evaluate the (enabled, selected) monitors over every window overlapping [start, end)."""
    rules = [r for r in config.enabled_rules if monitors is None or r.name in monitors]
    if not rules or not _tables_exist(conn):
        return {r.name: MonitorResult(rule=r) for r in rules}
    spans = [rule_span(rule, start, end) for rule in rules]
    results = {span.rule.name: span.result() for span in spans}
    conn.execute(SQL["create_work_tables"])
    if any(r.name == "embargoed_location" for r in rules):
        _prepare_embargo(conn, config)
    for span in spans:
        conn.execute(SQL["insert_rule"], [span.rule.name, span.step_us, span.rule.windows_per_span, span.threshold,
                                          span.kmin, span.kmax])
        _insert_events(conn, span)
    conn.execute(SQL["windows"])
    if "resource_deletion_outlier" in results:
        _deletion_baselines(conn, results["resource_deletion_outlier"].rule)
    for name, n in conn.execute(SQL["matching_events"]).fetchall():
        results[name].matching_events = n
    for row in conn.execute(SQL["incidents"]).fetchall():
        results[row[0]].incidents.append(incident_from_row(row, results[row[0]].rule))
    conn.execute(SQL["drop_work_tables"])
    return results


def _insert_events(conn: duckdb.DuckDBPyConnection, span: RuleSpan) -> None:
    """The rule's matching events of the span into mon_events, each in the step bucket it counts at."""
    rule = span.rule
    params = {"monitor": rule.name, "step": span.step_us, "lo": span.lo, "hi": span.hi}
    if rule.name in SEED_MONITOR_NAMES:
        conn.execute(f"""
            INSERT INTO mon_events
            SELECT $monitor, m.group_key, m.id, m.created_at, epoch_us(m.created_at) // $step
            FROM ({_match_sql(rule)}) m
        """, params)
    elif rule.kind == "first_seen" and not conn.execute(
            f"SELECT count(*) FROM ({_generic_rows(rule, _base_filter(rule))})", {"lo": span.lo, "hi": span.hi}
            ).fetchone()[0]:
        pass  # no candidate in the window: the history is not read (cost follows the new data)
    else:
        conn.execute(f"""
            INSERT INTO mon_events
            SELECT $monitor, m.group_key, m.id, m.created_at, epoch_us(m.anchor_at) // $step
            FROM ({_peer_sql(rule)}) m
        """, {**params, **_extra_params(rule, span.lo)})


def _deletion_baselines(conn: duckdb.DuckDBPyConnection, rule: Rule) -> None:
    """Per candidate (actor, hour) with count >= floor: mean and population stddev of the actor's hourly deletion
    counts over the previous `baseline_days`, zero hours included, counted from the hour of the actor's first seen
    activity (any type). Only candidates with at least `min_history_hours` of history get a row (floor alone
    otherwise)."""
    name = rule.name
    hour = rule.step_minutes * US_PER_MINUTE  # the bucket (1 hour by default)
    baseline = rule.baseline_days * 24 * 60 // rule.step_minutes  # buckets of history
    conn.execute(SQL["deletion_candidates"], {"name": name, "floor": rule.floor})
    bounds = conn.execute("SELECT min(k), max(k) FROM m8_cand").fetchone()
    if bounds[0] is None:
        conn.execute("DROP TABLE m8_cand")
        return
    kmin, kmax = bounds
    # Window k is the bucket [(k-1)*S, k*S); its history is the `baseline` buckets before it.
    hist_lo, hist_hi = _from_us((kmin - 1 - baseline) * hour), _from_us((kmax - 1) * hour)
    cands = [r[0] for r in conn.execute("SELECT DISTINCT group_key FROM m8_cand ORDER BY 1").fetchall()]
    in_cands = _sql_in(cands)
    # An identity is the email when there is one: a filter on that one column (pushed into the scan) finds the
    # email-identified candidates' rows without reading the JSON.
    typed = f"a.actor_email_address IN {in_cands}"
    # First seen: the earliest activity of the actor, whatever its type, bounded below by the oldest history any
    # candidate can use (an actor seen before that has a full baseline anyway). Email-identified actors are found
    # from the email column alone; rows without an email (whose identity may be in the JSON) are read only where
    # they could move a first-seen earlier: before the email first-seen of an actor whose history is not yet full.
    params = {"lo": hist_lo, "hi": _from_us(kmax * hour)}
    conn.execute(f"""
        CREATE OR REPLACE TEMP TABLE m8_first AS
        SELECT a.actor_email_address AS group_key, min(a.created_at) AS first_seen
        FROM raw.activities a
        WHERE a.created_at >= $lo AND a.created_at < $hi AND {typed}
        GROUP BY 1
    """, params)
    open_end = conn.execute(f"""
        SELECT max(coalesce(f.first_seen, $hi)) FROM m8_cand c LEFT JOIN m8_first f USING (group_key)
        WHERE f.first_seen IS NULL OR epoch_us(f.first_seen) // {hour} > c.k - 1 - {baseline}
    """, {"hi": params["hi"]}).fetchone()[0]
    if open_end is not None:
        conn.execute(f"""
            INSERT INTO m8_first
            SELECT group_key, min(created_at) FROM ({_identity_rows(
                "a.created_at >= $lo AND a.created_at < $open_end", "a.created_at")})
            WHERE group_key IN {in_cands} AND created_at < $open_end
            GROUP BY 1
        """, {"lo": hist_lo, "open_end": open_end})
        conn.execute("CREATE OR REPLACE TEMP TABLE m8_first AS SELECT group_key, min(first_seen) AS first_seen "
                     "FROM m8_first GROUP BY 1")
    # Hourly deletion counts: the evaluated span is already in mon_events; only older history is read.
    span_lo = conn.execute(SQL["first_event_of"], {"name": name}).fetchone()[0]
    older_hi = min(hist_hi, span_lo) if span_lo is not None else hist_hi
    older = ""
    if hist_lo < older_hi:
        deletions = f"a.type IN {_sql_in(rule.types)} AND a.created_at >= $lo AND a.created_at < $older_hi"
        older = f"""UNION ALL
            SELECT group_key, created_at FROM ({_identity_rows(deletions, "a.created_at")})
            WHERE group_key IN {in_cands}"""
    conn.execute(f"""
        CREATE OR REPLACE TEMP TABLE m8_hist AS
        SELECT group_key, epoch_us(created_at) // $hour AS h, count(*) AS n
        FROM (SELECT group_key, created_at FROM mon_events
              WHERE monitor = $name AND group_key IN {in_cands} AND created_at >= $lo AND created_at < $hi
              {older})
        GROUP BY ALL
    """, {"hour": hour, "lo": hist_lo, "hi": hist_hi, "name": name,
          **({"older_hi": older_hi} if older else {})})
    conn.execute(SQL["deletion_thresholds"], {
        "baseline": baseline, "hour": hour, "min_hours": rule.min_history_hours * 60 // rule.step_minutes,
        "name": name, "floor": rule.floor, "sigmas": rule.sigmas})
    conn.execute("DROP TABLE m8_cand; DROP TABLE m8_first; DROP TABLE m8_hist")


def sample_events(conn: duckdb.DuckDBPyConnection, incidents: list[Incident], limit: int = 10
                  ) -> list[dict[str, Any]]:
    """The first events of the earliest incidents, oldest first, with what a responder needs to read them.

    One small time-bounded lookup per incident (DuckDB skips the other row groups by their min/max created_at),
    rather than an id lookup over the whole table: this runs after every check on a table that only grows."""
    parts, params, taken = [], {}, 0
    for n, inc in enumerate(sorted(incidents, key=lambda i: i.first_event_at)):
        ids = inc.activity_ids[:limit - taken]
        taken += len(ids)
        parts.append(f"SELECT rowid FROM raw.activities WHERE created_at >= $lo{n} AND created_at <= $hi{n} "
                     f"AND id IN {_sql_in(ids)}")
        params.update({f"lo{n}": inc.first_event_at, f"hi{n}": inc.last_event_at})
        if taken >= limit:
            break
    if not parts:
        return []
    rows = conn.execute(f"""
        SELECT a.id, a.created_at, a.type, a.actor_type, {IDENTITY_SQL} AS actor, a.ip_address
        FROM raw.activities a WHERE a.rowid IN ({" UNION ALL ".join(parts)})
        ORDER BY a.created_at, a.id
    """, params).fetchall()
    ips = sorted({r[5] for r in rows if r[5]})
    geo = {ip: (c, sub) for ip, c, sub in conn.execute(f"""
        SELECT ip, any_value(country_iso), any_value(subdivision_iso) FROM enrichment.ip_geolocation
        WHERE ip IN {_sql_in(ips)} GROUP BY ip""").fetchall()} if ips else {}
    keys = ("id", "created_at", "type", "actor_type", "actor", "ip_address")
    out = []
    for r in rows[:limit]:
        event = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(keys, r)}
        event["country"], event["region"] = geo.get(r[5], (None, None))
        out.append(event)
    return out
