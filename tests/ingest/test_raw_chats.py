"""`raw/chats` end to end against the simulator: exactness under faults, chats that grow, soft and hard deletes,
idempotent re-runs and the privacy switch."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.compliance_api import ComplianceClient
from pipeline.defs.ingest.chats import raw_chats, raw_chats_reconciliation
from pipeline.defs.resources import ComplianceAPIResource, WarehouseResource
from simulator.process import SimulatorProcess
from tests.support.sim import FULL_KEY, ground_truth, set_clock
from tests.unit.test_warehouse_load import snapshot

FAULTS = "429=5%,5xx=5%,truncated=1%,slow=1%,repeated=2%"
T1, T2 = "2026-11-02T12:00:00Z", "2026-11-03T00:10:00Z"


def resources(base_url, warehouse):
    return {"compliance_api": ComplianceAPIResource(base_url=base_url, timeout_seconds=1.0,
                                                    max_retries=10, requests_per_minute=100_000),
            "warehouse": WarehouseResource(path=str(warehouse))}


def ingest(res, first, last):
    result = dg.materialize([raw_chats], resources=res, raise_on_error=False,
                            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
    assert result.success
    return result


def reconcile(res):
    assert dg.materialize([raw_chats, raw_chats_reconciliation], resources=res,
                          selection=[raw_chats_reconciliation]).success


def stored(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        chats = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, hard_deleted_at IS NOT NULL, deleted_at FROM raw.chats").fetchall()}
        messages = conn.execute("SELECT chat_id, id FROM raw.chat_messages").fetchall()
    by_chat: dict[str, list[str]] = {}
    for chat_id, message_id in messages:
        by_chat.setdefault(chat_id, []).append(message_id)
    return chats, by_chat, len(messages)


def ts(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    args = ["--start", "2026-11-01T00:00:00Z", "--days", "2", "--volume", "500", "--chats-per-day", "70",
            "--faults", FAULTS, "--fault-seed", "3", "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        yield sim, tmp_path_factory.mktemp("chats") / "warehouse.duckdb"


def test_chats_and_messages_exact_through_growth_and_deletes(two_days):
    sim, warehouse = two_days
    res = resources(sim.base_url, warehouse)
    set_clock(sim.base_url, T1)
    ingest(res, "2026-11-01-00:00", "2026-11-01-23:55")
    ingest(res, "2026-11-02-00:00", "2026-11-02-11:55")
    truth1 = {c["id"]: c for c in ground_truth(sim.base_url, "2026-11-01T00:00:00Z", T1)["chats"]}
    chats, messages, total = stored(warehouse)
    live1 = {i for i, c in truth1.items() if not c["hard_deleted"]}
    assert {i for i, (gone, _) in chats.items() if not gone} == live1
    assert all(sorted(messages.get(i, [])) == sorted(truth1[i]["message_ids"]) for i in live1)
    assert total == sum(len(v) for v in messages.values()) == len({m for v in messages.values() for m in v})
    counts_at_t1 = {i: len(v) for i, v in messages.items()}

    # A day and a half later: chats gained messages, some were soft-deleted, some expired (hard delete),
    # and one is deleted through the API.
    set_clock(sim.base_url, T2)
    with ComplianceClient(api_key=FULL_KEY, base_url=sim.base_url, timeout=5, backoff_initial=0.05) as client:
        victim = sorted(live1)[0]
        client.delete_chat(victim)
    ingest(res, "2026-11-02-12:00", "2026-11-02-23:55")
    reconcile(res)
    truth2 = {c["id"]: c for c in ground_truth(sim.base_url, "2026-11-01T00:00:00Z", T2)["chats"]}
    chats, messages, total = stored(warehouse)
    live2 = {i for i, c in truth2.items() if not c["hard_deleted"]} - {victim}
    assert {i for i, (gone, _) in chats.items() if not gone} == live2
    gone_since_t1 = ({i for i, c in truth2.items() if c["hard_deleted"]} & live1) | {victim}
    assert {i for i, (gone, _) in chats.items() if gone} == gone_since_t1
    assert victim in chats and chats[victim][0], "a hard-deleted chat is kept and marked, never shown as live"
    for chat_id in live2:
        assert sorted(messages.get(chat_id, [])) == sorted(truth2[chat_id]["message_ids"]), chat_id
        assert chats[chat_id][1] == ts(truth2[chat_id]["deleted_at"])
    assert total == len({m for v in messages.values() for m in v}), "duplicated messages"
    grown = [i for i in live2 & set(counts_at_t1) if len(messages[i]) > counts_at_t1[i]]
    assert grown, "some chats gained messages after their first ingestion"
    assert any(truth2[i]["deleted_at"] for i in live2), "soft-deleted chats are present, with deleted_at"


def test_rerunning_chat_windows_changes_nothing(two_days):
    sim, warehouse = two_days
    res = resources(sim.base_url, warehouse)
    set_clock(sim.base_url, T2)
    ingest(res, "2026-11-01-00:00", "2026-11-02-23:55")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        before = snapshot(conn)
    ingest(res, "2026-11-01-00:00", "2026-11-01-23:55")
    ingest(res, "2026-11-02-06:00", "2026-11-02-06:55")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert snapshot(conn) == before


def _all_strings(warehouse) -> dict[str, str]:
    """Every text-typed value of every table, per table, as one string."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        columns = conn.execute("""
            SELECT table_schema, table_name, column_name FROM information_schema.columns
            WHERE data_type IN ('VARCHAR', 'JSON') OR data_type LIKE 'VARCHAR[]%'""").fetchall()
        for schema, table, column in columns:
            values = conn.execute(f'SELECT "{column}"::VARCHAR FROM "{schema}"."{table}"').fetchall()
            out.setdefault(f"{schema}.{table}", "")
            out[f"{schema}.{table}"] += "\n".join(v[0] for v in values if v[0])
    return out


def _message_texts(base_url) -> list[str]:
    texts = []
    with ComplianceClient(api_key=FULL_KEY, base_url=base_url) as client:
        for page in client.iter_chat_pages("2026-11-01T00:00:00Z"):
            for chat in page.records:
                for message in client.get_chat_messages(chat["id"])["chat_messages"]:
                    for block in message["content"]:
                        for key in ("text", "input"):
                            if isinstance(block.get(key), str) and len(block[key]) >= 24:
                                texts.append(block[key])
    return texts


@pytest.mark.parametrize("store_text", [True, False])
def test_message_text_only_in_the_restricted_schema_and_nowhere_with_the_switch(tmp_path, monkeypatch, store_text):
    monkeypatch.setenv("COMPLIANCE_STORE_MESSAGE_TEXT", "true" if store_text else "false")
    args = ["--start", "2026-11-01T00:00:00Z", "--days", "1", "--volume", "200", "--chats-per-day", "40",
            "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        ingest(resources(sim.base_url, tmp_path / "w.duckdb"), "2026-11-01-00:00", "2026-11-01-23:55")
        texts = _message_texts(sim.base_url)
    assert len(texts) > 20
    strings = _all_strings(tmp_path / "w.duckdb")
    restricted = strings.pop("restricted.chat_message_text", "")
    leaked = [t for t in texts if any(t in blob for blob in strings.values())]
    assert not leaked, f"message text outside the restricted schema: {leaked[:2]}"
    if store_text:
        assert all(t in restricted for t in texts)
    else:
        assert restricted == ""
