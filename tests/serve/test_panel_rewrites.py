"""Panel queries rewritten to render faster give the figures of the query they replaced, on the serving file the
pipeline published from the simulator, unfiltered and under the dashboard's global filters (time range, organization,
actor type, event type; for chats: user, role, model, content type), through the app's own filtered views.

Most rewrites read a panel rollup (models/marts/rollups: the mart summed by 5-minute window and filter columns);
the time ranges below start and end on 5-minute boundaries, as every range the app offers does
(pipeline/dashboard/timerange.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from pipeline.dashboard.source import Filters, open_serving
from tests.transform.marts_build import DAY

# (dashboard, panel) -> the query it replaced (its text before the rewrite)
FORMER = {
    # the mart holds each activity once (its unique test on activity_id, models/marts/activity/activity_overview.yml):
    # counting rows is counting ids; the rollup sums those rows
    ("activity_overview", "total_events"):
        "SELECT count(DISTINCT activity_id) AS total_events FROM activity_overview",
    ("activity_overview", "events_over_time_by_type"): """
WITH activities AS (
    SELECT created_hour, event_type FROM activity_overview
    WHERE true
), top_types AS (
    SELECT event_type FROM activities GROUP BY event_type ORDER BY count(*) DESC, event_type LIMIT 10
)
SELECT
    created_hour,
    CASE WHEN event_type IN (SELECT event_type FROM top_types) THEN event_type ELSE 'other' END AS event_type,
    count(*) AS events
FROM activities
GROUP BY ALL
ORDER BY created_hour, events DESC""",
    ("activity_overview", "activity_type_distribution"): """
SELECT event_type, category, count(*) AS events
FROM activity_overview
GROUP BY ALL
ORDER BY events DESC, event_type""",
    ("activity_overview", "category_distribution"): """
SELECT category, count(*) AS events, count(DISTINCT event_type) AS event_types
FROM activity_overview
GROUP BY ALL
ORDER BY events DESC""",
    ("activity_overview", "threat_count"): """
SELECT
    count(*) FILTER (WHERE is_threat) AS threat_events,
    (SELECT count(*) FROM alerts) AS alerts_raised
FROM activity_overview""",
    ("activity_overview", "threats_by_monitor"): """
SELECT rule AS monitor, count(*) AS events
FROM (SELECT unnest(monitor_rules) AS rule FROM activity_overview)
GROUP BY ALL
ORDER BY events DESC""",
    ("activity_overview", "failed_activity_count"): """
SELECT count(*) AS failed_events, count(DISTINCT event_type) AS failed_event_types
FROM activity_overview
WHERE outcome = 'failure'""",
    ("activity_overview", "failed_activity_trend"): """
SELECT created_hour, count(*) AS failed_events
FROM activity_overview
WHERE outcome = 'failure'
GROUP BY ALL
ORDER BY created_hour""",
    ("activity_overview", "failed_activities_by_type"): """
SELECT event_type, count(*) AS failed_events
FROM activity_overview
WHERE outcome = 'failure'
GROUP BY ALL
ORDER BY failed_events DESC, event_type""",
    ("activity_overview", "events_by_organization"): """
SELECT organization_id, organization_uuid, count(*) AS events
FROM activity_overview
GROUP BY ALL
ORDER BY events DESC""",
    ("activity_overview", "events_by_idp_connection_type"): """
SELECT idp_connection_type, count(*) AS events
FROM activity_overview
WHERE idp_connection_type IS NOT NULL
GROUP BY ALL
ORDER BY events DESC""",
    ("claude_usage", "command_events"): """
SELECT command_name, event_type, count(*) AS events, count(DISTINCT actor_identity) AS users
FROM claude_usage
WHERE usage_area = 'command'
GROUP BY ALL
ORDER BY events DESC""",
    ("claude_usage", "top_active_users"): """
SELECT actor_identity, actor_user_id, count(*) AS events, count(DISTINCT chat_id) AS chats
FROM claude_usage
GROUP BY ALL
ORDER BY events DESC, actor_identity
LIMIT 20""",
    ("claude_usage", "unique_counts"): """
SELECT count(DISTINCT chat_id) AS unique_chats, count(DISTINCT actor_user_id) AS unique_users,
       count(*) AS interactions
FROM claude_usage""",
    ("claude_usage", "model_usage_distribution"): """
SELECT coalesce(model, 'unknown') AS model, count(*) AS events, count(DISTINCT chat_id) AS chats
FROM claude_usage
WHERE usage_area = 'chat'
GROUP BY ALL
ORDER BY events DESC""",
    ("claude_usage", "chat_events_trend"): """
SELECT created_hour, event_type, count(*) AS events
FROM claude_usage
WHERE usage_area = 'chat'
GROUP BY ALL
ORDER BY created_hour, events DESC""",
    ("claude_usage", "claude_code_activity_trend"): """
SELECT created_hour, usage_area, count(*) AS events
FROM claude_usage
WHERE usage_area IN ('claude_code', 'remote_agent', 'cowork', 'platform_agent')
GROUP BY ALL
ORDER BY created_hour, usage_area""",
    ("claude_usage", "claude_code_trigger_modes"): """
