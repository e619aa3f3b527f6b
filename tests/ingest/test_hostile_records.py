"""Hostile records among valid ones (issue #12): the simulator serves, on the first page of every activity window,
chat listing and chat's messages, one record of each hostile kind (simulator/hostile.py). Every valid record is
stored, each hostile one is quarantined with its reason (or stored when DuckDB can store it faithfully), runs
succeed and reruns change nothing."""

from __future__ import annotations

import base64

import dagster as dg
import duckdb
import httpx
import orjson
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
# Per wrong-typed activity planted by the simulator (WRONG_TYPED_ACTIVITIES): its reason, None = stored (a context
# field: as delivered in `raw`, its JSON text in the typed column)
WRONG_TYPED = {"created_at_number": "wrong_type:created_at", "type_object": "wrong_type:type",
               "organization_id_number": "wrong_type:organization_id", "actor_string": "wrong_type:actor",
               "actor_array": "wrong_type:actor", "actor_type_number": "wrong_type:actor.type",
               "ip_address_number": None, "user_agent_array": None}
# invalid text, a number as id, no id, a conflicting copy and a key field of a wrong type are quarantined; deep nesting
# (DuckDB has no depth limit), an object as an email and a context field of a wrong type are stored
ACTIVITY_REASONS = {"invalid_unicode_escape", "invalid_utf8", "wrong_type:id", "missing_id", "conflicting_duplicate",
                    *filter(None, WRONG_TYPED.values())}
QUARANTINED_PER_PAGE = 5 + sum(r is not None for r in WRONG_TYPED.values())
STORED_KINDS = {"deep_nesting", "object_as_name", *(k for k, r in WRONG_TYPED.items() if r is None)}


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
    traversals = [run([raw_activities], res, first, last).asset_materializations_for_node("raw__activities")[-1]
                  .metadata["traversals"].value for first, last in ranges]
    # Each delivery holds records for quarantine: the fresh load gives up and the range is read again, checked.
    assert traversals == [2] * len(ranges)
    truth = set(ground_truth(sim.base_url, f"{DAY}T09:00:00Z", f"{DAY}T10:10:00Z")["activity_ids"])
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM raw.activities").fetchall()]
        quarantine = conn.execute("SELECT reason, record_id, raw_base64 FROM raw.activities_quarantine").fetchall()
        attested = conn.execute("SELECT sum(quarantined_count) FROM raw.activity_attestations").fetchone()[0]
        before = snapshot(conn)
    hostile_stored = {i for i in ids if i.startswith("hostile-")}
    assert truth <= set(ids), f"valid records lost: {len(truth - set(ids))}"
    assert len(ids) == len(set(ids))
    assert {i.rsplit("-", 1)[1] for i in hostile_stored} == STORED_KINDS  # stored faithfully
    assert set(ids) - truth == hostile_stored
    served = stats(sim.base_url)
    tried = httpx.get(f"{sim.base_url}/_sim/hostile", timeout=10).json()["served"]["activities"]
    print(f"activities: {tried} hostile records tried, {len(quarantine)} quarantined, {len(hostile_stored)} stored "
          f"faithfully ({', '.join(sorted(STORED_KINDS))}); {len(truth)} valid, {len(truth - set(ids))} lost")
    assert {r for r, _, _ in quarantine} == ACTIVITY_REASONS
    assert tried == 2 * (len(quarantine) + len(hostile_stored))  # the same records in both traversals
    assert len(quarantine) == QUARANTINED_PER_PAGE * len(ranges)  # on each first page
    assert attested == len(quarantine)  # each counted in its window's attestation
    assert all(base64.b64decode(b) for _, _, b in quarantine)
    raw = [base64.b64decode(b) for r, _, b in quarantine if r == "invalid_utf8"]
    assert raw and all(b"\xff\xfe" in r for r in raw)  # the exact bytes as delivered
    for first, last in ranges:  # reruns change nothing
        run([raw_activities], res, first, last)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert snapshot(conn) == before
    assert served["requests_total"] > 0


def metadata(result) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node("raw__activities")[-1].metadata.items()}


