"""The pure halves of the loaders and monitors (no database): chat rows, alert merges, delivery state, rule spans,
incident rows, and the named-SQL loader they all read their statements with."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipeline.monitors.alerts import merge_incidents
from pipeline.monitors.config import load_config
from pipeline.monitors.delivery import (MAX_PERMANENT_ATTEMPTS, DeliverySettings, DeliveryState, is_backing_off,
                                        note_refusal, settle_backoff)
from pipeline.monitors.evaluate import Incident, incident_from_row, rule_span
from pipeline.sql_files import parse_queries, queries_beside
from pipeline.warehouse.chats import FetchedChat, chat_load_result, shape_chat_window

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CONFIG = load_config(env={})


def message(mid: str, text: str = "hello", **kw) -> dict:
    return {"id": mid, "role": "user", "created_at": "2026-03-01T12:00:00Z",
            "content": [{"type": "text", "text": text}], **kw}


def test_chat_window_shapes_rows_without_text_when_text_is_off_and_quarantines_the_bad_parts():
    listed = {"id": "c1", "name": "n", "updated_at": "2026-03-01T12:01:00Z", "user": {"id": "u1"}}
    detail = {"name": {"hostile": True}, "chat_messages": [message("m1", "secret"), message("m1", "other"),
                                                           {"role": "user"}]}
    gone = {"id": "c2", "updated_at": "2026-03-01T12:02:00Z"}
    for store_text in (True, False):
        rows = shape_chat_window([FetchedChat(listed, detail), FetchedChat(gone, None, hard_deleted=True)],
                                 [{"id": 7}], run_id="r", fetched_at=T0, store_text=store_text)
        assert [m["id"] for m in rows.messages] == ["m1"] and rows.messages[0]["text_chars"] == 6
        assert "secret" not in repr(rows.messages) + repr(rows.chats)
        assert [t["text"] for t in rows.texts] == (["secret"] if store_text else [])
        assert [q["reason"] for q in rows.quarantine] == ["wrong_type", "message_conflicting_duplicate",
                                                          "message_missing_id", "detail_wrong_type"]
        first, second = rows.chats
        assert (first["name"], first["message_count"], first["hard_deleted_at"]) == ("n", 1, None)
        assert (second["id"], second["message_count"], second["hard_deleted_at"]) == ("c2", None, T0)


def test_chat_load_result_derives_updates_from_the_statement_counts():
    counts = {"marked_hard_deleted": 1, "new_gone_chats": 2, "changed_chats": 3, "inserted_chats": 10,
              "stale_messages": 4, "inserted_messages": 7, "inserted_texts": 5}
    result = chat_load_result(counts, [{"reason": "a"}, {"reason": "a"}, {"reason": "b"}], chats_seen=12)
    assert (result.chats_inserted, result.chats_updated, result.chats_hard_deleted) == (5, 3, 3)
    assert (result.messages_inserted, result.messages_updated, result.messages_removed) == (3, 4, 0)
    assert result.quarantined == 3 and result.quarantine_reasons == {"a": 2, "b": 1}


def incident(ids: list[str], first_end: datetime, last_end: datetime, monitor: str = "org_destructive_activity"):
    return Incident(monitor=monitor, group_key=None, first_window_end=first_end, last_window_end=last_end,
                    first_event_at=first_end - timedelta(minutes=5), last_event_at=last_end - timedelta(minutes=1),
                    activity_ids=ids, peak_count=len(ids), threshold=0.0)


def test_merge_incidents_creates_grows_reopens_and_leaves_repeats_alone():
    step = timedelta(minutes=5)
    first = merge_incidents([(incident(["a1"], T0, T0), step)], {}, severity="critical", now=T0, run_id="r1",
                            renotify_growth=0, order_ids=lambda ids, lo, hi: sorted(ids))
    [row] = first.written.values()
    assert [c.status for c in first.changes] == ["new"] and not first.replaced and row["status"] == "open"
    stored = {("org_destructive_activity", None): [dict(row, status="resolved", delivered_at=T0)]}
    again = merge_incidents([(incident(["a1"], T0, T0), step)], stored, severity="critical", now=T0, run_id="r2",
                            renotify_growth=0, order_ids=lambda ids, lo, hi: sorted(ids))
    assert [c.status for c in again.changes] == ["unchanged"] and not again.written and not again.history
    later = T0 + step
    grown = merge_incidents([(incident(["a0", "a2"], later, later), step)], stored, severity="critical", now=later,
                            run_id="r3", renotify_growth=0, order_ids=lambda ids, lo, hi: sorted(ids))
    assert grown.replaced == {row["alert_id"]} and [c.status for c in grown.changes] == ["updated"]
    merged = grown.written[row["alert_id"]]
    assert merged["activity_ids"] == ["a0", "a1", "a2"] and merged["event_count"] == 3
    assert (merged["status"], merged["delivered_at"], merged["notify_reason"]) == ("open", None, "reopened")
    assert [h[2] for h in grown.history] == ["reopened"]


def test_delivery_state_counts_refusals_gives_up_and_backs_off():
    settings = DeliverySettings(webhook_url="https://hooks.example/x", retry_base_seconds=30, retry_max_seconds=100)
    state = DeliveryState()
    assert [note_refusal(state, "al") for _ in range(MAX_PERMANENT_ATTEMPTS)][-1] == MAX_PERMANENT_ATTEMPTS
    assert state.given_up == ["al"] and "al" not in state.attempts
    settle_backoff(state, False, T0, settings)
    settle_backoff(state, False, T0, settings)
    assert state.failures == 2 and state.next_attempt == (T0 + timedelta(seconds=60)).isoformat()
    assert is_backing_off(settings, state, T0) and not is_backing_off(settings, state, T0 + timedelta(minutes=2))
    assert not is_backing_off(DeliverySettings(), state, T0)  # log only: nothing to back off from
    settle_backoff(state, True, T0, settings)
    assert (state.failures, state.next_attempt) == (0, None)


def test_rule_span_covers_every_window_overlapping_a_partition():
    rule = CONFIG.rule("org_destructive_activity")
    span = rule_span(rule, T0, T0 + timedelta(minutes=5))
    result = span.result()
    # 15-minute windows every 5 minutes: the window ending at the partition's end and the two later ones
    assert result.windows_evaluated == rule.window_minutes // rule.step_minutes
    assert result.first_window_end == T0 + timedelta(minutes=5)
    assert (span.lo, span.hi) == (T0 + timedelta(minutes=5 - rule.window_minutes), result.last_window_end)
    assert span.threshold == rule.threshold
    outlier = CONFIG.rule("resource_deletion_outlier")
    assert rule_span(outlier, T0, T0 + timedelta(minutes=5)).threshold == outlier.floor - 1


def test_incident_from_row_keeps_the_baseline_or_says_floor_only():
    outlier = CONFIG.rule("resource_deletion_outlier")
    w0 = int(T0.timestamp() * 1_000_000)
    row = ["resource_deletion_outlier", "", w0, w0, T0, T0, ["x", "y", "x"], 3, 2.0, None, None, None]
    floor_only = incident_from_row(tuple(row), outlier)
    assert floor_only.group_key is None and floor_only.activity_ids == ["x", "y"] and floor_only.event_count == 2
    assert floor_only.details == {"history_hours_below": outlier.min_history_hours, "floor_only": True}
    row[1:2], row[9:] = ["eve@example.com"], [1.23456, 0.5, 48]
    based = incident_from_row(tuple(row), outlier)
    assert based.first_window_end == T0 and based.group_key == "eve@example.com"
    assert based.details == {"baseline_mean": 1.2346, "baseline_stddev": 0.5, "history_hours": 48}


def test_named_queries_parse_and_every_module_file_loads():
    text = "-- header\n\n-- name: one\n-- why\nSELECT 1;\n\n-- name: two\nSELECT 2;\nSELECT 3;\n"
    assert parse_queries(text) == {"one": "SELECT 1;", "two": "SELECT 2;\nSELECT 3;"}
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    with pytest.raises(ValueError, match="no SQL"):
        parse_queries("-- name: a\n-- only a comment\n")
    import pipeline.monitors.alerts as alerts
    import pipeline.monitors.evaluate as evaluate
    import pipeline.warehouse.chats as chats

    for module in (alerts, evaluate, chats):
        assert queries_beside(module.__file__) is module.SQL and module.SQL
