"""The transactional window load of raw.activities, on real DuckDB files (no HTTP)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from pipeline.warehouse.activities import PageSpool, TraversalStats, load_activity_range
from pipeline.warehouse.connection import open_warehouse

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
END = START + timedelta(minutes=15)
NOW = datetime(2026, 3, 2, tzinfo=timezone.utc)


def activity(i: int, offset_s: float) -> dict:
    ts = (START + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")
    return {"id": f"activity_{i:05d}", "type": "claude_chat_created", "created_at": ts,
            "organization_id": "org_1", "organization_uuid": "u-1", "claude_chat_id": f"claude_chat_{i}",
            "actor": {"type": "user_actor", "user_id": f"user_{i % 7}", "email_address": f"u{i % 7}@example.com",
                      "ip_address": "81.2.69.160", "user_agent": "Mozilla/5.0"}}


def pages_of(records: list, size: int) -> list[list]:
    return [records[i:i + size] for i in range(0, len(records), size)]


def load(conn, tmp_path, bodies, start=START, end=END, run_id="run-1", **kw):
    with PageSpool(tmp_path / "spool") as spool:
        for body in bodies:
            spool.add(body)
        return load_activity_range(conn, spool.files, start, end, run_id=run_id, fetched_at=NOW,
                                   traversal=TraversalStats(pages=len(bodies)), **kw)


def snapshot(conn) -> dict:
    tables = [r[0] for r in conn.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1").fetchall()]
    return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}


@pytest.fixture
def conn(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as c:
        yield c


def test_load_stores_each_id_once_and_rerun_changes_nothing(conn, tmp_path):
    records = [activity(i, i * 0.5) for i in range(1000)]
    bodies = pages_of(records, 300)
    # at-least-once delivery: the last record of each page repeated at the start of the next one
    repeated = [[records[299]] + records[300:600]]
    first = load(conn, tmp_path, bodies + repeated)
    assert (first.inserted, first.stored, first.removed) == (1000, 1000, 0)
    assert first.duplicates == 301
    before = snapshot(conn)
    again = load(conn, tmp_path, bodies, run_id="run-2")
    assert (again.inserted, again.removed) == (0, 0)
    assert snapshot(conn) == before  # not even fetched_at / run_id / attestations change


def test_repull_adds_only_late_records_and_keeps_first_fetch_metadata(conn, tmp_path):
    records = [activity(i, i) for i in range(600)]
    load(conn, tmp_path, pages_of(records[:550], 5000))
    late = load(conn, tmp_path, pages_of(records, 5000), run_id="run-repull")
    assert (late.inserted, late.stored) == (50, 600)
    runs = dict(conn.execute("SELECT run_id, count(*) FROM raw.activities GROUP BY 1").fetchall())
    assert runs == {"run-1": 550, "run-repull": 50}


def test_quarantine_reasons_and_payloads(conn, tmp_path):
    good = [activity(i, i) for i in range(10)]
    bad = ["a string", "a string", [1, 2], {"created_at": "2026-03-01T12:00:00Z", "type": "x"},
           {"id": "activity_bad_ts", "created_at": "yesterday"},
           {"id": "activity_outside", "created_at": "2026-01-01T00:00:00Z"}]
    result = load(conn, tmp_path, pages_of(good + bad, 5000))
    assert result.stored == 10
    assert result.quarantine_reasons == {"not_an_object": 3, "missing_id": 1, "bad_created_at": 1,
                                         "outside_window": 1}
    rows = conn.execute("SELECT reason, record_id, payload FROM raw.activities_quarantine ORDER BY 1, 2").fetchall()
    assert ("outside_window", "activity_outside") in [(r[0], r[1]) for r in rows]
    assert any(json.loads(r[2]) == "a string" for r in rows)
    before = snapshot(conn)
    load(conn, tmp_path, pages_of(good + bad, 5000), run_id="run-2")
    assert snapshot(conn) == before


def test_a_later_delivery_of_a_stored_id_with_other_content_is_quarantined_and_the_stored_row_kept(conn, tmp_path):
    records = [activity(i, i) for i in range(50)]
    load(conn, tmp_path, [records])
    before = snapshot(conn)
    # the same records in another serialisation (spaces, escaped non-ASCII): an identical delivery, not a conflict
    respaced = json.dumps(records, indent=1, ensure_ascii=True).encode()
    again = load(conn, tmp_path, [respaced], run_id="run-2")
    assert (again.conflicts, again.quarantined) == (0, 0) and snapshot(conn) == before
    changed = [*records[:7], {**records[7], "type": "claude_chat_deleted"}, *records[8:]]
    result = load(conn, tmp_path, [changed], run_id="run-3")
    assert (result.conflicts, result.quarantine_reasons, result.inserted) == (1, {"conflicting_duplicate": 1}, 0)
    after = snapshot(conn)
    assert after["raw.activities"] == before["raw.activities"]  # the first stored version wins
    (row,) = conn.execute("SELECT record_id, payload->>'type' FROM raw.activities_quarantine").fetchall()
    assert row == ("activity_00007", "claude_chat_deleted")
    assert conn.execute("SELECT sum(quarantined_count) FROM raw.activity_attestations").fetchone()[0] == 1
    load(conn, tmp_path, [changed], run_id="run-4")
    assert snapshot(conn) == after  # rerun: the quarantine does not grow


def test_rows_stored_before_the_content_hash_existed_get_it_from_the_next_load_of_their_range(conn, tmp_path):
    records = [activity(i, i) for i in range(20)]
    load(conn, tmp_path, [records])
    conn.execute("ALTER TABLE raw.activities DROP COLUMN raw_hash")  # a warehouse of an older version
    assert load(conn, tmp_path, [records], run_id="run-2").conflicts == 0
    assert conn.execute("SELECT count(*) FROM raw.activities WHERE raw_hash IS NULL").fetchone()[0] == 0
    changed = [{**records[3], "organization_id": "org_2"}, *records[4:]]
    assert load(conn, tmp_path, [changed], run_id="run-3").conflicts == 1


def test_wrong_typed_key_fields_are_quarantined_by_field_and_other_fields_stored_as_delivered(conn, tmp_path):
    good = [activity(i, i) for i in range(10)]
    base = activity(100, 1)
    wrong = {"created_at": 1772366400, "type": {"name": "x"}, "organization_id": 5, "actor": "user_1",
             "id": 100}
    bad = [{**base, "id": f"activity_bad_{field}", field: value} for field, value in wrong.items()]
    bad += [{**base, "id": "activity_bad_actor_list", "actor": [base["actor"]]},
            {**base, "id": "activity_bad_actor_type", "actor": {**base["actor"], "type": ["user_actor"]}}]
    context = [{**base, "id": "activity_ctx_ip", "actor": {**base["actor"], "ip_address": 1, "user_agent": None}},
               {**base, "id": "activity_ctx_uuid", "organization_uuid": {"u": 1}, "claude_chat_id": 7}]
    bad.append({**good[2], "actor": 42})  # a wrong-typed copy of a valid record's id: the valid one is stored
    result = load(conn, tmp_path, pages_of([*good[:5], *bad, *context, *good[5:]], 5000))
    assert result.quarantine_reasons == {"wrong_type:created_at": 1, "wrong_type:type": 1, "wrong_type:id": 1,
                                         "wrong_type:organization_id": 1, "wrong_type:actor": 3,
                                         "wrong_type:actor.type": 1}
    assert result.stored == len(good) + len(context)
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT id, ip_address, user_agent, organization_uuid, raw FROM raw.activities").fetchall()}
    assert rows["activity_ctx_ip"][:2] == ("1", None) and rows["activity_ctx_uuid"][2] == '{"u":1}'  # JSON text
    assert json.loads(rows["activity_ctx_uuid"][3]) == context[1]  # as delivered
    assert rows["activity_00001"][:3] == ("81.2.69.160", "Mozilla/5.0", "u-1")
    assert json.loads(rows["activity_00002"][3]) == good[2]
    before = snapshot(conn)
    load(conn, tmp_path, pages_of([*good[:5], *bad, *context, *good[5:]], 5000), run_id="run-2")
    assert snapshot(conn) == before


def test_range_replace_removes_ids_the_api_no_longer_returns_only_inside_the_range(conn, tmp_path):
    load(conn, tmp_path, pages_of([activity(i, i * 10) for i in range(90)], 5000))  # whole 15 minutes
    sub_start, sub_end = START + timedelta(minutes=5), START + timedelta(minutes=10)
    kept = [activity(i, i * 10) for i in range(30, 60) if i % 2 == 0]
    result = load(conn, tmp_path, pages_of(kept, 5000), start=sub_start, end=sub_end)
    assert (result.removed, result.inserted) == (15, 0)
    assert conn.execute("SELECT count(*) FROM raw.activities").fetchone()[0] == 75


def test_attestation_per_window(conn, tmp_path):
    records = [activity(i, i * 3) for i in range(300)]  # 15 minutes, 100 per 5-minute window
    with PageSpool(tmp_path / "spool") as spool:
        for body in pages_of(records, 120):
            spool.add(body)
        load_activity_range(conn, spool.files, START, END, run_id="r", fetched_at=NOW,
                            traversal=TraversalStats(pages=3, records=300, first_cursor="c1", last_cursor="c3",
                                                     final_request_id="req_x"))
    rows = conn.execute("""SELECT window_start, record_count, traversal_pages, last_cursor, final_request_id
                           FROM raw.activity_attestations ORDER BY 1""").fetchall()
    assert [r[1] for r in rows] == [100, 100, 100]
    assert rows[0][0] == START and {r[2:] for r in rows} == {(3, "c3", "req_x")}


def test_failure_inside_the_transaction_leaves_the_previous_state(conn, tmp_path):
    load(conn, tmp_path, pages_of([activity(i, i) for i in range(100)], 5000))
    before = snapshot(conn)

    class Boom(Exception):
        pass

    class FailingEnricher:
        def enrich_new_values(self, conn, now):
            raise Boom("enrichment failed after the insert")

    with pytest.raises(Boom):
        load(conn, tmp_path, pages_of([activity(i, i) for i in range(200)], 5000), enricher=FailingEnricher())
    assert snapshot(conn) == before


def test_empty_range_is_attested_with_zero(conn, tmp_path):
    result = load(conn, tmp_path, [[]])
    assert result.stored == 0
    assert conn.execute("SELECT sum(record_count), count(*) FROM raw.activity_attestations").fetchone() == (0, 3)
    with pytest.raises(duckdb.Error):
        conn.execute("SELECT * FROM staged_records")  # temp tables are gone after the load


def test_ips_geolocated_with_another_database_are_looked_up_again_once(conn, tmp_path):
    """GEOIP_CITY_DB now points at another database: the next load replaces the stored answers of every IP (one row
    per IP), and the load after that looks nothing up again."""
    from pipeline.enrichment.geo import GeoIPLookup
    from pipeline.enrichment.useragent import parse_user_agent
    from pipeline.warehouse.activities import Enricher

    enricher = Enricher(GeoIPLookup(None), parse_user_agent)
    load(conn, tmp_path, [[activity(i, i) for i in range(10)]], enricher=enricher)
    real = conn.execute("SELECT country_iso FROM enrichment.ip_geolocation WHERE ip = '81.2.69.160'").fetchone()[0]
    assert real
    # as stored by an older database
    conn.execute("UPDATE enrichment.ip_geolocation SET country_iso = 'ZZ', geo_database = 'GeoLite2-City.mmdb@old'")
    load(conn, tmp_path, [[activity(i, i) for i in range(20, 30)]], run_id="run-2", enricher=enricher)
    rows = conn.execute("SELECT ip, country_iso, geo_database FROM enrichment.ip_geolocation").fetchall()
    assert rows == [("81.2.69.160", real, enricher.geo_database)]
    before = snapshot(conn)["enrichment.ip_geolocation"]
    load(conn, tmp_path, [[activity(i, i) for i in range(40, 50)]], run_id="run-3", enricher=enricher)
    assert snapshot(conn)["enrichment.ip_geolocation"] == before


def test_user_agents_parsed_by_another_parser_are_parsed_again_once(conn, tmp_path):
    """The parser changed (its rules or ua-parser upgraded): the next load replaces the stored parse of every user
    agent (one row each), and the load after that parses nothing again."""
    from pipeline.enrichment.geo import GeoIPLookup
    from pipeline.enrichment.useragent import parse_user_agent
    from pipeline.warehouse.activities import Enricher

    enricher = Enricher(GeoIPLookup(None), parse_user_agent)
    load(conn, tmp_path, [[activity(i, i) for i in range(10)]], enricher=enricher)
    stored = "SELECT user_agent, browser_family, client_category, ua_parser FROM enrichment.user_agents"
    real = conn.execute(stored).fetchall()
    assert real and all(r[3] == enricher.ua_parser for r in real)
    # as stored by an older parser
    conn.execute("UPDATE enrichment.user_agents SET browser_family = 'Old', client_category = 'old', "
                 "ua_parser = 'rules-older'")
    load(conn, tmp_path, [[activity(i, i) for i in range(20, 30)]], run_id="run-2", enricher=enricher)
    assert conn.execute(stored).fetchall() == real
    before = snapshot(conn)["enrichment.user_agents"]
    load(conn, tmp_path, [[activity(i, i) for i in range(40, 50)]], run_id="run-3", enricher=enricher)
    assert snapshot(conn)["enrichment.user_agents"] == before


def test_pages_fed_while_fetching_load_in_batches_of_what_arrived_and_store_what_a_list_load_stores(tmp_path):
    """The feed of `fetch_and_load`: a batch waits for MIN_PAGES_PER_BATCH pages unless the fetch is over, takes at
    most the batch size, each page once and in order; repeats across and within batches, invalid records and a
    conflicting version end as they do when the same pages are loaded as one list."""
    from pipeline.warehouse.activities import MIN_PAGES_PER_BATCH, _PageFeed

    feed = _PageFeed()
    for name in [f"p{i}" for i in range(MIN_PAGES_PER_BATCH + 5)] + [None]:
        feed.put(name)
    sizes = [len(b) for b in feed.batches(MIN_PAGES_PER_BATCH + 2)]
    assert sizes == [MIN_PAGES_PER_BATCH + 2, 3]

    records = [activity(i, i) for i in range(400)]
    changed = {**records[5], "type": "claude_chat_deleted"}  # another version of an id: quarantined, first kept
    bodies = pages_of(records, 25) + [[records[24], records[24], "not an object", changed]]
    snapshots = []
    for name, batch_size in (("list", 1000), ("feed", 3)):
        with open_warehouse(tmp_path / f"{name}.duckdb") as conn, PageSpool(tmp_path / name) as spool:
            for body in bodies:
                spool.add(body)
            files = spool.files
            if name == "feed":
                files = _PageFeed()
                for path in spool.files + [None]:
                    files.put(path)
            result = load_activity_range(conn, files, START, END, run_id="r", fetched_at=NOW,
                                         traversal=TraversalStats(pages=len(bodies)), pages_per_batch=batch_size)
            assert (result.stored, result.duplicates, result.conflicts, result.quarantined) == (400, 3, 1, 2)
            snapshots.append(snapshot(conn))
    assert snapshots[0] == snapshots[1]


def _invalid_utf8_page(records: list) -> bytes:
    """A page with one record that no JSON reader takes (invalid UTF-8): screening sets it aside."""
    return b"[" + b",".join([json.dumps(r).encode() for r in records] + [b'{"id": "bad\xff"}']) + b"]"


@pytest.mark.parametrize("delivery", ["ordinary", "repeat_across_batches", "repeat_in_a_batch", "another_version",
                                      "not_an_object", "wrong_type", "outside_window", "set_aside_by_screening",
                                      "stored_before"])
def test_a_first_load_of_a_range_takes_one_pass_unless_the_delivery_needs_the_checked_load(tmp_path, monkeypatch,
                                                                                           delivery):
    """A range with no stored activity loads each batch straight from its pages, deleted once loaded; identical
    repeats are dropped. The first record that needs the checked load (quarantine, another version of an id) makes
    it give up, mid-feed: the range is traversed again and the checked load loads it. A range with rows takes the
    checked load at once. Either way the warehouse ends exactly as the checked load alone leaves it."""
    from pipeline.compliance_api.pages import ActivityPage
    from pipeline.warehouse import activities
    from pipeline.warehouse.activities import fetch_and_load

    records = [activity(i, i) for i in range(300)]
    bodies: list = pages_of(records, 20)
    late = len(bodies) - 2  # the record comes after several batches were inserted
    if delivery == "repeat_across_batches":
        bodies[late] = bodies[late] + [records[3]]
    elif delivery == "repeat_in_a_batch":
        bodies[late] = bodies[late] + [bodies[late][0]]
    elif delivery == "another_version":
        bodies[late] = bodies[late] + [{**records[3], "type": "claude_chat_deleted"}]
    elif delivery == "not_an_object":
        bodies[late] = bodies[late] + [42]
    elif delivery == "wrong_type":
        bodies[late] = bodies[late] + [{**activity(999, 1), "created_at": 12}]
    elif delivery == "outside_window":
        bodies[late] = bodies[late] + [activity(998, 86_400)]
    elif delivery == "set_aside_by_screening":
        bodies[late] = _invalid_utf8_page(bodies[late])

    def traverse():
        traversals.append(1)
        for number, body in enumerate(bodies, start=1):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            yield ActivityPage(records=None, raw_count=None, duplicates_dropped=0, first_id=None, last_id=None,
                               has_more=number < len(bodies), request_id=f"req_{number}", cursor=None,
                               page_number=number, body=b"", data_json=data)

    def load_all(name: str) -> tuple:
        with open_warehouse(tmp_path / f"{name}.duckdb") as conn, PageSpool(tmp_path / name) as spool:
            if delivery == "stored_before":
                load(conn, tmp_path, [records[:5]], run_id="earlier")
            stats, result = fetch_and_load(traverse, spool, lambda files, traversal: load_activity_range(
                conn, files, START, END, run_id="r", fetched_at=NOW, traversal=traversal, pages_per_batch=3))
            return result, stats, snapshot(conn)

    traversals: list = []
    result, stats, stored = load_all("fresh")
    # A range with rows goes to the checked load before any page is read: one traversal.
    once = delivery in ("ordinary", "repeat_across_batches", "repeat_in_a_batch", "stored_before")
    assert len(traversals) == (1 if once else 2)
    assert result.duplicates == (1 if "repeat" in delivery or delivery == "another_version" else 0)
    monkeypatch.setattr(activities, "_load_fresh", lambda *a, **k: None)
    assert load_all("checked") == (result, stats, stored)
    assert result.inserted == (295 if delivery == "stored_before" else 300)


def test_a_key_field_of_another_json_type_is_found_though_the_one_pass_load_checks_types_only_in_doubt(tmp_path):
    """The fresh load asks json_type only for records whose extracted key fields could be something else than a
    string (or, for `actor`, an object): each value a JSON reader takes, DuckDB's own literals included (NaN,
    inf, -Infinity), still gives its wrong_type reason; strings that look like numbers stay valid."""
    from pipeline.warehouse.activities import _PATHS, _pages, _records

    others = ["12", "-1e400", "1.5E+10", "0", "true", "false", "[1, 2]", "{}", '{"a": 1}', "NaN", "-Infinity",
              "inf", "-nan", "INF"]
    strings = ['"12"', '"true"', '"NaN"', '"[1]"', "null"]
    lines, expected = [], []
    for field in ("id", "created_at", "type", "organization_id", "actor.type", "actor"):
        for value, wrong in [(v, True) for v in others] + [(v, False) for v in strings]:
            if field == "actor":  # an object or null
                wrong = value not in ("{}", '{"a": 1}', "null")
            record = {**activity(len(lines), 1), "n": len(lines)}
            text = json.dumps(record)
            if field == "actor.type":
                text = text.replace('"type": "user_actor"', f'"type": {value}')
            elif field == "actor":
                text = text[:text.index('"actor"')] + f'"actor": {value}, "n": {len(lines)}}}'
            else:
                text = text.replace(f'"{field}": {json.dumps(record[field])}', f'"{field}": {value}', 1)
            lines.append(text)
            missing = field == "id" and value == "null"
            late = field == "created_at" and not wrong  # a string that is no timestamp, or null
            expected.append("missing_id" if missing else f"wrong_type:{field}" if wrong
                            else "bad_created_at" if late else None)
    page = tmp_path / "page.json"
    page.write_text("[" + ",\n".join(lines) + "]")
    with duckdb.connect() as conn:
        rows = conn.execute(f"""SELECT json_extract_string(json, '$.n')::INTEGER, reason
                                FROM ({_records(_pages([str(page)]), _PATHS)}) ORDER BY 1""",
                            {"start": START, "end": END}).fetchall()
    assert [reason for _, reason in rows] == expected
