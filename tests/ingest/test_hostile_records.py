"""Hostile records among valid ones (issue #12): the simulator serves, on the first page of every activity window,
chat listing and chat's messages, one record of each hostile kind (simulator/hostile.py). Every valid record is
stored, each hostile one is quarantined with its reason (or stored when DuckDB can store it faithfully), runs
succeed and reruns change nothing."""

from __future__ import annotations

import base64

import dagster as dg
import duckdb
import httpx
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.ingest.chats import raw_chats
from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
from simulator.hostile import KINDS
from simulator.process import SimulatorProcess
from tests.support.sim import ground_truth, set_clock, stats
from tests.unit.test_warehouse_load import snapshot

DAY = "2026-11-03"
# invalid text, a number as id, no id and a conflicting copy are quarantined; deep nesting (DuckDB has no depth limit)
# and an object as an email (kept as delivered in `raw`) are stored
ACTIVITY_REASONS = {"invalid_unicode_escape", "invalid_utf8", "wrong_type", "missing_id", "conflicting_duplicate"}


def resources(base_url, warehouse):
    return {"compliance_api": ComplianceAPIResource(base_url=base_url, timeout_seconds=5.0,
                                                    max_retries=3, requests_per_minute=100_000),
            "warehouse": WarehouseResource(path=str(warehouse)), "geoip": GeoIPResource()}


def run(assets, res, first, last):
    result = dg.materialize(assets, resources=res, raise_on_error=False,
                            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
    assert result.success
    return result


@pytest.fixture(scope="module")
def hostile_sim():
    args = ["--start", f"{DAY}T00:00:00Z", "--days", "1", "--volume", "3000", "--chats-per-day", "30",
            "--rate-limit", "0", "--late-share", "0"]
    with SimulatorProcess(args) as sim:
        set_clock(sim.base_url, "2026-11-04T00:10:00Z")
        httpx.post(f"{sim.base_url}/_sim/hostile", json={"enabled": True}, timeout=10).raise_for_status()
        yield sim


def test_hostile_activities_are_quarantined_and_every_valid_one_stored(hostile_sim, tmp_path):
    sim, warehouse = hostile_sim, tmp_path / "w.duckdb"
    res = resources(sim.base_url, warehouse)
    ranges = [(f"{DAY}-09:00", f"{DAY}-09:55"), (f"{DAY}-10:00", f"{DAY}-10:00"), (f"{DAY}-10:05", f"{DAY}-10:05")]
    for first, last in ranges:
        run([raw_activities], res, first, last)
    truth = set(ground_truth(sim.base_url, f"{DAY}T09:00:00Z", f"{DAY}T10:10:00Z")["activity_ids"])
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM raw.activities").fetchall()]
        quarantine = conn.execute("SELECT reason, record_id, raw_base64 FROM raw.activities_quarantine").fetchall()
        attested = conn.execute("SELECT sum(quarantined_count) FROM raw.activity_attestations").fetchone()[0]
        before = snapshot(conn)
    hostile_stored = {i for i in ids if i.startswith("hostile-")}
    assert truth <= set(ids), f"valid records lost: {len(truth - set(ids))}"
    assert len(ids) == len(set(ids))
    assert {i.rsplit("-", 1)[1] for i in hostile_stored} == {"deep_nesting", "object_as_name"}  # stored faithfully
    assert set(ids) - truth == hostile_stored
    served = stats(sim.base_url)
    tried = httpx.get(f"{sim.base_url}/_sim/hostile", timeout=10).json()["served"]["activities"]
    print(f"activities: {tried} hostile records tried, {len(quarantine)} quarantined, {len(hostile_stored)} stored "
          f"faithfully (deep nesting, object as email); {len(truth)} valid, {len(truth - set(ids))} lost")
    assert {r for r, _, _ in quarantine} == ACTIVITY_REASONS
    assert len(quarantine) == 5 * len(ranges)  # 7 hostile per first page, 2 stored
    assert attested == len(quarantine)  # each counted in its window's attestation
    assert all(base64.b64decode(b) for _, _, b in quarantine)
    raw = [base64.b64decode(b) for r, _, b in quarantine if r == "invalid_utf8"]
    assert raw and all(b"\xff\xfe" in r for r in raw)  # the exact bytes as delivered
    for first, last in ranges:  # reruns change nothing
        run([raw_activities], res, first, last)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert snapshot(conn) == before
    assert served["requests_total"] > 0


def test_hostile_chats_and_messages_are_quarantined_and_every_valid_one_stored(hostile_sim, tmp_path):
    sim, warehouse = hostile_sim, tmp_path / "w.duckdb"
    res = resources(sim.base_url, warehouse)
    run([raw_chats], res, f"{DAY}-00:00", f"{DAY}-23:55")
    truth = {c["id"]: c for c in ground_truth(sim.base_url, f"{DAY}T00:00:00Z", "2026-11-04T00:10:00Z")["chats"]}
    live = {i for i, c in truth.items() if not c["hard_deleted"]}
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        chats = {r[0] for r in conn.execute("SELECT id FROM raw.chats").fetchall()}
        messages = conn.execute("SELECT chat_id, id FROM raw.chat_messages").fetchall()
        reasons = dict(conn.execute("SELECT reason, count(*) FROM raw.chats_quarantine GROUP BY 1").fetchall())
        before = snapshot(conn)
    assert live and chats == live, "every valid chat stored, no hostile one"
    by_chat: dict[str, set] = {}
    for chat_id, message_id in messages:
        by_chat.setdefault(chat_id, set()).add(message_id)
    for chat_id in live:
        assert by_chat.get(chat_id, set()) == set(truth[chat_id]["message_ids"]), chat_id
    assert {"invalid_unicode_escape", "invalid_utf8", "nesting_too_deep", "wrong_type", "missing_id"} <= set(reasons)
    assert {f"message_{r}" for r in ("invalid_unicode_escape", "invalid_utf8", "nesting_too_deep", "wrong_type",
                                     "missing_id")} <= set(reasons)
    assert sum(v for k, v in reasons.items() if k.startswith("message_")) == len(KINDS) * len(live)
    valid_messages = sum(len(truth[c]["message_ids"]) for c in live)
    served = httpx.get(f"{sim.base_url}/_sim/hostile", timeout=10).json()["served"]
    tried = served.get("chats", 0) + served.get("chat_messages", 0)
    assert sum(reasons.values()) == tried  # every hostile chat record tried is quarantined
    print(f"chats: {tried} hostile records tried, {sum(reasons.values())} quarantined ({reasons}); {len(live)} valid chats "
          f"and {valid_messages} valid messages, {len(live - chats)} chats and "
          f"{valid_messages - sum(len(v & set(truth[c]['message_ids'])) for c, v in by_chat.items() if c in live)} "
          "messages lost")
    run([raw_chats], res, f"{DAY}-00:00", f"{DAY}-23:55")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert snapshot(conn) == before
