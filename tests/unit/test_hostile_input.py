"""Hostile records in delivered bytes (pure functions) and what a failing load leaves (real DuckDB files)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import duckdb
import orjson
import pytest

from pipeline.compliance_api.hostile import RejectedRecord, decode_with_rejects, split_array
from pipeline.warehouse.activities import PageSpool, TraversalStats, load_activity_range
from pipeline.warehouse.screening import screen_page
from tests.unit.test_warehouse_load import END, NOW, START, activity

GOOD = [orjson.dumps(activity(i, i)) for i in range(3)]
HOSTILE = {
    "invalid_unicode_escape": b'{"id":"h1","created_at":"2026-03-01T12:00:01Z","name":"a\\ud800b"}',
    "invalid_utf8": b'{"id":"h2","created_at":"2026-03-01T12:00:01Z","name":"a\xff\xfeb"}',
    "nesting_too_deep": b'{"id":"h3","d":' + b"[" * 1100 + b"]" * 1100 + b"}",
}


def test_split_array_keeps_each_item_exactly_and_refuses_what_is_not_one_array():
    items = [b'{"a":"x,]}\\"["}', b"null", b"[1,[2]]", b'"s"']
    assert split_array(b" [" + b", ".join(items) + b"] ", 1) == (items, len(b" [" + b", ".join(items) + b"]"))
    assert split_array(b"[]", 0) == ([], 2)
    assert split_array(b'[{"a":1}', 0) is None and split_array(b'{"a":1}', 0) is None


def test_a_page_keeps_its_valid_records_and_sets_the_hostile_ones_aside_with_their_bytes():
    page = b"[" + b",".join([GOOD[0], HOSTILE["invalid_unicode_escape"], GOOD[1], HOSTILE["invalid_utf8"],
                             HOSTILE["nesting_too_deep"], GOOD[2]]) + b"]"
    clean, rejected = screen_page(page)
    assert [r["reason"] for r in rejected] == ["invalid_unicode_escape", "invalid_utf8"]
    assert [base64.b64decode(r["raw_base64"]) for r in rejected] == [HOSTILE["invalid_unicode_escape"],
                                                                    HOSTILE["invalid_utf8"]]
    assert HOSTILE["nesting_too_deep"] in clean and all(g in clean for g in GOOD)  # DuckDB stores deep nesting
    assert screen_page(b"[" + GOOD[0] + b"]") == (b"[" + GOOD[0] + b"]", [])  # the common case: untouched


def test_a_complete_body_is_decoded_record_by_record():
    body = (b'{"id":"chat_1","name":"n","chat_messages":[' + b",".join([GOOD[0]] + list(HOSTILE.values()))
            + b'],"has_more":false}')
    data = decode_with_rejects(body)
    assert data["id"] == "chat_1" and data["has_more"] is False
    assert data["chat_messages"][0]["id"] == "activity_00000"
    assert [m.reason for m in data["chat_messages"][1:]] == list(HOSTILE)
    assert all(isinstance(m, RejectedRecord) and m.raw == raw for m, raw in zip(data["chat_messages"][1:],
                                                                                 HOSTILE.values()))
    assert decode_with_rejects(b'{"name":"\xff","chat_messages":[]}') is None  # not a record: stays an error


def test_a_failing_load_reports_duckdbs_error_and_keeps_its_pages(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(duckdb.Error) as info, PageSpool(tmp_path) as spool:
        spool.add(b"[" + GOOD[0] + b"]")
        spool.add(b'[{"id": "x", "created_at": tru')  # not an array screening can split: DuckDB refuses it
        load_activity_range(conn, spool.files, START, END, run_id="r", fetched_at=NOW, traversal=TraversalStats())
    assert "aborted" not in str(info.value) and "JSON" in str(info.value)  # the real error, not the SET's
    assert conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0] == 0
    assert conn.execute("SELECT current_setting('disabled_optimizers')").fetchone()[0] == ""
    kept = spool.kept
    assert kept is not None and len(list(Path(kept).glob("page-*.json"))) == 2
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700


def test_hostile_chat_records_are_quarantined_and_the_others_of_the_chat_stored(tmp_path):
    from pipeline.warehouse.chats import FetchedChat, load_chat_window

    def message(mid, **kw):
        return {"id": mid, "role": "user", "created_at": "2026-03-01T12:00:00Z",
                "content": [{"type": "text", "text": "hello"}], **kw}

    listed = {"id": "chat_1", "name": "c", "updated_at": "2026-03-01T12:01:00Z", "user": {"id": "u1"}}
    detail = {"chat_messages": [message("m1"), message("m2", role={"a": 1}), message("m1", role="assistant"),
                                RejectedRecord("invalid_utf8", b'{"id":"m3","x":"\xff"}'), message("m4"),
                                {"role": "user"}, message("m5", content=[{"type": "tool_use", "name": {"x": 1}}])]}
    bad_chats = [{"id": 7, "updated_at": "2026-03-01T12:00:00Z"}, {"id": "c2", "name": {"a": 1},
                                                                    "updated_at": "2026-03-01T12:00:00Z"}]
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    for _ in range(2):  # a rerun changes nothing
        result = load_chat_window(conn, [FetchedChat(listed, detail)], bad_chats, START, END, run_id="r",
                                  fetched_at=NOW, store_text=True)
    assert sorted(r[0] for r in conn.execute("SELECT id FROM raw.chat_messages").fetchall()) == ["m1", "m4"]
    assert result.quarantine_reasons == {"wrong_type": 2, "message_wrong_type": 2, "message_invalid_utf8": 1,
                                         "message_conflicting_duplicate": 1, "message_missing_id": 1}
    assert conn.execute("SELECT count(*) FROM raw.chats_quarantine").fetchone()[0] == 7
    raw = conn.execute("SELECT raw_base64 FROM raw.chats_quarantine WHERE reason = 'message_invalid_utf8'").fetchone()
    assert base64.b64decode(raw[0]) == b'{"id":"m3","x":"\xff"}'
