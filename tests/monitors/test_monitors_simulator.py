"""The monitors (9 seed + the peers' rules, impossible travel enabled) end to end: simulator over HTTP -> Dagster ranged
runs of raw/activities with the monitor checks
-> monitors.alerts, compared with the simulator's ground truth (planted incidents and near misses)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.monitors.checks import activity_monitors
from pipeline.defs.monitors.sensors import monitor_alerts_webhook
from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
from pipeline.monitors.config import CONFIG_ENV, MONITOR_NAMES, load_config
from pipeline.monitors.evaluate import _span
from pipeline.monitors.delivery import WEBHOOK_ENV
from simulator.process import SimulatorProcess
from tests.monitors.receiver import Receiver
from tests.support.sim import ground_truth, set_clock

D1, D2 = "2026-11-01", "2026-11-02"
# Day 1 as one ranged run; day 2 cut at 15:45 and 16:05 so that two firing incidents (a 20-minute mass chat
# deletion from 15:35, an org bulk deletion 16:00-16:05) are split across runs and must merge into one alert each.
RANGES = [(f"{D1}-00:00", f"{D1}-23:55"), (f"{D2}-00:00", f"{D2}-15:40"), (f"{D2}-15:45", f"{D2}-16:00"),
          (f"{D2}-16:05", f"{D2}-23:55")]


@dataclass
class Ingested:
    base_url: str
    warehouse: Path
    resources: dict
    results: list[dg.ExecuteInProcessResult]
    incidents: list[dict]


def run_range(res: dict, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([raw_activities, activity_monitors], resources=res, raise_on_error=False,
                          tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})


def alerts(warehouse: Path, monitor: str | None = None) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        cur = conn.execute("SELECT * FROM monitors.alerts" + (" WHERE monitor = ?" if monitor else "") +
                           " ORDER BY alert_id", [monitor] if monitor else [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


# Impossible travel is disabled by default (noisy by nature): enabled here so that its plants are checked too. Real
# users of the simulator also sign in from embargoed / foreign addresses (monitor 4's plants), which are genuine
# impossible travels the truth does not list: for it only the planted incidents and near misses are compared.
NOISY = {"impossible_travel"}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("monitors") / "warehouse.duckdb"
    config_file = warehouse.parent / "monitors.json"
    config_file.write_text('{"monitors": {"impossible_travel": {"enabled": true}}}')
    mp = pytest.MonkeyPatch()
    mp.setenv(CONFIG_ENV, str(config_file))
    args = ["--start", f"{D1}T00:00:00Z", "--days", "2", "--volume", "8000", "--rate-limit", "0",
            "--late-share", "0"]
    with SimulatorProcess(args) as sim:
        set_clock(sim.base_url, "2026-11-03T00:05:00Z")
        res = {"compliance_api": ComplianceAPIResource(base_url=sim.base_url,
                                                       requests_per_minute=100_000),
               "warehouse": WarehouseResource(path=str(warehouse)), "geoip": GeoIPResource()}
        results = [run_range(res, first, last) for first, last in RANGES]
        truth = ground_truth(sim.base_url, f"{D1}T00:00:00Z", "2026-11-03T00:00:00Z")
        yield Ingested(sim.base_url, warehouse, res, results, truth["incidents"])
    mp.undo()


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_runs_succeed_and_every_monitor_has_planted_incidents_and_near_misses(ingested):
    assert all(r.success for r in ingested.results)
    for name in MONITOR_NAMES:
        kinds = {i["should_fire"] for i in ingested.incidents if i["monitor"] == name}
        assert kinds == {True, False}, f"{name}: the simulator should plant incidents and near misses"


@pytest.mark.parametrize("monitor", MONITOR_NAMES)
def test_each_planted_incident_raises_exactly_one_alert_with_exactly_its_events(ingested, monitor):
    planted = [i for i in ingested.incidents if i["monitor"] == monitor and i["should_fire"]]
    raised = alerts(ingested.warehouse, monitor)
    for inc in planted:
        hits = [a for a in raised if set(a["activity_ids"]) & set(inc["activity_ids"])]
        assert len(hits) == 1, f"{inc['id']} ({inc['variant']}): {len(hits)} alerts"
        alert = hits[0]
        assert sorted(alert["activity_ids"]) == sorted(inc["activity_ids"]), inc["id"]
        assert alert["event_count"] == len(inc["activity_ids"])
        assert alert["first_event_at"] == _ts(inc["first_event"]) and alert["last_event_at"] == _ts(inc["last_event"])
        if inc["group_key"] is not None:
            assert alert["group_key"] == inc["group_key"]
        assert alert["severity"] == "critical" and alert["delivered_at"] is None
    # near misses and clean traffic raise nothing: every alert is one of the planted incidents
    if monitor not in NOISY:
        assert len(raised) == len(planted)


@pytest.mark.parametrize("monitor", MONITOR_NAMES)
def test_near_misses_raise_no_alert(ingested, monitor):
    misses = [i for i in ingested.incidents if i["monitor"] == monitor and not i["should_fire"]]
    alerted = {x for a in alerts(ingested.warehouse, monitor) for x in a["activity_ids"]}
    for miss in misses:
        assert not alerted & set(miss["activity_ids"]), f"{miss['id']} ({miss['variant']}) fired"


@pytest.mark.parametrize("monitor", ["excessive_failed_auth", "excessive_unauthorized_compliance_api",
                                     "resource_deletion_outlier"])
def test_two_actors_under_the_threshold_do_not_add_up(ingested, monitor):
    pairs = [i for i in ingested.incidents if i["monitor"] == monitor and i["variant"] == "two_actors_under"]
    assert len(pairs) >= 2 and len({p["group_key"] for p in pairs}) == len(pairs)
    by_day: dict[str, list[dict]] = {}
    for p in pairs:
        by_day.setdefault(p["first_event"][:10], []).append(p)
    for same_window in by_day.values():
        together = sum(len(p["activity_ids"]) for p in same_window)
        rule_bar = 5  # counts > 5 (monitors 5, 6) / >= 5 (monitor 8) would fire if the actors were added up
        assert together > rule_bar
    alerted = {x for a in alerts(ingested.warehouse, monitor) for x in a["activity_ids"]}
    assert not alerted & {x for p in pairs for x in p["activity_ids"]}


def test_incidents_split_across_runs_merge_into_one_alert(ingested):
    split = [i for i in ingested.incidents if i["should_fire"] and i["first_event"].startswith(D2)
             and i["variant"] in ("mass_chat_deletion", "bulk_deletion")]
    assert len(split) == 2
    for inc in split:
        (alert,) = [a for a in alerts(ingested.warehouse, inc["monitor"])
                    if set(a["activity_ids"]) & set(inc["activity_ids"])]
        assert sorted(alert["activity_ids"]) == sorted(inc["activity_ids"])
        assert alert["updated_at"] is not None  # raised by the first run, completed by the next


def test_check_results_name_the_alerts_and_sample_the_events(ingested):
    day1 = ingested.results[0]
    evaluations = {e.check_name: e for e in day1.get_asset_check_evaluations()}
    assert set(evaluations) == set(MONITOR_NAMES)
    stored = {a["alert_id"]: a for a in alerts(ingested.warehouse)}
    for name, ev in evaluations.items():
        assert ev.severity == dg.AssetCheckSeverity.ERROR
        assert not ev.passed, f"{name} has a planted incident on day 1"
        ids = ev.metadata["alert_ids"].value
        assert ids and all(stored[i]["monitor"] == name for i in ids)
        sample = ev.metadata["sample_events"].value
        assert sample and {s["id"] for s in sample} <= {x for i in ids for x in stored[i]["activity_ids"]}
        # a ranged run evaluates every window of its range (288 partitions), not only the last one: 288 + 2 for
        # 15-minute windows every 5 minutes, 24 hour buckets for monitor 8, one day for the daily rule
        kmin, kmax = _span(load_config().rule(name), _ts(f"{D1}T00:00:00Z"), _ts(f"{D1}T23:55:00Z")
                           + (_ts("2026-11-01T00:05:00Z") - _ts("2026-11-01T00:00:00Z")))
        assert ev.metadata["windows_evaluated"].value == kmax - kmin + 1
        if name == "excessive_failed_auth":
            assert kmax - kmin + 1 == 288 + 2
    # the spec keeps check failures non-blocking
    assert day1.success


def test_rerunning_the_same_partitions_leaves_the_alerts_unchanged(ingested):
    before = alerts(ingested.warehouse)
    for first, last in [(f"{D2}-15:45", f"{D2}-16:00"), (f"{D1}-02:00", f"{D1}-04:55")]:
        assert run_range(ingested.resources, first, last).success
    single = dg.materialize([raw_activities, activity_monitors], resources=ingested.resources,
                            partition_key=f"{D2}-16:50")
    assert single.success
    fired = [e for e in single.get_asset_check_evaluations() if not e.passed]
    # the 16:50 scanner burst seen again, and the day's chat deletions (the daily window holds the partition) ...
    assert sorted(e.check_name for e in fired) == ["excessive_chat_deletions", "excessive_failed_auth"]
    assert alerts(ingested.warehouse) == before                        # ... but no new or changed alert


def test_a_check_executed_on_its_own_evaluates_the_last_hour_of_ingested_data(ingested):
    before = alerts(ingested.warehouse)
    result = dg.materialize([raw_activities, activity_monitors], resources=ingested.resources,
                            selection=dg.AssetSelection.checks_for_assets(raw_activities))
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == set(MONITOR_NAMES)
    assert not result.get_asset_materialization_events()  # nothing ingested: only the checks ran
    meta = evaluations["embargoed_location"].metadata
    assert meta["evaluated_data_start"].value == f"{D2}T23:00:00+00:00"
    # the last hour of day 2 holds the planted Luhansk (UA-09) login at 23:05: found again, nothing new
    luhansk = [i for i in ingested.incidents if i["first_event"].startswith(f"{D2}T23:0")
               and i["monitor"] == "embargoed_location"]
    assert luhansk and not evaluations["embargoed_location"].passed
    assert alerts(ingested.warehouse) == before


def test_webhook_sensor_delivers_each_alert_exactly_once_and_retries(ingested, tmp_path, monkeypatch):
    warehouse = tmp_path / "copy.duckdb"
    shutil.copy(ingested.warehouse, warehouse)  # keep the shared warehouse undelivered for the other tests
    expected = {a["alert_id"] for a in alerts(warehouse)}
    with Receiver() as receiver:
        receiver.statuses = [500]   # the first post fails
        monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
        monkeypatch.setenv("COMPLIANCE_ALERT_RETRY_BASE_SECONDS", "0")
        monkeypatch.setenv("COMPLIANCE_ALERT_MAX_PER_TICK", "60")  # ~130 alerts over 2 days
        cursor, skipped = None, []
        with dg.instance_for_test() as instance:
            for _ in range(6):
                with dg.build_sensor_context(cursor=cursor, instance=instance, resources={
                        "warehouse": WarehouseResource(path=str(warehouse))}) as ctx:
                    result = monitor_alerts_webhook(ctx)
                cursor = result.cursor
                skipped.append(result.skip_reason)
    assert receiver.attempts[0][0] == 500
    assert "failed 1" in str(skipped[0])
    delivered = receiver.alert_ids()
    assert sorted(delivered) == sorted(expected)  # each alert exactly once, the failed one retried
    assert all(set(b) == {"text", "blocks"} for b in receiver.bodies)
    assert all(a["delivered_at"] is not None for a in alerts(warehouse))
