"""Pure parts of the dashboard app: chart kinds from the panels' columns, time ranges, staleness, filters as views."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import duckdb
import pandas as pd
import pytest

from pipeline.dashboard.charts import chart_kind, country_frame
from pipeline.dashboard.source import Filters, open_serving
from pipeline.dashboard.timerange import is_stale, resolve_range
from pipeline.serving.panels import parse_panels

TS, INT, TEXT = "TIMESTAMP WITH TIME ZONE", "BIGINT", "VARCHAR"


@pytest.mark.parametrize("columns, kind", [
    ([("total_events", INT)], "number"),
    ([("created_hour", TS), ("failed_events", INT)], "line"),
    ([("created_hour", TS), ("event_type", TEXT), ("events", INT)], "area"),
    ([("event_type", TEXT), ("category", TEXT), ("events", INT)], "bar"),
    ([("status_code", INT), ("status_class", TEXT), ("requests", INT)], "bar"),  # a code is a label
    ([("geo_country_iso", TEXT), ("geo_latitude", "DOUBLE"), ("is_embargoed", "BOOLEAN"), ("events", INT)], "geo"),
    ([("created_at", TS), ("event_type", TEXT), ("actor_identity", TEXT)], "table"),
    ([("actor_identity", TEXT), ("created_hour", TS), ("recon_events", INT)], "table"),
    ([("chat_id", TEXT), ("files", "STRUCT(id VARCHAR)[]"), ("n", INT)], "table"),
])
def test_chart_kind_from_columns(columns, kind):
    assert chart_kind(columns) == kind


def test_chart_annotation_wins_and_is_validated():
    panels = parse_panels("x", "-- name: a\n-- what it shows\n-- chart: table\nSELECT 1 AS n;\n-- name: b\nSELECT 2;")
    assert panels["a"].chart == "table" and panels["a"].description == "what it shows"
    assert panels["b"].chart is None
    assert chart_kind([("n", INT)], panels["a"].chart) == "table"
    with pytest.raises(ValueError, match="pie"):
        parse_panels("x", "-- name: a\n-- chart: pie\nSELECT 1;")


def test_country_frame_flags_embargoed_countries():
    frame = pd.DataFrame({"geo_country_iso": ["IR", "IR", "FR"], "geo_country_name": ["Iran", "Iran", "France"],
                          "geo_latitude": [35.0, 36.0, 48.0], "events": [2, 3, 7]})
    columns = [("geo_country_iso", TEXT), ("geo_country_name", TEXT), ("geo_latitude", "DOUBLE"), ("events", INT)]
    out = country_frame(frame, columns).set_index("country")
    assert out.loc["Iran", "events"] == 5 and out.loc["Iran", "embargoed"]
    assert out.loc["France", "events"] == 7 and not out.loc["France", "embargoed"]


def test_time_ranges_end_at_the_newest_window():
    anchor = datetime(2026, 11, 3, 0, 5, tzinfo=timezone.utc)
    assert resolve_range("1h", anchor) == (anchor - timedelta(hours=1), None)
    assert resolve_range("7d", anchor) == (anchor - timedelta(days=7), None)
    assert resolve_range("all", anchor) == (None, None)
    assert resolve_range("custom", anchor, (date(2026, 11, 3), date(2026, 11, 2))) == \
        (datetime(2026, 11, 2, tzinfo=timezone.utc), datetime(2026, 11, 4, tzinfo=timezone.utc))


def test_stale_after_fifteen_minutes_without_a_publish():
    now = datetime(2026, 11, 3, 12, 0, tzinfo=timezone.utc)
    assert not is_stale(now - timedelta(minutes=14), now)
    assert is_stale(now - timedelta(minutes=16), now)
    assert is_stale(None, now)


def test_filters_shadow_every_mart_with_its_columns(tmp_path):
    path = tmp_path / "marts.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE activity_overview AS SELECT * FROM (VALUES "
                     "(TIMESTAMPTZ '2026-11-02 10:00+00', 'a', 'org1', 'user_actor'), "
                     "(TIMESTAMPTZ '2026-11-02 11:00+00', 'b', 'org2', 'api_actor'), "
                     "(TIMESTAMPTZ '2026-11-02 12:00+00', 'a', 'org1', 'api_actor')) "
                     "t(created_at, event_type, organization_id, actor_type)")
        conn.execute("CREATE TABLE chats AS SELECT * FROM (VALUES "
                     "(TIMESTAMPTZ '2026-11-02 10:00+00', 'user', ['text']), "
                     "(TIMESTAMPTZ '2026-11-02 10:01+00', 'assistant', ['text', 'tool_use'])) "
                     "t(message_created_at, role, content_types)")
    with open_serving(path) as source:
        count = "SELECT (SELECT count(*) FROM activity_overview), (SELECT count(*) FROM chats)"
        assert source.conn.execute(count).fetchone() == (3, 2)
        source.apply_filters(Filters(event_type="a", actor_type="api_actor"))
        assert source.conn.execute(count).fetchone() == (1, 2)   # chats have neither column
        source.apply_filters(Filters(start=datetime(2026, 11, 2, 11, tzinfo=timezone.utc), content_type="tool_use"))
        assert source.conn.execute(count).fetchone() == (2, 0)
        source.apply_filters(Filters(organization="o'; DROP TABLE chats; --"))  # values are variables, not SQL
        assert source.conn.execute(count).fetchone() == (0, 2)
        source.apply_filters(Filters())
        assert source.conn.execute(count).fetchone() == (3, 2)
        with pytest.raises(duckdb.Error):  # read-only
            source.conn.execute("DELETE FROM served.main.chats")


def test_table_panel_total_from_a_page_that_is_not_full_or_from_a_count(tmp_path):
    from pipeline.dashboard.app import PAGE_ROWS, _panel_rows

    path = tmp_path / "marts.duckdb"
    with duckdb.connect(str(path)) as conn:  # 65 embargoed events of 130: a full page, a part page, an empty one
        conn.execute("CREATE TABLE activity_overview AS SELECT TIMESTAMPTZ '2026-11-02 10:00+00' + to_minutes(i) "
                     "AS created_at, 'e' || (i % 3) AS event_type, 'user_actor' AS actor_type, 'u' AS actor_identity, "
                     "'1.2.3.4' AS ip_address, 'IR' AS geo_country_iso, 'Iran' AS geo_country_name, "
                     "NULL AS geo_subdivision_iso, NULL AS geo_subdivision_name, NULL AS geo_city, "
                     "'Iran' AS embargo_region, 'org1' AS organization_id, i % 2 = 0 AS is_embargoed FROM range(130) r(i)")
    assert PAGE_ROWS == 50
    with open_serving(path) as source:
        def page(number, filters=Filters()):
            source.apply_filters(filters)
            _, frame, total = _panel_rows((), filters, "activity_overview", "embargoed_region_events", number, (), (),
                                          source)
            return len(frame), total
        assert [page(0), page(1), page(2)] == [(50, 65), (15, 65), (0, 65)]
        assert page(0, Filters(event_type="e1")) == (21, 21)
        assert page(0, Filters(event_type="none")) == (0, 0)