def test_wrong_typed_fields_are_quarantined_by_field_and_their_neighbours_stored(hostile_sim, tmp_path):
    sim, warehouse = hostile_sim, tmp_path / "w.duckdb"
    meta = metadata(run([raw_activities], resources(sim.base_url, warehouse), f"{DAY}-12:00", f"{DAY}-12:05"))
    truth = set(ground_truth(sim.base_url, f"{DAY}T12:00:00Z", f"{DAY}T12:10:00Z")["activity_ids"])
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        stored = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, ip_address, user_agent, raw->'$.actor' FROM raw.activities").fetchall()}
        quarantine = {r[0].rsplit("-", 1)[1]: r[1:] for r in conn.execute(
            "SELECT record_id, reason, raw_base64 FROM raw.activities_quarantine WHERE record_id LIKE 'hostile-%'"
        ).fetchall()}
        attested = conn.execute("SELECT sum(quarantined_count) FROM raw.activity_attestations").fetchone()[0]
        quarantined = conn.execute("SELECT count(*) FROM raw.activities_quarantine").fetchone()[0]
    assert truth and truth <= set(stored), f"valid records lost: {len(truth - set(stored))}"
    for kind, reason in WRONG_TYPED.items():
        if reason is None:
            assert kind not in quarantine
            continue
        got_reason, raw = quarantine[kind]
        assert got_reason == reason, kind
        field = reason.split(":")[1].split(".")[0]
        assert f'"{field}":'.encode() in base64.b64decode(raw)  # the record's bytes as delivered
    (ip_record,) = [v for i, v in stored.items() if i.endswith("-ip_address_number")]
    (ua_record,) = [v for i, v in stored.items() if i.endswith("-user_agent_array")]
    # stored faithfully: as delivered in `raw`, their JSON text in the typed column
    assert ip_record[:2] == ("3232235777", "Mozilla/5.0") and '"ip_address":3232235777' in ip_record[2]
    assert ua_record[:2] == ("81.2.69.160", '["Mozilla/5.0"]') and '"user_agent":["Mozilla/5.0"]' in ua_record[2]
    assert attested == quarantined == meta["quarantined"] == QUARANTINED_PER_PAGE
    assert meta["quarantine_reasons"]["wrong_type:actor"] == 2


def hostile_mode(sim, **mode: bool) -> None:
    httpx.post(f"{sim.base_url}/_sim/hostile", json=mode, timeout=10).raise_for_status()


def test_conflicting_redelivery_in_a_later_run_is_quarantined_and_the_stored_row_kept(hostile_sim, tmp_path):
    """A stored id delivered again by a later run with other content: the stored row stays (the first stored version
    wins), the other version is quarantined with its bytes and counted (run metadata, window attestation); the same
    delivery again changes nothing."""
    sim, warehouse = hostile_sim, tmp_path / "w.duckdb"
    res, first, last = resources(sim.base_url, warehouse), f"{DAY}-13:00", f"{DAY}-13:05"
    tables = ("raw.activities", "raw.activities_quarantine", "raw.activity_attestations")

    def read():
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}, \
                conn.execute("SELECT sum(quarantined_count) FROM raw.activity_attestations").fetchone()[0], \
                conn.execute("SELECT reason, record_id, raw_base64 FROM raw.activities_quarantine").fetchall()

    try:
        hostile_mode(sim, enabled=False)  # only valid records: the first run stores them all
        before_meta = metadata(run([raw_activities], res, first, last))
        before, before_attested, before_quarantine = read()
        hostile_mode(sim, enabled=False, altered=True)  # the window's first record again, with other content
        after_meta = metadata(run([raw_activities], res, first, last))
        after, after_attested, after_quarantine = read()
        run([raw_activities], res, first, last)
        again = read()[0]
    finally:
        hostile_mode(sim, enabled=True)
    assert before_meta["records_stored"] > 0 and before_quarantine == [] and before_attested == 0
    assert after["raw.activities"] == before["raw.activities"]  # the stored row unchanged, nothing else either
    ((reason, record_id, raw),) = after_quarantine
    assert reason == "conflicting_duplicate" and b'"altered_copy":true' in base64.b64decode(raw)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        (stored,) = conn.execute("SELECT raw FROM raw.activities WHERE id = ?", [record_id]).fetchone()
    delivered = orjson.loads(base64.b64decode(raw))
    assert delivered.pop("altered_copy") is True and orjson.loads(stored) == delivered  # stored by the first run
    assert (before_meta["conflicting_duplicates"], after_meta["conflicting_duplicates"]) == (0, 1)
    assert after_meta["quarantine_reasons"] == {"conflicting_duplicate": 1}
    assert after_attested == 1  # counted in its window's attestation
    assert after_meta["records_inserted"] == after_meta["records_removed"] == 0
    assert again == after  # the same re-delivery again changes nothing (the quarantine does not grow)


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
