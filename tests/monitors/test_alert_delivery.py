"""Webhook delivery of monitors.alerts and of run failures: a real HTTP receiver on loopback, real DuckDB files."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

import pipeline.monitors.delivery as delivery
from pipeline.defs.monitors.sensors import monitor_alerts_webhook, run_failure_webhook
from pipeline.defs.resources import WarehouseResource
from pipeline.monitors.alerts import read_alerts, record_incidents
from pipeline.monitors.config import load_config
from pipeline.monitors.delivery import (DeliverySettings, PostResult, alert_message, deliver_alerts_tick,
                                        outbox_dir, post_json)
from pipeline.monitors.evaluate import Incident, MonitorResult
from pipeline.warehouse.connection import WarehouseLockedError, open_warehouse
from pipeline.warehouse.schema import ensure_schema
from tests.monitors.receiver import Receiver

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CONFIG = load_config(env={})


class Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg):
        self.lines.append(msg)

    warning = error = debug = info


def make_alerts(path: Path, n: int, group: str = "mallory@example.com", raised: datetime = T0 + timedelta(days=1)
                ) -> list[str]:
    rule = CONFIG.rule("excessive_failed_auth")
    incidents = [Incident(monitor=rule.name, group_key=f"{group}#{i}" if i else group,
                          first_window_end=T0 + timedelta(hours=i, minutes=5),
                          last_window_end=T0 + timedelta(hours=i, minutes=15),
                          first_event_at=T0 + timedelta(hours=i, minutes=1),
                          last_event_at=T0 + timedelta(hours=i, minutes=4),
                          activity_ids=[f"activity_{i}_{j}" for j in range(6)], peak_count=6, threshold=5)
                 for i in range(n)]
    with open_warehouse(path) as conn:
        ensure_schema(conn)
        changes = record_incidents(conn, {rule.name: MonitorResult(rule=rule, incidents=incidents)},
                                   severity="critical", now=raised, run_id="run-1")
    return [c.alert_id for c in changes]


def delivered_at(path: Path) -> dict[str, datetime | None]:
    with open_warehouse(path) as conn:
        return {a["alert_id"]: a["delivered_at"] for a in read_alerts(conn)}


def test_slack_message_shape_and_escaping():
    alert = {"alert_id": "alert_x", "monitor": "excessive_failed_auth", "severity": "critical",
             "group_key": "<script>&@example.com", "event_count": 7, "threshold": 5.0,
             "first_event_at": T0, "last_event_at": T0 + timedelta(minutes=3),
             "activity_ids": [f"activity_{i}" for i in range(7)]}
    msg = alert_message(alert, CONFIG)
    assert set(msg) == {"text", "blocks"} and "excessive_failed_auth" in msg["text"] and "alert_x" in msg["text"]
    header, description, fields, context = msg["blocks"]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    assert len(fields["fields"]) <= 10 and all(len(f["text"]) <= 2000 for f in fields["fields"])
    body = str(msg["blocks"])
    assert "&lt;script&gt;&amp;@example.com" in body and "<script>" not in body
    assert "count &gt; 5 in 15 min" in body and "and 2 more" in context["elements"][0]["text"]


def test_without_webhook_each_alert_is_logged_once_and_stays_undelivered(tmp_path):
    path = tmp_path / "w.duckdb"
    ids = make_alerts(path, 3)
    log = Log()
    out = deliver_alerts_tick(path, DeliverySettings(), None, log, config=CONFIG)
    assert sorted(out.logged) == sorted(ids) and len(log.lines) == 3
    out = deliver_alerts_tick(path, DeliverySettings(), out.cursor, log, config=CONFIG)
    assert out.logged == [] and len(log.lines) == 3
    ids += make_alerts(path, 1, group="eve@example.com", raised=T0 + timedelta(days=2))  # raised later
    out = deliver_alerts_tick(path, DeliverySettings(), out.cursor, log, config=CONFIG)
    assert len(out.logged) == 1
    assert set(delivered_at(path).values()) == {None}


def test_failing_webhook_backs_off_then_delivers_everything_once(tmp_path):
    path = tmp_path / "w.duckdb"
    ids = make_alerts(path, 5)
    with Receiver() as receiver:
        receiver.statuses = [503]
        settings = DeliverySettings(webhook_url=receiver.url, retry_base_seconds=60, max_per_tick=3)
        log = Log()
        out = deliver_alerts_tick(path, settings, None, log, now=T0, config=CONFIG)
        assert out.delivered == [] and out.failed and out.failed[0][1] == "HTTP 503"
        out = deliver_alerts_tick(path, settings, out.cursor, log, now=T0 + timedelta(seconds=30), config=CONFIG)
        assert out.skipped and "next attempt" in out.skipped and len(receiver.attempts) == 1
        cursor, now = out.cursor, T0 + timedelta(seconds=61)
        for _ in range(3):
            out = deliver_alerts_tick(path, settings, cursor, log, now=now, config=CONFIG)
            cursor = out.cursor
        assert sorted(receiver.alert_ids()) == sorted(ids)
    assert all(delivered_at(path).values())
    assert not any(receiver.url in line for line in log.lines)  # the webhook URL is a secret


def test_a_payload_the_receiver_refuses_does_not_block_the_others(tmp_path):
    path = tmp_path / "w.duckdb"
    ids = make_alerts(path, 3)
    bad = ids[0]
    posts: list[str] = []

    def poster(url, payload, timeout):
        posts.append(payload["text"])
        return PostResult(False, 400, "HTTP 400") if bad in payload["text"] else PostResult(True, 200)

    settings = DeliverySettings(webhook_url="http://127.0.0.1:9/unused")
    cursor = None
    for _ in range(4):
        out = deliver_alerts_tick(path, settings, cursor, Log(), poster=poster, config=CONFIG)
        cursor = out.cursor
    state = delivery.DeliveryState.parse(cursor)
    assert state.given_up == [bad] and state.failures == 0
    assert sum(bad in p for p in posts) == 6  # 3 attempts, each with blocks then text only
    assert {k for k, v in delivered_at(path).items() if v} == set(ids[1:])


LOCKER = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(60)"


def test_busy_warehouse_skips_the_tick_and_posted_alerts_are_marked_later_without_reposting(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    ids = make_alerts(path, 2)
    with Receiver() as receiver:
        settings = DeliverySettings(webhook_url=receiver.url)
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdout=subprocess.PIPE)
        try:
            assert locker.stdout.readline().strip() == b"locked"
            started = time.monotonic()
            out = deliver_alerts_tick(path, settings, None, Log(), config=CONFIG)
            assert out.skipped and "busy" in out.skipped and receiver.attempts == []
            assert time.monotonic() - started < 30  # gave up the tick instead of waiting for the lock
        finally:
            locker.kill()
            locker.wait()

        # posting works, but the warehouse is taken again before the marking
        real_open = delivery.open_warehouse
        calls = {"n": 0}

        def flaky_open(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] in (2, 3):  # each alert is marked right after its post
                raise WarehouseLockedError("busy")
            return real_open(*args, **kwargs)

        monkeypatch.setattr(delivery, "open_warehouse", flaky_open)
        out = deliver_alerts_tick(path, settings, out.cursor, Log(), config=CONFIG)
        assert sorted(out.delivered) == sorted(ids) and out.marked == 0
        assert set(delivered_at(path).values()) == {None}
        out = deliver_alerts_tick(path, settings, out.cursor, Log(), config=CONFIG)
        assert out.marked == 2 and out.delivered == []
        assert sorted(receiver.alert_ids()) == sorted(ids)  # posted once only
    assert all(delivered_at(path).values())


@dg.asset
def exploding() -> None:
    raise ValueError("warehouse unreachable\nsecond line")


def test_run_failures_are_posted_and_queued_for_retry_when_the_webhook_fails(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    make_alerts(path, 0)  # an empty warehouse
    with Receiver() as receiver, dg.instance_for_test() as instance:
        monkeypatch.setenv("COMPLIANCE_ALERT_WEBHOOK_URL", receiver.url)
        monkeypatch.setenv("COMPLIANCE_ALERT_RETRY_BASE_SECONDS", "0")
        result = dg.materialize([exploding], instance=instance, raise_on_error=False)
        failure = next(e for e in result.all_events if e.event_type_value in ("RUN_FAILURE", "PIPELINE_FAILURE"))
        resources = {"warehouse": WarehouseResource(path=str(path))}

        def notify():
            with dg.build_run_status_sensor_context(
                    sensor_name="run_failure_webhook", dagster_event=failure, dagster_instance=instance,
                    dagster_run=result.dagster_run, resources=resources) as ctx:
                run_failure_webhook(ctx.for_run_failure())

        receiver.statuses = [500]
        notify()
        assert len(list(outbox_dir(path).glob("*.json"))) == 1 and receiver.bodies == []
        with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
            monitor_alerts_webhook(ctx)  # the alert sensor retries queued notifications
        assert list(outbox_dir(path).glob("*.json")) == []
        notify()                      # a second failure notification goes straight through
    assert len(receiver.bodies) == 2
    body = receiver.bodies[0]
    assert set(body) == {"text", "blocks"}
    assert result.dagster_run.run_id in body["text"] and "warehouse unreachable" in body["text"]


def test_post_json_never_reports_the_url():
    result = post_json("http://127.0.0.1:9/services/T000/B000/s3cr3t", {"text": "x"}, timeout=2)
    assert not result.ok and result.retryable and "s3cr3t" not in (result.error or "")
