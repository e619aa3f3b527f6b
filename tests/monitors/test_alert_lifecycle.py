"""Alert lifecycle (acknowledge, resolve, reopen on new events, re-notify on growth) from the command and the Dagster
job, and the no-data monitor (stalled schedule, erroring API, recovery), on real DuckDB files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from pipeline.defs.monitors.lifecycle import alert_lifecycle
from pipeline.defs.monitors.sensors import INGEST_JOB, no_data_tick, recent_ingest_runs
from pipeline.defs.resources import WarehouseResource
from pipeline.monitors import load_config, nodata, run_monitors
from pipeline.monitors.__main__ import main as cli
from pipeline.monitors.alerts import AlertStateError, alert_history, mark_delivered, read_alerts, set_status
from pipeline.monitors.config import NoDataSettings
from pipeline.warehouse.connection import open_warehouse
from tests.monitors.rows import activity, at, load, user

UTC = timezone.utc
DAY = datetime(2026, 3, 2, tzinfo=UTC)
END = DAY + timedelta(days=1)


def cfg(tmp_path, renotify=3):
    path = tmp_path / "monitors.json"
    path.write_text(json.dumps({"renotify_growth": renotify, "custom_rules": {"exports": {
        "types": ["claude_file_exported"], "group_by": "actor", "window_minutes": 60, "step_minutes": 60,
        "threshold": 0}}}))
    return load_config(env={"COMPLIANCE_MONITORS_CONFIG": str(path)})


def evaluate(conn, tmp_path, records, config, now):
    load(conn, tmp_path, records, DAY, END)
    run_monitors(conn, config, DAY, END, now=now, monitors=["ip_restriction_deleted", "exports"])


def only(conn, monitor):
    (alert,) = read_alerts(conn, "monitor = $m", {"m": monitor})
    return alert


def test_acknowledge_resolve_reopen_and_renotify(tmp_path):
    config = cfg(tmp_path)
    first = activity("org_ip_restriction_deleted", at(DAY, 600))
    with open_warehouse(tmp_path / "w.duckdb") as conn:
        evaluate(conn, tmp_path, [first], config, DAY + timedelta(hours=11))
        alert = only(conn, "ip_restriction_deleted")
        assert alert["status"] == "open" and alert["status_by"] is None
        acked = set_status(conn, alert["alert_id"], "acknowledge", by="alice@example.com", note="looking",
                           now=DAY + timedelta(hours=11, minutes=30))
        assert (acked["status"], acked["status_by"], acked["status_note"]) == ("acknowledged", "alice@example.com",
                                                                               "looking")
        with pytest.raises(AlertStateError, match="is acknowledged: cannot acknowledge"):
            set_status(conn, alert["alert_id"], "acknowledge", by="bob")
        with pytest.raises(AlertStateError, match="no alert"):
            set_status(conn, "alert_missing", "resolve", by="bob")
        # re-running the same data keeps the state
        evaluate(conn, tmp_path, [first], config, DAY + timedelta(hours=12))
        assert only(conn, "ip_restriction_deleted")["status"] == "acknowledged"
        set_status(conn, alert["alert_id"], "resolve", by="alice@example.com", note="expected change",
                   now=DAY + timedelta(hours=12, minutes=30))
        mark_delivered(conn, {alert["alert_id"]: DAY + timedelta(hours=12)})
        # a late event in the same incident: the resolved alert reopens and is posted again
        late = activity("org_ip_restriction_deleted", at(DAY, 603))
        evaluate(conn, tmp_path, [first, late], config, DAY + timedelta(hours=13))
        reopened = only(conn, "ip_restriction_deleted")
        assert reopened["alert_id"] == alert["alert_id"] and reopened["event_count"] == 2
        assert (reopened["status"], reopened["status_by"], reopened["reopened_count"]) == ("open", "system", 1)
        assert reopened["delivered_at"] is None and reopened["notify_reason"] == "reopened"
        assert [h["action"] for h in alert_history(conn, alert["alert_id"])] == ["acknowledge", "resolve",
                                                                                 "reopened"]


def test_an_alert_that_grows_by_renotify_growth_is_posted_again(tmp_path):
    config = cfg(tmp_path, renotify=3)
    a = user("a@example.com")
    exports = [activity("claude_file_exported", at(DAY, 600 + i), actor=a) for i in range(6)]
    with open_warehouse(tmp_path / "w.duckdb") as conn:
        evaluate(conn, tmp_path, exports[:2], config, DAY + timedelta(hours=11))
        alert_id = only(conn, "exports")["alert_id"]
        mark_delivered(conn, {alert_id: DAY + timedelta(hours=11)})
        assert only(conn, "exports")["notified_event_count"] == 2
        evaluate(conn, tmp_path, exports[:4], config, DAY + timedelta(hours=12))   # +2: not enough
        assert only(conn, "exports")["delivered_at"] is not None
        evaluate(conn, tmp_path, exports[:5], config, DAY + timedelta(hours=13))   # +3 since posted
        grown = only(conn, "exports")
        assert grown["delivered_at"] is None and grown["notify_reason"] == "grew by 3 event(s)"
        assert grown["status"] == "open"


def test_the_command_and_the_dagster_job_change_the_status(tmp_path, capsys):
    path = tmp_path / "w.duckdb"
    with open_warehouse(path) as conn:
        evaluate(conn, tmp_path, [activity("org_ip_restriction_deleted", at(DAY, 60))], cfg(tmp_path), END)
        alert_id = only(conn, "ip_restriction_deleted")["alert_id"]
    assert cli(["ack", alert_id, "--by", "bob", "--note", "on it", "--warehouse", str(path)]) == 0
    assert "acknowledged by bob" in capsys.readouterr().out
    assert cli(["ack", alert_id, "--by", "bob", "--warehouse", str(path)]) == 2
    assert "cannot acknowledge" in capsys.readouterr().err
    result = alert_lifecycle.execute_in_process(
        run_config={"ops": {"change_alert_status": {"config": {"alert_id": alert_id, "action": "resolve",
                                                               "by": "carol", "note": "false positive"}}}},
        resources={"warehouse": WarehouseResource(path=str(path))})
    assert result.success
    with open_warehouse(path) as conn:
        alert = only(conn, "ip_restriction_deleted")
    assert (alert["status"], alert["status_by"], alert["status_note"]) == ("resolved", "carol", "false positive")


# ------------------------------------------------------------------------------------------------------- no data
SETTINGS = NoDataSettings(after_minutes=60)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def every_5_minutes(minutes: int, succeeded: bool | None = True) -> list[nodata.IngestRun]:
    return [nodata.IngestRun(NOW - timedelta(minutes=m), succeeded) for m in range(0, minutes, 5)]


def test_no_data_assessment():
    stale = NOW - timedelta(minutes=90)
    stalled = nodata.assess(NOW, SETTINGS, every_5_minutes(75), stale)
    assert (stalled.firing, stalled.reason, stalled.silent_since) == (True, "no_data", stale)
    erroring = nodata.assess(NOW, SETTINGS, every_5_minutes(75, succeeded=False), stale)
    assert (erroring.firing, erroring.reason, erroring.failed_runs) == (True, "api_erroring", 13)
    # schedule stopped / started 30 minutes ago / data 10 minutes ago / monitor disabled: nothing
    assert not nodata.assess(NOW, SETTINGS, [], stale).firing
    assert not nodata.assess(NOW, SETTINGS, every_5_minutes(30), stale).firing
    assert not nodata.assess(NOW, SETTINGS, every_5_minutes(75), NOW - timedelta(minutes=10)).firing
    assert not nodata.assess(NOW, NoDataSettings(enabled=False), every_5_minutes(75), stale).firing
    # one success among failures: the API answers, there is just nothing new
    mixed = every_5_minutes(75, succeeded=False)
    mixed[3] = nodata.IngestRun(mixed[3].created_at, True)
    assert nodata.assess(NOW, SETTINGS, mixed, stale).reason == "no_data"


def test_no_data_alert_opens_on_a_stall_extends_and_resolves_when_data_flows(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as conn:
        load(conn, tmp_path, [activity("claude_chat_created", at(DAY, 60))], DAY, END)   # fetched at 2026-12-01
        last = nodata.last_ingested_at(conn)
        now = last + timedelta(minutes=90)
        failing = [nodata.IngestRun(now - timedelta(minutes=m), False) for m in range(0, 75, 5)]
        assert nodata.apply(conn, nodata.assess(now, SETTINGS, failing, last), now) == "opened"
        assert nodata.apply(conn, nodata.assess(now + timedelta(minutes=1), SETTINGS, failing, last),
                            now + timedelta(minutes=1)) == "extended"
        (alert,) = read_alerts(conn, "monitor = 'no_data'")
        assert (alert["group_key"], alert["status"], alert["first_event_at"]) == ("api_erroring", "open", last)
        assert json.loads(alert["details"])["failed_runs"] == 12  # the last 60 minutes, as of the extension
        # records flow again: resolved by the system
        later = now + timedelta(minutes=5)
        flowing = nodata.assess(later, SETTINGS, failing, later - timedelta(minutes=1))
        assert nodata.apply(conn, flowing, later) == "resolved"
        (alert,) = read_alerts(conn, "monitor = 'no_data'")
        assert (alert["status"], alert["status_by"]) == ("resolved", "system")
        assert "data flowing again" in alert["status_note"]


def test_no_data_sensor_reads_the_ingest_runs_of_the_instance(tmp_path):
    @dg.op
    def fail():
        raise RuntimeError("API answered 503")

    @dg.job(name=INGEST_JOB)
    def ingest():
        fail()

    with dg.instance_for_test() as instance:
        assert not ingest.execute_in_process(instance=instance, raise_on_error=False).success
        runs = recent_ingest_runs(instance, datetime.now(UTC) - timedelta(minutes=5))
        assert [r.succeeded for r in runs] == [False]
        # one failed run is not a stalled schedule: the sensor says so and writes nothing
        path = tmp_path / "w.duckdb"
        with open_warehouse(path) as conn:
            load(conn, tmp_path, [activity("claude_chat_created", at(DAY, 60))], DAY, END)
        assert no_data_tick(instance, str(path)) == "not firing"
        with open_warehouse(path) as conn:
            assert read_alerts(conn, "monitor = 'no_data'") == []


def test_a_reposted_alert_says_why():
    from pipeline.monitors.delivery import alert_message

    alert = {"alert_id": "alert_x", "monitor": "ip_restriction_deleted", "severity": "critical", "group_key": None,
             "event_count": 2, "first_event_at": DAY, "last_event_at": DAY, "threshold": 0.0, "activity_ids": ["a"],
             "status": "open", "notify_reason": "reopened"}
    assert "(reopened, status open)" in alert_message(alert, load_config(env={}))["text"]
    assert "reopened" not in alert_message(alert | {"notify_reason": None}, load_config(env={}))["text"]