SELECT trigger_mode, count(*) AS events
FROM claude_usage
WHERE trigger_mode IS NOT NULL
GROUP BY ALL
ORDER BY events DESC""",
    ("claude_usage", "claude_code_top_repositories"): """
SELECT repository, count(*) AS events
FROM claude_usage
WHERE repository IS NOT NULL
GROUP BY ALL
ORDER BY events DESC, repository
LIMIT 20""",
    ("claude_usage", "claude_code_event_statuses"): """
SELECT status, event_type, count(*) AS events
FROM claude_usage
WHERE status IS NOT NULL
GROUP BY ALL
ORDER BY events DESC""",
    ("chats", "generated_artifacts"): """
SELECT message_created_at, chat_id, chat_name, user_email, 'artifact' AS kind, a.title AS name,
       a.artifact_type AS type, a.id, a.version_id, NULL::BIGINT AS size_bytes
FROM (SELECT *, unnest(artifacts) AS a FROM chats WHERE NOT is_chat_deleted)
UNION ALL
SELECT message_created_at, chat_id, chat_name, user_email, 'generated_file', g.filename, g.mime_type, g.id, NULL,
       g.size_bytes
FROM (SELECT *, unnest(generated_files) AS g FROM chats WHERE NOT is_chat_deleted)
ORDER BY message_created_at DESC""",
    ("chats", "file_uploads"): """
SELECT message_created_at, chat_id, chat_name, user_email, f.filename, f.mime_type, f.size_bytes, f.id AS file_id
FROM (SELECT *, unnest(files) AS f FROM chats WHERE NOT is_chat_deleted)
ORDER BY message_created_at DESC""",
}
NOON = datetime.fromisoformat(f"{DAY}T12:00:00+00:00")
EARLY = datetime.fromisoformat(f"{DAY}T06:05:00+00:00")
NEVER = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2001, 1, 1, tzinfo=timezone.utc))


def _most_frequent(source, table: str, column: str, where: str = "true") -> str:
    return source.query(f"SELECT {column} AS v FROM served.main.{table} WHERE {where} AND {column} IS NOT NULL "
                        f"GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")["v"][0]


def filter_sets(source, dashboard: str) -> list[Filters]:
    if dashboard == "chats":
        user = _most_frequent(source, "chats", "user_email", "len(files) + len(artifacts) > 0")
        model = _most_frequent(source, "chats", "model")
        return [Filters(), Filters(start=NOON), Filters(end=NOON, user_email=user), Filters(role="assistant"),
                Filters(model=model, content_type="tool_use"), Filters(start=NEVER[0], end=NEVER[1])]
    organization = source.filter_choices()["organization"][0]
    return [Filters(), Filters(start=NOON), Filters(end=NOON, organization=organization),
            Filters(start=EARLY, actor_type=_most_frequent(source, dashboard, "actor_type")),
            Filters(event_type=_most_frequent(source, dashboard, "event_type", "outcome = 'failure'")),
            Filters(event_type=_most_frequent(source, dashboard, "event_type")),
            Filters(start=NEVER[0], end=NEVER[1])]


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order: ties of the panel's ORDER BY come back in any order from either query."""
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.sort_values(list(frame.columns), key=lambda c: c.map(repr)).reset_index(drop=True)


@pytest.mark.parametrize("dashboard, panel", sorted(FORMER))
def test_rewritten_panel_gives_the_figures_of_the_query_it_replaced(built, dashboard, panel):
    with open_serving(built.serving) as source:
        figures = set()
        for filters in filter_sets(source, dashboard):
            source.apply_filters(filters)
            new, former = source.run(dashboard, panel), source.query(FORMER[dashboard, panel])
            assert list(new.columns) == list(former.columns)
            pd.testing.assert_frame_equal(_rows(new), _rows(former), check_dtype=False, obj=f"{panel} {filters}")
            figures.add(tuple(map(repr, new.itertuples(index=False))))
        # something was counted and the filters changed it: the comparison was not of empty or unfiltered results
        # (the simulated day holds a single Claude Code status event: two distinct results are all it can give)
        assert len(figures - {()}) >= 1 and len(figures) >= 2, figures


def test_alert_events_looked_up_within_the_span_are_all_of_them(built):
    """The alerts page looks an alert's events up within its first..last event span (a week of ids is not read): the
    same rows as a lookup over the whole file, and the whole file still when the span misses some (a wrong span)."""
    with open_serving(built.serving) as source:
        alerts = source.alerts()
        assert len(alerts) > 0
        for alert in alerts.itertuples():
            ids = list(alert.activity_ids)
            whole = source.alert_events(ids)
            assert len(whole) == len(set(ids)) > 0, alert.alert_id
            pd.testing.assert_frame_equal(source.alert_events(ids, (alert.first_event_at, alert.last_event_at)), whole)
            pd.testing.assert_frame_equal(source.alert_events(ids, NEVER), whole)
