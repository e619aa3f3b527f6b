"""Unparsed pages (`parse_records=False`): the records stay bytes for the loader, truncation is still retried, and
any envelope layout still works."""

from __future__ import annotations

import httpx
import orjson

from pipeline.compliance_api import ComplianceClient
from pipeline.compliance_api.transport import decode_envelope_lazily
from tests.client.conftest import KEY, scripted

RECORDS = [{"id": f"activity_{i}", "created_at": "2026-11-03T10:00:00Z", "note": '],"has_more":false}'}
           for i in range(3)]


def page(records, has_more=False, last_id=None, layout="data-first") -> bytes:
    if layout == "data-first":
        return orjson.dumps({"data": records, "has_more": has_more, "first_id": "c0", "last_id": last_id})
    return orjson.dumps({"has_more": has_more, "last_id": last_id, "first_id": "c0", "data": records})


def client(recorder) -> ComplianceClient:
    return ComplianceClient(api_key=KEY, base_url="http://127.0.0.1:1", transport=httpx.MockTransport(recorder),
                            backoff_initial=0, backoff_max=0, requests_per_minute=100_000)


def test_data_first_layout_is_split_without_parsing_records():
    decoded = decode_envelope_lazily(page(RECORDS, True, "c1"))
    assert decoded["has_more"] is True and decoded["last_id"] == "c1" and decoded["data"] is None
    assert orjson.loads(decoded["data_json"]) == RECORDS  # a tail-like string inside a record does not confuse it


def test_other_layouts_are_parsed_whole():
    decoded = decode_envelope_lazily(page(RECORDS, layout="data-last"))
    assert decoded["data_json"] is None and decoded["data"] == RECORDS


def test_truncated_body_is_retried_and_pages_carry_the_array_bytes():
    good = page(RECORDS)
    recorder = scripted(httpx.Response(200, content=good[:-7], headers={"request-id": "req_1"}),
                        httpx.Response(200, content=good[: len(good) // 2], headers={"request-id": "req_2"}),
                        httpx.Response(200, content=good, headers={"request-id": "req_3"}))
    with client(recorder) as c:
        pages = list(c.iter_activity_pages("2026-11-03T10:00:00Z", "2026-11-03T10:05:00Z", parse_records=False))
    assert recorder.count == 3
    assert len(pages) == 1 and pages[0].records is None and pages[0].request_id == "req_3"
    assert orjson.loads(pages[0].data_json) == RECORDS


def test_unparsed_traversal_follows_the_cursor_like_the_parsed_one():
    bodies = {None: page(RECORDS[:2], True, "c1"), "c1": page(RECORDS[2:], False, "c2", layout="data-last")}

    def respond(request):
        return httpx.Response(200, content=bodies[request.url.params.get("after_id")])

    with client(scripted(respond)) as c:
        lazy = list(c.iter_activity_pages("2026-11-03T10:00:00Z", "2026-11-03T10:05:00Z", parse_records=False))
        parsed = list(c.iter_activity_pages("2026-11-03T10:00:00Z", "2026-11-03T10:05:00Z"))
    assert [r for p in lazy for r in orjson.loads(p.data_json)] == [r for p in parsed for r in p.records] == RECORDS
    assert [p.cursor for p in lazy] == [None, "c1"]
