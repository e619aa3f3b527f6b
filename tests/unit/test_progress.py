"""Backfill progress figures from pages (parsed and unparsed), with a fake clock."""

from datetime import datetime, timezone

import orjson

from pipeline.compliance_api.pages import Page
from pipeline.compliance_api.progress import page_facts, with_progress

START = datetime(2026, 11, 3, tzinfo=timezone.utc)
END = datetime(2026, 11, 4, tzinfo=timezone.utc)


def page(records, parsed):
    body = orjson.dumps(records)
    return Page(records=records if parsed else None, raw_count=len(records) if parsed else None, duplicates_dropped=0,
                first_id=None, last_id=None, has_more=True, request_id=None, cursor=None, page_number=1, body=b"",
                data_json=None if parsed else body)


def records(hour, n):
    # newest first, as the feed serves them; a nested created_at must not be taken for the record's own
    return [{"id": f"activity_{hour}_{i}", "created_at": f"2026-11-03T{hour:02d}:{59 - i:02d}:00Z",
             "actor": {"type": "user_actor"}, "details": {"created_at": "2020-01-01T00:00:00Z"} if i == 0 else {}}
            for i in range(n)]


def test_page_facts_read_unparsed_bytes_like_parsed_records():
    recs = records(18, 3)
    assert page_facts(page(recs, parsed=False)) == (3, datetime(2026, 11, 3, 18, 57, tzinfo=timezone.utc))
    assert page_facts(page(recs, parsed=True))[0] == 3


def test_progress_reports_windows_rate_and_eta():
    ticks = iter([0.0, 6.0, 12.0, 12.0])
    reports = []
    pages = [page(records(18, 10), parsed=False), page(records(12, 10), parsed=False)]
    out = list(with_progress(pages, START, END, lambda p: reports.append((p.windows_done, p.activities,
                                                                          p.describe())), every_seconds=5,
                             clock=lambda: next(ticks)))
    assert out == pages
    first, second, final = reports
    # back to 18:50 after 6 s: (24h - 18h50) = 5h10 = 62 windows of 288; 10 activities
    assert first[:2] == (62, 10) and "62 of 288 windows (22%)" in first[2] and "2/s" in first[2]
    assert second[:2] == (134, 20) and "ETA 0:00:14" in second[2]  # 12 s × (1 - 0.465) / 0.465
    assert final[:2] == (288, 20) and "(100%)" in final[2] and "ETA 0:00:00" in final[2]
